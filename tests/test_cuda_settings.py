"""Issue 24's settings that a CPU run must not feel: training.compile is opt-in and leaves the model files of a
run without it as they were; the in-memory split's CUDA path (pinned, moved and prefetched by a thread) yields
the batches the plain path yields."""

from __future__ import annotations

import dataclasses

import torch

from zfrepro.data.splits import PreparedSplit, _moved, prefetched
from zfrepro.model.train_config import TrainConfig, training_record

# The training section's keys before training.compile existed: what model files and fingerprints record.
KEYS_BEFORE_COMPILE = ["epochs", "batch_size", "lr", "momentum", "weight_decay", "dropout", "init", "filter_radius",
                       "lr_schedule", "checkpoint_epochs", "amp", "channels_last", "validate"]


def test_compile_is_opt_in_and_recorded_only_when_set():
    cfg = TrainConfig.from_dict({})
    assert cfg.compile is False
    assert list(training_record(cfg)) == KEYS_BEFORE_COMPILE  # model files of runs without it are unchanged
    on = TrainConfig.from_dict({"compile": True})
    assert training_record(on) == {**dataclasses.asdict(cfg), "compile": True}


def test_memory_split_cuda_path_yields_the_plain_batches(tiny_prepared):
    split = PreparedSplit(tiny_prepared / "val.pt")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))
    plain = list(split.batches(order, 5))
    # what batches() does with a CUDA device, with the CPU standing in for it
    moved = list(prefetched(_moved(split._memory_batches(order, 5, pin_memory=False), torch.device("cpu")), None))
    assert len(plain) == len(moved) == 3
    for (a_images, a_labels), (b_images, b_labels) in zip(plain, moved, strict=True):
        assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)

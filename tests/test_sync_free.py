"""The hot loops make the host wait for the device only where they mean to (issue 24).

Each loop runs under tests/sync_recorder.SyncRecorder twice, over few and over many batches: the events that
grow with the batches are the per-batch ones, and those must be none (the training step, evaluation, mining,
features) or exactly the copies a loop is meant to make (each batch's input onto the device, asynchronously;
features: one copy of a batch's results to the host; occlusion: per image, its input and its five results).
Events that do not grow (setting up, one read at the end of a pass) are allowed.

The control test runs the same recorder over the code as it was (the old train-loop step written out, and the
old crop geometry), to show the recorder does catch the syncs issue 24 lists.
"""

from __future__ import annotations

import collections

import pytest
import torch
from sync_recorder import SyncRecorder

from zfrepro.analysis.mining import mine_top9
from zfrepro.analysis.occlusion import occlusion_data
from zfrepro.data import preprocess
from zfrepro.data.splits import PreparedSplit
from zfrepro.model.checkpoint import load_model
from zfrepro.model.evaluate import split_probabilities
from zfrepro.model.train import train
from zfrepro.model.train_config import TrainConfig
from zfrepro.transfer.features import extract_features

from conftest import TINY_ARCHS

KINDS = ("sync", "d2h", "h2d_blocking", "h2d_pageable", "h2d_async")


def per_batch(run, few: int, many: int) -> tuple[dict[str, float], SyncRecorder]:
    """Events per batch: (events over `many` batches - over `few`) / (many - few); run(n) does n batches."""
    recs = []
    for n in (few, many):
        with SyncRecorder("cpu") as rec:
            run(n)
        recs.append(rec)
    a, b = (r.counts() for r in recs)
    return {k: (b[k] - a[k]) / (many - few) for k in KINDS}, recs[1]


def explain(rec: SyncRecorder) -> str:
    return "\n".join(f"{kind}: {dict(rec.by_site(kind))}" for kind in KINDS if rec.by_site(kind))


def test_a_training_epoch_has_no_sync_per_step(tiny_prepared, tmp_path, one_torch_thread):
    def run(steps: int) -> None:
        batch = 48 // steps  # the tiny split has 48 training images
        cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": batch, "checkpoint_epochs": [],
                                     "lr_schedule": {"kind": "none"}})
        train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path / f"run{steps}", device="cpu",
              threads=1)

    rates, rec = per_batch(run, 2, 12)
    # per step: the images and the labels onto the device, without waiting; nothing else
    assert rates == {"sync": 0, "d2h": 0, "h2d_blocking": 0, "h2d_pageable": 0, "h2d_async": 2}, explain(rec)


def test_evaluation_has_no_sync_per_batch(tiny_zf, tiny_prepared, one_torch_thread):
    model, ckpt = load_model(tiny_zf, torch.device("cpu"))
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)

    def run(batches: int) -> None:
        split_probabilities(model, split, mean, ckpt["crop_size"], torch.arange(4 * batches), 4,
                            torch.device("cpu"))

    rates, rec = per_batch(run, 1, 3)
    assert rates == {"sync": 0, "d2h": 0, "h2d_blocking": 0, "h2d_pageable": 0, "h2d_async": 1}, explain(rec)


def test_mining_has_no_sync_per_batch(tiny_zf, tiny_prepared, one_torch_thread):
    model, ckpt = load_model(tiny_zf, torch.device("cpu"))
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)

    def run(batches: int) -> None:
        mine_top9(model, split, mean, ckpt["crop_size"], layers=("conv1", "conv2", "conv5"), batch_size=4,
                  indices=torch.arange(4 * batches), device="cpu")

    rates, rec = per_batch(run, 1, 3)
    assert rates == {"sync": 0, "d2h": 0, "h2d_blocking": 0, "h2d_pageable": 0, "h2d_async": 1}, explain(rec)


def test_features_copy_once_per_batch(tiny_zf, tiny_prepared, one_torch_thread):
    def run(batches: int) -> None:
        extract_features(tiny_zf, tiny_prepared / "val.pt", tiny_prepared / "mean.pt", ["conv1", "conv5", "fc6"],
                         max_feature_dim=512, batch_size=12 // batches, device="cpu")

    rates, rec = per_batch(run, 1, 3)  # 12 validation images: 1 batch of 12, 3 of 4
    assert rates == {"sync": 0, "d2h": 1, "h2d_blocking": 0, "h2d_pageable": 0, "h2d_async": 1}, explain(rec)


def test_occlusion_moves_the_model_once(tiny_zf, tiny_prepared, one_torch_thread):
    top9 = mine_top9(*_model_split_mean_crop(tiny_zf, tiny_prepared), layers=("conv5",), device="cpu")
    top9["split"] = "val"
    images = [{"wnid": PreparedSplit(tiny_prepared / "val.pt").classes[0], "nth": 0}]

    def run(sampled: int) -> None:
        occlusion_data(tiny_zf, tiny_prepared, top9, images, size=24, stride=20, layer="conv5", top_projections=0,
                       device="cpu", sample=sampled)

    rates, rec = per_batch(run, 1, 3)
    # per image: its crop onto the device (one small copy), its five results back (occlusion_maps' return)
    assert rates == {"sync": 0, "d2h": 5, "h2d_blocking": 1, "h2d_pageable": 0, "h2d_async": 1}, explain(rec)


def _model_split_mean_crop(model_path, data_dir):
    model, ckpt = load_model(model_path, torch.device("cpu"))
    split = PreparedSplit(data_dir / "val.pt")
    return model, split, torch.load(data_dir / "mean.pt", weights_only=True), ckpt["crop_size"]


# ---------------------------------------------------------------------------------------------- the control


def _old_gathered_crops(images_u8, mean, crop_size, choice):
    """zfrepro.data.preprocess._gathered_crops before issue 24 (its offsets built per call)."""
    size, device = images_u8.shape[-1], images_u8.device
    choice = choice.to(device)
    offsets = preprocess.crop_offsets(size, crop_size)
    tops = torch.tensor([t for t, _ in offsets] * 2, device=device)
    lefts = torch.tensor([x for _, x in offsets] + [size - crop_size - x for _, x in offsets], device=device)
    flip = choice >= 5
    step = torch.arange(crop_size, device=device)
    rows = tops[choice][:, None] + step
    cols = lefts[choice][:, None] + torch.where(flip[:, None], crop_size - 1 - step, step)
    batch = torch.arange(images_u8.shape[0], device=device)[:, None, None, None]
    channel = torch.arange(3, device=device)[None, :, None, None]
    rows, cols = rows[:, None, :, None], cols[:, None, None, :]
    return images_u8[batch, channel, rows, cols].to(torch.float32) - mean.to(torch.float32)[channel, rows, cols]


def _old_step_bookkeeping(step, loss, logits, labels, idx, device, loss_sum, wrong):
    """The per-step host work of train.py's loop before issue 24 (crop indices moved blocking, the loss read on
    the host every 10 steps), with the step itself left out."""
    idx.to(device)
    loss_sum += loss.detach() * len(labels)
    wrong += (logits.detach().argmax(1) != labels).sum()
    if step % 10 == 0 and not torch.isfinite(loss_sum):
        raise AssertionError("diverged")


@pytest.mark.parametrize("gather", ["old", "new"])
def test_control_the_recorder_catches_the_old_crop_geometry(gather):
    gen = torch.Generator().manual_seed(0)
    crop = preprocess._gathered_crops if gather == "new" else _old_gathered_crops
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=gen)
    mean, choice = torch.rand(3, 16, 16, generator=gen) * 255, torch.randint(0, 10, (4,), generator=gen)
    crop(images, mean, 12, choice)  # first call: builds what is built once
    counts = []
    for calls in (1, 4):
        with SyncRecorder("cpu") as rec:
            x, m, c = (t.to("cpu", non_blocking=True) for t in (images, mean, choice))
            for _ in range(calls):
                out = crop(x, m, 12, c)
        counts.append(rec.counts())
    # the same crops either way (their values against the sliced ones: test_preprocess)
    torch.testing.assert_close(out, _old_gathered_crops(images, mean, 12, choice), rtol=0, atol=0)
    growth = {k: counts[1][k] - counts[0][k] for k in KINDS}
    if gather == "old":  # two torch.tensor(list, device=...) per call: pageable copies that wait
        assert growth["h2d_blocking"] == 2 * 3, growth
    else:
        assert growth["h2d_blocking"] == 0 and growth["sync"] == 0, growth


def test_control_the_recorder_catches_the_old_train_step_bookkeeping():
    loss_sum, wrong = torch.zeros(()), torch.zeros(())
    counts = collections.Counter()
    with SyncRecorder("cpu") as rec:
        loss_sum, wrong = loss_sum.to("cpu", non_blocking=True), wrong.to("cpu", non_blocking=True)
        for step in range(20):
            labels = torch.randint(0, 3, (4,)).to("cpu", non_blocking=True)
            logits = torch.randn(4, 3).to("cpu", non_blocking=True)
            _old_step_bookkeeping(step, logits.logsumexp(1).mean(), logits, labels, torch.randint(0, 10, (4,)),
                                  torch.device("cpu"), loss_sum, wrong)
        counts.update(rec.counts())
    assert counts["h2d_blocking"] == 20, explain(rec)  # idx.to(device) every step
    assert counts["sync"] == 2, explain(rec)  # the isfinite read at steps 0 and 10

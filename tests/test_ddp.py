"""Data-parallel training divides its work (issue 24): two gloo processes on the CPU, as torchrun starts them.

- validation: each rank evaluates its share of the split and one all-reduce gives every rank the error of
  the whole split, equal to one process's;
- dropout: the ranks draw different masks, and the same ones again when the run is repeated with its seed;
- divergence: a loss that turns NaN on one rank stops every rank with the same message (none left waiting);
- threads: each rank takes its share of the job's CPUs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import traceback
from pathlib import Path

import pytest
import torch

from conftest import TINY_ARCHS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(target, rank: int, world: int, port: int, out: Path, args: tuple) -> None:
    """A child process set up as torchrun sets up each rank; `target(rank, *args)`'s result saved to out."""
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    try:
        result = {"ok": target(rank, *args)}
    except BaseException as exc:  # reported to the parent, which asserts on it
        result = {"error": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
    torch.save(result, out)


def run_ranks(target, world: int, tmp: Path, *args, timeout: float = 120) -> list[dict]:
    """Run target(rank, *args) in `world` spawned processes joined by gloo; their results, in rank order. A rank
    still running after `timeout` seconds (waiting in a collective another rank left) fails the test."""
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    outs = [tmp / f"rank{r}.pt" for r in range(world)]
    procs = [ctx.Process(target=_rank_main, args=(target, r, world, port, outs[r], args)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    hung = [r for r, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert not hung, f"rank(s) {hung} still running after {timeout} s (left waiting in a collective)"
    return [torch.load(o, weights_only=False) for o in outs]


# ---------------------------------------------------------------------------------------------- validation


def _validation(rank: int, model_path: str, data_dir: str) -> dict:
    from zfrepro.data.splits import PreparedSplit
    from zfrepro.model.checkpoint import load_model
    from zfrepro.model.runtime import setup_runtime
    from zfrepro.model.train import center_crop_error

    torch.set_num_threads(1)
    rt = setup_runtime("cpu")
    model, ckpt = load_model(model_path)
    split = PreparedSplit(Path(data_dir) / "val.pt")
    seen = []
    batches = split.batches
    split.batches = lambda order, *a, **k: (seen.append(len(order)), batches(order, *a, **k))[1]
    mean = torch.load(Path(data_dir) / "mean.pt", weights_only=True)
    error = center_crop_error(model, split, mean, ckpt["crop_size"], rt, 4, autocast=False)
    torch.distributed.destroy_process_group()
    return {"error": error, "images": sum(seen), "world": rt.world}


def test_sharded_validation_gives_one_process_error(tiny_zf, tiny_prepared, tmp_path):
    from zfrepro.data.splits import PreparedSplit
    from zfrepro.model.checkpoint import load_model
    from zfrepro.model.runtime import Runtime
    from zfrepro.model.train import center_crop_error

    model, ckpt = load_model(tiny_zf)
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    one = center_crop_error(model, split, mean, ckpt["crop_size"], Runtime(torch.device("cpu")), 4, autocast=False)
    ranks = run_ranks(_validation, 2, tmp_path, str(tiny_zf), str(tiny_prepared))
    assert all("ok" in r for r in ranks), ranks
    assert [r["ok"]["world"] for r in ranks] == [2, 2]
    assert [r["ok"]["error"] for r in ranks] == [one, one]
    assert [r["ok"]["images"] for r in ranks] == [len(split) // 2] * 2  # each its half, not the whole split


# ---------------------------------------------------------------------------------------------- training


def _train(rank: int, data_dir: str, out_dir: str, nan_on_rank: int | None) -> dict:
    """One epoch of `zfrepro train` on this rank; the first dropout masks it drew; its torch threads."""
    import torch.nn.functional as F

    from zfrepro.model import train as training

    masks = []
    dropout = F.dropout

    def recording_dropout(x, p=0.5, training=True, inplace=False):
        if training and len(masks) < 2:  # the mask this call draws, whatever the data (same RNG state)
            with torch.random.fork_rng():
                drawn = dropout(torch.ones(x.shape), p, True) == 0
            masks.append(hashlib.sha256(drawn.numpy().tobytes()).hexdigest())
        return dropout(x, p, training, inplace)

    F.dropout = recording_dropout
    if nan_on_rank == rank:
        step = training.sgd_step

        def nan_step(*args, **kwargs):
            loss, logits = step(*args, **kwargs)
            return loss * float("nan"), logits

        training.sgd_step = nan_step
    cfg = training.TrainConfig.from_dict({"epochs": 1, "batch_size": 16, "checkpoint_epochs": [],
                                          "lr_schedule": {"kind": "none"}, "validate": False})
    training.train(data_dir, "zf", TINY_ARCHS["zf"], cfg, seed=3, out_dir=out_dir, device="cpu", threads=4)
    return {"masks": masks, "threads": torch.get_num_threads()}


def test_ranks_draw_different_dropout_masks_reproducibly(tiny_prepared, tmp_path):
    runs = []
    for attempt in range(2):
        (tmp_path / str(attempt)).mkdir()
        ranks = run_ranks(_train, 2, tmp_path / str(attempt), str(tiny_prepared), str(tmp_path / f"out{attempt}"),
                          None)
        assert all("ok" in r for r in ranks), [r.get("traceback") for r in ranks]
        runs.append([r["ok"] for r in ranks])
    first, second = runs
    assert first[0]["masks"] and first[0]["masks"] != first[1]["masks"]  # the ranks drop different units
    assert [r["masks"] for r in first] == [r["masks"] for r in second]  # and the same again with the seed
    assert [r["threads"] for r in first] == [2, 2]  # the job's 4 CPUs shared by its 2 processes


def test_rank_zero_keeps_the_single_process_dropout_seed():
    from zfrepro.model.runtime import dropout_seed, epoch_seed

    assert dropout_seed(7, 3, 0) == epoch_seed(7, 3)  # one process trains as before
    seeds = {dropout_seed(7, 3, r) for r in range(8)}
    assert len(seeds) == 8 and all(0 <= s < 2 ** 32 for s in seeds)


def test_a_diverging_rank_stops_every_rank_with_the_same_message(tiny_prepared, tmp_path):
    ranks = run_ranks(_train, 2, tmp_path, str(tiny_prepared), str(tmp_path / "out"), 1, timeout=90)
    assert [r.get("error") for r in ranks] == ["TrainingError", "TrainingError"], ranks
    assert ranks[0]["message"] == ranks[1]["message"] and "diverged" in ranks[0]["message"]

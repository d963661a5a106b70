"""Training: filter renormalization, schedule, NaN guard, resume after a kill, and DDP equivalence."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import zfrepro.model.train
from zfrepro.errors import ConfigError, TrainingError
from zfrepro.io import atomic_torch_save
from zfrepro.model.train import make_scheduler, renormalize_filters_, train
from zfrepro.model.train_config import TrainConfig

from conftest import TINY_ARCHS

FAST = {"epochs": 2, "batch_size": 16, "lr": 0.01, "checkpoint_epochs": [1, 2],
        "init": {"scheme": "gaussian", "std": 0.03}}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "zfrepro.cli", *args]


def _train_cmd(data: Path, out: Path, params: dict, arch: str = "zf") -> list[str]:
    return _cli("train", "--data-dir", str(data), "--arch", arch, "--arch-params", json.dumps(TINY_ARCHS[arch]),
                "--train-params", json.dumps(params), "--seed", "3", "--out-dir", str(out),
                "--device", "cpu", "--threads", "1")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_renormalization_clips_only_filters_above_the_radius():
    conv = nn.Conv2d(1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight[0] = 0.2  # RMS 0.2 -> rescaled to 0.1
        conv.weight[1] = 0.05  # RMS 0.05 -> untouched
        conv.weight[2] = torch.tensor([[0.3, -0.3], [0.0, 0.0]])  # RMS 0.3/sqrt(2) -> 0.1
    renormalize_filters_({"conv1": conv}, radius=0.1)
    w = conv.weight.detach()
    assert torch.allclose(w[0], torch.full((1, 2, 2), 0.1))
    assert torch.allclose(w[1], torch.full((1, 2, 2), 0.05))
    assert torch.allclose(w[2].pow(2).mean().sqrt(), torch.tensor(0.1))
    assert torch.allclose(w[2], torch.tensor([[[0.1, -0.1], [0.0, 0.0]]]) * 2**0.5)


def test_plateau_schedule_divides_lr_by_ten_after_patience():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = make_scheduler(opt, {"kind": "plateau", "factor": 0.1, "patience": 1})
    for err in [50.0, 40.0, 40.0, 40.0]:
        sched.step(err)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_unknown_training_key_is_named():
    with pytest.raises(ConfigError, match="training.epochz"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="training.validate is false"):
        TrainConfig.from_dict({"validate": False, "lr_schedule": {"kind": "plateau"}})  # it needs the validation error
    assert not TrainConfig.from_dict({"validate": False}).validate  # the default step schedule does not


def test_training_without_validation_trains_identically(tiny_prepared, tmp_path):
    base = {"epochs": 2, "batch_size": 16, "checkpoint_epochs": [], "lr_schedule": {"kind": "step", "milestones": [1]}}
    runs = {}
    for validate in (True, False):
        cfg = TrainConfig.from_dict({**base, "validate": validate})
        final = train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path / str(validate),
                      device="cpu", threads=1)
        runs[validate] = torch.load(final, weights_only=True)["model"]
    assert all(torch.equal(runs[True][k], runs[False][k]) for k in runs[True])
    history = pd.read_csv(tmp_path / "False" / "metrics.csv")
    assert history["val_top1_error_center"].isna().all() and len(history) == 2


def test_training_writes_checkpoints_and_learns(tiny_prepared, tmp_path):
    cfg = TrainConfig.from_dict({**FAST, "epochs": 6, "checkpoint_epochs": [1, 3]})
    final = train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path, device="cpu", threads=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".epoch1.pt.sha256.json", ".epoch3.pt.sha256.json", ".final.pt.sha256.json",  # checksums (see io.py)
        "epoch1.pt", "epoch3.pt", "final.pt", "metrics.csv"]
    ckpt = torch.load(final, weights_only=True)  # plain types only: loads with weights_only=True
    assert ckpt["epoch"] == 6 and ckpt["arch"] == "zf"
    history = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(history) == 7
    losses = [float(line.split(",")[2]) for line in history[1:]]
    assert losses[-1] < losses[0]  # it learns something on 3 classes
    # filter renormalization held after the last step
    for name, w in ckpt["model"].items():
        if name.endswith("weight") and w.dim() == 4:
            assert w.pow(2).mean(dim=(1, 2, 3)).sqrt().max() <= 0.1 + 1e-6


def test_nan_loss_stops_with_a_clear_error(tiny_prepared, tmp_path):
    broken = tmp_path / "data"
    shutil.copytree(tiny_prepared, broken)
    mean = torch.load(broken / "mean.pt", weights_only=True)
    mean[0, 0, 0] = float("nan")
    atomic_torch_save(broken / "mean.pt", mean)  # records the new checksum: a deliberate change, not damage
    with pytest.raises(TrainingError, match="NaN.*training.lr"):
        train(broken, "zf", TINY_ARCHS["zf"], TrainConfig.from_dict(FAST), seed=0, out_dir=tmp_path / "m",
              device="cpu", threads=1)
    assert not (tmp_path / "m" / "final.pt").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    res = subprocess.run(_train_cmd(tmp_path / "nowhere", tmp_path / "m", FAST), capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "train.pt is missing" in res.stderr


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tiny_prepared, tmp_path):
    params = {**FAST, "epochs": 25, "checkpoint_epochs": [1, 10]}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_train_cmd(tiny_prepared, whole, params), check=True, capture_output=True)

    proc = subprocess.Popen(_train_cmd(tiny_prepared, killed, params), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    last = killed / ".work" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "final.pt").exists()
    interrupted_at = torch.load(last, weights_only=True)["epoch"]
    assert interrupted_at < params["epochs"]

    res = subprocess.run(_train_cmd(tiny_prepared, killed, params), check=True, capture_output=True, text=True)
    assert f"resuming from {last} after epoch" in res.stdout
    a, b = _weights(whole / "final.pt"), _weights(killed / "final.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for name, w in _weights(whole / "epoch10.pt").items():
        assert torch.equal(w, _weights(killed / "epoch10.pt")[name]), name


# ---------------------------------------------------------------------------------------------------------
# Resuming never mixes configurations (issue 9): each case ends bitwise equal to a fresh run of the new one


def _interrupted_before_publishing(data: Path, out: Path, arch_params: dict, params: dict, monkeypatch) -> Path:
    """Train to the end but stop before the final files are published: .work/last.pt holds the whole run."""
    with monkeypatch.context() as m:
        m.setattr(zfrepro.model.train, "publish", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            train(data, "zf", arch_params, TrainConfig.from_dict(params), seed=0, out_dir=out, device="cpu", threads=1)
    assert (out / ".work" / "last.pt").exists() and not (out / "final.pt").exists()
    return out / ".work" / "last.pt"


def _assert_same_as_fresh(data: Path, out: Path, arch_params: dict, params: dict, tmp_path: Path, capsys) -> str:
    """Rerun in `out` with the new configuration; its model must equal a fresh run's, bit for bit."""
    cfg = TrainConfig.from_dict(params)
    rerun = train(data, "zf", arch_params, cfg, seed=0, out_dir=out, device="cpu", threads=1)
    log = capsys.readouterr().out
    fresh = train(data, "zf", arch_params, cfg, seed=0, out_dir=tmp_path / "fresh", device="cpu", threads=1)
    a, b = _weights(rerun), _weights(fresh)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert torch.load(rerun, weights_only=True)["training"] == torch.load(fresh, weights_only=True)["training"]
    return log


def test_changed_learning_rate_starts_afresh(tiny_prepared, tmp_path, monkeypatch, capsys):
    old = {**FAST, "checkpoint_epochs": [1]}
    last = _interrupted_before_publishing(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], old, monkeypatch)
    new = {**old, "epochs": 3, "lr": 0.05, "lr_schedule": {"kind": "none"}}
    log = _assert_same_as_fresh(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], new, tmp_path, capsys)
    assert f"not resuming from {last}: it was made with another configuration" in log
    assert all(f"training.{key}" in log for key in ("epochs", "lr,", "lr_schedule.kind"))


def test_changed_architecture_starts_afresh_instead_of_a_size_mismatch(tiny_prepared, tmp_path, monkeypatch, capsys):
    _interrupted_before_publishing(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], FAST, monkeypatch)
    wider = {**TINY_ARCHS["zf"], "width": 0.25}
    log = _assert_same_as_fresh(tiny_prepared, tmp_path / "m", wider, FAST, tmp_path, capsys)
    assert "(changed: architectures.zf.width); starting afresh" in log  # the key the user changed, not spec.convs
    assert "spec." not in log


def test_diverged_state_is_never_resumed(tiny_prepared, tmp_path, capsys):
    # Epoch 1 trains normally; the step schedule then multiplies lr by 1e4, which diverges in epoch 2.
    blowing_up = {**FAST, "epochs": 3, "checkpoint_epochs": [], "lr_schedule": {"kind": "step", "milestones": [1],
                                                                              "factor": 1e4}}
    out = tmp_path / "m"
    with pytest.raises(TrainingError, match="diverged.*starts afresh") as err:
        train(tiny_prepared, "zf", TINY_ARCHS["zf"], TrainConfig.from_dict(blowing_up), seed=0, out_dir=out,
              device="cpu", threads=1)
    assert not (out / ".work" / "last.pt").exists()  # set aside, not resumable
    kept = torch.load(out / ".work" / "diverged_last.pt", weights_only=True)["epoch"]  # kept to inspect
    assert f"after epoch {kept}, is kept for inspection in {out / '.work' / 'diverged_last.pt'}" in str(err.value)
    capsys.readouterr()
    fixed = {**blowing_up, "lr_schedule": {"kind": "none"}, "lr": 0.01}
    log = _assert_same_as_fresh(tiny_prepared, out, TINY_ARCHS["zf"], fixed, tmp_path, capsys)
    assert "resuming" not in log


def test_divergence_in_the_first_epoch_says_nothing_was_kept(tiny_prepared, tmp_path):
    out = tmp_path / "m"
    with pytest.raises(TrainingError) as err:
        train(tiny_prepared, "zf", TINY_ARCHS["zf"], TrainConfig.from_dict({**FAST, "lr": 1e6, "filter_radius": None}),
              seed=0, out_dir=out, device="cpu", threads=1)
    assert "diverged: the loss became NaN/inf at epoch 1" in str(err.value)
    assert str(err.value).endswith("(nothing was kept: no state is saved before the first epoch ends).")
    assert not (out / ".work" / "diverged_last.pt").exists()


def test_unreadable_resume_state_starts_afresh(tiny_prepared, tmp_path, monkeypatch, capsys):
    last = _interrupted_before_publishing(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], FAST, monkeypatch)
    last.write_bytes(last.read_bytes()[:1000])  # a disk that lost the end of the file
    log = _assert_same_as_fresh(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], FAST, tmp_path, capsys)
    assert f"not resuming from {last}: it cannot be used ({last} is damaged" in log


def test_same_configuration_still_resumes(tiny_prepared, tmp_path, monkeypatch, capsys):
    last = _interrupted_before_publishing(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], FAST, monkeypatch)
    log = _assert_same_as_fresh(tiny_prepared, tmp_path / "m", TINY_ARCHS["zf"], FAST, tmp_path, capsys)
    assert f"resuming from {last} after epoch 2" in log


@pytest.mark.slow
def test_two_process_ddp_step_equals_single_process_step(tiny_prepared, tmp_path):
    # Dropout off so both runs draw no per-process randomness; one epoch of 3 global batches of 16.
    params = {**FAST, "epochs": 1, "dropout": 0.0, "checkpoint_epochs": []}
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(_train_cmd(tiny_prepared, single, params), check=True, capture_output=True)
    cmd = _train_cmd(tiny_prepared, ddp, params)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                "zfrepro.cli", *cmd[3:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(torchrun, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    a, b = _weights(single / "final.pt"), _weights(ddp / "final.pt")
    start = torch.load(single / "final.pt", weights_only=True)
    assert start["epoch"] == 1
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=1e-4), name


def test_stream_mode_trains_exactly_like_the_memory_cache(tiny_imagenet, tiny_prepared, tmp_path):
    from zfrepro.data.prepare import prepare_imagenet

    from conftest import TINY_DATA

    streamed = tmp_path / "stream"
    prepare_imagenet(tiny_imagenet, streamed, {**TINY_DATA, "cache": "stream", "shard_format": "raw"}, threads=1)
    assert "shards" in torch.load(streamed / "train.pt", weights_only=True)
    cfg = TrainConfig.from_dict({**FAST, "epochs": 1, "checkpoint_epochs": []})
    a = train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=1, out_dir=tmp_path / "a", device="cpu", threads=1)
    b = train(streamed, "zf", TINY_ARCHS["zf"], cfg, seed=1, out_dir=tmp_path / "b", device="cpu", threads=1)
    for name, w in _weights(a).items():
        assert torch.equal(w, _weights(b)[name]), name

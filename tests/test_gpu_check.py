"""benchmarks/gpu_check.py: its FLOP count is the hand-computed one, its peak table goes by the exact card, every
stage is written as it ends (a failing one recorded, the rest still run), and its CPU smoke run does all of it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from zfrepro.model.spec import fc6_in_features, rectified_shapes

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402


def _forward_flops_by_hand(spec) -> int:
    """2 x multiply-adds of every convolution (at its rectified output size) and fully connected layer."""
    flops, channels = 0, spec.in_channels
    for conv, (out, h, w) in zip(spec.convs, rectified_shapes(spec).values(), strict=True):
        flops += 2 * channels * conv.kernel * conv.kernel * out * h * w
        channels = out
    units = [fc6_in_features(spec)] + [fc.units for fc in spec.fcs] + [spec.num_classes]
    return flops + sum(2 * a * b for a, b in zip(units, units[1:], strict=False))


def test_flop_count_is_the_hand_computed_one():
    model = gpu_check.build(1.0, 224, 1000, torch.device("cpu"))
    x, y = torch.randn(2, 3, 224, 224), torch.tensor([1, 2])
    by_hand = _forward_flops_by_hand(model.spec)
    assert by_hand == pytest.approx(2.34e9, rel=0.01)  # the ZF forward pass at 224, as issue 11 quotes it
    # training = forward + backward (gradients of inputs and of weights: twice the forward, but conv1 has no
    # input gradient)
    conv1 = model.spec.convs[0]
    _, h, w = rectified_shapes(model.spec)["conv1"]
    conv1_flops = 2 * 3 * conv1.kernel ** 2 * conv1.out_channels * h * w
    assert gpu_check.flops_per_image(model, x, y) == 3 * by_hand - conv1_flops


@pytest.mark.parametrize(("name", "peak"), [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 NVL", 835.0),
    ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-40GB", 312.0), ("NVIDIA A100-SXM4-80GB", 312.0),
    ("NVIDIA A100 80GB PCIe", 312.0), ("NVIDIA L40S", 362.0),
    ("NVIDIA H800", None), ("NVIDIA RTX A6000", None), (None, None)])  # unknown: images/s only
def test_peak_table_goes_by_the_exact_card(name, peak):
    assert gpu_check.peak_tflops(name, None) == peak
    assert gpu_check.peak_tflops(name, 500.0) == 500.0  # --peak-tflops wins


def test_every_stage_is_written_as_it_ends_and_a_failure_stops_nothing(tmp_path):
    out = tmp_path / "check.json"
    results = gpu_check.Results(out, {"device": "test"})
    seen_by_b = {}

    def b():
        seen_by_b.update(json.loads(out.read_text())["stages"])
        return {"images_per_second": 2.0}

    results.stage("a", lambda: {"images_per_second": 1.0})
    results.stage("b", b)
    results.stage("c", lambda: 1 / 0)
    results.stage("d", lambda: {"images_per_second": 4.0}, fail="d")
    results.stage("e", lambda: {"images_per_second": 5.0}, fail="d")
    assert seen_by_b["a"]["images_per_second"] == 1.0  # on disk before the next stage started
    stages = json.loads(out.read_text())["stages"]
    assert [stages[k]["status"] for k in "abcde"] == ["ok", "ok", "failed", "failed", "ok"]
    assert stages["c"]["error"].startswith("ZeroDivisionError") and "--fail-stage d" in stages["d"]["error"]
    assert stages["e"]["images_per_second"] == 5.0
    assert "c FAILED" in gpu_check.summary(json.loads(out.read_text()))


@pytest.mark.slow
def test_smoke_run_writes_every_stage_and_survives_a_failing_one(tmp_path):
    out = tmp_path / "check.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--smoke", "--out", str(out),
                    "--fail-stage", "evaluate"], check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["crop"] == 224 and result["peak_bf16_tflops"] is None
    stages = result["stages"]
    assert set(stages) == {"train", "evaluate", "data_path", "data_path_jpeg", "ddp"}
    assert stages["evaluate"]["status"] == "failed" and "--fail-stage evaluate" in stages["evaluate"]["error"]
    for name in ("train", "data_path", "data_path_jpeg"):
        assert stages[name]["status"] == "ok" and stages[name]["images_per_second"] > 0
        assert "mfu" not in stages[name]  # no peak known for a CPU
    train = stages["train"]
    assert train["images_per_second"] == pytest.approx(result["batch_size"] * train["steps"] / train["seconds"])
    # DDP over two gloo processes, compared after exactly one float32 step: equal to rounding
    assert stages["ddp"]["status"] == "ok" and stages["ddp"]["processes"] == 2
    assert stages["ddp"]["max_weight_difference_after_one_step"] < 1e-5 * stages["ddp"]["largest_weight"]


@pytest.mark.slow
def test_smoke_evaluate_is_the_float32_evaluation(tmp_path):
    out = tmp_path / "check.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--smoke", "--out", str(out), "--no-ddp",
                    "--no-jpeg"], check=True, capture_output=True, timeout=600)
    evaluate = json.loads(out.read_text())["stages"]["evaluate"]
    assert evaluate["status"] == "ok" and evaluate["precision"].startswith("float32")
    assert evaluate["images_per_second"] == pytest.approx(evaluate["images"] / evaluate["seconds"])

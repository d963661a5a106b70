"""benchmarks/gpu_check.py: its FLOP count is the hand-computed one, and its CPU smoke run writes every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from zfrepro.model.network import fc6_in_features, rectified_shapes

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


@pytest.mark.slow
def test_smoke_run_writes_every_measurement(tmp_path):
    out = tmp_path / "check.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--smoke", "--out", str(out)],
                   check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["crop"] == 224
    for name in ("train", "data_path", "evaluate"):
        assert result[name]["images_per_second"] == pytest.approx(result["batch_size"] / result[name]["seconds"])

"""BandedLRN's GPU/low-precision path: the reduction in float32, the result in its input's dtype (issue 24).

Checked against torch.nn.LocalResponseNorm evaluated in float64 on the same (bf16-rounded) input: under bf16
autocast the output must be bf16 and correctly rounded to within half a bf16 unit in the last place (plus a
hair for the float32 arithmetic); summing the squares in bf16 misses that by several units.
"""

from __future__ import annotations

import pytest
import torch

from zfrepro.model.network import BandedLRN

PARAMS = {"alpha": 1e-4, "beta": 0.75, "k": 2.0}  # the networks' LRN (spec.lrn); beta 0.75 as the paper's


def _bf16_ulp(y: torch.Tensor) -> torch.Tensor:
    """One unit in the last place of each bf16 value (8 significant bits)."""
    _, exponent = torch.frexp(y.double())
    return torch.ldexp(torch.ones_like(y, dtype=torch.float64), exponent - 8)


def _activations(channels: int = 32, seed: int = 0) -> torch.Tensor:
    # conv1's rectified outputs span a few hundred: where squaring in bf16 rounds the window sums hard
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(2, channels, 6, 6, generator=gen) * 60).relu()


@pytest.mark.parametrize("size", [5, 4, 3])
def test_bf16_autocast_output_is_bf16_and_correctly_rounded(size):
    lrn = BandedLRN(size, **PARAMS)
    x = _activations().bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lrn(x)
    assert y.dtype == torch.bfloat16
    ref = torch.nn.LocalResponseNorm(size, **PARAMS)(x.double())
    err_ulps = ((y.double() - ref).abs() / _bf16_ulp(ref)).max().item()
    assert err_ulps <= 0.5 + 1e-3, err_ulps


@pytest.mark.parametrize("size", [5, 4])
def test_pooled_path_is_torchs_function(size):
    """The path CUDA takes, in float64 on the CPU: LocalResponseNorm's function (forward and gradient)."""
    lrn = BandedLRN(size, **PARAMS)
    x = _activations(seed=1).double().requires_grad_()
    y = lrn._pooled(x)
    ref_x = x.detach().clone().requires_grad_()
    ref = torch.nn.LocalResponseNorm(size, **PARAMS)(ref_x)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    y.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-10, atol=1e-12)


def test_half_input_keeps_its_dtype_and_channels_last():
    lrn = BandedLRN(5, **PARAMS)
    x = _activations(seed=2).half().contiguous(memory_format=torch.channels_last)
    y = lrn(x)
    assert y.dtype == torch.float16 and y.shape == x.shape
    ref = torch.nn.LocalResponseNorm(5, **PARAMS)(x.double())
    torch.testing.assert_close(y.double(), ref, rtol=2e-3, atol=0)


def test_cpu_float32_path_is_unchanged():
    """The CPU float32 path (the CPU study's) is still the shifted-slice sum, bit for bit."""
    lrn = BandedLRN(5, **PARAMS)
    x = _activations(seed=3)
    squares = torch.nn.functional.pad(x * x, (0, 0, 0, 0, 2, 2))
    total = squares[:, :32]
    for offset in range(1, 5):
        total = total + squares[:, offset:offset + 32]
    expected = x / (total / 5).mul(PARAMS["alpha"]).add(PARAMS["k"]).pow(PARAMS["beta"])
    assert torch.equal(lrn(x), expected)

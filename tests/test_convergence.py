"""Claim 9's numbers (Fig 4): linear CKA against its textbook formula and its invariances, and the per-seed curves of
a trained model."""

from __future__ import annotations

import pytest
import torch

from zfrepro.analysis.convergence import cka, convergence_data, convergence_table, gram, sample_indices
from zfrepro.errors import ConfigError


def _hsic_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA from HSIC with the centring matrix H: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)), K = X X^T."""
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l = x.double() @ x.double().T, y.double() @ y.double().T  # noqa: E741

    def hsic(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.trace(a @ h @ b @ h))

    return hsic(k, l) / (hsic(k, k) * hsic(l, l)) ** 0.5


def test_cka_is_the_hsic_formula_and_ignores_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 30, generator=g), torch.randn(20, 12, generator=g)
    assert cka(gram(x), gram(y)) == pytest.approx(_hsic_cka(x, y))
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g))
    assert cka(gram(x), gram(3.0 * x @ q)) == pytest.approx(1.0)  # rotated and scaled: the same representation
    assert cka(gram(x), gram(x + 5.0)) == pytest.approx(1.0)  # an offset is centred away
    assert cka(gram(x[:, :1]), gram(torch.zeros(20, 4))) == 0.0  # no variance: 0, not nan
    assert gram(torch.ones(4, 2, 3, 3)).abs().max() == 0  # features [n, ...] flattened, then centred


def test_sample_indices_are_a_fixed_sorted_subset():
    assert sample_indices(10, None, 0).tolist() == list(range(10))
    a = sample_indices(100, 7, 3)
    assert a.tolist() == sorted(a.tolist()) and len(set(a.tolist())) == 7
    assert torch.equal(a, sample_indices(100, 7, 3))


def test_a_model_compared_with_itself_has_cka_1_at_every_layer(tiny_zf, tiny_prepared):
    data = convergence_data({0: {1: tiny_zf, 2: tiny_zf}, 3: {1: tiny_zf, 2: tiny_zf}}, tiny_prepared, 6, 0)
    assert data["seeds"] == [0, 3] and data["epochs"] == [1] and data["final_epoch"] == 2
    assert data["layers"] == ["conv1", "conv2", "conv3", "conv4", "conv5"] and data["images"] == 6
    assert data["cka"].shape == (2, 1, 5) and torch.allclose(data["cka"], torch.ones(2, 1, 5, dtype=torch.float64))
    table = convergence_table(data)
    assert list(table.columns) == ["layer", "epoch 1", "epoch 1 sd"] and (table["epoch 1"] == 1.0).all()


def test_every_seed_must_keep_the_same_earlier_epochs(tiny_zf, tiny_prepared):
    with pytest.raises(ConfigError, match="same epochs"):
        convergence_data({0: {1: tiny_zf, 2: tiny_zf}, 1: {2: tiny_zf}}, tiny_prepared, 4, 0)
    with pytest.raises(ConfigError, match="checkpoint_epochs"):
        convergence_data({0: {2: tiny_zf}}, tiny_prepared, 4, 0)

"""Layer-1 filter statistics (claims 1 and 2) against hand-computed values on constructed filters."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from zfrepro.analysis.filters import (
    alias_share,
    band_shares,
    filter_stats,
    filter_stats_table,
    gini,
    max_median,
    near_dead_mask,
    peak_dominance,
    radial_shares,
    rms_norms,
    structure_fraction,
    top_share,
)


def _bank(norms, k: int = 7, seed: int = 0) -> np.ndarray:
    """Random-pattern filters [n, 3, k, k] with the given RMS norms."""
    w = np.random.default_rng(seed).normal(size=(len(norms), 3, k, k))
    w /= np.sqrt((w ** 2).mean(axis=(1, 2, 3), keepdims=True))
    return w * np.asarray(norms, dtype=float)[:, None, None, None]


def _gini_pairs(x) -> float:
    """Gini from its textbook definition: mean absolute difference over all ordered pairs / (2 * mean)."""
    x = list(x)
    mad = sum(abs(a - b) for a, b in itertools.product(x, x)) / len(x) ** 2
    return mad / (2 * np.mean(x))


def test_rms_norm_by_hand():
    w = np.zeros((2, 3, 2, 2))
    w[0] = 2.0
    w[1, 0] = [[3, -3], [-3, 3]]  # 4 of 12 weights at |3|: mean square 36/12 = 3
    assert rms_norms(w) == pytest.approx([2.0, math.sqrt(3.0)])


def test_identical_filters_have_no_inequality():
    stats = filter_stats(_bank([0.1] * 20), "equal")
    assert stats["gini"] == pytest.approx(0.0, abs=1e-12)
    assert stats["max_median"] == pytest.approx(1.0)
    assert stats["top_share"] == pytest.approx(1 / 20)  # top 5% of 20 = one filter
    assert stats["dead"] == stats["weak"] == stats["flat"] == stats["near_dead"] == 0
    assert stats["at_radius"] == 20


def test_one_dominating_filter():
    n = 20
    stats = filter_stats(_bank([1.0] * (n - 1) + [100.0]), "dominated")
    # sorted x = 19 ones then 100: sum_i (2i - 21) x_i = -19 + 19 * 100 = 1881, over n * sum = 20 * 119
    assert stats["gini"] == pytest.approx(1881 / 2380)
    assert stats["gini"] == pytest.approx(_gini_pairs([1.0] * (n - 1) + [100.0]))
    assert stats["max_median"] == pytest.approx(100.0)
    assert stats["top_share"] == pytest.approx(100 / 119)
    # the more the others shrink, the closer to the maximum (n-1)/n
    assert gini([1e-6] * (n - 1) + [100.0]) == pytest.approx((n - 1) / n, abs=1e-6)
    assert gini([0.0] * (n - 1) + [5.0]) == pytest.approx((n - 1) / n)


def test_gini_matches_pairwise_definition_on_random_values():
    x = np.random.default_rng(1).gamma(2.0, size=15)
    assert gini(x) == pytest.approx(_gini_pairs(x))
    assert gini(np.zeros(4)) == 0.0
    with pytest.raises(ValueError):
        gini([-1.0, 2.0])


def test_top_share_counts_ceil_of_the_fraction():
    x = np.arange(1, 97, dtype=float)  # 96 filters: top 5% = ceil(4.8) = 5 -> 92..96
    assert top_share(x, 0.05) == pytest.approx(sum(range(92, 97)) / x.sum())
    assert top_share(x, 0.5) == pytest.approx(sum(range(49, 97)) / x.sum())


def test_structure_fraction_by_hand():
    w = np.zeros((3, 3, 2, 2))
    w[0, :] = np.array([0.2, -0.4, 0.9])[:, None, None]  # constant colour: flat
    w[1, 0] = [[1, 0], [0, 1]]  # mean 0.5, energy 2, energy beyond the mean 4 * 0.25 = 1
    # w[2] is all zero: no structure
    assert structure_fraction(w) == pytest.approx([0.0, 0.5, 0.0])


def test_constant_filter_is_flat_random_one_is_not():
    w = _bank([1.0] * 10)
    w[3] = 0.7  # flat grey
    w[5] = np.array([1.0, -1.0, 0.5])[:, None, None] + 0.01 * w[5]  # a flat colour plus faint noise
    stats = filter_stats(w, "m")
    assert stats["flat"] == 2
    assert stats["structure"][3] == pytest.approx(0.0)
    assert stats["structure"][0] > 0.9  # white noise: about 1 - 1/49
    assert set(np.flatnonzero(stats["structure"] < 0.2)) == {3, 5}


def test_dead_weak_and_near_dead():
    norms = [1.0] * 17 + [0.005, 0.05, 0.5]
    w = _bank(norms)
    w[0] = 1.0  # flat, norm 1: near-dead by structure only
    stats = filter_stats(w, "m")
    assert stats["norm_median"] == pytest.approx(1.0)
    assert stats["dead"] == 1  # 0.005 < 1% of the median
    assert stats["weak"] == 2  # 0.005 and 0.05 < 10%
    assert stats["near_dead"] == 3  # the two weak ones and the flat one
    looser = filter_stats(w, "m", dead_fraction=0.1, weak_fraction=0.6, flat_threshold=0.0)
    assert (looser["dead"], looser["weak"], looser["near_dead"]) == (2, 3, 3)


def test_torch_input_table_and_errors():
    conv = torch.nn.Conv2d(3, 8, 7)
    a = filter_stats(conv.weight, "zf")
    b = filter_stats(_bank([0.1] * 7 + [2.0], k=11), "no renorm", radius=None)
    assert a["filters"] == 8 and a["kernel"] == 7 and b["kernel"] == 11
    assert a["norms"] == pytest.approx(rms_norms(conv.weight.detach().numpy()))
    table = filter_stats_table([a, b])
    assert isinstance(table, pd.DataFrame)
    assert list(table["model"]) == ["zf", "no renorm"]
    assert "norms" not in table.columns and "structure" not in table.columns
    assert table.loc[1, "gini"] > table.loc[0, "gini"]
    assert pd.isna(table.loc[1, "at_radius"])
    with pytest.raises(ValueError, match="conv1_weight"):
        filter_stats(np.zeros((4, 3, 7)), "bad")
    with pytest.raises(ValueError):
        filter_stats_table([])


# ---------------------------------------------------------------------------------------------- spectra (claim 2)


def _wave(k: int, cy: int, cx: int, channels: int = 3) -> np.ndarray:
    """[1, channels, k, k]: cos(2 pi (cy y + cx x) / k), an integer number of cycles over the k x k filter, so its
    k x k DFT has all its power at frequency (cy / k, cx / k) and its mirror."""
    y, x = np.mgrid[0:k, 0:k]
    return np.broadcast_to(np.cos(2 * np.pi * (cy * y + cx * x) / k), (1, channels, k, k)).copy()


def test_a_pure_sinusoid_puts_all_its_power_in_its_radial_bin():
    edges = np.arange(0, 0.8, 0.05)
    for cy, cx in ((0, 2), (1, 1), (3, 0), (2, 3)):
        f = np.hypot(cy, cx) / 8  # cycles per pixel
        shares = radial_shares(_wave(8, cy, cx), edges)[0]
        expected = np.zeros(len(edges) - 1)
        expected[np.searchsorted(edges, f, side="right") - 1] = 1.0
        assert shares == pytest.approx(expected, abs=1e-12), (cy, cx)


def test_band_shares_split_the_power_at_the_band_edges():
    low, mid, high = _wave(8, 0, 0), _wave(8, 0, 2), _wave(8, 4, 4)  # 0, 0.25 and 0.71 cycles per pixel
    assert band_shares(np.concatenate([low, mid, high]), (0.125, 0.375)) == pytest.approx(np.eye(3), abs=1e-12)
    # Power adds: a constant 1 has twice the power of a cosine of amplitude 1 (mean square 1 vs 1/2); shares sum to 1.
    assert band_shares(low + mid, (0.125, 0.375))[0] == pytest.approx([2 / 3, 1 / 3, 0.0])
    rng = np.random.default_rng(0).normal(size=(5, 3, 7, 7))
    assert band_shares(rng).sum(axis=1) == pytest.approx(np.ones(5))
    with pytest.raises(ValueError, match="fig6_mid_band"):
        band_shares(rng, (0.3, 0.2))


def test_alias_share_is_the_power_beyond_the_strides_nyquist_frequency():
    checkerboard = _wave(8, 4, 4)  # (-1)^(x + y): 0.5 cycles per pixel on both axes
    assert alias_share(checkerboard, 2) == pytest.approx([1.0])  # only energy above 1/4: share 1
    assert alias_share(checkerboard, 1) == pytest.approx([0.0])  # stride 1 aliases nothing
    quarter = _wave(8, 0, 2)  # 0.25 cycles per pixel along x
    assert alias_share(quarter, 2) == pytest.approx([0.0])  # exactly at Nyquist (1/4): representable
    assert alias_share(quarter, 4) == pytest.approx([1.0])  # above 1/8
    # The alias-free region of separable sampling is a square: (3/16, 3/16) is 0.27 cycles per pixel
    # radially but within |f| <= 1/4 on each axis, so stride 2 aliases none of it.
    assert alias_share(_wave(16, 3, 3), 2) == pytest.approx([0.0])
    # A constant offset is power at DC: half the power of offset 1 + a checkerboard of amplitude 1 is DC...
    assert alias_share(1.0 + checkerboard, 2) == pytest.approx([0.5])
    # ...and removing each channel's mean leaves the checkerboard alone.
    assert alias_share(1.0 + checkerboard, 2, remove_mean=True) == pytest.approx([1.0])
    assert alias_share(np.zeros((2, 3, 5, 5)), 2) == pytest.approx([0.0, 0.0])  # no power: share 0


def test_filter_stats_report_the_spectra_and_the_peak_over_epochs():
    bank = np.concatenate([_wave(7, 0, 0)] * 2 + [_wave(7, 0, 2)] * 2)  # 2 flat, 2 at 2/7 cycles per pixel
    stats = filter_stats(bank, "m", stride=4)
    assert (stats["low_share"], stats["mid_share"], stats["high_share"]) == pytest.approx((0.5, 0.5, 0.0))
    assert stats["mid"] == pytest.approx([0, 0, 1, 1])
    assert stats["alias"] == pytest.approx([0, 0, 1, 1]) and stats["alias_share"] == pytest.approx(0.5)
    assert filter_stats(bank, "m")["alias_share"] is None  # no stride given
    assert max_median([1.0, 1.0, 3.0]) == 3.0 and max_median([0.0, 0.0, 1.0]) == math.inf
    history = {1: _bank([1.0] * 9 + [4.0]), 5: _bank([1.0] * 10), 10: _bank([1.0] * 9 + [2.0])}
    assert peak_dominance(history) == (pytest.approx(4.0), 1)
    w = _bank([1.0] * 8 + [0.05, 1.0])
    w[9] = 0.3  # flat
    assert near_dead_mask(w).tolist() == [False] * 8 + [True, True]


def test_filter_study_names_fig6_panels_by_role_and_gives_them_back_in_the_figure_order():
    from zfrepro.analysis.filters import FilterStudy

    w = {p: torch.full((2, 3, 3, 3), float(i)) for i, p in enumerate("abc")}
    saved = {"filters": w, "history": {p: {3: w[p]} for p in "abc"}, "projections": {"d": w["a"], "e": w["b"]},
             "arches": {"a": "zf_no_renorm", "b": "krizhevsky", "c": "zf", "d": "krizhevsky", "e": "zf"},
             "strides": {"a": 2, "b": 4, "c": 2, "d": 4, "e": 2}, "radii": {"a": None, "b": 0.1, "c": 0.1},
             "mid_band": [0.125, 0.375]}
    study = FilterStudy.from_saved(saved)
    assert (study.no_renorm.arch, study.krizhevsky.stride, study.zf.radius) == ("zf_no_renorm", 4, 0.1)
    assert study.zf_layer2.arch == "zf" and study.krizhevsky_layer2.stride == 4
    assert list(study.layer1_panels()) == ["a", "b", "c"] and study.layer1_panels()["c"] is w["c"]
    assert list(study.layer2_panels()) == ["d", "e"]
    del saved["projections"]["d"]
    assert FilterStudy.from_saved(saved).krizhevsky_layer2 is None

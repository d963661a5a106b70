"""The claims scorecard: the verdict logic against independent computations (scipy's Welch test, hand-computed
bootstraps and t-intervals), and each claim function on small result files written here in the workflow's formats."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from zfrepro.commands import report as report_commands
from zfrepro.io import atomic_torch_save
from zfrepro.report.scorecard import filters, imagenet, rows, statistics, visualization
from zfrepro.report.scorecard import inputs as claim_inputs
from zfrepro.report.scorecard import transfer as transfer_claims
from zfrepro.report.scorecard.rows import CRITERIA
from zfrepro.report.scorecard.statistics import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    UNTESTABLE,
    bootstrap,
    combine,
    contrast,
    paired_over_splits,
    pooled_sd,
    t_interval,
    verdict,
)

CRIT = {**CRITERIA, "bootstrap": {"resamples": 500, "seed": 0}}


# ---------------------------------------------------------------------------------------------- verdict logic


def test_verdict_compares_the_interval_with_the_threshold():
    assert verdict(0.5, 1.0, 0.0) == HOLDS
    assert verdict(-1.0, -0.2, 0.0) == FAILS
    assert verdict(-0.1, 0.4, 0.0) == INCONCLUSIVE  # within the noise
    assert verdict(0.0, 0.0, 0.0) == INCONCLUSIVE  # no difference at all
    assert verdict(None, None, 0.0) == INCONCLUSIVE  # no noise estimate
    assert verdict(1.2, 1.8, 2.0, above=False) == HOLDS
    assert verdict(2.5, 3.0, 2.0, above=False) == FAILS
    assert verdict(float("nan"), 1.0, 0.0) == INCONCLUSIVE


def test_combine_needs_every_part_to_hold():
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([HOLDS, FAILS, INCONCLUSIVE]) == FAILS
    assert combine([HOLDS, NOT_RUN]) == INCONCLUSIVE  # a part not run keeps the claim from holding
    assert combine([NOT_RUN, NOT_RUN]) == NOT_RUN


def test_welch_contrast_is_scipys_welch_interval():
    a, b = [10.0, 11.5, 12.0, 10.5], [7.0, 8.5, 6.0]
    est = contrast({"a": a, "b": b}, {"a": 1, "b": -1}, 0.95)
    welch = stats.ttest_ind(a, b, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    assert est.value == pytest.approx(np.mean(a) - np.mean(b))
    assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))
    assert est.se == pytest.approx(math.sqrt(np.var(a, ddof=1) / 4 + np.var(b, ddof=1) / 3))
    # at 90% too
    low, high = welch.confidence_interval(0.90)
    est = contrast({"a": a, "b": b}, {"a": 1, "b": -1}, 0.90)
    assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))


def test_single_seed_networks_borrow_a_measured_seed_sd():
    groups = {"k": [9.75], "z": [6.5, 7.25, 8.0]}
    assert contrast(groups, {"k": 1, "z": -1}, 0.95).low is None  # nothing to borrow: no interval
    sd, df = pooled_sd({"zf": [6.5, 7.25, 8.0], "other": [1.0]})  # only groups with 2+ values count
    assert (sd, df) == (pytest.approx(0.75), 2)  # deviations -0.75, 0, 0.75: 1.125 / 2
    est = contrast(groups, {"k": 1, "z": -1}, 0.95, reference=(sd, df, "zf"))
    se = 0.75 * math.sqrt(1 / 1 + 1 / 3)
    q = stats.t.ppf(0.975, 2)
    assert est.value == pytest.approx(9.75 - 7.25)
    assert (est.se, est.low, est.high) == (pytest.approx(se), pytest.approx(2.5 - q * se), pytest.approx(2.5 + q * se))
    assert "seed-to-seed sd of zf" in est.noise
    # A four-network contrast (claim 4's interaction) adds every coefficient's square.
    est = contrast({"a": [1.0], "b": [2.0], "c": [4.0], "d": [8.0]}, {"a": 1, "b": -1, "c": -1, "d": 1}, 0.95,
                   reference=(sd, df, "zf"))
    assert est.value == 3.0 and est.se == pytest.approx(0.75 * 2)


def test_t_interval_and_pooled_splits_by_hand():
    assert t_interval(1.0, None, 3, 0.95) == (None, None)
    assert t_interval(1.0, 0.5, 0, 0.95) == (None, None)
    low, high = t_interval(1.0, 0.5, 4, 0.95)
    assert high - 1.0 == pytest.approx(2.7764451 * 0.5)
    est = paired_over_splits({"x": [10.0, 12.0], "y": [1.0, 3.0, 5.0]}, 0.95)
    sd = math.sqrt((2 + 8) / (1 + 2))  # squared deviations 1+1 and 4+0+4 over df 1 + 2
    assert est["x"].value == 11.0 and est["x"].se == pytest.approx(sd / math.sqrt(2))
    assert est["y"].low == pytest.approx(3.0 - stats.t.ppf(0.975, 3) * sd / math.sqrt(3))
    assert paired_over_splits({"x": [5.0]}, 0.95)["x"].low is None  # one split: no spread measured


def test_bootstrap_is_the_percentile_interval_of_resampled_statistics():
    x = np.array([1.0, 4.0, 2.0, 8.0, 3.0])
    value, sd, low, high = bootstrap(np.mean, [x], 300, 0.9, seed=3)
    # by hand: the same draws, the means, their 5% and 95% quantiles
    idx = np.random.default_rng(3).integers(0, 5, size=(300, 5))
    means = np.array([x[i].mean() for i in idx])
    assert value == x.mean()
    assert (sd, low, high) == (pytest.approx(means.std(ddof=1)), pytest.approx(np.quantile(means, 0.05)),
                               pytest.approx(np.quantile(means, 0.95)))
    # Two values 0 and 1: a resample's mean is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4, so the 95% interval is
    # [0, 1] and its sd near sqrt(1/8).
    value, sd, low, high = bootstrap(np.mean, [np.array([0.0, 1.0])], 4000, 0.95, seed=0)
    assert (value, low, high) == (0.5, 0.0, 1.0) and sd == pytest.approx(math.sqrt(1 / 8), rel=0.05)
    # Two samples are resampled independently: a difference of means.
    a, b = np.array([3.0, 3.0, 3.0]), np.array([1.0, 2.0])
    value, _, low, high = bootstrap(lambda p, q: p.mean() - q.mean(), [a, b], 4000, 0.95, seed=0)
    assert (value, low, high) == (1.5, 1.0, 2.0)


def test_the_rows_numbers_are_those_of_a_part_that_decides_its_verdict():
    ok = rows.Part("a", 0.0, True, statistics.Estimate(1.0, 0.1, 0.8, 1.2, "n"))
    bad = rows.Part("b", 0.0, True, statistics.Estimate(-1.0, 0.1, -1.2, -0.8, "n"), context="b's numbers")
    unsure = rows.Part("c", 0.0, True, statistics.Estimate(0.1, 0.1, -0.1, 0.3, "n"))
    row = rows.claim_row(6, [ok, bad, unsure])
    assert (row["verdict"], row["quantity"], row["value"], row["low"]) == (FAILS, "b", -1.0, -1.2)
    assert row["cause"].startswith("b is -1 [-1.2, -0.8], below the threshold 0 beyond the noise; b's numbers | c is")
    row = rows.claim_row(6, [ok, unsure], headline=0)
    assert (row["verdict"], row["quantity"]) == (INCONCLUSIVE, "c")
    row = rows.claim_row(6, [ok, rows.not_run("d", 0.0, "set x")])
    assert (row["verdict"], row["quantity"], row["cause"]) == (INCONCLUSIVE, "a", "d: not run (set x)")


def test_a_single_unit_gives_no_interval():
    est = statistics.boot_estimate(np.mean, [np.array([0.7])], CRIT, "the 1 image")
    assert est.value == 0.7 and est.low is None and "single unit" in est.noise


# ---------------------------------------------------------------------------------------------- result files


def _metrics(root: Path, arch: str, seed: int, val: float, train: float, center: float | None = None) -> str:
    path = root / f"metrics/{arch}/seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    center = val if center is None else center
    path.write_text(json.dumps({"arch": arch, "seed": seed, "train": {"top1_error": train},
                                "val": {"ten": {"top1_error": val}, "center": {"top1_error": center}}}))
    return str(path)


def _save(root: Path, name: str, obj) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(path, obj)
    return str(path)


def _wave(n: int, k: int, cy: int, cx: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    return torch.cos(2 * math.pi * (cy * y + cx * x) / k).expand(n, 3, k, k).clone()


def test_claims_3_to_5_compare_networks_over_seeds(tmp_path):
    metrics = {"krizhevsky": {s: _metrics(tmp_path, "krizhevsky", s, v, 5.0) for s, v in enumerate([10.0, 11.5, 12.0])},
               "zf": {s: _metrics(tmp_path, "zf", s, v, t, c) for s, (v, t, c) in
                      enumerate([(7.0, 4.0, 8.0), (8.5, 4.5, 9.0), (6.0, 3.0, 7.5)])},
               "wide": {0: _metrics(tmp_path, "wide", 0, 5.0, 3.0)},
               "fc": {0: _metrics(tmp_path, "fc", 0, 7.5, 1.0, 9.5)}}
    inputs = {"crops": "ten", "metrics": metrics,
              "table2": {claim_inputs.T2_KRIZHEVSKY: "krizhevsky", claim_inputs.T2_ZF: "zf"},
              "table3": {claim_inputs.T3_ZF: "zf", claim_inputs.T3_CONV: "wide", claim_inputs.T3_FC8192: "fc"}}
    row = imagenet.claim3(inputs, CRIT)
    low, high = stats.ttest_ind([10.0, 11.5, 12.0], [7.0, 8.5, 6.0], equal_var=False).confidence_interval(0.95)
    assert (row["value"], row["low"], row["high"]) == (pytest.approx(4.0), pytest.approx(low, abs=1e-4),
                                                       pytest.approx(high, abs=1e-4))
    assert row["verdict"] == verdict(low, high, 0.0) == HOLDS and row["cause"] == ""
    assert "Welch" in row["noise"]

    row = imagenet.claim5(inputs, CRIT)
    # wide and fc have one seed: the noise is the pooled seed sd of krizhevsky and zf (3 seeds each).
    sd, df = pooled_sd({"k": [10.0, 11.5, 12.0], "z": [7.0, 8.5, 6.0]})
    se = sd * math.sqrt(1 / 3 + 1)
    q = stats.t.ppf(0.975, df)
    gain = np.mean([7.0, 8.5, 6.0]) - 5.0
    assert row["value"] == pytest.approx(gain, abs=1e-4)
    assert (row["low"], row["high"]) == (pytest.approx(gain - q * se, abs=1e-4), pytest.approx(gain + q * se, abs=1e-4))
    assert "krizhevsky (3 seeds), zf (3 seeds)" in row["noise"]
    # part 2: the validation (centre crop) minus training gap of fc vs zf; its seed sd is that of the gaps
    gap_z = [8.0 - 4.0, 9.0 - 4.5, 7.5 - 3.0]
    assert f"{9.5 - 1.0 - np.mean(gap_z):.4g}" in row["details"]

    row = imagenet.claim4(inputs, CRIT)  # no removal rows in tables.table3
    assert row["verdict"] == NOT_RUN and row["value"] == NOT_RUN and "tables.table3" in row["cause"]


def test_claims_1_and_2_read_the_fig6_filters(tmp_path):
    rng = torch.Generator().manual_seed(0)
    noise = torch.randn(24, 3, 7, 7, generator=rng)
    noise = noise / noise.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()  # RMS 1 each
    dominated = noise.clone()
    dominated[:6] *= 5  # a quarter of the filters at 5x the others
    k_filters = torch.cat([_wave(12, 11, 0, 1), _wave(12, 11, 5, 5)])  # 1/11 and 0.64 cycles/pixel: no mid band
    k_filters[:6] *= 1e-4  # six of them near-dead (weak), none flat
    z_filters = _wave(24, 7, 0, 2)  # 2/7 cycles per pixel: all mid band
    data = {"filters": {"a": dominated, "b": k_filters, "c": z_filters},
            "history": {"a": {1: noise, 10: dominated}, "c": {1: z_filters, 10: z_filters}},
            "projections": {"d": _wave(8, 16, 8, 8), "e": _wave(8, 16, 1, 2)},
            "arches": {"a": "zf_no_renorm", "b": "krizhevsky", "c": "zf", "d": "krizhevsky", "e": "zf"},
            "strides": {"a": 2, "b": 4, "c": 2, "d": 4, "e": 2}, "radii": {"a": None, "c": 0.5},
            "mid_band": [0.125, 0.375]}
    inputs = {"fig6": _save(tmp_path, "analysis/fig6/filters.pt", data)}
    row = filters.claim1(inputs, CRIT)
    assert row["value"] == pytest.approx(5.0) and row["verdict"] == HOLDS  # the peak: epoch 10
    assert "zf_no_renorm at epoch 10 (of 1, 10)" in row["details"]
    assert "zf: 24 of 24 filters at the renormalisation radius 0.5" in row["details"]  # RMS of a cosine: 0.71
    row = filters.claim2(inputs, CRIT)
    parts = row["details"].split(" | ")
    assert row["value"] == pytest.approx(1.0)  # ZF all mid band, Krizhevsky none
    assert parts[1].startswith("Krizhevsky minus ZF: share of near-dead layer-1 filters: 0.25 ")
    assert parts[2].startswith("Krizhevsky minus ZF: share of layer-2 projection power above layer 1's Nyquist "
                               "frequency: 1 ")  # the checkerboards all above 1/8, the smooth waves none above 1/4
    assert row["verdict"] == HOLDS
    # without the Fig 6 data both claims say so
    assert filters.claim1({}, CRIT)["verdict"] == NOT_RUN


def test_claim1_fails_when_no_filter_stands_out(tmp_path):
    flat = _wave(24, 7, 0, 1)
    data = {"filters": {"a": flat, "b": flat, "c": flat}, "history": {"a": {5: flat}, "c": {5: flat}},
            "projections": {}, "arches": {"a": "zf_no_renorm", "b": "krizhevsky", "c": "zf"},
            "strides": {"a": 2, "b": 4, "c": 2},
            "mid_band": [0.125, 0.375]}
    row = filters.claim1({"fig6": _save(tmp_path, "f.pt", data)}, CRIT)
    assert row["value"] == pytest.approx(1.0) and row["verdict"] == FAILS
    assert "zf_no_renorm at epoch 5" in row["cause"] and "below the threshold 2" in row["cause"]
    assert NOT_RUN in filters.claim2({"fig6": _save(tmp_path, "f.pt", data)}, CRIT)["details"]


def _invariance() -> dict:
    kinds = {}
    applied = {"translation": [-4.0, 0.0, 4.0], "scale": [1.0, 1.2, 1.4], "rotation": [0.0, 90.0, 180.0]}
    p_true = {"translation": [[0.9, 1.0, 0.9], [0.8, 1.0, 1.0]], "scale": [[1.0, 0.9, 0.9], [1.0, 1.0, 0.7]],
              "rotation": [[1.0, 0.2, 0.1], [1.0, 0.9, 0.5]]}
    for kind, values in applied.items():
        kinds[kind] = {"applied": torch.tensor(values), "x": torch.tensor(values),
                       "distance": {"conv1": torch.tensor([[2.0, 0.0, 2.0], [3.0, 0.0, 5.0]]),
                                    "fc7": torch.tensor([[0.5, 0.0, 0.5], [1.0, 0.0, 1.0]])},
                       "p_true": torch.tensor(p_true[kind])}
        if kind != "translation":  # the identity comes first: the smallest step is the middle value
            kinds[kind]["distance"] = {k: v[:, [1, 0, 2]] for k, v in kinds[kind]["distance"].items()}
    return {"kinds": kinds, "layers": ["conv1", "fc7"],
            "norm": {"conv1": torch.tensor([10.0, 20.0]), "fc7": torch.tensor([5.0, 10.0])}}


def test_claim6_compares_layers_and_transformations_per_image(tmp_path):
    row = visualization.claim6({"invariance": _save(tmp_path, "inv.pt", _invariance())}, CRIT)
    # translation: smallest step +-4 (mean of both); scale 1.2, rotation 90: the values placed at index 0
    # image 0: conv1 2/10 = 0.2 in every kind, fc7 0.5/5 = 0.1; image 1: conv1 (3+5)/2/20 = 0.2 for translation
    # and 3/20 = 0.15 otherwise, fc7 0.1.
    rel = [0.2 - 0.1, (0.2 + 0.15 + 0.15) / 3 - 0.1]
    assert row["value"] == pytest.approx(np.mean(rel), abs=1e-4)
    means = {k: np.mean(v) for k, v in {"t": [2.8 / 3, 2.8 / 3], "s": [2.8 / 3, 2.7 / 3],
                                        "r": [1.3 / 3, 2.4 / 3]}.items()}
    assert f"{min(means['t'], means['s']) - means['r']:.4g}" in row["details"]
    assert visualization.claim6({}, CRIT)["verdict"] == NOT_RUN
    # The rule's extra sample joins the Fig 5 images: a third image equal to image 0 gives rel 0.1 again.
    data = _invariance()
    data["sample"] = {"labels": torch.tensor([0]),
                      "kinds": {k: {"distance": {layer: v["distance"][layer][:1] for layer in ("conv1", "fc7")},
                                    "p_true": v["p_true"][:1]} for k, v in data["kinds"].items()},
                      "norm": {layer: n[:1] for layer, n in data["norm"].items()}}
    row = visualization.claim6({"invariance": _save(tmp_path, "inv.pt", data)}, CRIT)
    assert row["value"] == pytest.approx(np.mean(rel + [rel[0]]), abs=1e-4)
    assert "3 images (the 2 of Fig 5 and 1 more)" in row["noise"]


def test_claim7_measures_the_occlusion_drop_and_the_map_correlation(tmp_path):
    p1 = torch.ones(4, 4)
    p1[1, 2] = 0.1  # one position (the object) drops p(true) to 0.1
    p2 = torch.ones(4, 4) * 0.9
    p2[0, 0] = 0.5
    m1, m2 = p1 * 3 + 1, torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    data = {"rows": [{"p_true": p1, "map_total": m1}, {"p_true": p2, "map_total": m2}], "layer": "conv5",
            "size": 3, "crop": 10}
    row = visualization.claim7({"occlusion": _save(tmp_path, "occ.pt", data)}, CRIT)
    assert row["value"] == pytest.approx(np.mean([0.9, 0.4]), abs=1e-4)
    corr2 = np.corrcoef(p2.flatten().numpy(), m2.flatten().numpy())[0, 1]
    assert f"per image: 1.00, {corr2:.2f}" in row["details"]
    # The rule's extra images join the figure's in the statistic: drops 0.9, 0.4 and 0.2 (hand-computed).
    p3 = torch.ones(4, 4) * 0.5
    p3[3, 3] = 0.3
    sampled = {**data, "sample": [{"p_true": p3, "map_total": p3 * 2}]}
    row = visualization.claim7({"occlusion": _save(tmp_path, "occ.pt", sampled)}, CRIT)
    assert row["value"] == pytest.approx(np.mean([0.9, 0.4, 0.2]), abs=1e-4)
    assert "3 images (the 2 of Fig 7 and 1 more)" in row["noise"]
    data["layer"] = "conv4"
    assert "occlusion.layer" in visualization.claim7({"occlusion": _save(tmp_path, "occ.pt", data)}, CRIT)["details"]


def test_claim8_pairs_parts_with_the_random_control(tmp_path):
    pairs = torch.tensor([0.10, 0.12, 0.08, 0.11, 0.09, 0.10], dtype=torch.float64)
    random = torch.tensor([[0.20, 0.22, 0.18, 0.21, 0.19, 0.20]] * 3, dtype=torch.float64) + torch.tensor(
        [[0.0], [0.01], [-0.01]], dtype=torch.float64)
    data = {"layers": ["conv5", "fc7"], "parts": ["right_eye", "left_eye", "nose"],
            "pair_distances": {"conv5": {p: pairs + i * 0.01 for i, p in enumerate(["right_eye", "left_eye", "nose"])}},
            "random_pair_distances": {"conv5": random}}
    row = visualization.claim8({"correspondence": _save(tmp_path, "corr.pt", data)}, CRIT)
    diffs = random.mean(0) - (pairs + 0.01)  # parts' mean per pair: pairs + 0.01
    value, _, low, high = bootstrap(np.mean, [diffs.numpy()], 500, 0.95, 0)
    assert (row["value"], row["low"], row["high"]) == (pytest.approx(value, abs=1e-4), pytest.approx(low, abs=1e-4),
                                                       pytest.approx(high, abs=1e-4))
    assert row["verdict"] == HOLDS and "6 image pairs" in row["noise"]
    row = visualization.claim8({"correspondence": None}, CRIT)
    assert row["verdict"] == NOT_RUN and "correspondence.parts_csv" in row["cause"]


def test_claim9_uses_the_seed_spread_of_the_convergence_curves(tmp_path):
    cka = torch.tensor([[[0.9, 0.6, 0.3], [0.95, 0.8, 0.6]], [[0.8, 0.6, 0.4], [0.9, 0.7, 0.5]]], dtype=torch.float64)
    data = {"cka": cka, "seeds": [0, 1], "epochs": [1, 5], "final_epoch": 10, "layers": ["conv1", "conv3", "conv5"],
            "arch": "zf"}
    row = visualization.claim9({"convergence": _save(tmp_path, "c.pt", data)}, CRIT)
    per_seed = [((0.9 - 0.3) + (0.95 - 0.6)) / 2, ((0.8 - 0.4) + (0.9 - 0.5)) / 2]
    se = np.std(per_seed, ddof=1) / math.sqrt(2)
    q = stats.t.ppf(0.975, 1)
    assert (row["value"], row["low"]) == (pytest.approx(np.mean(per_seed), abs=1e-4),
                                          pytest.approx(np.mean(per_seed) - q * se, abs=1e-4))
    one = {**data, "cka": cka[:1], "seeds": [0]}
    row = visualization.claim9({"convergence": _save(tmp_path, "c.pt", one)}, CRIT)
    # one seed: no noise estimate, so no difference is detectable: untestable, and what it needs
    assert row["verdict"] == UNTESTABLE and row["low"] == "" and "no seed spread" in row["cause"]
    assert row["needs"] == "at least 2 seeds to measure the noise (it has 1)" and row["mde"] == ""
    assert "training.checkpoint_epochs" in visualization.claim9({"convergence": None}, CRIT)["cause"]


def _transfer_files(root: Path, splits: int = 2) -> tuple[dict, dict]:
    transfer, table7 = {}, {}
    for dataset, sizes, fig9 in (("caltech101", [5, 10], None), ("caltech256", [5, 10], [2, 5, 10])):
        d = root / dataset
        d.mkdir(parents=True)
        all_sizes = sorted(set(sizes) | set(fig9 or []))
        rows, scratch = [], []
        for n in all_sizes:
            for s in range(splits):
                rows.append({"dataset": dataset, "classifier": "softmax", "layer": "fc7", "train_per_class": n,
                             "split": s, "accuracy": 60.0 + n + s})
                path = d / f"n{n}_split{s}.json"
                path.write_text(json.dumps({"train_per_class": n, "split": s, "accuracy": 10.0 + 3 * n + 2 * s}))
                scratch.append(str(path))
        pd.DataFrame(rows).to_csv(d / "softmax_fc7.csv", index=False)
        transfer[dataset] = {"pretrained": str(d / "softmax_fc7.csv"), "scratch": scratch, "sizes": sizes,
                             **({"fig9_sizes": fig9} if fig9 else {})}
        svm = {}
        for layer, base in (("conv1", 50.0), ("conv3", 60.0), ("conv5", 70.0), ("fc7", 64.0)):
            pd.DataFrame([{"train_per_class": 10, "split": s, "accuracy": base + s * (layer == "fc7") * 10}
                          for s in range(splits)]).to_csv(d / f"svm_{layer}.csv", index=False)
            svm[layer] = str(d / f"svm_{layer}.csv")
        table7[dataset] = {"size": 10, "svm": svm}
    return transfer, table7


def test_claim10_pairs_pretrained_and_scratch_by_split(tmp_path):
    transfer, _ = _transfer_files(tmp_path)
    row = transfer_claims.claim10({"transfer": transfer}, CRIT)
    # pretrained - scratch = (60 + n + s) - (10 + 3n + 2s) = 50 - 2n - s: at n 10: 30 and 29, mean 29.5 (smallest)
    assert row["value"] == pytest.approx(29.5) and row["quantity"].startswith("caltech101 at 10 per class")
    # every comparison's two split differences deviate by +-0.5: pooled sd sqrt(0.5 * 5 / 5), df 5
    sd = math.sqrt(0.5)
    assert row["se"] == pytest.approx(sd / math.sqrt(2), abs=1e-4)
    assert row["low"] == pytest.approx(29.5 - stats.t.ppf(0.975, 5) * sd / math.sqrt(2), abs=1e-4)
    assert "caltech256: pretrained at 2 per class minus from scratch at 10 per class (accuracy points): 21.5 [" in \
        row["details"]  # (62 + 63) / 2 - (40 + 42) / 2 = 21.5
    assert row["verdict"] == HOLDS
    row = transfer_claims.claim10({"transfer": None}, CRIT)
    assert row["verdict"] == NOT_RUN and "transfer.enabled" in row["cause"]


def test_claim11_ranks_the_layers_per_split(tmp_path):
    _, table7 = _transfer_files(tmp_path)
    row = transfer_claims.claim11({"table7": table7}, CRIT)
    # split 0: 50, 60, 70, 64 -> ranks 1 2 4 3: rho 0.8; split 1: fc7 74 best -> rho 1
    rho = [stats.spearmanr([1, 3, 5, 7], [50, 60, 70, 64]).statistic, 1.0]
    assert row["value"] == pytest.approx(np.mean(rho), abs=1e-4)
    assert "fc7 69.0%; best conv5" in row["details"]
    _, single = _transfer_files(tmp_path / "one", splits=1)
    row = transfer_claims.claim11({"table7": single}, CRIT)
    assert row["verdict"] == UNTESTABLE and "transfer.splits" in row["cause"] and "2 splits" in row["needs"]


def test_scorecard_and_command_write_11_rows(tmp_path):
    args = argparse.Namespace(inputs={"crops": "ten", "metrics": {}, "fig6": None, "transfer": None},
                              criteria={"confidence": 0.9}, out_csv=str(tmp_path / "claims.csv"),
                              out_md=str(tmp_path / "claims.md"))
    report_commands.claims_command(args)
    df = pd.read_csv(tmp_path / "claims.csv", keep_default_na=False)
    assert list(df.columns) == rows.COLUMNS
    assert list(df["claim"]) == list(range(1, 12)) and set(df["verdict"]) == {NOT_RUN}
    assert (df["value"] == NOT_RUN).all() and all(df["cause"] != "")
    md = (tmp_path / "claims.md").read_text()
    assert "not run: 11" in md and "90% interval" in md and "## Claim 11: not run" in md


# ---------------------------------------------------------------------------------------------- measured causes


def test_capacity_claims_give_how_far_training_got_as_their_cause(tmp_path):
    # Krizhevsky fits its training set worse (train 9) than the network without 6,7 (train 2): underfitting.
    k = {s: _metrics(tmp_path, "k", s, v, 9.0, 10.0) for s, v in enumerate([10.0, 11.0, 12.0])}
    r67 = {s: _metrics(tmp_path, "r67", s, v, t, c) for s, (v, t, c) in
           enumerate([(3.0, 2.0, 4.0), (4.0, 2.0, 5.0), (5.0, 2.0, 3.0)])}
    inputs = {"crops": "ten", "metrics": {"k": k, "r67": r67},
              "table3": {claim_inputs.T3_KRIZHEVSKY: "k", claim_inputs.T3_NO_67: "r67"}}
    row = imagenet.claim4(inputs, CRIT)
    assert row["verdict"] == FAILS  # removing 6,7 lowers the error beyond the noise
    why = row["cause"].split(" | why: ")[1]
    assert why.startswith("training / validation top-1 error (centre crop, mean over seeds): Krizhevsky 9.0% / "
                          "10.0%, without 6,7 2.0% / 4.0%; Krizhevsky fits its own training set worse than without "
                          "6,7 (2.0%)")
    # The wider network fits best: its gap is set against the others'.
    z = {0: _metrics(tmp_path, "z", 0, 8.0, 6.0, 9.0), 1: _metrics(tmp_path, "z", 1, 8.0, 6.0, 9.0)}
    fc = {0: _metrics(tmp_path, "fc", 0, 8.5, 1.0, 9.5), 1: _metrics(tmp_path, "fc", 1, 8.5, 1.0, 9.5)}
    inputs = {"crops": "ten", "metrics": {"z": z, "fc": fc},
              "table3": {claim_inputs.T3_ZF: "z", claim_inputs.T3_FC8192: "fc"}}
    why = imagenet.claim5(inputs, CRIT)["cause"].split(" | why: ")[1]
    assert why.endswith("layers 6,7 at 8192 fits its training set best, and its validation error follows: gap "
                        "8.5 points against 3.0 (ZF)")


def test_claim1_cause_is_how_the_filters_grew(tmp_path):
    flat = _wave(24, 7, 0, 1)  # RMS 1/sqrt(2) each
    data = {"filters": {"a": flat * 3, "b": flat, "c": flat}, "history": {"a": {1: flat, 5: flat * 3}, "c": {5: flat}},
            "projections": {}, "arches": {"a": "zf_no_renorm", "b": "krizhevsky", "c": "zf"},
            "strides": {"a": 2, "b": 4, "c": 2},
            "radii": {"a": None, "c": 1.0}, "mid_band": [0.125, 0.375]}
    row = filters.claim1({"fig6": _save(tmp_path, "f.pt", data)}, CRIT)
    assert row["verdict"] == FAILS
    assert row["cause"].endswith("why: zf_no_renorm's layer-1 filters from epoch 1 to 5: largest RMS 0.707 to 2.12, "
                                 "median 0.707 to 2.12 (x3.00 and x3.00); the largest ends at 2.12 times the "
                                 "renormalisation radius 1")


def test_claim7_cause_sorts_the_images_by_why_they_do_not_drop(tmp_path):
    hidden = torch.ones(4, 4)
    hidden[0, 0] = 0.0  # drops by 1
    never = torch.full((4, 4), 0.9)  # no position below 0.5
    unsure = torch.full((4, 4), 0.3)
    unsure[1, 1] = 0.2  # median 0.3: little to drop
    data = {"rows": [{"p_true": p, "map_total": p} for p in (hidden, never, unsure)], "layer": "conv5",
            "size": 3, "crop": 10}
    row = visualization.claim7({"occlusion": _save(tmp_path, "occ.pt", data)}, CRIT)
    assert row["cause"].endswith("why: of the 3 images, 1 keep p(true) above 0.5 at every position of the 3-px square "
                                 "(9% of the 10-px crop): no position hides the class; 1 have p(true) below 0.5 at "
                                 "the median position: little to drop; the other 1 drop by 1.00 on average")


def test_claim11_cause_is_what_the_first_layer_already_does(tmp_path):
    _, table7 = _transfer_files(tmp_path)
    # split mean accuracies: conv1 50, conv3 60, conv5 70 (best), fc7 69: the last layer is not the best
    row = transfer_claims.claim11({"table7": table7}, {**CRIT, "depth_correlation": 0.95})
    assert row["verdict"] != HOLDS
    assert row["cause"].endswith("why: caltech101: conv1 features alone reach 50.0%, the best layer (conv5) 70.0%, "
                                 "fc7 69.0%; caltech256: conv1 features alone reach 50.0%, the best layer (conv5) "
                                 "70.0%, fc7 69.0%")

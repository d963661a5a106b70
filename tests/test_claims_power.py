"""What a run can test: the minimum detectable effect (against hand-computed quantiles, a simulation and scipy's
noncentral t), the paper's own effects (hand-computed from the paper's tables), the verdict "untestable at this
scale" with what a run would need, and "not run" with its reason on published weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from zfrepro.report.scorecard import effects, filters, imagenet, rows, transfer, visualization
from zfrepro.report.scorecard.rows import CRITERIA
from zfrepro.report.scorecard.statistics import (
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    UNTESTABLE,
    Estimate,
    boot_estimate,
    combine,
    contrast,
    detectable,
)

CRIT = {**CRITERIA, "bootstrap": {"resamples": 400, "seed": 0}}


# ------------------------------------------------------------------------------------ minimum detectable effect
def test_detectable_effect_by_hand():
    # (z_0.975 + z_0.8) * se = (1.959964 + 0.841621) * 0.5, and with Student's t at 4 df (2.776445 + 0.940965)
    assert detectable(0.5, 0.95) == pytest.approx((1.959964 + 0.841621) * 0.5, abs=1e-6)
    assert detectable(0.5, 0.95, df=4) == pytest.approx((2.776445 + 0.940965) * 0.5, abs=1e-6)
    assert detectable(1.0, 0.90) == pytest.approx(1.644854 + 0.841621, abs=1e-6)
    assert detectable(None, 0.95) is None


def test_detectable_effect_has_80_percent_power_by_simulation():
    """A true effect of the MDE, measured with normal noise of sd `se`: the two-sided interval at 95% excludes
    zero in 80% of 200,000 simulated runs (normal case), and scipy's noncentral t gives the t case's power."""
    se = 0.3
    mde = detectable(se, 0.95)
    draws = np.random.default_rng(0).normal(mde, se, size=200_000)
    z = stats.norm.ppf(0.975)
    power = np.mean((draws - z * se > 0) | (draws + z * se < 0))
    assert power == pytest.approx(0.80, abs=0.005)
    for n in (5, 10, 30):  # a one-sample t-interval over n units: exact power from the noncentral t
        mde = detectable(1 / math.sqrt(n), 0.95, df=n - 1)
        q = stats.t.ppf(0.975, n - 1)
        ncp = mde * math.sqrt(n)
        exact = stats.nct.sf(q, n - 1, ncp) + stats.nct.cdf(-q, n - 1, ncp)
        assert exact == pytest.approx(0.80, abs=0.01)


def test_estimates_carry_their_mde_and_units():
    e = contrast({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 3.0]}, {"a": 1, "b": -1}, 0.95)
    welch = stats.ttest_ind([1.0, 2.0, 3.0], [2.0, 4.0, 3.0], equal_var=False)
    df = float(welch.df)
    assert e.mde == pytest.approx((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * e.se, rel=1e-9)
    assert (e.n, e.unit) == (3, "seeds of each network")
    b = boot_estimate(np.mean, [np.arange(10.0)], CRIT, "ten images", "images")
    assert b.mde == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * b.se) and b.n == 10


# ---------------------------------------------------------------------------------------- the paper's effects
def test_paper_effects_from_its_tables():
    assert effects.imagenet_gain()[0] == pytest.approx(40.5 - 38.4)  # Table 2
    costs = [c[0] for c in effects.removal_costs()]  # Table 3: 44.8, 45.4, 71.3 against 40.5
    assert costs == pytest.approx([44.8 - 40.5, 45.4 - 40.5, 71.3 - 45.4 - 44.8 + 40.5])
    conv, gap = effects.widening()
    assert (conv[0], gap[0]) == (pytest.approx(38.4 - 37.5), pytest.approx((38.8 - 22.0) - (38.4 - 33.1)))
    assert effects.correspondence_gap(["right eye", "left eye", "nose"])[0] == pytest.approx(
        0.107 - (0.067 + 0.069 + 0.079) / 3)
    assert effects.correspondence_gap(["ear"]) is None
    assert effects.transfer_margin("caltech101", 15)[0] == pytest.approx(83.8 - 22.8)
    assert effects.transfer_margin("caltech256", 60)[0] == pytest.approx(74.2 - 38.8)
    assert effects.transfer_margin("caltech101", 60) is None and effects.transfer_margin("caltech256", 2) is None
    assert effects.few_images_gain("caltech256", 15, 60)[0] == pytest.approx(65.7 - 38.8)
    # Table 7's SVM accuracies over layers 1, 5, 7: Caltech-101 44.8, 86.2, 85.5 (ranks 1 3 2), Caltech-256 rising
    assert effects.depth_correlation("caltech101", [1, 5, 7])[0] == pytest.approx(0.5)
    assert effects.depth_correlation("caltech256", [1, 2, 3, 4, 5, 7])[0] == pytest.approx(1.0)
    assert effects.depth_correlation("caltech101", [1, 5, 6]) is None  # the paper has no layer 6


# --------------------------------------------------------------------------------- untestable and what it needs
def _part(effect_value: float, se: float, n: int = 4, low: float = -0.1, high: float = 0.5) -> rows.Part:
    e = Estimate(0.2, se, low, high, "noise", detectable(se, 0.95), n, "images")
    return rows.Part("q", 0.0, True, e, paper=(effect_value, "Table X"))


def test_untestable_when_the_paper_effect_is_below_the_mde():
    part = _part(1.0, se=0.5)  # MDE 1.4008 > 1.0: untestable; n 4 * (1.4008 / 1.0)^2 = 7.85 -> 8 images
    assert part.verdict == UNTESTABLE
    assert part.needs().startswith("about 8 images (it has 4)")
    assert _part(2.0, se=0.5).verdict == INCONCLUSIVE  # a paper-sized effect would have shown: inconclusive
    assert _part(0.5, se=0.1, low=0.1, high=0.3).verdict == HOLDS  # an interval beyond the threshold holds anyway
    wrong = _part(-0.3, se=0.5)
    assert wrong.verdict == UNTESTABLE and wrong.needs().startswith("no number of images")
    no_paper = rows.Part("q", 0.0, True, Estimate(0.2, 0.5, -0.1, 0.5, "noise", 1.4, 4, "images"))
    assert no_paper.verdict == INCONCLUSIVE  # nothing to compare with: the paper gives no number


def test_needed_units_reach_80_percent_power():
    """At the n `needs` names, with se shrinking as 1/sqrt(n), the paper's effect is detected 80% of the time."""
    part = _part(0.9, se=0.6, n=5)
    need = int(part.needs().split()[1])
    se_needed = 0.6 * math.sqrt(5 / need)
    z = stats.norm.ppf(0.975)
    power = stats.norm.sf(z - 0.9 / se_needed) + stats.norm.cdf(-z - 0.9 / se_needed)
    assert power >= 0.8 and need == math.ceil(5 * (detectable(0.6, 0.95) / 0.9) ** 2)


def test_combine_and_the_row_columns():
    assert combine([HOLDS, UNTESTABLE]) == UNTESTABLE
    assert combine([UNTESTABLE, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([UNTESTABLE, NOT_RUN]) == UNTESTABLE
    row = rows.claim_row(3, [_part(1.0, se=0.5)])
    assert (row["verdict"], row["paper_value"], row["paper_source"]) == (UNTESTABLE, 1.0, "Table X")
    assert row["mde"] == pytest.approx(1.4008, abs=1e-4) and row["needs"].startswith("about 8 images")
    assert "below the smallest this run detects" in row["cause"]
    no_number = rows.claim_row(6, [rows.Part("q", 0.0, True, Estimate(0.2, 0.5, -0.1, 0.5, "n", 1.4, 4, "x"))])
    assert no_number["paper_value"] == ""
    assert no_number["paper_source"].startswith("no number for these quantities: Fig 5")


def _metrics(root: Path, arch: str, seed: int, val: float) -> str:
    path = root / f"{arch}{seed}.json"
    path.write_text(json.dumps({"train": {"top1_error": val - 5}, "val": {"ten": {"top1_error": val},
                                                                         "center": {"top1_error": val}}}))
    return str(path)


def test_claim3_row_gives_the_paper_effect_and_needs_seeds(tmp_path):
    metrics = {"k": {0: _metrics(tmp_path, "k", 0, 40.0), 1: _metrics(tmp_path, "k", 1, 44.0)},
               "z": {0: _metrics(tmp_path, "z", 0, 39.0), 1: _metrics(tmp_path, "z", 1, 43.0)}}
    inputs = {"metrics": metrics, "crops": "ten",
              "table2": {"our replication of Krizhevsky, 1 convnet": "k", "1 convnet as per Fig 3": "z"}}
    row = imagenet.claim3(inputs, CRIT)
    # difference 1, Welch se sqrt(8/2 + 8/2) = 2.828 over df 2: MDE (4.303 + 1.061) * 2.828 = 15.17 > 2.1;
    # a larger run: 2 * ((1.960 + 0.842) * 2.828 / 2.1)^2 = 28.5 -> 29 seeds of each network
    assert row["paper_value"] == pytest.approx(2.1) and row["mde"] == pytest.approx(15.17, abs=0.01)
    assert row["verdict"] == UNTESTABLE
    assert row["needs"].startswith("about 29 seeds of each network (it has 2)")


# ------------------------------------------------------------------------------------ not run on published weights
def test_published_weights_cannot_run_the_claims_about_training():
    inputs = {"published": {"zf": "zfnet", "krizhevsky": "alexnet"}, "metrics": {}, "table2": {}, "table3": {},
              "fig6": None, "convergence": None, "transfer": None}
    for claim in (filters.claim1, imagenet.claim4, imagenet.claim5, visualization.claim9, transfer.claim10):
        row = claim(inputs, CRIT)
        assert row["verdict"] == NOT_RUN and "published weights (zf: zfnet, krizhevsky: alexnet)" in row["cause"]
    # without published weights the reasons name the config keys that make them run
    trained = {**inputs, "published": {}}
    assert "transfer.enabled: true" in transfer.claim10(trained, CRIT)["cause"]
    assert "published" not in visualization.claim9(trained, CRIT)["cause"]


def test_seeds_needed_for_networks_with_different_seed_counts():
    """One seed of one network, two of the other, with a seed sd of 2 measured elsewhere (df 6): se = 2 sqrt(1 +
    1/2); the equal seed count with that se is 4/3, so a paper effect d needs k = 4/3 (mde / d)^2 seeds of each,
    at which se = 2 sqrt(2 / k) makes the MDE (same df) at most d."""
    e = contrast({"a": [10.0], "b": [9.0, 11.0]}, {"a": 1, "b": -1}, 0.95, reference=(2.0, 6, "other networks"))
    assert e.se == pytest.approx(2 * math.sqrt(1.5)) and e.n == pytest.approx(4 / 3)
    part = rows.Part("q", 0.0, True, e, paper=(1.5, "Table X"))
    k = int(part.needs().split()[1])  # large-sample quantiles: the df of a run with k seeds each is large
    assert k == math.ceil(4 / 3 * (detectable(e.se, 0.95) / 1.5) ** 2)
    assert detectable(2 * math.sqrt(2 / k), 0.95) <= 1.5 < detectable(2 * math.sqrt(2 / (k - 1)), 0.95)

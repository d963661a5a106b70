"""Statistics of the scorecard: verdicts against a threshold, t-intervals over seeds and splits, the bootstrap.
The method in words is the docstring of zfrepro.report.claims."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"


UNTESTABLE = "untestable at this scale"


VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE, NOT_RUN)


POWER = 0.8  # the power at which the minimum detectable effect is stated


def verdict(low: float | None, high: float | None, threshold: float, above: bool = True) -> str:
    """holds / does not hold / inconclusive for an interval against a threshold; `above`: the claim needs the
    value above the threshold (else below). No interval, or one containing the threshold: inconclusive."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    beyond, short = (low > threshold, high < threshold) if above else (high < threshold, low > threshold)
    return HOLDS if beyond else FAILS if short else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its parts' (module docstring): not run when none ran; else does not hold when one
    does not; inconclusive when one is (it could have shown and did not); untestable when every part that does
    not hold is untestable at this scale; holds when every part does."""
    ran = [v for v in verdicts if v != NOT_RUN]
    if not ran:
        return NOT_RUN
    if FAILS in ran:
        return FAILS
    if INCONCLUSIVE in ran:
        return INCONCLUSIVE
    if UNTESTABLE in ran:
        return UNTESTABLE
    return HOLDS if len(ran) == len(verdicts) else INCONCLUSIVE


def detectable(se: float | None, confidence: float, df: float | None = None, power: float = POWER) -> float | None:
    """The minimum detectable effect: the smallest true distance from the threshold that the interval at
    `confidence` excludes with probability `power`, (q_{(1 + confidence) / 2} + q_{power}) * se, with q the
    standard normal's quantiles (bootstrap), or Student's t with `df` degrees of freedom (t-intervals).
    None without a noise estimate."""
    from scipy import stats

    if se is None or not math.isfinite(se):
        return None
    dist = stats.t(df) if df is not None and math.isfinite(df) else stats.norm()
    return float((dist.ppf((1 + confidence) / 2) + dist.ppf(power)) * se)


def t_interval(value: float, se: float | None, df: float | None, confidence: float) -> tuple[float | None, ...]:
    """(low, high) of value +- t_{df}((1 + confidence) / 2) * se; (None, None) without a noise estimate."""
    from scipy import stats

    if se is None or df is None or not df >= 1 or not math.isfinite(se):
        return None, None
    q = float(stats.t.ppf((1 + confidence) / 2, df))
    return value - q * se, value + q * se


def pooled_sd(groups: Mapping[Any, Sequence[float]]) -> tuple[float, int] | None:
    """(sd, df) pooled over the groups with at least 2 values (sum of squared deviations over sum of n - 1)."""
    ss, df = 0.0, 0
    for values in groups.values():
        v = np.asarray(values, dtype=np.float64)
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
    return (math.sqrt(ss / df), df) if df else None


@dataclass
class Estimate:
    """A measured value with its standard error, interval (None without a noise estimate) and what the noise is."""

    value: float
    se: float | None
    low: float | None
    high: float | None
    noise: str
    mde: float | None = None  # minimum detectable effect (detectable()); None without a noise estimate
    # how many of `unit` the noise is measured over, the n a larger run scales: for a contrast of networks with
    # different seed counts, the seeds per network that give the same standard error
    n: float | None = None
    unit: str = ""  # e.g. "seeds of each network", "splits", "images"
    confidence: float | None = None  # the interval's level (for the n a larger run needs)


def contrast(groups: Mapping[str, Sequence[float]], coefs: Mapping[str, float], confidence: float,
             reference: tuple[float, int, str] | None = None, labels: Mapping[str, str] | None = None) -> Estimate:
    """sum_i c_i mean(group_i) with a t-interval (the `seeds` rule of the module docstring).

    Every group with >= 2 values: Welch-Satterthwaite (se^2 = sum c^2 s_i^2 / n_i). Else `reference` = (sd, df,
    what it is), a seed sd measured elsewhere, for every group: se = sd sqrt(sum c^2 / n_i) with its df.
    labels: how the noise text names each group (default: its key).
    """
    means = {g: float(np.mean(groups[g])) for g in coefs}
    n = {g: len(groups[g]) for g in coefs}
    seeds = ", ".join(f"{(labels or {}).get(g, g)} {n[g]}" for g in coefs)
    unit = "seeds of each network"
    value = sum(c * means[g] for g, c in coefs.items())
    if all(k >= 2 for k in n.values()):
        terms = {g: c ** 2 * float(np.var(groups[g], ddof=1)) / n[g] for g, c in coefs.items()}
        se = math.sqrt(sum(terms.values()))
        spread = sum(t * n[g] for g, t in terms.items())  # se^2 with one seed each
        n_eff = spread / se ** 2 if se > 0 else min(n.values())
        denominator = sum(t ** 2 / (n[g] - 1) for g, t in terms.items())
        df = sum(terms.values()) ** 2 / denominator if denominator > 0 else math.inf
        df = df if math.isfinite(df) else 1e9
        low, high = t_interval(value, se, df, confidence)
        return Estimate(value, se, low, high, f"Welch {confidence:.0%} interval over seeds (seeds: {seeds}; "
                                              f"df {df:.1f})", detectable(se, confidence, df), n_eff, unit,
                        confidence)
    if reference is None:
        return Estimate(value, None, None, None, "no seed spread: every network has one seed (train more seeds: "
                                                 "`seeds`, or ensemble members in tables.table2)",
                        None, min(n.values()), unit)
    sd, df, what = reference
    se = sd * math.sqrt(sum(c ** 2 / n[g] for g, c in coefs.items()))
    n_eff = sum(c ** 2 for c in coefs.values()) / sum(c ** 2 / n[g] for g, c in coefs.items())
    low, high = t_interval(value, se, df, confidence)
    return Estimate(value, se, low, high, f"{confidence:.0%} t-interval from the seed-to-seed sd of {what} "
                                          f"(sd {sd:.3g}, df {df}), assumed for every network compared "
                                          f"(seeds: {seeds})", detectable(se, confidence, df), n_eff, unit,
                    confidence)


def bootstrap(statistic: Callable[..., float], samples: Sequence[Any], resamples: int, confidence: float,
              seed: int) -> tuple[float, float, float, float]:
    """(value, sd, low, high): `statistic(*samples)` and its percentile interval over `resamples` draws, each
    sample resampled with replacement along its first axis independently (numpy's default_rng(seed); for each
    sample in turn, an index array [resamples, n]); numpy's linear quantiles at (1 -+ confidence) / 2."""
    arrays = [np.asarray(s) for s in samples]
    value = float(statistic(*arrays))
    rng = np.random.default_rng(seed)
    indices = [rng.integers(0, len(a), size=(resamples, len(a))) for a in arrays]
    draws = np.array([statistic(*(a[i[b]] for a, i in zip(arrays, indices, strict=True)))
                      for b in range(resamples)], dtype=np.float64)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return value, float(draws.std(ddof=1)), float(low), float(high)


def boot_estimate(statistic: Callable[..., float], samples: Sequence[Any], criteria: Mapping, units: str,
                  unit: str = "units") -> Estimate:
    """bootstrap() with the config's settings, as an Estimate whose noise says what was resampled (`units`; `unit`
    names one kind of them, e.g. "images", for what a larger run needs); no interval when a sample has a single
    unit (resampling it shows no spread that was measured)."""
    b, confidence = criteria["bootstrap"], criteria["confidence"]
    n = min(len(sample) for sample in samples)
    if n < 2:
        value = float(statistic(*(np.asarray(sample) for sample in samples)))
        return Estimate(value, None, None, None, f"no spread: a single unit among {units}", None, n, unit)
    value, sd, low, high = bootstrap(statistic, samples, b["resamples"], confidence, b["seed"])
    return Estimate(value, sd, low, high, f"{confidence:.0%} bootstrap interval over {units} "
                                          f"({b['resamples']} resamples, seed {b['seed']})",
                    detectable(sd, confidence), n, unit, confidence)


def paired_over_splits(comparisons: Mapping[str, Sequence[float]], confidence: float) -> dict[str, Estimate]:
    """Each comparison's mean paired difference over splits with a t-interval, the sd pooled over the
    comparisons (the `splits` rule of the module docstring)."""
    pooled = pooled_sd(comparisons)
    out = {}
    for name, diffs in comparisons.items():
        value = float(np.mean(diffs))
        if pooled is None:
            out[name] = Estimate(value, None, None, None, f"no split-to-split spread: {len(diffs)} split "
                                                         "(set transfer.splits to 2 or more)",
                                 None, len(diffs), "splits")
            continue
        sd, df = pooled
        se = sd / math.sqrt(len(diffs))
        low, high = t_interval(value, se, df, confidence)
        out[name] = Estimate(value, se, low, high, f"{confidence:.0%} t-interval over {len(diffs)} splits, paired "
                                                   f"differences, sd {sd:.3g} pooled over {len(comparisons)} "
                                                   f"comparisons (df {df})",
                             detectable(se, confidence, df), len(diffs), "splits", confidence)
    return out

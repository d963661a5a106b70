"""The paper's eleven claims tested on a run's results: the scorecard `results/tables/claims.csv` (and `.md`).

One function per claim (`claim1` ... `claim11`) reads the result files the workflow already wrote (metrics,
analysis .pt files, transfer CSVs) and measures the claim in one or more parts. Each part is a number with
an interval and a threshold declared in the config (`claims`) before the run, and a verdict:

  holds          the interval lies entirely on the claimed side of the threshold
  does not hold  it lies entirely on the other side
  inconclusive   it contains the threshold (the difference is within the noise), or there is no noise estimate
  not run        the results it needs were not made (the row names the config key that makes them)

A claim holds when every part holds, does not hold when some part does not, is "not run" when no part ran,
and is inconclusive otherwise (a part not run keeps a claim from holding). Intervals, at `claims.confidence`:

  seeds      a t-interval for a contrast of per-network means over training seeds (e.g. one network's mean
             error minus another's): Welch's, with Satterthwaite's degrees of freedom, when every network in it
             has at least 2 seeds; otherwise the pooled seed-to-seed sd of the networks of the study that have
             several seeds (the same training protocol), assumed for all of them, with its degrees of freedom;
             none (inconclusive) when no network has 2 seeds.
  splits     a t-interval for the mean over transfer splits of paired differences (same split, same test
             images), the sd pooled over the claim's comparisons; none with a single split.
  bootstrap  the percentile interval of the statistic over resamples (with replacement) of its units: layer-1
             filters, layer-2 projections, images, image pairs (`claims.bootstrap`: resamples, seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from zfrepro.io import load_json_result, load_result
from zfrepro.report.paper import CLAIMS

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
COLUMNS = ["claim", "statement", "quantity", "criterion", "threshold", "value", "se", "low", "high", "noise",
           "verdict", "cause", "details"]

# The config's `claims` section (workflow/schemas/config.schema.yaml holds the same defaults).
CRITERIA = {
    "confidence": 0.95, "bootstrap": {"resamples": 2000, "seed": 0},
    "dominance_ratio": 2.0, "mid_band_gain": 0.0, "dead_filter_gain": 0.0, "aliasing_gain": 0.0,
    "imagenet_gain": 0.0, "removal_cost": 0.0, "conv_gain": 0.0, "overfit_gap": 0.0,
    "feature_change_gap": 0.0, "rotation_drop": 0.0, "occlusion_drop": 0.5, "map_correlation": 0.0,
    "correspondence_gap": 0.0, "convergence_gap": 0.0, "transfer_margin": 20.0, "few_images_gain": 0.0,
    "depth_correlation": 0.5,
}

# Paper row names (tables.table2 / tables.table3 map them to architectures) of the networks claims 3-5 compare.
T2_KRIZHEVSKY, T2_ZF = "our replication of Krizhevsky, 1 convnet", "1 convnet as per Fig 3"
T3_KRIZHEVSKY = "our replication of Krizhevsky"
T3_NO_34, T3_NO_67 = "Krizhevsky: removed layers 3,4", "Krizhevsky: removed layers 6,7"
T3_NO_3467 = "Krizhevsky: removed layers 3,4,6,7"
T3_ZF, T3_CONV = "our model (Fig 3)", "Fig 3: adjust layers 3,4,5: 512,1024,512 maps"
T3_FC8192 = "Fig 3: adjust layers 6,7: 8192 units"


# ---------------------------------------------------------------------------------------------- verdicts


def verdict(low: float | None, high: float | None, threshold: float, above: bool = True) -> str:
    """holds / does not hold / inconclusive for an interval against a threshold; `above`: the claim needs the
    value above the threshold (else below). No interval, or one containing the threshold: inconclusive."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    beyond, short = (low > threshold, high < threshold) if above else (high < threshold, low > threshold)
    return HOLDS if beyond else FAILS if short else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its parts' (module docstring)."""
    ran = [v for v in verdicts if v != NOT_RUN]
    if not ran:
        return NOT_RUN
    if FAILS in ran:
        return FAILS
    return HOLDS if len(ran) == len(verdicts) and all(v == HOLDS for v in ran) else INCONCLUSIVE


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
    value = sum(c * means[g] for g, c in coefs.items())
    if all(k >= 2 for k in n.values()):
        terms = {g: c ** 2 * float(np.var(groups[g], ddof=1)) / n[g] for g, c in coefs.items()}
        se = math.sqrt(sum(terms.values()))
        denominator = sum(t ** 2 / (n[g] - 1) for g, t in terms.items())
        df = sum(terms.values()) ** 2 / denominator if denominator > 0 else math.inf
        low, high = t_interval(value, se, df if math.isfinite(df) else 1e9, confidence)
        return Estimate(value, se, low, high, f"Welch {confidence:.0%} interval over seeds (seeds: {seeds}; "
                                              f"df {df:.1f})")
    if reference is None:
        return Estimate(value, None, None, None, "no seed spread: every network has one seed (train more seeds: "
                                                 "`seeds`, or ensemble members in tables.table2)")
    sd, df, what = reference
    se = sd * math.sqrt(sum(c ** 2 / n[g] for g, c in coefs.items()))
    low, high = t_interval(value, se, df, confidence)
    return Estimate(value, se, low, high, f"{confidence:.0%} t-interval from the seed-to-seed sd of {what} "
                                          f"(sd {sd:.3g}, df {df}), assumed for every network compared "
                                          f"(seeds: {seeds})")


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


def boot_estimate(statistic: Callable[..., float], samples: Sequence[Any], criteria: Mapping, units: str) -> Estimate:
    """bootstrap() with the config's settings, as an Estimate whose noise says what was resampled; no interval
    when a sample has a single unit (resampling it shows no spread that was measured)."""
    b, confidence = criteria["bootstrap"], criteria["confidence"]
    if min(len(sample) for sample in samples) < 2:
        value = float(statistic(*(np.asarray(sample) for sample in samples)))
        return Estimate(value, None, None, None, f"no spread: a single unit among {units}")
    value, sd, low, high = bootstrap(statistic, samples, b["resamples"], confidence, b["seed"])
    return Estimate(value, sd, low, high, f"{confidence:.0%} bootstrap interval over {units} "
                                          f"({b['resamples']} resamples, seed {b['seed']})")


def paired_over_splits(comparisons: Mapping[str, Sequence[float]], confidence: float) -> dict[str, Estimate]:
    """Each comparison's mean paired difference over splits with a t-interval, the sd pooled over the
    comparisons (the `splits` rule of the module docstring)."""
    pooled = pooled_sd(comparisons)
    out = {}
    for name, diffs in comparisons.items():
        value = float(np.mean(diffs))
        if pooled is None:
            out[name] = Estimate(value, None, None, None, f"no split-to-split spread: {len(diffs)} split "
                                                         "(set transfer.splits to 2 or more)")
            continue
        sd, df = pooled
        se = sd / math.sqrt(len(diffs))
        low, high = t_interval(value, se, df, confidence)
        out[name] = Estimate(value, se, low, high, f"{confidence:.0%} t-interval over {len(diffs)} splits, paired "
                                                   f"differences, sd {sd:.3g} pooled over {len(comparisons)} "
                                                   f"comparisons (df {df})")
    return out


# ---------------------------------------------------------------------------------------------- parts and rows


@dataclass
class Part:
    """One measured part of a claim: `name` > threshold (or < with above=False) at the interval's level."""

    name: str
    threshold: float
    above: bool = True
    estimate: Estimate | None = None
    context: str = ""  # the measured numbers behind it, quoted in the cause
    enable: str = ""  # what makes it run, when it did not

    @property
    def verdict(self) -> str:
        if self.estimate is None:
            return NOT_RUN
        return verdict(self.estimate.low, self.estimate.high, self.threshold, self.above)

    @property
    def criterion(self) -> str:
        return f"{self.name} {'>' if self.above else '<'} {self.threshold:g}"

    def describe(self) -> str:
        if self.estimate is None:
            return f"{self.name}: not run ({self.enable})"
        e = self.estimate
        interval = f" [{e.low:.4g}, {e.high:.4g}]" if e.low is not None else " (no interval)"
        context = f" ({self.context})" if self.context else ""
        return f"{self.name}: {e.value:.4g}{interval} vs {self.threshold:g}: {self.verdict}{context}"

    def cause(self) -> str:
        """Why this part does not hold or is inconclusive, in measured numbers."""
        if self.estimate is None:
            return f"{self.name}: not run ({self.enable})"
        e, v = self.estimate, self.verdict
        context = f"; {self.context}" if self.context else ""
        if v == FAILS:
            side = "below" if self.above else "above"
            return (f"{self.name} is {e.value:.4g} [{e.low:.4g}, {e.high:.4g}], {side} the threshold "
                    f"{self.threshold:g} beyond the noise{context}")
        if e.low is None:
            return f"{self.name} is {e.value:.4g} with no noise estimate ({e.noise}){context}"
        if e.low == e.high:
            return f"{self.name} is {e.value:.4g}, no different from the threshold {self.threshold:g}{context}"
        return (f"{self.name} is {e.value:.4g} but its interval [{e.low:.4g}, {e.high:.4g}] contains the threshold "
                f"{self.threshold:g}: the difference is within the noise (se {e.se:.3g}){context}")


def not_run(name: str, threshold: float, enable: str, above: bool = True) -> Part:
    return Part(name, threshold, above, None, enable=enable)


def rule_not_run(number: int, parts: Sequence[tuple[str, float, bool]], enable: str) -> dict[str, Any]:
    """The row of a claim whose input the workflow did not make: every part (name, threshold, above) not run,
    naming what makes it."""
    return claim_row(number, [not_run(name, threshold, enable, above) for name, threshold, above in parts])


def claim_row(number: int, parts: Sequence[Part], headline: int | None = None, mechanism: str = "") -> dict[str, Any]:
    """The scorecard row of a claim: the headline part's numbers, every part's criterion and result, the
    combined verdict, and for a claim that does not hold (or is inconclusive / not run) the cause: each part
    that is not "holds", in measured numbers, then `mechanism` (a measurement of why the effect cannot show on
    this run, e.g. that the larger network fits its own training set worse than a smaller one). The headline is a
    part whose own verdict is the claim's (so the row's value and interval show why): `headline` if it
    qualifies, else the first such part, else the first part that ran."""
    v = combine([p.verdict for p in parts])
    order = ([headline] if headline is not None else []) + list(range(len(parts)))
    ran = [i for i in order if parts[i].estimate is not None]
    head = parts[next((i for i in ran if parts[i].verdict == v), ran[0] if ran else 0)]
    e = head.estimate

    def num(x: float | None) -> float | str:  # 6 significant digits: a bound near 0 keeps its sign and size
        return float(f"{float(x):.6g}") if x is not None else ""

    return {
        "claim": number, "statement": CLAIMS[number - 1], "quantity": head.name,
        "criterion": "; ".join(p.criterion for p in parts) + (" (every part)" if len(parts) > 1 else ""),
        "threshold": head.threshold, "value": num(e.value) if e else NOT_RUN, "se": num(e.se) if e else "",
        "low": num(e.low) if e else "", "high": num(e.high) if e else "", "noise": e.noise if e else "",
        "verdict": v, "cause": "" if v == HOLDS else " | ".join(
            [p.cause() for p in parts if p.verdict != HOLDS] + ([f"why: {mechanism}"] if mechanism else [])),
        "details": " | ".join(p.describe() + (f"; noise: {p.estimate.noise}" if p.estimate and e and
                                              p.estimate.noise != e.noise else "") for p in parts),
    }


# ---------------------------------------------------------------------------------------------- inputs


def _load(path: str | None) -> Any:
    return None if path is None else load_result(path)


def _metrics(inputs: Mapping, arch: str) -> list[dict]:
    """The metrics JSON of every trained seed of `arch` (empty when not trained)."""
    return [load_json_result(path) for _, path in sorted(inputs.get("metrics", {}).get(arch, {}).items())]


def _val_error(m: dict, crops: str) -> float:
    return float(m["val"][crops]["top1_error"])


def _gap(m: dict, crops: str = "") -> float:
    """Validation minus training top-1 error, both on the centre crop as the training error is measured (`crops`,
    the tables' crops, does not apply)."""
    return float(m["val"]["center"]["top1_error"]) - float(m["train"]["top1_error"])


def _reference(inputs: Mapping, quantity: Callable[[dict, str], float], what: str) -> tuple[float, int, str] | None:
    """The pooled seed sd of `quantity` over every architecture trained with several seeds (the noise borrowed
    for networks with one seed), and which networks it comes from."""
    crops = inputs.get("crops", "ten")
    groups = {arch: [quantity(m, crops) for m in _metrics(inputs, arch)] for arch in inputs.get("metrics", {})}
    several = {a: g for a, g in groups.items() if len(g) >= 2}
    pooled = pooled_sd(several)
    if pooled is None:
        return None
    names = ", ".join(f"{a} ({len(g)} seeds)" for a, g in several.items())
    return pooled[0], pooled[1], f"{what} of {names}"


def _seed_parts(inputs: Mapping, criteria: Mapping, specs: Sequence[tuple], quantity: Callable[[dict, str], float],
                what: str) -> list[Part]:
    """Parts that are contrasts of per-network means over seeds. specs: (name, threshold, {role: coef},
    {role: (arch or None, config key)}, context(means) -> str)."""
    crops = inputs.get("crops", "ten")
    reference = _reference(inputs, quantity, what)
    parts = []
    for name, threshold, coefs, roles, context in specs:
        missing = [key for role, (arch, key) in roles.items() if role in coefs and (arch is None or
                                                                                    not _metrics(inputs, arch))]
        if missing:
            parts.append(not_run(name, threshold, f"needs {'; '.join(missing)}"))
            continue
        groups = {role: [quantity(m, crops) for m in _metrics(inputs, roles[role][0])] for role in coefs}
        estimate = contrast(groups, coefs, criteria["confidence"], reference,
                            labels={role: roles[role][0] for role in coefs})
        means = {role: float(np.mean(v)) for role, v in groups.items()}
        parts.append(Part(name, threshold, True, estimate, context(means, groups)))
    return parts


def _row_arch(inputs: Mapping, table: str, label: str) -> tuple[str | None, str]:
    """(architecture of a paper row in tables.<table>, the config key that would add it)."""
    arch = inputs.get(table, {}).get(label)
    return arch, f"tables.{table} row {label!r} (and its architecture)"


def _fit(inputs: Mapping, roles: Mapping[str, tuple[str | None, str]], names: Mapping[str, str],
         largest: str) -> str:
    """How far training got, for a claim about capacity: each compared network's training and validation top-1
    error (centre crop, mean over seeds). When the network with the most layers or units (`largest`) fits its
    own training set worse than a smaller one, it is behind in training (underfitting), where what its extra
    capacity can learn cannot show; when it fits best, whether its validation error follows is its gap against
    the others'."""
    errors = {}  # role -> (training, validation) error
    for role, (arch, _) in roles.items():
        ms = _metrics(inputs, arch) if arch else []
        if ms:
            errors[role] = (float(np.mean([float(m["train"]["top1_error"]) for m in ms])),
                            float(np.mean([float(m["val"]["center"]["top1_error"]) for m in ms])))
    if not errors:
        return ""
    text = "training / validation top-1 error (centre crop, mean over seeds): " + ", ".join(
        f"{names[r]} {t:.1f}% / {v:.1f}%" for r, (t, v) in errors.items())
    if largest not in errors:
        return text
    train, val = errors[largest]
    ahead = [r for r, (t, _) in errors.items() if r != largest and t < train]
    if ahead:
        text += (f"; {names[largest]} fits its own training set worse than "
                 f"{', '.join(f'{names[r]} ({errors[r][0]:.1f}%)' for r in ahead)}: with the training given it is "
                 "behind them (underfitting), where what its extra layers or units can learn cannot show")
    else:
        gaps = ", ".join(f"{v - t:.1f} ({names[r]})" for r, (t, v) in errors.items() if r != largest)
        text += (f"; {names[largest]} fits its training set best, and its validation error follows: gap "
                 f"{val - train:.1f} points against {gaps}")
    return text


def _fmt(means: Mapping[str, float], names: Mapping[str, str], groups: Mapping[str, Sequence]) -> str:
    return ", ".join(f"{names[r]} {means[r]:.2f}% ({len(groups[r])} seed{'s' * (len(groups[r]) != 1)})"
                     for r in names if r in means)


# ---------------------------------------------------------------------------------------------- claims 1, 2


def _fig6(inputs: Mapping) -> dict | None:
    return _load(inputs.get("fig6"))


def claim1(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Without renormalisation a few layer-1 filters dominate, with it none: the largest over the median filter
    RMS, at its peak over the kept epochs and the final model, bootstrapped over the filters."""
    from zfrepro.analysis.filters import max_median, peak_dominance, rms_norms

    t = criteria["dominance_ratio"]
    names = ("largest / median layer-1 filter RMS without renormalisation (peak over epochs)",
             "largest / median layer-1 filter RMS with renormalisation (peak over epochs)")
    data = _fig6(inputs)
    if data is None:
        return rule_not_run(1, [(names[0], t, True), (names[1], t, False)], "the filters rule (Fig 6)")
    radius = data.get("radii", {}).get("c")
    clipped = ""
    if radius:  # whether renormalisation acted at all: filters held at the radius at the end of training
        final = rms_norms(data["filters"]["c"])
        clipped = (f"; {data['arches']['c']}: {int((final >= 0.99 * radius).sum())} of {len(final)} filters at the "
                   f"renormalisation radius {radius:g}")
    parts = []
    for name, panel, above in ((names[0], "a", True), (names[1], "c", False)):
        history = data["history"][panel]
        peak, epoch = peak_dominance(history)
        norms = rms_norms(history[epoch])
        estimate = boot_estimate(max_median, [norms], criteria, f"the {len(norms)} layer-1 filters")
        context = (f"{data['arches'][panel]} at epoch {epoch} (of {', '.join(map(str, sorted(history)))}): largest "
                   f"RMS {norms.max():.3g}, median {np.median(norms):.3g}" + clipped)
        parts.append(Part(name, t, above, estimate, context))
    return claim_row(1, parts, mechanism=_growth(data["history"]["a"], data["arches"]["a"], radius))


def _growth(history: Mapping[int, Any], arch: str, radius: float | None) -> str:
    """How the layer-1 filters of the network without renormalisation grew over the kept epochs: the largest and
    the median RMS at the first and the last. Dominance needs the largest to outgrow the median."""
    from zfrepro.analysis.filters import rms_norms

    if len(history) < 2:  # growth needs two kept epochs
        return ""
    first, last = min(history), max(history)
    a, b = rms_norms(history[first]), rms_norms(history[last])
    text = (f"{arch}'s layer-1 filters from epoch {first} to {last}: largest RMS {a.max():.3g} to {b.max():.3g}, "
            f"median {np.median(a):.3g} to {np.median(b):.3g} (x{b.max() / a.max():.2f} and "
            f"x{np.median(b) / np.median(a):.2f})")
    if radius:
        text += f"; the largest ends at {b.max() / radius:.2f} times the renormalisation radius {radius:g}"
    return text


def claim2(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """ZF's layer 1 covers the middle frequencies better, has fewer near-dead filters, and its layer-2
    projections alias less than Krizhevsky's (each a difference bootstrapped over filters or projections)."""
    from zfrepro.analysis.filters import alias_share, band_shares, near_dead_mask

    names = ("ZF minus Krizhevsky: mean share of layer-1 filter power in the middle frequency band",
             "Krizhevsky minus ZF: share of near-dead layer-1 filters",
             "Krizhevsky minus ZF: share of layer-2 projection power above layer 1's Nyquist frequency")
    keys = ("mid_band_gain", "dead_filter_gain", "aliasing_gain")
    data = _fig6(inputs)
    if data is None:
        return rule_not_run(2, [(n, criteria[k], True) for n, k in zip(names, keys, strict=True)],
                            "the filters rule (Fig 6)")
    band = tuple(data["mid_band"])
    n_k, n_z = len(data["filters"]["b"]), len(data["filters"]["c"])
    mid = {p: band_shares(data["filters"][p], band) for p in ("b", "c")}
    near = {p: near_dead_mask(data["filters"][p]).astype(np.float64) for p in ("b", "c")}
    diff = lambda a, b: float(np.mean(a) - np.mean(b))  # noqa: E731
    filters = f"the layer-1 filters of each network ({n_k} Krizhevsky, {n_z} ZF)"
    parts = [
        Part(names[0], criteria[keys[0]], True,
             boot_estimate(diff, [mid["c"][:, 1], mid["b"][:, 1]], criteria, filters),
             f"band {list(band)} cycles/pixel; low/mid/high shares: Krizhevsky "
             f"{'/'.join(f'{x:.2f}' for x in mid['b'].mean(0))}, ZF {'/'.join(f'{x:.2f}' for x in mid['c'].mean(0))}"),
        Part(names[1], criteria[keys[1]], True,
             boot_estimate(diff, [near["b"], near["c"]], criteria, filters),
             f"near-dead (RMS below 10% of the median, or flat colour): Krizhevsky {int(near['b'].sum())} of "
             f"{len(near['b'])}, ZF {int(near['c'].sum())} of {len(near['c'])}"),
    ]
    if {"d", "e"} <= set(data["projections"]):
        alias = {p: alias_share(data["projections"][p], int(data["strides"][p]), remove_mean=True) for p in "de"}
        parts.append(Part(names[2], criteria[keys[2]], True,
                          boot_estimate(diff, [alias["d"], alias["e"]], criteria,
                                        f"the layer-2 projections of each network ({len(alias['d'])} each)"),
                          f"Krizhevsky (layer-1 stride {data['strides']['d']}) {alias['d'].mean():.3f}, ZF (stride "
                          f"{data['strides']['e']}) {alias['e'].mean():.3f}"))
    else:
        parts.append(not_run(names[2], criteria[keys[2]], "visualize.fig6_layer2_maps"))
    return claim_row(2, parts)


# ---------------------------------------------------------------------------------------------- claims 3-5


def claim3(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """ZF's validation top-1 error below Krizhevsky's (Table 2's single convnets), over seeds."""
    k, z = _row_arch(inputs, "table2", T2_KRIZHEVSKY), _row_arch(inputs, "table2", T2_ZF)
    names = {"k": "Krizhevsky", "z": "ZF"}
    spec = ("Krizhevsky minus ZF validation top-1 error (points)", criteria["imagenet_gain"], {"k": 1, "z": -1},
            {"k": k, "z": z}, lambda m, g: _fmt(m, names, g))
    return claim_row(3, _seed_parts(inputs, criteria, [spec], _val_error, "validation top-1 error"))


def claim4(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Removing layers 6,7 or 3,4 each raises the error; removing 3,4,6,7 raises it more than both together."""
    roles = {"k": _row_arch(inputs, "table3", T3_KRIZHEVSKY), "r67": _row_arch(inputs, "table3", T3_NO_67),
             "r34": _row_arch(inputs, "table3", T3_NO_34), "r3467": _row_arch(inputs, "table3", T3_NO_3467)}
    names = {"k": "Krizhevsky", "r67": "without 6,7", "r34": "without 3,4", "r3467": "without 3,4,6,7"}
    t = criteria["removal_cost"]
    fmt = lambda m, g: _fmt(m, names, g)  # noqa: E731
    specs = [
        ("removing layers 6,7: validation top-1 error increase (points)", t, {"r67": 1, "k": -1}, roles, fmt),
        ("removing layers 3,4: validation top-1 error increase (points)", t, {"r34": 1, "k": -1}, roles, fmt),
        ("removing layers 3,4,6,7: error increase beyond the sum of the two removals' (points)", t,
         {"r3467": 1, "r34": -1, "r67": -1, "k": 1}, roles, fmt),
    ]
    return claim_row(4, _seed_parts(inputs, criteria, specs, _val_error, "validation top-1 error"),
                     mechanism=_fit(inputs, roles, names, "k"))


def claim5(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Wider layers 3-5 lower the validation error; wider layers 6-7 widen the gap between validation and
    training error (overfitting)."""
    roles = {"z": _row_arch(inputs, "table3", T3_ZF), "conv": _row_arch(inputs, "table3", T3_CONV),
             "fc": _row_arch(inputs, "table3", T3_FC8192)}
    names = {"z": "ZF", "conv": "layers 3,4,5 wider", "fc": "layers 6,7 at 8192"}
    errors = _seed_parts(inputs, criteria, [
        ("ZF minus ZF with layers 3,4,5 at 512,1024,512 maps: validation top-1 error (points)",
         criteria["conv_gain"], {"z": 1, "conv": -1}, roles, lambda m, g: _fmt(m, names, g))],
        _val_error, "validation top-1 error")
    gaps = _seed_parts(inputs, criteria, [
        ("layers 6,7 at 8192 units minus ZF: validation minus training top-1 error (points)",
         criteria["overfit_gap"], {"fc": 1, "z": -1}, roles,
         lambda m, g: "validation minus training error (centre crop): " + ", ".join(
             f"{names[r]} {m[r]:.2f}" for r in ("z", "fc") if r in m))],
        _gap, "validation minus training top-1 error")
    return claim_row(5, errors + gaps, mechanism=_fit(inputs, roles, names, "fc"))


# ---------------------------------------------------------------------------------------------- claims 6-9


def _with_sample(data: Mapping) -> tuple[dict, str]:
    """The invariance data with its extra sample's images appended to the Fig 5 images (distances, p(true),
    norms), and how to name the images in the noise column."""
    import torch

    sample = data.get("sample")
    shown = len(data["norm"][next(iter(data["norm"]))])
    if not sample or len(sample["labels"]) == 0:
        return dict(data), f"the {shown} Fig 5 images"
    kinds = {kind: {**k, "distance": {layer: torch.cat([d, sample["kinds"][kind]["distance"][layer].to(d.dtype)])
                                      for layer, d in k["distance"].items()},
                    "p_true": torch.cat([k["p_true"], sample["kinds"][kind]["p_true"].to(k["p_true"].dtype)])}
             for kind, k in data["kinds"].items()}
    norm = {layer: torch.cat([n, sample["norm"][layer].to(n.dtype)]) for layer, n in data["norm"].items()}
    extra = len(sample["labels"])
    return {**data, "kinds": kinds, "norm": norm}, f"{shown + extra} images (the {shown} of Fig 5 and {extra} more)"


def claim6(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Layer 1 changes more than layer 7 at the smallest transformations; p(true) stays higher under translation
    and scale than under rotation (both bootstrapped over the Fig 5 images and the rule's extra sample)."""
    from zfrepro.analysis.invariance import magnitude

    names = ("layer-1 minus layer-7 feature change at the smallest step (distance / feature norm, mean over "
             "translation, scale, rotation)",
             "lower of mean p(true) under translation and under scale, minus under rotation")
    t1, t2 = criteria["feature_change_gap"], criteria["rotation_drop"]
    data = _load(inputs.get("invariance"))
    if data is None:
        return rule_not_run(6, [(names[0], t1, True), (names[1], t2, True)], "the invariance rule (Fig 5)")
    kinds = [k for k in ("translation", "scale", "rotation") if k in data["kinds"]]
    data, units = _with_sample(data)
    parts = []
    if {"conv1", "fc7"} <= set(data["layers"]) and kinds:
        changes: dict[str, list[np.ndarray]] = {"conv1": [], "fc7": []}  # per kind: [images] relative change
        for kind in kinds:
            k = data["kinds"][kind]
            mag = magnitude(kind, k["applied"].double())
            nonzero = mag > 1e-9
            if not nonzero.any():
                continue
            small = nonzero & (mag == mag[nonzero].min())
            for layer in changes:
                d = k["distance"][layer].double()[:, small].mean(dim=1)
                changes[layer].append((d / data["norm"][layer].double().clamp_min(1e-12)).numpy())
        if changes["conv1"]:
            c1, c7 = np.stack(changes["conv1"], 1), np.stack(changes["fc7"], 1)
            rel = (c1 - c7).mean(axis=1)
            parts.append(Part(names[0], t1, True,
                              boot_estimate(np.mean, [rel], criteria, units),
                              f"layer 1 {c1.mean():.3f}, layer 7 {c7.mean():.3f}"))
    if len(parts) == 0:
        parts.append(not_run(names[0], t1, "invariance.layers with conv1 and fc7, and a non-identity step"))
    if {"translation", "scale", "rotation"} <= set(kinds):
        p = np.stack([data["kinds"][k]["p_true"].double().mean(dim=1).numpy() for k in
                      ("translation", "scale", "rotation")], axis=1)  # [images, 3]

        def robust(x: np.ndarray) -> float:
            m = x.mean(axis=0)
            return float(min(m[0], m[1]) - m[2])

        parts.append(Part(names[1], t2, True, boot_estimate(robust, [p], criteria, units),
                          "mean p(true): translation {:.3f}, scale {:.3f}, rotation {:.3f}".format(*p.mean(axis=0))))
    else:
        parts.append(not_run(names[1], t2, "invariance.translations, scales and rotations"))
    return claim_row(6, parts)


def _per_image(values: list[float]) -> str:
    """Every image's value (up to 12), or the quartiles of more."""
    if len(values) <= 12:
        return "per image: " + ", ".join(f"{v:.2f}" for v in values)
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    return "over images: min {:.2f}, quartiles {:.2f} / {:.2f} / {:.2f}, max {:.2f}".format(*q)


def claim7(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Occlusion: p(true) falls sharply at a few occluder positions (median minus minimum over positions), and
    the strongest layer-5 map's activity follows p(true) over positions (correlation); over the Fig 7 images and
    the rule's extra sample."""
    names = ("p(true) drop where the occluder hurts most: median minus minimum over occluder positions",
             "correlation over occluder positions of the strongest layer-5 map's total activation with p(true)")
    t1, t2 = criteria["occlusion_drop"], criteria["map_correlation"]
    data = _load(inputs.get("occlusion"))
    if data is None:
        return rule_not_run(7, [(names[0], t1, True), (names[1], t2, True)], "the occlusion rule (Fig 7)")
    drops, corrs, never, unsure = [], [], [], []
    shown = len(data["rows"])
    for r in [*data["rows"], *data.get("sample", [])]:  # the figure's images, then the rule's extra ones
        p, m = r["p_true"].flatten().double().numpy(), r["map_total"].flatten().double().numpy()
        drops.append(float(np.median(p) - p.min()))
        never.append(bool(p.min() > 0.5))  # no occluder position hides the class
        unsure.append(bool(np.median(p) < 0.5))  # little to drop: unsure of the class with most of it in view
        corrs.append(float(np.corrcoef(p, m)[0, 1]) if p.std() > 0 and m.std() > 0 else 0.0)
    drops_a, corrs_a = np.array(drops), np.array(corrs)
    units = (f"the {shown} Fig 7 images" if len(drops) == shown
             else f"{len(drops)} images (the {shown} of Fig 7 and {len(drops) - shown} more)")
    parts = [Part(names[0], t1, True, boot_estimate(np.mean, [drops_a], criteria, units),
                  _per_image(drops))]
    if data["layer"] == "conv5":
        parts.append(Part(names[1], t2, True, boot_estimate(np.mean, [corrs_a], criteria, units),
                          _per_image(corrs)))
    else:
        parts.append(not_run(names[1], t2, f"occlusion.layer: conv5 (it is {data['layer']})"))
    rest = [d for d, a, b in zip(drops, never, unsure, strict=True) if not (a or b)]
    mechanism = (f"of the {len(drops)} images, {sum(never)} keep p(true) above 0.5 at every position of the "
                 f"{data['size']}-px square ({data['size'] ** 2 / data['crop'] ** 2:.0%} of the {data['crop']}-px "
                 f"crop): no position hides the class; {sum(unsure)} have p(true) below 0.5 at the median position: "
                 "little to drop" + (f"; the other {len(rest)} drop by {np.mean(rest):.2f} on average" if rest else ""))
    return claim_row(7, parts, mechanism=mechanism)


def claim8(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Layer-5 Delta of random regions minus that of the eyes and nose, paired by image pair, bootstrapped over
    the pairs."""
    name = "random minus eye/nose correspondence Delta at layer 5 (mean over image pairs)"
    t = criteria["correspondence_gap"]
    path = inputs.get("correspondence")
    if path is None:
        return claim_row(8, [not_run(name, t, "correspondence.parts_csv (Table 1 with real data)")])
    data = load_result(path)
    if "conv5" not in data["layers"]:
        return claim_row(8, [not_run(name, t, "correspondence.layers with conv5")])
    parts_delta = np.stack([data["pair_distances"]["conv5"][p].double().numpy() for p in data["parts"]])  # [P, pairs]
    random = data["random_pair_distances"]["conv5"].double().numpy().mean(axis=0)  # [pairs]
    diffs = random - parts_delta.mean(axis=0)
    context = ", ".join(f"{p} {v:.3f}" for p, v in zip(data["parts"], parts_delta.mean(axis=1), strict=True))
    return claim_row(8, [Part(name, t, True, boot_estimate(np.mean, [diffs], criteria,
                                                           f"the {len(diffs)} image pairs"),
                              f"Delta at layer 5: {context}, random {random.mean():.3f}")])


def claim9(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Layer 1's features are closer to their final form than the top conv layer's at the kept epochs (linear
    CKA with the final epoch), over the seeds of the Fig 4 network."""
    t = criteria["convergence_gap"]
    data = _load(inputs.get("convergence"))
    if data is None:
        return claim_row(9, [not_run("layer 1 minus top conv layer: CKA with the final epoch's features, mean over "
                                     "the kept epochs", t, "training.checkpoint_epochs before the last epoch")])
    layers = data["layers"]
    name = (f"{layers[0]} minus {layers[-1]}: CKA with the final epoch's features, mean over the kept epochs "
            f"({', '.join(map(str, data['epochs']))})")
    cka = data["cka"].double().numpy()  # [seeds, epochs, layers]
    per_seed = (cka[:, :, 0] - cka[:, :, -1]).mean(axis=1)
    value = float(per_seed.mean())
    if len(per_seed) >= 2:
        sd = float(per_seed.std(ddof=1))
        se = sd / math.sqrt(len(per_seed))
        low, high = t_interval(value, se, len(per_seed) - 1, criteria["confidence"])
        arch = data.get("arch", "the Fig 4 network")
        noise = (f"{criteria['confidence']:.0%} t-interval over {len(per_seed)} seeds of {arch} "
                 f"(seed-to-seed sd {sd:.3g})")
        estimate = Estimate(value, se, low, high, noise)
    else:
        estimate = Estimate(value, None, None, None, "one seed kept epoch checkpoints: no seed spread (train more "
                                                     "seeds of the Fig 4 network: `seeds` or tables.table2)")
    mean = cka.mean(axis=0)
    context = "; ".join(f"epoch {e}: " + ", ".join(f"{layer} {mean[i, j]:.2f}" for j, layer in enumerate(layers))
                        for i, e in enumerate(data["epochs"]))
    return claim_row(9, [Part(name, t, True, estimate, f"mean CKA with epoch {data['final_epoch']}: {context}")])


# ---------------------------------------------------------------------------------------------- claims 10, 11


def _scratch_scores(paths: Sequence[str]) -> dict[tuple[int, int], float]:
    """{(train_per_class, split): accuracy} of the from-scratch baselines."""
    out = {}
    for path in paths:
        s = load_json_result(path)
        out[(int(s["train_per_class"]), int(s["split"]))] = float(s["accuracy"])
    return out


def _pretrained(path: str) -> dict[tuple[int, int], float]:
    df = pd.read_csv(path)
    return {(int(r.train_per_class), int(r.split)): float(r.accuracy) for r in df.itertuples()}


def claim10(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Pretrained (frozen layers 1-7, new softmax) minus from scratch at every table size of each Caltech set,
    paired by split; and Caltech-256 pretrained at Fig 9's fewest images beats scratch at the most."""
    margin, few = criteria["transfer_margin"], criteria["few_images_gain"]
    transfer = inputs.get("transfer")
    if not transfer:
        return claim_row(10, [not_run("pretrained minus from-scratch accuracy (points), smallest over sizes", margin,
                                      "transfer.enabled: true"),
                              not_run("pretrained with the fewest images minus from scratch with the most", few,
                                      "transfer.enabled: true")])
    comparisons: dict[str, list[float]] = {}
    names: list[tuple[str, float, bool]] = []  # (name, threshold, is a margin at one size)
    contexts: dict[str, str] = {}
    for dataset, spec in transfer.items():
        pre, scratch = _pretrained(spec["pretrained"]), _scratch_scores(spec["scratch"])
        for n in spec["sizes"]:
            splits = sorted(s for (k, s) in scratch if k == n and (k, s) in pre)
            if not splits:
                continue
            name = f"{dataset} at {n} per class: pretrained minus from-scratch accuracy (points)"
            comparisons[name] = [pre[(n, s)] - scratch[(n, s)] for s in splits]
            contexts[name] = (f"pretrained {np.mean([pre[(n, s)] for s in splits]):.1f}%, from scratch "
                              f"{np.mean([scratch[(n, s)] for s in splits]):.1f}%")
            names.append((name, margin, True))
        if spec.get("fig9_sizes") and scratch:
            lo, hi = min(spec["fig9_sizes"]), max(k for k, _ in scratch)
            splits = sorted(s for (k, s) in scratch if k == hi and (lo, s) in pre)
            if splits:
                name = (f"{dataset}: pretrained at {lo} per class minus from scratch at {hi} per class "
                        "(accuracy points)")
                comparisons[name] = [pre[(lo, s)] - scratch[(hi, s)] for s in splits]
                contexts[name] = (f"pretrained at {lo}: {np.mean([pre[(lo, s)] for s in splits]):.1f}%, from "
                                  f"scratch at {hi}: {np.mean([scratch[(hi, s)] for s in splits]):.1f}%")
                names.append((name, few, False))
    estimates = paired_over_splits(comparisons, criteria["confidence"])
    parts = [Part(name, t, True, estimates[name], contexts[name]) for name, t, _ in names]
    if not parts:
        return claim_row(10, [not_run("pretrained minus from-scratch accuracy (points)", margin,
                                      "transfer.caltech101/caltech256.train_sizes")])
    margins = [i for i, (_, _, is_margin) in enumerate(names) if is_margin]
    headline = min(margins, key=lambda i: parts[i].estimate.value) if margins else 0  # the smallest margin
    return claim_row(10, parts, headline)


def _depth(layer: str) -> int:
    """The paper's layer number of conv1..conv5, fc6, fc7."""
    return int("".join(ch for ch in layer if ch.isdigit()))


def claim11(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Per Caltech set, Spearman's rank correlation between a layer's depth and its linear SVM's accuracy
    (Table 7), per split, with the split-to-split noise."""
    from scipy.stats import spearmanr

    t = criteria["depth_correlation"]
    table7 = inputs.get("table7")
    if not table7:
        return claim_row(11, [not_run("rank correlation of SVM accuracy with layer depth", t,
                                      "transfer.enabled: true")])
    comparisons, contexts, shallow = {}, {}, []
    for dataset, spec in table7.items():
        layers = sorted(spec["svm"], key=_depth)
        name = f"{dataset}: rank correlation of linear SVM accuracy with layer depth ({len(layers)} layers)"
        if len(layers) < 3:
            contexts[name] = None
            continue
        acc = {layer: {int(r.split): float(r.accuracy) for r in pd.read_csv(spec["svm"][layer]).itertuples()
                       if int(r.train_per_class) == int(spec["size"])} for layer in layers}
        splits = sorted(set.intersection(*(set(a) for a in acc.values())))
        rhos = []
        for s in splits:
            rho = spearmanr([_depth(layer) for layer in layers], [acc[layer][s] for layer in layers]).statistic
            rhos.append(0.0 if not np.isfinite(rho) else float(rho))
        comparisons[name] = rhos
        means = {layer: np.mean([acc[layer][s] for s in splits]) for layer in layers}
        best = max(means, key=means.get)
        contexts[name] = ("mean accuracy " + ", ".join(f"{layer} {means[layer]:.1f}%" for layer in layers)
                          + f"; best {best}")
        if best != layers[-1]:  # what a failure here comes down to: how much the first layer already separates
            first, last = layers[0], layers[-1]
            shallow.append(f"{dataset}: {first} features alone reach {means[first]:.1f}%, the best layer ({best}) "
                           f"{means[best]:.1f}%, {last} {means[last]:.1f}%" + (
                               f": {first} already separates these classes as well as {last}"
                               if means[first] >= means[last] else ""))
    estimates = paired_over_splits({k: v for k, v in comparisons.items() if v}, criteria["confidence"])
    parts = [Part(name, t, True, estimates[name], contexts[name]) if name in estimates
             else not_run(name, t, "transfer.table7_layers with 3 or more layers") for name in contexts]
    return claim_row(11, parts, mechanism="; ".join(shallow))


CLAIM_FUNCTIONS = (claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8, claim9, claim10, claim11)


def scorecard(inputs: Mapping, criteria: Mapping) -> pd.DataFrame:
    """Every claim's row (COLUMNS), in the paper's order."""
    criteria = {**CRITERIA, **criteria, "bootstrap": {**CRITERIA["bootstrap"], **criteria.get("bootstrap", {})}}
    return pd.DataFrame([f(inputs, criteria) for f in CLAIM_FUNCTIONS], columns=COLUMNS)


def scorecard_markdown(df: pd.DataFrame, criteria: Mapping) -> str:
    """The scorecard for people: one summary table, then each claim's criterion, noise, parts and cause."""
    confidence = criteria.get("confidence", CRITERIA["confidence"])

    def interval(row: pd.Series) -> str:
        return f"[{row['low']:.4g}, {row['high']:.4g}]" if row["low"] != "" else "-"

    summary = pd.DataFrame({
        "claim": df["claim"], "verdict": df["verdict"], "quantity": df["quantity"],
        "value": [v if isinstance(v, str) else f"{v:.4g}" for v in df["value"]],
        f"{confidence:.0%} interval": [interval(r) for _, r in df.iterrows()], "threshold": df["threshold"],
    })
    counts = df["verdict"].value_counts()
    lines = ["# The paper's claims on this run", "",
             "; ".join(f"{v}: {int(counts.get(v, 0))}" for v in VERDICTS) + ".", "",
             summary.to_markdown(index=False), ""]
    for _, r in df.iterrows():
        lines += [f"## Claim {r['claim']}: {r['verdict']}", "", f"*{r['statement']}*", "",
                  f"- criterion: {r['criterion']}", f"- noise: {r['noise'] or '-'}",
                  *(f"- {part}" for part in r["details"].split(" | ")),
                  *([f"- cause: {r['cause']}"] if r["cause"] else []), ""]
    lines.append(
        "Verdicts: holds when the interval lies beyond the threshold on the claimed side, does not hold when it "
        "lies on the other side, inconclusive when it contains the threshold (within the noise) or there is no "
        "noise estimate, not run when the results it needs were not made (the config key that makes them is "
        "named). A claim with several parts holds when every part holds. Thresholds and the interval level are "
        "the config's `claims` section; the method is in src/zfrepro/report/claims.py.")
    return "\n".join(lines) + "\n"



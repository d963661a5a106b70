"""The paper's eleven claims tested on a run's results: the scorecard `results/tables/claims.csv` (and `.md`).

One function per claim (`claim1` ... `claim11`) reads the result files the workflow already wrote (metrics,
analysis .pt files, transfer CSVs) and measures the claim in one or more parts. Each part is a number with
an interval and a threshold declared in the config (`claims`) before the run, and a verdict:

  holds          the interval lies entirely on the claimed side of the threshold
  does not hold  it lies entirely on the other side
  inconclusive   it contains the threshold (the difference is within the noise), though the run could have
                 detected a paper-sized effect, or the paper gives no number to compare with
  untestable at this scale
                 it contains the threshold, and the run could not have told: there is no noise estimate (one seed,
                 one split), or the paper's own effect (its value's distance from the threshold) is below the
                 run's minimum detectable effect; the row says how many seeds, splits or images it would need
  not run        the results it needs were not made (the row names the config key that makes them), or the
                 configuration cannot make them (published weights have no training to measure)

The minimum detectable effect (column mde) is the smallest true distance from the threshold that the interval
excludes with 80% power: (q_{(1 + confidence) / 2} + q_{0.8}) * se, with q Student's t quantiles at the
interval's degrees of freedom (seeds, splits) or the standard normal's (bootstrap, se = the bootstrap sd). As se
shrinks with 1 / sqrt(n), a paper-sized effect d needs about n * (mde / d)^2 units (column needs; with the
normal quantiles' mde, as the larger run's interval has many degrees of freedom). The paper's
values are zfrepro.report.scorecard.effects (from its tables; claims from figures alone have none).

A claim holds when every part holds, does not hold when some part does not, is "not run" when no part ran, is
inconclusive when some part is, untestable when every part that does not hold is untestable, and inconclusive
otherwise (a part not run keeps a claim from holding). Intervals, at `claims.confidence`:

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

from collections.abc import Mapping

import pandas as pd

from zfrepro.report.scorecard.filters import claim1, claim2
from zfrepro.report.scorecard.imagenet import claim3, claim4, claim5
from zfrepro.report.scorecard.rows import COLUMNS, CRITERIA, with_defaults
from zfrepro.report.scorecard.statistics import VERDICTS
from zfrepro.report.scorecard.transfer import claim10, claim11
from zfrepro.report.scorecard.visualization import claim6, claim7, claim8, claim9

CLAIM_FUNCTIONS = (claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8, claim9, claim10, claim11)


def scorecard(inputs: Mapping, criteria: Mapping) -> pd.DataFrame:
    """Every claim's row (COLUMNS), in the paper's order."""
    criteria = with_defaults(criteria)
    return pd.DataFrame([f(inputs, criteria) for f in CLAIM_FUNCTIONS], columns=COLUMNS)


def scorecard_markdown(df: pd.DataFrame, criteria: Mapping) -> str:
    """The scorecard for people: one summary table, then each claim's criterion, noise, parts and cause."""
    confidence = criteria.get("confidence", CRITERIA["confidence"])

    def interval(row: pd.Series) -> str:
        return f"[{row['low']:.4g}, {row['high']:.4g}]" if row["low"] != "" else "-"

    def number(v: object) -> str:
        return v if isinstance(v, str) else f"{v:.4g}"

    summary = pd.DataFrame({
        "claim": df["claim"], "verdict": df["verdict"], "quantity": df["quantity"],
        "value": [number(v) for v in df["value"]],
        f"{confidence:.0%} interval": [interval(r) for _, r in df.iterrows()], "threshold": df["threshold"],
        "detectable (80% power)": [number(v) or "-" for v in df["mde"]],
        "paper": [number(v) or "-" for v in df["paper_value"]],
    })
    counts = df["verdict"].value_counts()
    lines = ["# The paper's claims on this run", "",
             "; ".join(f"{v}: {int(counts.get(v, 0))}" for v in VERDICTS) + ".", "",
             summary.to_markdown(index=False), ""]
    for _, r in df.iterrows():
        lines += [f"## Claim {r['claim']}: {r['verdict']}", "", f"*{r['statement']}*", "",
                  f"- criterion: {r['criterion']}", f"- noise: {r['noise'] or '-'}",
                  f"- paper: {number(r['paper_value'])} ({r['paper_source']})" if r["paper_value"] != ""
                  else f"- paper: {r['paper_source']}",
                  *([f"- needs: {r['needs']}"] if r["needs"] else []),
                  *(f"- {part}" for part in r["details"].split(" | ")),
                  *([f"- cause: {r['cause']}"] if r["cause"] else []), ""]
    lines.append(
        "Verdicts: holds when the interval lies beyond the threshold on the claimed side, does not hold when it "
        "lies on the other side, inconclusive when it contains the threshold (within the noise) though a "
        "paper-sized effect would have shown (or the paper gives no number), untestable at this scale when the run "
        "could not have told (no noise estimate, or the paper's effect below the smallest difference it detects at "
        "80% power: `detectable`; `needs` says how many seeds, splits or images would), not run when the results "
        "it needs were not made (the config key that makes them is named) or this configuration cannot make them. "
        "A claim with several parts holds when every part holds. Thresholds and the interval level are the "
        "config's `claims` section; the method is in src/zfrepro/report/claims.py and docs/scorecard.md.")
    return "\n".join(lines) + "\n"

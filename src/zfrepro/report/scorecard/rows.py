"""A claim's parts and its scorecard row; the `claims` config section's defaults."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zfrepro.report.paper import CLAIMS
from zfrepro.report.scorecard.effects import NO_NUMBER
from zfrepro.report.scorecard.statistics import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    POWER,
    UNTESTABLE,
    Estimate,
    combine,
    detectable,
    verdict,
)

COLUMNS = ["claim", "statement", "quantity", "criterion", "threshold", "value", "se", "low", "high", "mde",
           "paper_value", "paper_source", "noise", "verdict", "needs", "cause", "details"]


# The config's `claims` section (workflow/schemas/config.schema.yaml holds the same defaults).
CRITERIA = {
    "confidence": 0.95, "bootstrap": {"resamples": 2000, "seed": 0},
    "dominance_ratio": 2.0, "mid_band_gain": 0.0, "dead_filter_gain": 0.0, "aliasing_gain": 0.0,
    "imagenet_gain": 0.0, "removal_cost": 0.0, "conv_gain": 0.0, "overfit_gap": 0.0,
    "feature_change_gap": 0.0, "rotation_drop": 0.0, "occlusion_drop": 0.5, "map_correlation": 0.0,
    "correspondence_gap": 0.0, "convergence_gap": 0.0, "transfer_margin": 20.0, "few_images_gain": 0.0,
    "depth_correlation": 0.5,
}


def with_defaults(criteria: Mapping) -> dict:
    """The config's `claims` section completed by CRITERIA (the bootstrap settings key by key)."""
    return {**CRITERIA, **criteria, "bootstrap": {**CRITERIA["bootstrap"], **criteria.get("bootstrap", {})}}


@dataclass
class Part:
    """One measured part of a claim: `name` > threshold (or < with above=False) at the interval's level."""

    name: str
    threshold: float
    above: bool = True
    estimate: Estimate | None = None
    context: str = ""  # the measured numbers behind it, quoted in the cause
    enable: str = ""  # what makes it run, when it did not
    paper: tuple[float, str] | None = None  # the paper's value of the quantity and its source (scorecard.effects)

    @property
    def effect(self) -> float | None:
        """The paper's value's distance from the threshold on the claimed side (negative: the wrong side)."""
        if self.paper is None:
            return None
        return self.paper[0] - self.threshold if self.above else self.threshold - self.paper[0]

    @property
    def untestable(self) -> bool:
        """Whether the run cannot tell this part: no noise estimate, or a paper-sized effect below its minimum
        detectable effect."""
        e = self.estimate
        return e is not None and (e.low is None or (e.mde is not None and self.effect is not None
                                                    and self.effect < e.mde))

    @property
    def verdict(self) -> str:
        if self.estimate is None:
            return NOT_RUN
        v = verdict(self.estimate.low, self.estimate.high, self.threshold, self.above)
        return UNTESTABLE if v == INCONCLUSIVE and self.untestable else v

    def needs(self) -> str:
        """What a run would need to detect a paper-sized effect at the power POWER: n scaled by (mde / effect)^2
        (the standard error shrinks as 1 / sqrt(n)), with the normal quantiles' mde (a larger run's t-interval
        has more degrees of freedom: scaling the small run's t quantiles would overstate it many times at 1 or 2
        df); empty unless the part is untestable."""
        e = self.estimate
        if self.verdict != UNTESTABLE:
            return ""
        whole = abs(e.n - round(e.n)) < 1e-6
        has = f"{round(e.n)}" if whole else f"the equivalent of {e.n:.3g} with equal seeds"
        if e.low is None:
            return f"at least 2 {e.unit or 'units'} to measure the noise (it has {has})"
        if self.effect <= 0:
            return (f"no number of {e.unit}: the paper's own value {self.paper[0]:.4g} is not beyond the threshold "
                    f"{self.threshold:g}")
        mde = detectable(e.se, e.confidence) if e.confidence is not None else e.mde
        need = max(2, math.ceil(e.n * (mde / self.effect) ** 2))
        return (f"about {need} {e.unit} (it has {has}) to detect the paper's {self.effect:.4g} at {POWER:.0%} "
                "power")

    @property
    def criterion(self) -> str:
        return f"{self.name} {'>' if self.above else '<'} {self.threshold:g}"

    def describe(self) -> str:
        if self.estimate is None:
            return f"{self.name}: not run ({self.enable})"
        e = self.estimate
        interval = f" [{e.low:.4g}, {e.high:.4g}]" if e.low is not None else " (no interval)"
        context = f" ({self.context})" if self.context else ""
        mde = f"detectable {e.mde:.3g}" if e.mde is not None else "no detectable effect without noise estimate"
        paper = f"paper {self.paper[0]:.4g} ({self.paper[1]})" if self.paper else "no paper number"
        return (f"{self.name}: {e.value:.4g}{interval} vs {self.threshold:g}, {mde}, {paper}: {self.verdict}"
                f"{context}")

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
        if v == UNTESTABLE and e.mde is not None:
            return (f"{self.name} is {e.value:.4g} [{e.low:.4g}, {e.high:.4g}]: the paper's effect, "
                    f"{self.effect:.4g} from the threshold, is below the smallest this run detects "
                    f"({e.mde:.3g} at {POWER:.0%} power); needs {self.needs()}{context}")
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

    paper_value, paper_source = (num(head.paper[0]), head.paper[1]) if head.paper else (
        "", NO_NUMBER.get(number, "no number: the paper does not report this quantity at this run's sizes or layers"))
    needs = [(p.name, p.needs()) for p in parts if p.needs()]

    return {
        "claim": number, "statement": CLAIMS[number - 1], "quantity": head.name,
        "criterion": "; ".join(p.criterion for p in parts) + (" (every part)" if len(parts) > 1 else ""),
        "threshold": head.threshold, "value": num(e.value) if e else NOT_RUN, "se": num(e.se) if e else "",
        "low": num(e.low) if e else "", "high": num(e.high) if e else "", "mde": num(e.mde) if e else "",
        "paper_value": paper_value, "paper_source": paper_source, "noise": e.noise if e else "",
        "verdict": v,
        "needs": " | ".join(text if len(parts) == 1 else f"{name}: {text}" for name, text in needs),
        "cause": "" if v == HOLDS else " | ".join(
            [p.cause() for p in parts if p.verdict != HOLDS] + ([f"why: {mechanism}"] if mechanism else [])),
        "details": " | ".join(p.describe() + (f"; noise: {p.estimate.noise}" if p.estimate and e and
                                              p.estimate.noise != e.noise else "") for p in parts),
    }

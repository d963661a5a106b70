"""Claims 3-5 (Section 5.1, Tables 2 and 3): our architecture beats Krizhevsky's; removing layers costs
accuracy; wider convolutional layers help."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zfrepro.report.scorecard import effects
from zfrepro.report.scorecard.inputs import (
    T2_KRIZHEVSKY,
    T2_ZF,
    T3_CONV,
    T3_FC8192,
    T3_KRIZHEVSKY,
    T3_NO_34,
    T3_NO_67,
    T3_NO_3467,
    T3_ZF,
    fit_gap,
    fit_summary,
    format_means,
    published,
    row_arch,
    seed_parts,
    val_error,
)
from zfrepro.report.scorecard.rows import claim_row, not_run

TRAINED_VARIANTS = "networks trained here with and without the change (Table 3), over seeds"


def claim3(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """ZF's validation top-1 error below Krizhevsky's (Table 2's single convnets), over seeds."""
    k, z = row_arch(inputs, "table2", T2_KRIZHEVSKY), row_arch(inputs, "table2", T2_ZF)
    names = {"k": "Krizhevsky", "z": "ZF"}
    spec = ("Krizhevsky minus ZF validation top-1 error (points)", criteria["imagenet_gain"], {"k": 1, "z": -1},
            {"k": k, "z": z}, lambda m, g: format_means(m, names, g), effects.imagenet_gain())
    return claim_row(3, seed_parts(inputs, criteria, [spec], val_error, "validation top-1 error"))


def claim4(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Removing layers 6,7 or 3,4 each raises the error; removing 3,4,6,7 raises it more than both together."""
    roles = {"k": row_arch(inputs, "table3", T3_KRIZHEVSKY), "r67": row_arch(inputs, "table3", T3_NO_67),
             "r34": row_arch(inputs, "table3", T3_NO_34), "r3467": row_arch(inputs, "table3", T3_NO_3467)}
    names = {"k": "Krizhevsky", "r67": "without 6,7", "r34": "without 3,4", "r3467": "without 3,4,6,7"}
    t = criteria["removal_cost"]
    fmt = lambda m, g: format_means(m, names, g)  # noqa: E731
    p67, p34, p3467 = effects.removal_costs()
    specs = [
        ("removing layers 6,7: validation top-1 error increase (points)", t, {"r67": 1, "k": -1}, roles, fmt, p67),
        ("removing layers 3,4: validation top-1 error increase (points)", t, {"r34": 1, "k": -1}, roles, fmt, p34),
        ("removing layers 3,4,6,7: error increase beyond the sum of the two removals' (points)", t,
         {"r3467": 1, "r34": -1, "r67": -1, "k": 1}, roles, fmt, p3467),
    ]
    if why := published(inputs, TRAINED_VARIANTS):
        return claim_row(4, [not_run(spec[0], t, why) for spec in specs])
    return claim_row(4, seed_parts(inputs, criteria, specs, val_error, "validation top-1 error"),
                     mechanism=fit_summary(inputs, roles, names, "k"))


def claim5(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Wider layers 3-5 lower the validation error; wider layers 6-7 widen the gap between validation and
    training error (overfitting)."""
    roles = {"z": row_arch(inputs, "table3", T3_ZF), "conv": row_arch(inputs, "table3", T3_CONV),
             "fc": row_arch(inputs, "table3", T3_FC8192)}
    names = {"z": "ZF", "conv": "layers 3,4,5 wider", "fc": "layers 6,7 at 8192"}
    paper_conv, paper_gap = effects.widening()
    if why := published(inputs, TRAINED_VARIANTS):
        return claim_row(5, [not_run("ZF minus ZF with layers 3,4,5 at 512,1024,512 maps: validation top-1 error "
                                     "(points)", criteria["conv_gain"], why),
                             not_run("layers 6,7 at 8192 units minus ZF: validation minus training top-1 error "
                                     "(points)", criteria["overfit_gap"], why)])
    errors = seed_parts(inputs, criteria, [
        ("ZF minus ZF with layers 3,4,5 at 512,1024,512 maps: validation top-1 error (points)",
         criteria["conv_gain"], {"z": 1, "conv": -1}, roles, lambda m, g: format_means(m, names, g), paper_conv)],
        val_error, "validation top-1 error")
    gaps = seed_parts(inputs, criteria, [
        ("layers 6,7 at 8192 units minus ZF: validation minus training top-1 error (points)",
         criteria["overfit_gap"], {"fc": 1, "z": -1}, roles,
         lambda m, g: "validation minus training error (centre crop): " + ", ".join(
             f"{names[r]} {m[r]:.2f}" for r in ("z", "fc") if r in m), paper_gap)],
        fit_gap, "validation minus training top-1 error")
    return claim_row(5, errors + gaps, mechanism=fit_summary(inputs, roles, names, "fc"))

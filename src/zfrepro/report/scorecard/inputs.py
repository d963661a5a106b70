"""Reading a run's results for the claims: metrics per seed, the networks the paper's rows name, how far
training got."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zfrepro.io import load_json_result, load_result
from zfrepro.report.scorecard.rows import Part, not_run
from zfrepro.report.scorecard.statistics import contrast, pooled_sd

# Paper row names (tables.table2 / tables.table3 map them to architectures) of the networks claims 3-5 compare.
T2_KRIZHEVSKY, T2_ZF = "our replication of Krizhevsky, 1 convnet", "1 convnet as per Fig 3"


T3_KRIZHEVSKY = "our replication of Krizhevsky"


T3_NO_34, T3_NO_67 = "Krizhevsky: removed layers 3,4", "Krizhevsky: removed layers 6,7"


T3_NO_3467 = "Krizhevsky: removed layers 3,4,6,7"


T3_ZF, T3_CONV = "our model (Fig 3)", "Fig 3: adjust layers 3,4,5: 512,1024,512 maps"


T3_FC8192 = "Fig 3: adjust layers 6,7: 8192 units"


def published(inputs: Mapping, needs: str) -> str:
    """Why a claim about training cannot run when the networks are imported from published weights (the inputs'
    "published": {arch: weights name}), naming what it needs; empty when none is."""
    networks = inputs.get("published") or {}
    if not networks:
        return ""
    names = ", ".join(f"{arch}: {name}" for arch, name in networks.items())
    return f"the networks are published weights ({names}), not trained here: the claim needs {needs}"


def load_optional(path: str | None) -> Any:
    return None if path is None else load_result(path)


def seed_metrics(inputs: Mapping, arch: str) -> list[dict]:
    """The metrics JSON of every trained seed of `arch` (empty when not trained)."""
    return [load_json_result(path) for _, path in sorted(inputs.get("metrics", {}).get(arch, {}).items())]


def val_error(m: dict, crops: str) -> float:
    return float(m["val"][crops]["top1_error"])


def fit_gap(m: dict, crops: str = "") -> float:
    """Validation minus training top-1 error, both on the centre crop as the training error is measured (`crops`,
    the tables' crops, does not apply)."""
    return float(m["val"]["center"]["top1_error"]) - float(m["train"]["top1_error"])


def seed_reference(inputs: Mapping, quantity: Callable[[dict, str], float], what: str) -> tuple[float, int, str] | None:
    """The pooled seed sd of `quantity` over every architecture trained with several seeds (the noise borrowed
    for networks with one seed), and which networks it comes from."""
    crops = inputs.get("crops", "ten")
    groups = {arch: [quantity(m, crops) for m in seed_metrics(inputs, arch)] for arch in inputs.get("metrics", {})}
    several = {a: g for a, g in groups.items() if len(g) >= 2}
    pooled = pooled_sd(several)
    if pooled is None:
        return None
    names = ", ".join(f"{a} ({len(g)} seeds)" for a, g in several.items())
    return pooled[0], pooled[1], f"{what} of {names}"


def seed_parts(inputs: Mapping, criteria: Mapping, specs: Sequence[tuple], quantity: Callable[[dict, str], float],
                what: str) -> list[Part]:
    """Parts that are contrasts of per-network means over seeds. specs: (name, threshold, {role: coef},
    {role: (arch or None, config key)}, context(means) -> str, the paper's value (scorecard.effects) or None)."""
    crops = inputs.get("crops", "ten")
    reference = seed_reference(inputs, quantity, what)
    parts = []
    for name, threshold, coefs, roles, context, paper in specs:
        missing = [key for role, (arch, key) in roles.items() if role in coefs and (arch is None or
                                                                                    not seed_metrics(inputs, arch))]
        if missing:
            parts.append(not_run(name, threshold, f"needs {'; '.join(missing)}"))
            continue
        groups = {role: [quantity(m, crops) for m in seed_metrics(inputs, roles[role][0])] for role in coefs}
        estimate = contrast(groups, coefs, criteria["confidence"], reference,
                            labels={role: roles[role][0] for role in coefs})
        means = {role: float(np.mean(v)) for role, v in groups.items()}
        parts.append(Part(name, threshold, True, estimate, context(means, groups), paper=paper))
    return parts


def row_arch(inputs: Mapping, table: str, label: str) -> tuple[str | None, str]:
    """(architecture of a paper row in tables.<table>, the config key that would add it)."""
    arch = inputs.get(table, {}).get(label)
    return arch, f"tables.{table} row {label!r} (and its architecture)"


def fit_summary(inputs: Mapping, roles: Mapping[str, tuple[str | None, str]], names: Mapping[str, str],
         largest: str) -> str:
    """How far training got, for a claim about capacity: each compared network's training and validation top-1
    error (centre crop, mean over seeds). When the network with the most layers or units (`largest`) fits its
    own training set worse than a smaller one, it is behind in training (underfitting), where what its extra
    capacity can learn cannot show; when it fits best, whether its validation error follows is its gap against
    the others'."""
    errors = {}  # role -> (training, validation) error
    for role, (arch, _) in roles.items():
        ms = seed_metrics(inputs, arch) if arch else []
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


def format_means(means: Mapping[str, float], names: Mapping[str, str], groups: Mapping[str, Sequence]) -> str:
    return ", ".join(f"{names[r]} {means[r]:.2f}% ({len(groups[r])} seed{'s' * (len(groups[r]) != 1)})"
                     for r in names if r in means)

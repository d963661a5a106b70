"""Claims 1 and 2 (Section 4.1, Fig 6): renormalisation stops a few layer-1 filters dominating; the 7x7
stride-2 first layer has fewer dead filters, covers the middle frequencies and removes layer 2's aliasing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zfrepro.analysis.filters import FilterStudy
from zfrepro.report.scorecard.inputs import load_optional, published
from zfrepro.report.scorecard.rows import Part, claim_row, not_run, rule_not_run
from zfrepro.report.scorecard.statistics import boot_estimate


def _fig6(inputs: Mapping) -> FilterStudy | None:
    data = load_optional(inputs.get("fig6"))
    return None if data is None else FilterStudy.from_saved(data)


def claim1(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Without renormalisation a few layer-1 filters dominate, with it none: the largest over the median filter
    RMS, at its peak over the kept epochs and the final model, bootstrapped over the filters."""
    from zfrepro.analysis.filters import max_median, peak_dominance, rms_norms

    t = criteria["dominance_ratio"]
    names = ("largest / median layer-1 filter RMS without renormalisation (peak over epochs)",
             "largest / median layer-1 filter RMS with renormalisation (peak over epochs)")
    if why := published(inputs, "a network trained with and one without renormalisation"):
        return rule_not_run(1, [(names[0], t, True), (names[1], t, False)], why)
    data = _fig6(inputs)
    if data is None:
        return rule_not_run(1, [(names[0], t, True), (names[1], t, False)], "the filters rule (Fig 6)")
    if data.no_renorm is None:
        return rule_not_run(1, [(names[0], t, True), (names[1], t, False)],
                            "no network trained without renormalisation: visualize.no_renorm_arch is null")
    radius = data.zf.radius
    clipped = ""
    if radius:  # whether renormalisation acted at all: filters held at the radius at the end of training
        final = rms_norms(data.zf.filters)
        clipped = (f"; {data.zf.arch}: {int((final >= 0.99 * radius).sum())} of {len(final)} filters at the "
                   f"renormalisation radius {radius:g}")
    parts = []
    for name, network, above in ((names[0], data.no_renorm, True), (names[1], data.zf, False)):
        history = network.history
        peak, epoch = peak_dominance(history)
        norms = rms_norms(history[epoch])
        estimate = boot_estimate(max_median, [norms], criteria, f"the {len(norms)} layer-1 filters", "layer-1 filters")
        context = (f"{network.arch} at epoch {epoch} (of {', '.join(map(str, sorted(history)))}): largest "
                   f"RMS {norms.max():.3g}, median {np.median(norms):.3g}" + clipped)
        parts.append(Part(name, t, above, estimate, context))
    return claim_row(1, parts, mechanism=_growth(data.no_renorm.history, data.no_renorm.arch, radius))


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
    band = data.mid_band
    n_k, n_z = len(data.krizhevsky.filters), len(data.zf.filters)
    mid = {"b": band_shares(data.krizhevsky.filters, band), "c": band_shares(data.zf.filters, band)}
    near = {"b": near_dead_mask(data.krizhevsky.filters).astype(np.float64),
            "c": near_dead_mask(data.zf.filters).astype(np.float64)}
    diff = lambda a, b: float(np.mean(a) - np.mean(b))  # noqa: E731
    filters = f"the layer-1 filters of each network ({n_k} Krizhevsky, {n_z} ZF)"
    parts = [
        Part(names[0], criteria[keys[0]], True,
             boot_estimate(diff, [mid["c"][:, 1], mid["b"][:, 1]], criteria, filters, "layer-1 filters"),
             f"band {list(band)} cycles/pixel; low/mid/high shares: Krizhevsky "
             f"{'/'.join(f'{x:.2f}' for x in mid['b'].mean(0))}, ZF {'/'.join(f'{x:.2f}' for x in mid['c'].mean(0))}"),
        Part(names[1], criteria[keys[1]], True,
             boot_estimate(diff, [near["b"], near["c"]], criteria, filters, "layer-1 filters"),
             f"near-dead (RMS below 10% of the median, or flat colour): Krizhevsky {int(near['b'].sum())} of "
             f"{len(near['b'])}, ZF {int(near['c'].sum())} of {len(near['c'])}"),
    ]
    if data.krizhevsky_layer2 is not None and data.zf_layer2 is not None:
        k2, z2 = data.krizhevsky_layer2, data.zf_layer2
        alias = {"d": alias_share(k2.projections, k2.stride, remove_mean=True),
                 "e": alias_share(z2.projections, z2.stride, remove_mean=True)}
        parts.append(Part(names[2], criteria[keys[2]], True,
                          boot_estimate(diff, [alias["d"], alias["e"]], criteria,
                                        f"the layer-2 projections of each network ({len(alias['d'])} each)",
                                        "layer-2 projections"),
                          f"Krizhevsky (layer-1 stride {k2.stride}) {alias['d'].mean():.3f}, ZF (stride "
                          f"{z2.stride}) {alias['e'].mean():.3f}"))
    else:
        parts.append(not_run(names[2], criteria[keys[2]], "visualize.fig6_layer2_maps"))
    return claim_row(2, parts)

"""Claims 6-9 (Section 4, Figs 4, 5, 7, 8 and Table 1): invariance, occlusion sensitivity,
correspondence, and the lower layers converging first."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from zfrepro.analysis.parts_csv import PAPER_PARTS
from zfrepro.io import load_result
from zfrepro.report.scorecard import effects
from zfrepro.report.scorecard.inputs import load_optional, published
from zfrepro.report.scorecard.rows import Part, claim_row, not_run, rule_not_run
from zfrepro.report.scorecard.statistics import Estimate, boot_estimate, detectable, t_interval


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
    data = load_optional(inputs.get("invariance"))
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
                              boot_estimate(np.mean, [rel], criteria, units, "images"),
                              f"layer 1 {c1.mean():.3f}, layer 7 {c7.mean():.3f}"))
    if len(parts) == 0:
        parts.append(not_run(names[0], t1, "invariance.layers with conv1 and fc7, and a non-identity step"))
    if {"translation", "scale", "rotation"} <= set(kinds):
        p = np.stack([data["kinds"][k]["p_true"].double().mean(dim=1).numpy() for k in
                      ("translation", "scale", "rotation")], axis=1)  # [images, 3]

        def robust(x: np.ndarray) -> float:
            m = x.mean(axis=0)
            return float(min(m[0], m[1]) - m[2])

        parts.append(Part(names[1], t2, True, boot_estimate(robust, [p], criteria, units, "images"),
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
    data = load_optional(inputs.get("occlusion"))
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
    parts = [Part(names[0], t1, True, boot_estimate(np.mean, [drops_a], criteria, units, "images"),
                  _per_image(drops))]
    if data["layer"] == "conv5":
        parts.append(Part(names[1], t2, True, boot_estimate(np.mean, [corrs_a], criteria, units, "images"),
                          _per_image(corrs)))
    else:
        parts.append(not_run(names[1], t2, f"occlusion.layer: conv5 (it is {data['layer']})"))
    rest = [d for d, a, b in zip(drops, never, unsure, strict=True) if not (a or b)]
    mechanism = (f"of the {len(drops)} images, {sum(never)} keep p(true) above 0.5 at every position of the "
                 f"{data['size']}-px square ({data['size'] ** 2 / data['crop'] ** 2:.0%} of the {data['crop']}-px "
                 f"crop): no position hides the class; {sum(unsure)} have p(true) below 0.5 at the median position: "
                 "little to drop" + (f"; the other {len(rest)} drop by {np.mean(rest):.2f} on average" if rest else ""))
    return claim_row(7, parts, mechanism=mechanism)


CLAIM8_NAME = "random minus eye/nose correspondence Delta at layer 5 (mean over image pairs)"


def claim8_parts(data: Mapping) -> list[str]:
    """The parts claim 8 is about: the paper's (eyes and nose) when the analysis has them, else every part."""
    return [p for p in data["parts"] if p in PAPER_PARTS] or list(data["parts"])


def correspondence_gap(data: Mapping, criteria: Mapping) -> Part:
    """Claim 8's rule, the one the scorecard and Table 1's footnote both state: layer-5 Delta of random regions
    minus the mean Delta of the eyes and nose, paired by image pair, bootstrapped over the pairs, against the
    `claims.correspondence_gap` threshold. `data`: a correspondence analysis with conv5."""
    parts = claim8_parts(data)
    parts_delta = np.stack([data["pair_distances"]["conv5"][p].double().numpy() for p in parts])  # [P, pairs]
    random = data["random_pair_distances"]["conv5"].double().numpy().mean(axis=0)  # [pairs]
    diffs = random - parts_delta.mean(axis=0)
    context = ", ".join(f"{p} {v:.3f}" for p, v in zip(parts, parts_delta.mean(axis=1), strict=True))
    return Part(CLAIM8_NAME, criteria["correspondence_gap"], True,
                boot_estimate(np.mean, [diffs], criteria, f"the {len(diffs)} image pairs", "image pairs"),
                f"Delta at layer 5: {context}, random {random.mean():.3f}")


def claim8(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Eyes and nose correspond better than random regions at layer 5 (correspondence_gap)."""
    t = criteria["correspondence_gap"]
    path = inputs.get("correspondence")
    if path is None:
        return claim_row(8, [not_run(CLAIM8_NAME, t, "correspondence.parts_csv (Table 1 with real data)")])
    data = load_result(path)
    if "conv5" not in data["layers"]:
        return claim_row(8, [not_run(CLAIM8_NAME, t, "correspondence.layers with conv5")])
    part = correspondence_gap(data, criteria)
    part.paper = effects.correspondence_gap([p.replace("_", " ") for p in claim8_parts(data)])  # Table 1's names
    return claim_row(8, [part])


def claim9(inputs: Mapping, criteria: Mapping) -> dict[str, Any]:
    """Layer 1's features are closer to their final form than the top conv layer's at the kept epochs (linear
    CKA with the final epoch), over the seeds of the Fig 4 network."""
    from zfrepro.analysis.convergence import ConvergenceStudy  # torch and the data loaders: only when run

    t = criteria["convergence_gap"]
    saved = load_optional(inputs.get("convergence"))
    if saved is None:
        why = published(inputs, "the features of checkpoints kept during training") or \
            "training.checkpoint_epochs before the last epoch"
        return claim_row(9, [not_run("layer 1 minus top conv layer: CKA with the final epoch's features, mean over "
                                     "the kept epochs", t, why)])
    data = ConvergenceStudy.from_saved(saved)
    layers = data.layers
    name = (f"{layers[0]} minus {layers[-1]}: CKA with the final epoch's features, mean over the kept epochs "
            f"({', '.join(map(str, data.epochs))})")
    cka = data.cka.double().numpy()  # [seeds, epochs, layers]
    per_seed = (cka[:, :, 0] - cka[:, :, -1]).mean(axis=1)
    value = float(per_seed.mean())
    if len(per_seed) >= 2:
        sd = float(per_seed.std(ddof=1))
        se = sd / math.sqrt(len(per_seed))
        low, high = t_interval(value, se, len(per_seed) - 1, criteria["confidence"])
        arch = data.arch or "the Fig 4 network"
        noise = (f"{criteria['confidence']:.0%} t-interval over {len(per_seed)} seeds of {arch} "
                 f"(seed-to-seed sd {sd:.3g})")
        df = len(per_seed) - 1
        estimate = Estimate(value, se, low, high, noise, detectable(se, criteria["confidence"], df), len(per_seed),
                            "seeds", criteria["confidence"])
    else:
        estimate = Estimate(value, None, None, None, "one seed kept epoch checkpoints: no seed spread (train more "
                                                     "seeds of the Fig 4 network: `seeds` or tables.table2)",
                            None, 1, "seeds")
    mean = cka.mean(axis=0)
    context = "; ".join(f"epoch {e}: " + ", ".join(f"{layer} {mean[i, j]:.2f}" for j, layer in enumerate(layers))
                        for i, e in enumerate(data.epochs))
    return claim_row(9, [Part(name, t, True, estimate, f"mean CKA with epoch {data.final_epoch}: {context}")])

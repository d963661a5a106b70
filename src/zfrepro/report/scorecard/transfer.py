"""Claims 10 and 11 (Sections 5.2, 5.3, Tables 4-7): pretrained features beat training from scratch;
accuracy grows with the layer's depth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from zfrepro.io import load_json_result
from zfrepro.report.scorecard import effects
from zfrepro.report.scorecard.inputs import published
from zfrepro.report.scorecard.rows import Part, claim_row, not_run
from zfrepro.report.scorecard.statistics import paired_over_splits


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
        why = published(inputs, "transfer.enabled: true with the Caltech roots (it also trains the from-scratch "
                                "networks it compares with)") or "transfer.enabled: true"
        return claim_row(10, [not_run("pretrained minus from-scratch accuracy (points), smallest over sizes", margin,
                                      why),
                              not_run("pretrained with the fewest images minus from scratch with the most", few,
                                      why)])
    comparisons: dict[str, list[float]] = {}
    names: list[tuple[str, float, bool]] = []  # (name, threshold, is a margin at one size)
    contexts: dict[str, str] = {}
    papers: dict[str, tuple[float, str] | None] = {}
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
            papers[name] = effects.transfer_margin(dataset, n)
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
                papers[name] = effects.few_images_gain(dataset, lo, hi)
    estimates = paired_over_splits(comparisons, criteria["confidence"])
    parts = [Part(name, t, True, estimates[name], contexts[name], paper=papers[name]) for name, t, _ in names]
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
    comparisons, contexts, papers, shallow = {}, {}, {}, []
    for dataset, spec in table7.items():
        layers = sorted(spec["svm"], key=_depth)
        name = f"{dataset}: rank correlation of linear SVM accuracy with layer depth ({len(layers)} layers)"
        papers[name] = effects.depth_correlation(dataset, [_depth(layer) for layer in layers])
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
    parts = [Part(name, t, True, estimates[name], contexts[name], paper=papers[name]) if name in estimates
             else not_run(name, t, "transfer.table7_layers with 3 or more layers") for name in contexts]
    return claim_row(11, parts, mechanism="; ".join(shallow))

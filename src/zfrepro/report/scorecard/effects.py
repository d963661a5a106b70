"""The paper's own value of each scorecard quantity, where its tables give one (zfrepro.report.paper): what a
paper-sized effect is, against which a run's minimum detectable effect tells whether it could show at all.

Each function returns (value, where it comes from) or None when the paper gives no number for it; NO_NUMBER
says, per claim, what the paper shows instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from zfrepro.report.paper import TABLE1, TABLE2, TABLE3, TABLE4, TABLE5, TABLE7

PaperValue = tuple[float, str]

# Claims the paper makes from figures, without a number (the scorecard's paper_source column says so).
NO_NUMBER = {
    1: "no number: Fig 6 (a) shows the filters without renormalisation",
    2: "no number: Fig 6 (b)-(e) show the filters and projections",
    6: "no number for these quantities: Fig 5 plots them",
    7: "no number: Fig 7 shows the maps",
    9: "no number: Fig 4 shows the features over training",
}


def _t2(model: str) -> float:
    return float(TABLE2.set_index("model").loc[model, "val_top1"])


def _t3(model: str, column: str = "val_top1") -> float:
    return float(TABLE3.set_index("model").loc[model, column])


def imagenet_gain() -> PaperValue:
    """Claim 3: Krizhevsky's minus ZF's validation top-1 error (Table 2, single convnets)."""
    k, z = _t2("our replication of Krizhevsky, 1 convnet"), _t2("1 convnet as per Fig 3")
    return k - z, f"Table 2: {k:g} - {z:g}"


def removal_costs() -> tuple[PaperValue, PaperValue, PaperValue]:
    """Claim 4's three parts from Table 3's validation top-1 errors: removing 6,7; removing 3,4; removing 3,4,6,7
    beyond the sum of the two."""
    k = _t3("our replication of Krizhevsky")
    r67, r34 = _t3("Krizhevsky: removed layers 6,7"), _t3("Krizhevsky: removed layers 3,4")
    r3467 = _t3("Krizhevsky: removed layers 3,4,6,7")
    return ((r67 - k, f"Table 3: {r67:g} - {k:g}"), (r34 - k, f"Table 3: {r34:g} - {k:g}"),
            (r3467 - r34 - r67 + k, f"Table 3: {r3467:g} - {r34:g} - {r67:g} + {k:g}"))


def widening() -> tuple[PaperValue, PaperValue]:
    """Claim 5's parts from Table 3: ZF minus ZF with layers 3-5 wider (validation top-1); layers 6,7 at 8192
    minus ZF in validation minus training top-1 error."""
    z, conv = _t3("our model (Fig 3)"), _t3("Fig 3: adjust layers 3,4,5: 512,1024,512 maps")
    fc_val, fc_train = _t3("Fig 3: adjust layers 6,7: 8192 units"), _t3("Fig 3: adjust layers 6,7: 8192 units",
                                                                         "train_top1")
    z_train = _t3("our model (Fig 3)", "train_top1")
    gap = (fc_val - fc_train) - (z - z_train)
    return ((z - conv, f"Table 3: {z:g} - {conv:g}"),
            (gap, f"Table 3: ({fc_val:g} - {fc_train:g}) - ({z:g} - {z_train:g})"))


def correspondence_gap(parts: Sequence[str]) -> PaperValue | None:
    """Claim 8: layer-5 Delta of random regions minus the mean of `parts` (Table 1), when the paper has them."""
    table = TABLE1.set_index("occlusion")
    if not parts or not all(p in table.index for p in parts):
        return None
    mean = float(table.loc[list(parts), "layer5_mean"].mean())
    random = float(table.loc["random", "layer5_mean"])
    return random - mean, f"Table 1: {random:g} - mean of {', '.join(parts)} ({mean:.4g})"


def _accuracy(dataset: str, n: int) -> tuple[float, float] | None:
    """(pretrained, from scratch) accuracy at n images per class (Tables 4, 5), when the paper has that size."""
    table, rows = ((TABLE4, ("ImageNet-pretrained convnet", "non-pretrained convnet")) if dataset == "caltech101"
                   else (TABLE5, ("ImageNet-pretrained", "non-pretrained")) if dataset == "caltech256" else (None, ()))
    column = f"acc{n}_mean"
    if table is None or column not in table.columns:
        return None
    values = table.set_index("method").loc[list(rows), column]
    return float(values.iloc[0]), float(values.iloc[1])


def transfer_margin(dataset: str, n: int) -> PaperValue | None:
    """Claim 10: pretrained minus from-scratch accuracy at n per class (Table 4 or 5)."""
    acc = _accuracy(dataset, n)
    if acc is None:
        return None
    table = "Table 4" if dataset == "caltech101" else "Table 5"
    return acc[0] - acc[1], f"{table} at {n} per class: {acc[0]:g} - {acc[1]:g}"


def few_images_gain(dataset: str, few: int, most: int) -> PaperValue | None:
    """Claim 10's second part: pretrained at `few` minus from scratch at `most` per class."""
    a, b = _accuracy(dataset, few), _accuracy(dataset, most)
    if a is None or b is None:
        return None
    return a[0] - b[1], f"Table 5: pretrained at {few} ({a[0]:g}) - from scratch at {most} ({b[1]:g})"


def depth_correlation(dataset: str, depths: Sequence[int]) -> PaperValue | None:
    """Claim 11: Spearman's rho of the paper's SVM accuracy (Table 7) with depth over the run's layers, when the
    paper has every one of them (it has layers 1-5 and 7)."""
    from scipy.stats import spearmanr

    column = {"caltech101": "cal101_mean", "caltech256": "cal256_mean"}.get(dataset)
    svm = TABLE7[TABLE7["classifier"] == "SVM"].set_index("layer")
    if column is None or len(depths) < 3 or not all(d in svm.index for d in depths):
        return None
    acc = [float(svm.loc[d, column]) for d in depths]
    rho = float(spearmanr(list(depths), acc).statistic)
    return rho, f"Table 7 (SVM, layers {', '.join(map(str, depths))}): " + ", ".join(f"{a:g}" for a in acc)

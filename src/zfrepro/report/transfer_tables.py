"""Tables 4-7 of the paper (transfer to Caltech-101, Caltech-256 and PASCAL VOC 2012; accuracy per layer),
our numbers beside the published ones, built from the classifier result files (nothing is recomputed here).

Caltech cells read "mean ± sd" over the random train/test splits (sample sd, n - 1), as the paper prints them;
a cell with one split shows the mean alone, and "-" marks a cell with no number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zfrepro.data.datasets import CALTECH101_BACKGROUND, CALTECH256_CLUTTER_SUFFIX
from zfrepro.data.registry import CALTECH, DATASETS
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import load_json_result
from zfrepro.report import paper
from zfrepro.transfer.classifiers import FROZEN_COLUMNS

PM = "\u00b1"
LAYER_NUMBERS = {"conv1": 1, "conv2": 2, "conv3": 3, "conv4": 4, "conv5": 5, "fc6": 6, "fc7": 7}
CLASSIFIER_NAMES = {"svm": "SVM", "softmax": "softmax"}  # ours -> the paper's row labels
DATASET_NAMES = {name: DATASETS[name].title for name in CALTECH}
TABLE7_COLUMNS = {"caltech101": "cal101", "caltech256": "cal256"}
SCRATCH_KEYS = ("dataset", "train_per_class", "split", "accuracy")
# Table 4/5 rows that are ours as well: paper row -> which of our results fills it.
OUR_ROWS = {"non-pretrained convnet": "scratch", "ImageNet-pretrained convnet": "pretrained",
            "non-pretrained": "scratch", "ImageNet-pretrained": "pretrained"}


# ---------------------------------------------------------------------------------------------- formatting


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _printed(v: float) -> str:
    """A stored paper number with its printed decimals (at least one): 48.0, 0.33, 0.5."""
    text = f"{float(v):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def paper_cell(mean: Any, sd: Any) -> str | None:
    """A published value as printed ("81.4 ± 0.33", "73.2" without an sd, None for an empty cell)."""
    if _missing(mean):
        return None
    return _printed(mean) if _missing(sd) else f"{_printed(mean)} {PM} {_printed(sd)}"


def ours_cell(values: Sequence[float] | pd.Series) -> str | None:
    """"mean ± sd" of our per-split accuracies, 1 decimal (sample sd; the mean alone for one split)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return None
    return f"{v.mean():.1f}" if len(v) == 1 else f"{v.mean():.1f} {PM} {v.std(ddof=1):.1f}"


def layer_number(layer: str) -> int:
    if layer not in LAYER_NUMBERS:
        raise DataError(f"layer {layer!r} has no number in the paper's Table 7; expected one of {list(LAYER_NUMBERS)}")
    return LAYER_NUMBERS[layer]


# ---------------------------------------------------------------------------------------------- inputs


def read_pretrained(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """The frozen-feature classifier CSVs (zfrepro classify) stacked, columns checked."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    frames = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise DataError(f"classifier results {path} are missing: run the classify step (snakemake {path})")
        df = pd.read_csv(path)
        missing = set(FROZEN_COLUMNS) - set(df.columns)
        if missing:
            raise DataError(f"{path} lacks columns {sorted(missing)}: rerun the classify step (snakemake {path})")
        frames.append(df[FROZEN_COLUMNS])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FROZEN_COLUMNS)


def read_scratch(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The from-scratch score.json files (zfrepro scratch), one row each."""
    records = []
    for path in paths:
        score = load_json_result(path)
        missing = [k for k in SCRATCH_KEYS if k not in score]
        if missing:
            raise DataError(f"{path} lacks {missing}: rerun the scratch step (snakemake {path})")
        records.append({k: score[k] for k in SCRATCH_KEYS})
    return pd.DataFrame.from_records(records, columns=list(SCRATCH_KEYS))


def _read_splits(path: str | Path | None) -> dict[str, Any]:
    return {} if path is None else load_json_result(path)


def only_dataset(df: pd.DataFrame, dataset: str, what: str) -> pd.DataFrame:
    other = sorted(set(df["dataset"]) - {dataset})
    if other:
        raise DataError(f"{what} holds results of {other}, not only {dataset}: pass the {dataset} files")
    return df


def _by_size(df: pd.DataFrame) -> dict[int, pd.Series]:
    return {int(n): g["accuracy"] for n, g in df.groupby("train_per_class")}


def _sizes_of(table: pd.DataFrame) -> list[int]:
    return sorted(int(m[1]) for c in table.columns if (m := re.fullmatch(r"acc(\d+)_mean", c)))


# ---------------------------------------------------------------------------------------------- Tables 4, 5


def _caltech_table(published: pd.DataFrame, dataset: str, pretrained_csv: str | Path | Sequence[str | Path],
                   scratch_jsons: Sequence[str | Path],
                   sizes: Sequence[int] | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows of the paper's table, a paper and an ours column per size: `sizes`, or the paper's and all of ours.
    Our results at other sizes (Figure 9's) are left out of the table and its split counts."""
    ours = {"pretrained": only_dataset(read_pretrained(pretrained_csv), dataset, "the pretrained CSV"),
            "scratch": only_dataset(read_scratch(scratch_jsons), dataset, "the scratch scores")}
    if sizes is not None:
        sizes = sorted({int(n) for n in sizes})
        ours = {key: df[df["train_per_class"].isin(sizes)] for key, df in ours.items()}
    cells = {key: _by_size(df) for key, df in ours.items()}
    if sizes is None:
        sizes = sorted(set(_sizes_of(published)).union(*(set(c) for c in cells.values())))
    records = []
    for _, row in published.iterrows():
        record: dict[str, Any] = {"method": row["method"]}
        mine = cells.get(OUR_ROWS.get(row["method"], ""), {})
        for n in sizes:
            record[f"paper_{n}"] = paper_cell(row.get(f"acc{n}_mean"), row.get(f"acc{n}_sd"))
            record[f"ours_{n}"] = ours_cell(mine[n]) if n in mine else None
        records.append(record)
    return pd.DataFrame.from_records(records), ours["pretrained"], ours["scratch"]


def _splits_phrase(df: pd.DataFrame) -> str:
    """'2 splits', '1 split' (or '2/1 splits' when sizes differ)."""
    counts = sorted({int(g["split"].nunique()) for _, g in df.groupby("train_per_class")}) or [0]
    return f"{'/'.join(map(str, counts))} split{'' if counts == [1] else 's'}"


def _caltech_footnote(dataset: str, pretrained: pd.DataFrame, scratch: pd.DataFrame, splits: Mapping[str, Any],
                      data_note: str, paper_protocol: str) -> str:
    name = DATASET_NAMES[dataset]
    classes = list(splits.get("classes", []))
    extra = [c for c in classes if c == CALTECH101_BACKGROUND or c.endswith(CALTECH256_CLUTTER_SUFFIX)]
    extra_name = "background class" if dataset == "caltech101" else "clutter class"
    if classes:
        setup = (f"{len(classes)} classes ({extra_name} {'included' if extra else 'excluded'}), up to "
                 f"{splits.get('test_per_class', '?')} test images per class, the same test images for every "
                 f"training size of a split (split seed {splits.get('seed', '?')}); chance level "
                 f"{100 / len(classes):.2f}%")
    else:
        setup = "class count and test size not given (no splits file)"
    layers = sorted({f"{CLASSIFIER_NAMES.get(c, c)} on layer {layer_number(v)} ({v})"
                     for c, v in zip(pretrained["classifier"], pretrained["layer"], strict=True)})
    return (
        f"Mean per-class accuracy (%), mean {PM} sample sd over random train/test splits; the column is the number "
        f"of training images per class. Ours: {data_note}; {name}, {setup}; centre crop. ImageNet-pretrained: "
        f"{', '.join(layers) or 'no results'} of our ImageNet model with layers 1-7 frozen, the classifier on "
        "standardised features (scikit-learn), "
        f"{_splits_phrase(pretrained)}. Non-pretrained: the same architecture trained from scratch on each "
        f"split's training images, {_splits_phrase(scratch)}. Paper: {paper_protocol} {claim10(pretrained, scratch)}"
    )


def claim10(pretrained: pd.DataFrame, scratch: pd.DataFrame) -> str:
    """Claim 10 (pretrained features beat training from scratch by a wide margin on small data), measured."""
    gaps = []
    for n in sorted(set(pretrained["train_per_class"]) & set(scratch["train_per_class"])):
        gap = (pretrained.loc[pretrained["train_per_class"] == n, "accuracy"].mean()
               - scratch.loc[scratch["train_per_class"] == n, "accuracy"].mean())
        gaps.append(f"{gap:+.1f} at {n}")
    return ("Claim 10 of the paper (pretrained beats non-pretrained by a wide margin), on these data, pretrained "
            "minus non-pretrained in points: " + ", ".join(gaps) + ".") if gaps else ""


def table4(pretrained_csv: str | Path, scratch_jsons: Sequence[str | Path], data_note: str,
           splits_file: str | Path | None = None, sizes: Sequence[int] | None = None) -> tuple[pd.DataFrame, str]:
    """Table 4 (Caltech-101): the paper's rows, paper and our accuracy per training size; and its footnote."""
    df, pretrained, scratch = _caltech_table(paper.TABLE4, "caltech101", pretrained_csv, scratch_jsons, sizes)
    return df, _caltech_footnote("caltech101", pretrained, scratch, _read_splits(splits_file), data_note,
                                 "5 splits, up to 50 test images per class, background class not mentioned.")


def table5(pretrained_csv: str | Path, scratch_jsons: Sequence[str | Path], data_note: str,
           splits_file: str | Path | None = None, sizes: Sequence[int] | None = None) -> tuple[pd.DataFrame, str]:
    """Table 5 (Caltech-256): the paper's rows, paper and our accuracy per training size; and its footnote."""
    df, pretrained, scratch = _caltech_table(paper.TABLE5, "caltech256", pretrained_csv, scratch_jsons, sizes)
    return df, _caltech_footnote("caltech256", pretrained, scratch, _read_splits(splits_file), data_note,
                                 "test size, split count and clutter class not stated.")


# ---------------------------------------------------------------------------------------------- Table 6


def table6(voc_csv: str | Path, data_note: str, layer: str = "fc7") -> tuple[pd.DataFrame, str]:
    """Table 6 (PASCAL VOC 2012): per class our AP beside the paper's three columns, then a mean row."""
    path = Path(voc_csv)
    if not path.exists():
        raise DataError(f"VOC results {path} are missing: run the voc-ap step (snakemake {path})")
    ours = pd.read_csv(path)
    missing = {"class", "ap", "positives", "images"} - set(ours.columns)
    if missing:
        raise DataError(f"{path} lacks columns {sorted(missing)}: rerun the voc-ap step (snakemake {path})")
    published = paper.TABLE6.set_index("class")
    unknown = sorted(set(ours["class"]) - set(published.index))
    if unknown:
        raise DataError(f"{path} names classes {unknown} that are not VOC classes")
    ours = ours.set_index("class")
    records = []
    for name, row in published.iterrows():
        have = name in ours.index and not _missing(float(ours.loc[name, "ap"]))
        records.append({"class": name, "paper_sande2012": row["sande2012"], "paper_yan2012": row["yan2012"],
                        "paper_zf2014": row["zf2014"], "ours": round(float(ours.loc[name, "ap"]), 1) if have else None,
                        "val_positives": int(ours.loc[name, "positives"]) if name in ours.index else None})
    scored = ours["ap"].dropna()
    records.append({"class": "mean", **{f"paper_{k}": v for k, v in paper.TABLE6_MEAN.items()},
                    "ours": round(float(scored.mean()), 1) if len(scored) else None, "val_positives": None})
    footnote = (
        f"Average precision (%) per class. Ours: {data_note}; a softmax (multinomial logistic regression on "
        f"standardised features, scikit-learn) on layer {layer_number(layer)} ({layer}) of our ImageNet model with "
        "layers 1-7 frozen, trained on the VOC 2012 train split (each image once per class present in it), scored "
        f"on the val split, not the test server: up to {int(ours['images'].max()) if len(ours) else 0} val images "
        "per class, those where the class is present only as difficult objects left out (VOC protocol); "
        "average precision as the VOC 2010-2012 devkit computes it (interpolated precision envelope); centre "
        f"crop. Mean over the {len(scored)} classes with a positive val image. val_positives: val images with the "
        "class. Paper: test split via the evaluation server; [A] Sande et al. 2012, [B] Yan et al. 2012."
    )
    df = pd.DataFrame.from_records(records)
    return df.assign(val_positives=df["val_positives"].astype("Int64")), footnote


# ---------------------------------------------------------------------------------------------- Table 7


def table7(csvs: Sequence[str | Path], data_note: str,
           sizes: Mapping[str, int] | None = None) -> tuple[pd.DataFrame, str]:
    """Table 7: accuracy of each (classifier, layer) on Caltech-101 and -256, ours beside the paper's.

    Ours at `sizes[dataset]` training images per class (default: the largest size in that dataset's results;
    the paper's are 30 and 60). Rows: the paper's, then any (classifier, layer) only we have.
    """
    ours = read_pretrained(csvs)
    unknown = sorted(set(ours["dataset"]) - set(TABLE7_COLUMNS))
    if unknown:
        raise DataError(f"Table 7 takes Caltech-101/256 results only, got {unknown}")
    chosen: dict[str, int] = {}
    for dataset, g in ours.groupby("dataset"):
        n = (sizes or {}).get(dataset, int(g["train_per_class"].max()))
        if n not in set(g["train_per_class"]):
            raise ConfigError(f"table7 size {n} for {dataset}: no result at that size (have "
                              f"{sorted(set(g['train_per_class']))}); classify at that size or change the size")
        chosen[dataset] = n
    ours = ours[[chosen.get(d) == n for d, n in zip(ours["dataset"], ours["train_per_class"], strict=True)]]
    ours = ours.assign(row_classifier=ours["classifier"].map(lambda c: CLASSIFIER_NAMES.get(c, c)),
                       row_layer=ours["layer"].map(layer_number))
    keys = list(zip(paper.TABLE7["classifier"], paper.TABLE7["layer"], strict=True))
    extra = sorted(set(zip(ours["row_classifier"], ours["row_layer"], strict=True)) - set(keys),
                   key=lambda k: (list(CLASSIFIER_NAMES.values()).index(k[0]) if k[0] in CLASSIFIER_NAMES.values()
                                  else len(CLASSIFIER_NAMES), k[1]))
    published = paper.TABLE7.set_index(["classifier", "layer"])
    records = []
    for classifier, layer in keys + extra:
        record: dict[str, Any] = {"classifier": classifier, "layer": layer}
        for dataset, short in TABLE7_COLUMNS.items():
            have = (classifier, layer) in published.index
            record[f"paper_{short}"] = (paper_cell(published.loc[(classifier, layer), f"{short}_mean"],
                                                   published.loc[(classifier, layer), f"{short}_sd"])
                                        if have else None)
            mine = ours[(ours["dataset"] == dataset) & (ours["row_classifier"] == classifier)
                        & (ours["row_layer"] == layer)]
            record[f"ours_{short}"] = ours_cell(mine["accuracy"])
        records.append(record)
    counts = {d: int(g["split"].nunique()) for d, g in ours.groupby("dataset")}
    at = "; ".join(f"{DATASET_NAMES[d]} {n} training images per class, {counts.get(d, 0)} "
                   f"split{'' if counts.get(d, 0) == 1 else 's'}"
                   for d, n in sorted(chosen.items()))
    footnote = (
        f"Mean per-class accuracy (%), mean {PM} sample sd over random splits, of a linear classifier on the "
        f"frozen features of one layer (1-5: conv layers after ReLU, pooling and normalisation; 6, 7: fc after "
        f"ReLU) of our ImageNet model. Ours: {data_note}; {at or 'no results'}; centre crop; conv maps larger than "
        "transfer.max_feature_dim values average-pooled to a square grid before flattening (project decision); "
        "SVM: linear SVM (libsvm, one-vs-one), softmax: multinomial logistic regression, both on standardised features "
        "(scikit-learn). Paper: 30 (Caltech-101) and 60 (Caltech-256) training images per class, 5 splits."
        f" {claim11(ours)}"
    )
    return pd.DataFrame.from_records(records), footnote


def claim11(ours: pd.DataFrame) -> str:
    """Claim 11 (accuracy grows with the layer's depth) checked on the SVM rows: holds or not, per dataset."""
    parts = []
    for dataset, g in ours[ours["row_classifier"] == "SVM"].groupby("dataset"):
        by_layer = g.groupby("row_layer")["accuracy"].mean().sort_index()
        if len(by_layer) < 2:
            continue
        rising = bool((by_layer.diff().dropna() >= 0).all())
        best = int(by_layer.idxmax())
        parts.append(f"{DATASET_NAMES[dataset]}: {'grows with every layer' if rising else 'does not'} "
                     f"(best layer {best}, {by_layer.max():.1f}%)")
    return ("Claim 11 of the paper (SVM accuracy grows with the layer's depth), on these data: "
            + "; ".join(parts) + ".") if parts else ""

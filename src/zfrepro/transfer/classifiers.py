"""Section 5 of the paper: linear classifiers on frozen convnet features, the from-scratch baseline's score,
and VOC 2012 average precision.

The paper keeps layers 1-7 of the ImageNet model fixed and trains a new softmax (Tables 4-6) or a linear SVM
(Table 7) on the target set's features; scikit-learn does the fitting here. Caltech scores are the mean
per-class accuracy (the average of the per-class recalls), so large classes do not dominate.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from zfrepro.data.datasets import VOC_CLASSES
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import load_json_result, load_result
from zfrepro.options import resolve_device
from zfrepro.progress import progress

# kind -> its allowed settings with their defaults: the schema's transfer.softmax / transfer.svm defaults
# (tests/test_defaults.py checks that they agree); the workflow always passes the whole section.
CLASSIFIER_PARAMS = {"softmax": {"C": 1.0, "max_iter": 500}, "svm": {"C": 0.01}}
FROZEN_COLUMNS = ["dataset", "classifier", "layer", "train_per_class", "split", "accuracy"]
VOC_COLUMNS = ["class", "ap", "ap_sklearn", "positives", "images", "note"]
SCRATCH_DIR = re.compile(r"(?P<dataset>[^/]+)/n(?P<n>\d+)_split(?P<split>\d+)(/data)?/?$")


# ---------------------------------------------------------------------------------------------- scores


def mean_per_class_accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Mean over the classes present in `y_true` of the fraction of their images predicted right, in %."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise DataError(f"mean_per_class_accuracy: expected two equal non-empty 1-d label arrays, got shapes "
                        f"{y_true.shape} and {y_pred.shape}")
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return 100.0 * float(np.mean(recalls))


# ---------------------------------------------------------------------------------------------- classifiers


def make_classifier(kind: str, params: Mapping[str, Any] | None = None) -> Pipeline:
    """An unfitted scikit-learn pipeline: 'softmax' (multinomial logistic regression, lbfgs; params C, max_iter)
    or 'svm' (linear SVM; param C), each after per-feature standardisation (transfer.<kind>)."""
    if kind not in CLASSIFIER_PARAMS:
        raise ConfigError(f"classifier kind {kind!r} is unknown: use 'softmax' or 'svm'")
    params = dict(params or {})
    unknown = sorted(set(params) - set(CLASSIFIER_PARAMS[kind]))
    if unknown:
        raise ConfigError(f"transfer.{kind}: unknown keys {unknown}; allowed: {sorted(CLASSIFIER_PARAMS[kind])}")
    p = {**CLASSIFIER_PARAMS[kind], **params}
    if not isinstance(p["C"], int | float) or isinstance(p["C"], bool) or p["C"] <= 0:
        raise ConfigError(f"transfer.{kind}.C: expected a positive number, got {p['C']!r}")
    if "max_iter" in p and (not isinstance(p["max_iter"], int) or isinstance(p["max_iter"], bool) or p["max_iter"] < 1):
        raise ConfigError(f"transfer.{kind}.max_iter: expected a positive integer, got {p['max_iter']!r}")
    # Project decision: standardise every feature first. The paper does not say how it scaled features; ReLU
    # maps of different layers differ in scale by orders of magnitude, and one C then suits every layer.
    if kind == "softmax":
        # lbfgs on more than two classes fits the multinomial (softmax) loss, as the paper's new softmax layer.
        model = LogisticRegression(C=float(p["C"]), max_iter=p["max_iter"])
    else:
        # libsvm's linear-kernel SVM (one-vs-one votes): on dense features with fewer images than feature values
        # it is 36-52x faster than liblinear's LinearSVC (benchmarks/svm_solvers.py on the default data).
        model = SVC(kernel="linear", C=float(p["C"]))
    return make_pipeline(StandardScaler(), model)


def _fit(model: Pipeline, x: np.ndarray, y: np.ndarray) -> bool:
    """Fit in place; False when the solver stopped at max_iter (reported once per command, not per fit)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    return not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _load_features(path: str | Path) -> dict:
    data = load_result(path)
    missing = {"features", "labels", "layer"} - set(data)
    if missing:
        raise DataError(f"feature file {path} lacks {sorted(missing)}: re-extract it (snakemake {path})")
    if len(data["features"]) != len(data["labels"]):
        raise DataError(f"feature file {path}: {len(data['features'])} feature rows but {len(data['labels'])} labels")
    return data


def _load_splits(path: str | Path) -> dict:
    splits = load_json_result(path)
    if not splits.get("splits") or "sizes" not in splits:
        raise DataError(f"splits file {path} has no splits or sizes: rewrite it (snakemake {path})")
    return splits


def _indices(rows: Iterable[int], n: int, what: str) -> np.ndarray:
    idx = np.asarray(list(rows), dtype=np.int64)
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= n:
        raise DataError(f"{what}: indices must be non-empty and within 0..{n - 1} (the feature rows); the splits "
                        "and the features come from different data: rebuild both")
    return idx


def score_frozen(features_file: str | Path, splits_file: str | Path, kind: str,
                 params: Mapping[str, Any] | None = None, sizes: Sequence[int] | None = None) -> pd.DataFrame:
    """Fit a `kind` classifier on each split's training rows at each size and score the split's test rows.

    One row per (size, split): dataset, classifier, layer, train_per_class, split, accuracy (mean per-class
    accuracy, %). `sizes` None takes every size of the splits file.
    """
    make_classifier(kind, params)  # bad settings fail before any data is read
    data, splits = _load_features(features_file), _load_splits(splits_file)
    available = [int(n) for n in splits["sizes"]]
    sizes = available if sizes is None else [int(n) for n in sizes]
    absent = [n for n in sizes if n not in available]
    if absent:
        raise ConfigError(f"sizes {absent} are not in {splits_file} (it has {available}): add them to "
                          f"transfer.<dataset>.train_sizes / transfer.fig9_sizes and rebuild the splits")
    x = data["features"].numpy()  # float16 kept; only the rows of one fit are made float32 (memory)
    y = data["labels"].numpy()
    if y.ndim != 1:
        raise DataError(f"{features_file}: single-label features expected (labels [N]), got shape {tuple(y.shape)}")
    rows, unconverged = [], 0
    jobs = [(s, n) for s in range(len(splits["splits"])) for n in sizes]
    for s, n in progress(jobs, desc=f"{kind} {data['layer']}", unit="fit", leave=False):
        split = splits["splits"][s]
        train = _indices(split["train"][str(n)], len(y), f"{splits_file} split {s} train[{n}]")
        test = _indices(split["test"], len(y), f"{splits_file} split {s} test")
        model = make_classifier(kind, params)
        unconverged += not _fit(model, x[train].astype(np.float32), y[train])
        accuracy = mean_per_class_accuracy(y[test], model.predict(x[test].astype(np.float32)))
        rows.append({"dataset": splits.get("dataset", ""), "classifier": kind, "layer": data["layer"],
                     "train_per_class": n, "split": s, "accuracy": accuracy})
    if unconverged:
        print(f"note: {unconverged} of {len(jobs)} {kind} fits stopped at max_iter before converging "
              f"(raise transfer.{kind}.max_iter if the scores matter)", file=sys.stderr)
    return pd.DataFrame.from_records(rows, columns=FROZEN_COLUMNS)


# ---------------------------------------------------------------------------------------------- from scratch


def _scratch_identity(data_dir: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """dataset, train_per_class and split of a scratch data folder: from its manifest, else from its path
    (results/transfer/scratch/{dataset}/n{n}_split{s}/data)."""
    match = SCRATCH_DIR.search(data_dir.resolve().as_posix())
    from_path = ({"dataset": match["dataset"], "train_per_class": int(match["n"]), "split": int(match["split"])}
                 if match else {})
    out = {key: manifest.get(key, from_path.get(key)) for key in ("dataset", "train_per_class", "split")}
    if None in out.values():
        raise DataError(f"{data_dir}: cannot tell the dataset, size and split (no such manifest keys and the path "
                        "is not .../{dataset}/n{n}_split{s}/data)")
    return out


@torch.no_grad()
def score_scratch(model_path: str | Path, data_dir: str | Path, device: str = "auto",
                  batch_size: int = 128, workers: int = 0) -> dict[str, Any]:
    """Mean per-class accuracy (%) of a from-scratch model on its split's test images (data_dir/val.pt),
    centre crop with the mean image of its own training images (data_dir/mean.pt)."""
    from zfrepro.data.splits import PreparedSplit
    from zfrepro.model.checkpoint import load_model, network_mean
    from zfrepro.model.evaluate import split_probabilities

    data_dir = Path(data_dir)
    dev = resolve_device(device)
    model, ckpt = load_model(model_path, dev)
    mean_path = data_dir / "mean.pt"
    mean = network_mean(model.spec, load_result(mean_path).to(dev))
    split = PreparedSplit(data_dir / "val.pt")
    if split.classes != list(ckpt["classes"]):
        raise DataError(f"{model_path} was trained on other classes than {data_dir}: retrain the model")
    manifest_path = data_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    workers = 0 if split.in_memory else workers
    probs = split_probabilities(model, split, mean, int(ckpt["crop_size"]), torch.arange(len(split)), batch_size,
                                dev, workers, ten=False)["center"]
    accuracy = mean_per_class_accuracy(split.labels.numpy(), probs.argmax(1).numpy())
    return {**_scratch_identity(data_dir, manifest), "accuracy": accuracy, "test_images": len(split),
            "classes": len(split.classes), "model": str(model_path)}


# ---------------------------------------------------------------------------------------------- VOC 2012


def voc_ap(truth: np.ndarray, score: np.ndarray) -> float:
    """Average precision as the VOC 2010-2012 devkit computes it (VOCevalcls / VOCap), in [0, 1]: rank by
    score, take the precision envelope (the best precision at any higher recall), sum it over recall steps.
    Unlike scikit-learn's average_precision_score, the precision curve is interpolated."""
    truth = np.asarray(truth).astype(bool)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    hits = truth[order]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    recall = np.concatenate([[0.0], tp / max(1, int(truth.sum())), [1.0]])
    precision = np.concatenate([[0.0], tp / np.maximum(tp + fp, 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope, from the right
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def _voc_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, class) training pairs: each image once per class present in it; images with none give none."""
    rows, classes = np.nonzero(labels)
    return rows, classes


def voc_average_precision(train_file: str | Path, val_file: str | Path, params: Mapping[str, Any] | None = None,
                          val_split_path: str | Path | None = None) -> pd.DataFrame:
    """Per-class AP (%) of a softmax on frozen VOC features, trained on the train split, scored on val.

    Rows: class, ap (the VOC devkit's AP), ap_sklearn (scikit-learn's, not interpolated), positives (val
    images with the class, difficult-only ones excluded), images (val images
    scored for the class), note. Images where the class is difficult-only (flags "difficult_only" from the val
    feature file if it has them, else from the prepared val split `val_split_path`) are left out of that
    class's AP, as the VOC protocol does.
    """
    make_classifier("softmax", params)
    train, val = _load_features(train_file), _load_features(val_file)
    y_train, y_val = train["labels"].numpy(), val["labels"].numpy()
    k = len(VOC_CLASSES)
    for path, y in ((train_file, y_train), (val_file, y_val)):
        if y.ndim != 2 or y.shape[1] != k:
            raise DataError(f"{path}: VOC features need multi-hot labels [N, {k}], got shape {tuple(y.shape)}")
    difficult = np.zeros_like(y_val, dtype=bool)
    if "difficult_only" in val:  # the feature step may carry the flags along
        difficult = val["difficult_only"].numpy().astype(bool)
        if difficult.shape != y_val.shape:
            raise DataError(f"{val_file}: difficult_only {difficult.shape} does not match labels {y_val.shape}")
    if val_split_path is not None:
        split = load_result(val_split_path)
        if "difficult_only" not in split:
            raise DataError(f"{val_split_path} has no difficult_only flags: re-prepare the VOC data")
        difficult = split["difficult_only"].numpy().astype(bool)
        if difficult.shape != y_val.shape or not np.array_equal(split["labels"].numpy(), y_val):
            raise DataError(f"{val_split_path} does not match {val_file} (other images or labels): rebuild both")
    # Project decision: the paper trains a softmax ("one label per image") on multi-label images. Each training
    # image enters once per class it contains, so every label counts; images without a label are skipped.
    rows, targets = _voc_pairs(y_train)
    if len(rows) == 0:
        raise DataError(f"{train_file}: no training image has a label")
    model = make_classifier("softmax", params)
    if not _fit(model, train["features"].float().numpy()[rows], targets):
        print("note: the VOC softmax stopped at max_iter before converging (raise transfer.softmax.max_iter)",
              file=sys.stderr)
    probs = np.zeros((len(y_val), k))
    probs[:, model.classes_] = model.predict_proba(val["features"].float().numpy())
    records = []
    for c, name in enumerate(VOC_CLASSES):
        keep = ~difficult[:, c]
        truth, score = y_val[keep, c], probs[keep, c]
        positives = int(truth.sum())
        note = "" if c in model.classes_ else "no training image; scored with probability 0"
        if positives == 0:
            ap = ap_sklearn = float("nan")
            note = "no positive validation image: AP undefined"
        else:
            # ap: the VOC devkit's (what the paper's test-server numbers are); ap_sklearn: not interpolated.
            ap = 100.0 * voc_ap(truth, score)
            ap_sklearn = 100.0 * float(average_precision_score(truth, score))
        records.append({"class": name, "ap": ap, "ap_sklearn": ap_sklearn, "positives": positives,
                        "images": int(keep.sum()), "note": note})
    return pd.DataFrame.from_records(records, columns=VOC_COLUMNS)


# threads of torch and scikit-learn's BLAS


def limit_threads(threads: int) -> Any:
    """torch and the BLAS scikit-learn calls both use at most `threads` threads."""
    from threadpoolctl import threadpool_limits

    threads = max(1, threads)
    torch.set_num_threads(threads)
    return threadpool_limits(threads)

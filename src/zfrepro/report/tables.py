"""The paper's tables, reproduced: our numbers beside the published ones, as CSV and Markdown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from zfrepro.errors import ConfigError, DataError
from zfrepro.io import load_json_result, load_result
from zfrepro.model.evaluate import errors_of
from zfrepro.report import paper

CROP_NAMES = {"center": "the centre 224-equivalent crop", "ten": "the average over the ten crops"}


def _load_predictions(path: str | Path) -> dict:
    return load_result(path)


def _published(table: pd.DataFrame, key: str, rows: dict, crops: str) -> pd.DataFrame:
    """The paper's table indexed by row name, after checking the crops and that every row is one of its rows."""
    if crops not in CROP_NAMES:
        raise ConfigError(f"evaluation.table_crops must be 'center' or 'ten', not {crops!r}")
    published = table.set_index("model")
    for name in rows:
        if name not in published.index:
            raise ConfigError(f"tables.{key}: {name!r} is not a row of the paper's Table {key[-1]}; "
                              f"choose from: {'; '.join(published.index)}")
    return published


def ensemble_errors(prediction_files: list[str | Path], crops: str) -> dict[str, float]:
    """Top-1/top-5 error (%) of the average softmax output of the given models (paper, Table 2: ensembles
    average the softmax outputs). One file is a single model; all must cover the same validation images."""
    return _ensemble_errors([_load_predictions(path) for path in prediction_files], prediction_files, crops)


def _ensemble_errors(members: list[dict], prediction_files: list[str | Path], crops: str) -> dict[str, float]:
    labels = members[0]["labels"]
    for path, member in zip(prediction_files, members, strict=True):
        if not torch.equal(member["labels"], labels) or member["classes"] != members[0]["classes"]:
            raise DataError(f"{path} was evaluated on other validation data than {prediction_files[0]}: "
                            "re-run the evaluate step for both")
    probs = torch.stack([member[crops] for member in members]).mean(0)
    return errors_of({crops: probs}, labels)[crops]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd (n-1; NaN for one value), rounded for the table."""
    series = pd.Series(values, dtype=float)
    return round(float(series.mean()), 2), round(float(series.std(ddof=1)), 2)


def _row_files(name: str, spec: dict[str, list[str | Path]]) -> tuple[str, list[str | Path]]:
    """("seeds" | "ensemble", files) of one Table 2 row given as {kind: [predictions.pt, ...]}."""
    if len(spec) != 1 or next(iter(spec)) not in ("seeds", "ensemble"):
        raise ConfigError(f"Table 2 row {name!r}: give {{'seeds': [...]}} or {{'ensemble': [...]}}, not {spec!r}")
    kind, files = next(iter(spec.items()))
    return kind, files


def table2(rows: dict[str, dict[str, list[str | Path]]], crops: str = "ten") -> pd.DataFrame:
    """Table 2 rows (paper row name -> {"seeds" | "ensemble": prediction files}), paper values beside ours.

    A "seeds" row is one convnet trained with several seeds: its error is the mean over them, with the
    seed-to-seed sd beside it. An "ensemble" row averages its convnets' softmax outputs, as in the paper.
    """
    published = _published(paper.TABLE2, "table2", rows, crops)
    records = []
    for name, spec in rows.items():
        kind, files = _row_files(name, spec)
        members = [_load_predictions(path) for path in files]  # read once: errors and member names
        if kind == "ensemble":
            errors = [_ensemble_errors(members, files, crops)]
        else:
            errors = [_ensemble_errors([member], [path], crops) for member, path in zip(members, files, strict=True)]
        top1, top1_sd = _mean_sd([e["top1_error"] for e in errors])
        top5, top5_sd = _mean_sd([e["top5_error"] for e in errors])
        records.append({
            "model": name,
            "paper_val_top1": published.loc[name, "val_top1"],
            "ours_val_top1": top1,
            "ours_val_top1_sd": top1_sd,
            "paper_val_top5": published.loc[name, "val_top5"],
            "ours_val_top5": top5,
            "ours_val_top5_sd": top5_sd,
            "paper_test_top5": published.loc[name, "test_top5"],
            "ours_test_top5": "n/a (no test server)",
            "ours_seeds": len(files) if kind == "seeds" else 1,
            "ours_convnets": 1 if kind == "seeds" else len(files),
            "ours_members": ", ".join(f"{m['arch']}/seed{m['seed']}" for m in members),
            **_published_errors(members),
        })
    table = pd.DataFrame.from_records(records)
    return table.drop(columns=[c for c in PUBLISHED_COLUMNS if c in table and table[c].isna().all()])


PUBLISHED_COLUMNS = ("weights", "weights_val_top1", "weights_val_top5")


def _published_errors(members: list[dict]) -> dict:
    """For a single imported network, its publisher's own validation errors (imgclsmob, torchvision); the columns
    are dropped from tables without imported networks, so those keep their shape."""
    names = {m.get("published") for m in members}
    if len(members) != 1 or None in names:
        return {}
    from zfrepro.model.published import PUBLISHED

    entry = PUBLISHED[names.pop()]
    return {"weights": f"{entry.caption}, {entry.source.split(' ')[0]} {entry.release}",
            "weights_val_top1": entry.top1_error, "weights_val_top5": entry.top5_error}


def table2_footnote(rows: dict[str, dict[str, list[str | Path]]], crops: str) -> str:
    first = _load_predictions(_row_files(*next(iter(rows.items())))[1][0])
    classes = len(first["classes"])
    chance = 100.0 * (1 - 1 / classes)
    epochs = (f"{first['epochs']} epoch{'s' * (first['epochs'] != 1)} per network" if first["epochs"] is not None
              else "imported published weights, not trained here (weights_val_*: their publisher's numbers on "
                   "ImageNet 2012's validation set, one centre crop)")
    return (
        f"Errors in %. Ours: validation split of the prepared data ({len(first['labels'])} images, {classes} "
        f"classes, chance top-1 error {chance:.1f}%), {CROP_NAMES[crops]}, {epochs}. A row of one "
        "convnet gives the mean over the seeds it was trained with (ours_seeds) and their standard deviation "
        "(_sd; empty for one seed): differences smaller than a few sd are training noise. An ensemble row "
        "averages the softmax outputs of its convnets (ours_members names them: architecture/seed; the default "
        "config uses fewer than the paper's 5). Paper: ImageNet 2012, 1000 classes; its test column came from "
        "the evaluation server, which has no counterpart here."
    )


def table3(rows: dict[str, list[str | Path]], crops: str = "ten") -> pd.DataFrame:
    """Table 3 (architecture changes): paper row name -> metrics JSON of the variant at each seed it was
    trained with (each from scratch). Columns as the paper's, each the mean over seeds with the sd beside the
    validation errors: train top-1 (centre crop, fixed training subset), val top-1 and val top-5."""
    published = _published(paper.TABLE3, "table3", rows, crops)
    records = []
    for name, paths in rows.items():
        runs = [load_json_result(path) for path in ([paths] if isinstance(paths, (str, Path)) else paths)]
        top1, top1_sd = _mean_sd([m["val"][crops]["top1_error"] for m in runs])
        top5, top5_sd = _mean_sd([m["val"][crops]["top5_error"] for m in runs])
        records.append({
            "model": name,
            "paper_train_top1": published.loc[name, "train_top1"],
            "ours_train_top1": _mean_sd([m["train"]["top1_error"] for m in runs])[0],
            "paper_val_top1": published.loc[name, "val_top1"],
            "ours_val_top1": top1,
            "ours_val_top1_sd": top1_sd,
            "paper_val_top5": published.loc[name, "val_top5"],
            "ours_val_top5": top5,
            "ours_val_top5_sd": top5_sd,
            "ours_seeds": len(runs),
            "ours_parameters": runs[0].get("parameters"),
            "arch": runs[0]["arch"],
        })
    return pd.DataFrame.from_records(records)


def table3_footnote(rows: dict[str, list[str | Path]], crops: str) -> str:
    """The protocol and what the seed columns mean."""
    first = next(iter(rows.values()))
    metrics = load_json_result(first if isinstance(first, (str, Path)) else first[0])
    return (
        f"Errors in %. Every variant trained from scratch with the same protocol ({metrics['epochs']} "
        f"epoch{'s' * (metrics['epochs'] != 1)}), once per seed (ours_seeds); ours_* is the mean over seeds and "
        f"_sd the seed-to-seed standard deviation (empty for one seed): differences between rows smaller than a "
        f"few sd are training noise. Train top-1: centre crop of a fixed subset of "
        f"{metrics['train_subset_images']} training images; val: {metrics['val_images']} images, "
        f"{metrics['num_classes']} classes (chance top-1 {metrics['chance_top1_error']:.1f}%), {CROP_NAMES[crops]}. "
        "Unit and map counts are the paper's, scaled by each network's width. Paper: ImageNet 2012."
    )



"""The paper's tables, reproduced: our numbers beside the published ones, as CSV and Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from zfrepro.errors import ConfigError, DataError
from zfrepro.io import load_json_result, load_result
from zfrepro.model.evaluate import errors_of
from zfrepro.options import json_arg, json_list_of
from zfrepro.report import paper
from zfrepro.report.write import write_table

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


def table2(rows: dict[str, list[str | Path]], crops: str = "ten") -> pd.DataFrame:
    """Table 2 rows (paper row name -> prediction files of its convnets), paper values beside ours.

    A row with several files is an ensemble: the average of their softmax outputs, as in the paper.
    """
    published = _published(paper.TABLE2, "table2", rows, crops)
    records = []
    for name, files in rows.items():
        members = [_load_predictions(path) for path in files]  # read once: errors and member names
        errors = _ensemble_errors(members, files, crops)
        records.append({
            "model": name,
            "paper_val_top1": published.loc[name, "val_top1"],
            "ours_val_top1": round(errors["top1_error"], 2),
            "paper_val_top5": published.loc[name, "val_top5"],
            "ours_val_top5": round(errors["top5_error"], 2),
            "paper_test_top5": published.loc[name, "test_top5"],
            "ours_test_top5": "n/a (no test server)",
            "ours_convnets": len(files),
            "ours_members": ", ".join(f"{m['arch']}/seed{m['seed']}" for m in members),
        })
    return pd.DataFrame.from_records(records)


def table2_footnote(rows: dict[str, list[str | Path]], crops: str) -> str:
    first = _load_predictions(next(iter(rows.values()))[0])
    classes = len(first["classes"])
    chance = 100.0 * (1 - 1 / classes)
    epochs = f"{first['epochs']} epoch{'s' * (first['epochs'] != 1)}"
    return (
        f"Errors in %. Ours: validation split of the prepared data ({len(first['labels'])} images, {classes} "
        f"classes, chance top-1 error {chance:.1f}%), {CROP_NAMES[crops]}, {epochs} per "
        "network; an ensemble row averages the softmax outputs of its convnets (ours_members names them: "
        "architecture/seed, and the default config uses fewer seeds than the paper's 5). Paper: ImageNet 2012, "
        "1000 classes; its test column came from the evaluation server, which has no counterpart here."
    )


def table3(rows: dict[str, str | Path], crops: str = "ten") -> pd.DataFrame:
    """Table 3 (architecture changes): paper row name -> metrics JSON of the variant trained from scratch.

    Columns as the paper's: train top-1 (centre crop, fixed training subset), val top-1 and val top-5.
    """
    published = _published(paper.TABLE3, "table3", rows, crops)
    records = []
    for name, path in rows.items():
        metrics = load_json_result(path)
        val = metrics["val"][crops]
        records.append({
            "model": name,
            "paper_train_top1": published.loc[name, "train_top1"],
            "ours_train_top1": round(metrics["train"]["top1_error"], 2),
            "paper_val_top1": published.loc[name, "val_top1"],
            "ours_val_top1": round(val["top1_error"], 2),
            "paper_val_top5": published.loc[name, "val_top5"],
            "ours_val_top5": round(val["top5_error"], 2),
            "ours_parameters": metrics.get("parameters"),
            "arch": metrics["arch"],
        })
    return pd.DataFrame.from_records(records)


def seed_spread(metrics_files: list[str | Path], crops: str) -> str:
    """'arch: val top-1 a-b over seeds ...' for each architecture trained with several seeds (noise scale)."""
    by_arch: dict[str, dict[int, float]] = {}
    for path in metrics_files:
        metrics = load_json_result(path)
        by_arch.setdefault(metrics["arch"], {})[metrics["seed"]] = metrics["val"][crops]["top1_error"]
    parts = [f"{arch} val top-1 {min(errs.values()):.2f}-{max(errs.values()):.2f} over seeds "
             f"{', '.join(str(s) for s in sorted(errs))}" for arch, errs in by_arch.items() if len(errs) > 1]
    return "; ".join(parts)


def table3_footnote(rows: dict[str, str | Path], crops: str, seed_metrics: list[str | Path] = ()) -> str:
    """The protocol, and (given other seeds' metrics) how much the same network varies between seeds."""
    metrics = load_json_result(next(iter(rows.values())))
    text = (
        f"Errors in %. Every variant trained from scratch with the same protocol (seed {metrics['seed']}, "
        f"{metrics['epochs']} epoch{'s' * (metrics['epochs'] != 1)}). Train top-1: centre crop of a fixed subset of "
        f"{metrics['train_subset_images']} training images; val: {metrics['val_images']} images, "
        f"{metrics['num_classes']} classes (chance top-1 {metrics['chance_top1_error']:.1f}%), {CROP_NAMES[crops]}. "
        "Unit and map counts are the paper's, scaled by each network's width. Paper: ImageNet 2012."
    )
    spread = seed_spread([*rows.values(), *seed_metrics], crops)
    if spread:
        text += (f" Seed-to-seed spread of the same network ({spread}): differences between rows smaller than "
                 "this are within training noise.")
    return text


# ---------------------------------------------------------------------------------------------- command line


def configure_table2_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", required=True, type=json_arg(dict),
                   help="JSON: {row label: [predictions.pt, ...]}; several files make an ensemble")
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def table2_command(args: argparse.Namespace) -> None:
    df = table2(args.rows, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 2: ImageNet classification error (%)",
                table2_footnote(args.rows, args.crops))
    print(df.to_string(index=False))


def configure_table3_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", required=True, type=json_arg(dict), help="JSON: {row label: metrics.json}")
    p.add_argument("--seed-metrics", type=json_list_of(str), default=[],
                   help="JSON list: metrics of the same architectures at other seeds (the footnote's spread)")
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def table3_command(args: argparse.Namespace) -> None:
    df = table3(args.metrics, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 3: ImageNet error (%) of architecture changes",
                table3_footnote(args.metrics, args.crops, args.seed_metrics))
    print(df.to_string(index=False))

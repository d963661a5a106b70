"""The overlap table: the Caltech images found in the ImageNet training set (zfrepro.analysis.overlap) beside
the paper's 44 (Caltech-101) and 243 (Caltech-256)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from zfrepro.analysis.overlap import COLUMNS, DEFAULT_THRESHOLD, PAPER_DUPLICATES, read_overlap_csv, summary_path
from zfrepro.errors import ConfigError, DataError


def overlap_table(
    csvs: Sequence[str | os.PathLike], counts: Mapping[str, int] | None = None, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """One row per overlap CSV: images compared, duplicates at `threshold`, the paper's count (`counts`,
    default PAPER_DUPLICATES) and, for generated data, how many of the planted copies were found."""
    counts = PAPER_DUPLICATES if counts is None else counts
    records = []
    for path in csvs:
        summary_file = summary_path(path)
        if not summary_file.is_file():
            raise DataError(f"{summary_file} is missing (written with {path} by the overlap analysis): rerun it")
        s = json.loads(summary_file.read_text())
        if threshold < s["threshold"]:
            raise ConfigError(f"transfer.overlap.threshold = {threshold} is below the {s['threshold']} that "
                              f"{path} was made with (it lists only matches above that): rerun the analysis")
        df = read_overlap_csv(path, COLUMNS)
        found = df[df["correlation"] >= threshold]
        planted, best_below = s.get("planted"), s.get("best_below_threshold")
        hits = set(zip(found["caltech_path"], found["imagenet_path"], strict=True))
        records.append({
            "dataset": s["dataset"],
            "caltech_images": s["caltech_images"],
            "imagenet_train_images": s["imagenet_train_images"],
            "duplicates_found": len(found),
            "paper_duplicates": counts.get(s["dataset"]),
            "planted": None if planted is None else len(planted),
            "planted_found": None if planted is None else sum(tuple(p) in hits for p in planted),
            "best_non_duplicate": None if best_below is None else round(best_below, 4),
            "threshold": threshold,
            "thumbnail_size": s["size"],
        })
    df = pd.DataFrame.from_records(records)
    return df.astype({"paper_duplicates": "Int64", "planted": "Int64", "planted_found": "Int64"})


def overlap_footnote(table: pd.DataFrame, drop: bool) -> str:
    sizes = sorted(set(table["thumbnail_size"]))
    generated = table["planted"].notna().any()
    data = ("Generated data: 'planted' ImageNet training images were copied into the Caltech sets (resized, "
            "re-encoded; synthetic.<dataset>.imagenet_duplicates) and should all be found. " if generated else
            "Real data. ")
    return (
        f"A Caltech image counts as a duplicate when its best match among the ImageNet training images has "
        f"normalized correlation >= {table['threshold'].iloc[0]} between {'/'.join(map(str, sizes))}-pixel "
        f"square greyscale thumbnails of the whole images (project decision: the paper names only normalized "
        f"correlation). best_non_duplicate: the highest best-match correlation of the images below the "
        f"threshold (the margin). {data}Paper: 44 Caltech-101 and 243 Caltech-256 images found in the ImageNet "
        f"2012 training set, removed from it before retraining. Here the duplicates are "
        f"{'removed from' if drop else 'kept in'} the pretraining set (transfer.overlap.drop_from_pretraining "
        f"= {str(drop).lower()})."
    )

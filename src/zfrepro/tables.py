"""The paper's tables, reproduced: our numbers beside the published ones, as CSV and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import paper
from .errors import ConfigError, DataError
from .io import atomic_write_text

CROP_NAMES = {"center": "the centre 224-equivalent crop", "ten": "the average over the ten crops"}


def _load_metrics(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise DataError(f"metrics file {path} is missing: run the evaluate step (snakemake {path})")
    return json.loads(path.read_text())


def table2(rows: dict[str, str | Path], crops: str = "ten") -> pd.DataFrame:
    """Table 2 rows named in `rows` (paper row name -> metrics JSON), paper values beside ours."""
    if crops not in CROP_NAMES:
        raise ConfigError(f"evaluation.table_crops must be 'center' or 'ten', not {crops!r}")
    published = paper.TABLE2.set_index("model")
    records = []
    for name, path in rows.items():
        if name not in published.index:
            raise ConfigError(f"tables.table2: {name!r} is not a row of the paper's Table 2; "
                              f"choose from: {'; '.join(published.index)}")
        metrics = _load_metrics(path)
        val = metrics["val"][crops]
        records.append({
            "model": name,
            "paper_val_top1": published.loc[name, "val_top1"],
            "ours_val_top1": round(val["top1_error"], 2),
            "paper_val_top5": published.loc[name, "val_top5"],
            "ours_val_top5": round(val["top5_error"], 2),
            "paper_test_top5": published.loc[name, "test_top5"],
            "ours_test_top5": "n/a (no test server)",
            "ours_chance_top1": round(metrics["chance_top1_error"], 2),
            "arch": metrics["arch"],
            "seed": metrics["seed"],
        })
    return pd.DataFrame.from_records(records)


def table2_footnote(rows: dict[str, str | Path], crops: str) -> str:
    metrics = _load_metrics(next(iter(rows.values())))
    return (
        f"Errors in %. Ours: validation split of the prepared data ({metrics['val_images']} images, "
        f"{metrics['num_classes']} classes, chance top-1 error {metrics['chance_top1_error']:.1f}%), "
        f"{CROP_NAMES[crops]}; one model per row (seed {metrics['seed']}, {metrics['epochs']} epochs). "
        "Paper: ImageNet 2012, 1000 classes; its test column came from the evaluation server, which has no "
        "counterpart here."
    )


def write_table(df: pd.DataFrame, csv_path: str | Path, md_path: str | Path, title: str, footnote: str) -> None:
    """Write `df` as CSV and as a Markdown table with a title and a footnote (both atomically)."""
    atomic_write_text(csv_path, df.to_csv(index=False))
    shown = df.astype(object).where(df.notna(), "-")
    atomic_write_text(md_path, f"# {title}\n\n{shown.to_markdown(index=False)}\n\n{footnote}\n")

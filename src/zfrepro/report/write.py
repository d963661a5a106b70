"""Every table of the study is written the same way: a CSV for machines, a Markdown file for people."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zfrepro.io import atomic_write_text


def write_table(df: pd.DataFrame, csv_path: str | Path, md_path: str | Path, title: str, footnote: str) -> None:
    """Write `df` as CSV and as a Markdown table with a title and a footnote (both atomically)."""
    atomic_write_text(csv_path, df.to_csv(index=False))
    shown = df.astype(object).where(df.notna(), "-")
    atomic_write_text(md_path, f"# {title}\n\n{shown.to_markdown(index=False)}\n\n{footnote}\n")

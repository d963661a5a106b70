"""Caltech images that are also ImageNet training images (paper, section 5: "normalized correlation").

The paper found 44 Caltech-101 and 243 Caltech-256 images in the ImageNet 2012 training set, removed them
from ImageNet and retrained. It does not say on what the correlation was computed; this project compares
small greyscale thumbnails of the whole image (resized, not cropped, so a rescaled or re-encoded copy still
matches), each flattened to a zero-mean, unit-norm vector: the dot product of two thumbnails is then their
normalized (Pearson) correlation. Every Caltech image is matched against every ImageNet training image by
chunked matrix products; an image whose best match reaches the threshold is reported as a duplicate.
`prepare --exclude` then leaves those ImageNet images out of pretraining.

Memory does not grow with the number of ImageNet images: their thumbnails are decoded by a bounded window of
worker tasks and scored one chunk at a time against the (smaller) Caltech side, which stays in memory. What
is kept per ImageNet image is its path (the listing the search is given).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from zfrepro.data.preprocess import load_rgb
from zfrepro.errors import ConfigError, DataError
from zfrepro.parallel import map_in_workers

PAPER_DUPLICATES = {"caltech101": 44, "caltech256": 243}  # paper, section 5
DATASETS = tuple(PAPER_DUPLICATES)
COLUMNS = ["caltech_path", "imagenet_path", "correlation"]
# Measured on the default generated data (4000 ImageNet training images; Caltech-101 1120 and Caltech-256
# 1976 images, 10 planted copies each): planted copies correlate >= 0.9986 at any size; the best match of
# every other image reaches 0.970 with 16-pixel thumbnails but only 0.955 with 32 (shared background photos).
DEFAULT_SIZE = 32
DEFAULT_THRESHOLD = 0.99
DEFAULT_BATCH = 2048


def check_settings(size: int, threshold: float, batch: int = DEFAULT_BATCH) -> None:
    """ConfigError naming the transfer.overlap key of a bad thumbnail size, threshold or batch."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ConfigError(f"transfer.overlap.size = {size!r}; it must be an integer >= 2 (thumbnail side)")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not -1.0 < threshold <= 1.0:
        raise ConfigError(f"transfer.overlap.threshold = {threshold!r}; it must be a correlation in (-1, 1]")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"overlap --batch = {batch!r}; it must be a positive integer")


def thumbnail(path: str | os.PathLike, size: int) -> np.ndarray:
    """The whole image, greyscale, resized to size x size: a float32 [size*size] zero-mean unit-norm vector.

    A flat image has no correlation with anything: it gives the zero vector (correlation 0).
    """
    grey = load_rgb(path).convert("L").resize((size, size), Image.Resampling.BILINEAR)
    v = np.asarray(grey, dtype=np.float32).reshape(-1)
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-6 else np.zeros_like(v)


def _thumb(path: str, size: int) -> tuple[np.ndarray | None, str | None]:
    """Worker: (thumbnail, None), or (None, reason) for an unreadable file."""
    try:
        return thumbnail(path, size), None
    except DataError as exc:
        return None, str(exc)


def _thumbnails(
    paths: Sequence[str], size: int, threads: int, desc: str
) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Thumbnails of `paths` in order, decoded in `threads` worker processes (a bounded window), with progress."""
    return map_in_workers(partial(_thumb, size=size), paths, threads, desc)


def _warn_unreadable(what: str, reasons: list[str], total: int) -> None:
    if reasons:
        print(f"warning: {len(reasons)} of {total} {what} images are unreadable and match nothing: "
              f"{'; '.join(reasons[:3])}", file=sys.stderr)


def find_duplicates(
    query_paths: Sequence[str],
    reference_paths: Sequence[str],
    size: int = DEFAULT_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    batch: int = DEFAULT_BATCH,
    threads: int = 1,
) -> pd.DataFrame:
    """The best reference match of every query image; rows (caltech_path, imagenet_path, correlation) where
    that correlation is >= threshold, in query order. Paths are written as absolute paths.

    The query thumbnails Q [Nq, D] (D = size^2) stay in memory; the references are decoded as a stream (at
    most a few chunks of thumbnails per worker waiting: zfrepro.parallel) and scored `batch` at a
    time (Q @ R_chunk^T), keeping a running maximum and argmax per query, so memory is
    4 * Nq * (D + batch) bytes whatever the number of references: for the paper's case (Caltech-256's 30.6k
    images against ImageNet's 1.28M, size 32, batch 2048) about 0.4 GB. Measured on 2 CPU cores: one chunk
    of 2048 references against 40k queries takes 1.3 s at size 32 (0.7 s at 16), so 1.28M references ~13
    minutes of products; decoding a 500x375 JPEG into a thumbnail takes ~2 ms per core, so 1.28M images
    ~45 minutes on 1 core, ~3 minutes on 16. Unreadable files are skipped with a warning.
    `result.attrs` holds the counts and the best correlation of the queries below the threshold.
    """
    check_settings(size, threshold, batch)
    dim = size * size
    queries = np.zeros((len(query_paths), dim), dtype=np.float32)  # unreadable rows stay 0: match nothing
    bad_queries = []
    for i, (vec, reason) in enumerate(_thumbnails(query_paths, size, threads, "overlap: caltech")):
        if vec is None:
            bad_queries.append(reason or "")
        else:
            queries[i] = vec
    _warn_unreadable("query", bad_queries, len(query_paths))
    q = torch.from_numpy(queries)
    best = torch.full((len(query_paths),), -float("inf"))
    arg = torch.full((len(query_paths),), -1, dtype=torch.int64)
    chunk = np.zeros((batch, dim), dtype=np.float32)
    filled, offset, bad_refs = 0, 0, []

    def score(n: int) -> None:
        # strict >: among equal correlations the earliest reference wins, as in a brute-force scan
        value, index = (q @ torch.from_numpy(chunk[:n]).T).max(dim=1)
        better = value > best
        best[better] = value[better]
        arg[better] = index[better] + offset

    for vec, reason in _thumbnails(reference_paths, size, threads, "overlap: imagenet train"):
        if vec is None:
            bad_refs.append(reason or "")
            vec = np.zeros(dim, dtype=np.float32)  # keeps indices aligned with reference_paths
        chunk[filled] = vec
        filled += 1
        if filled == batch:
            score(filled)
            offset, filled = offset + filled, 0
    if filled and len(query_paths):
        score(filled)
    _warn_unreadable("reference", bad_refs, len(reference_paths))
    hit = best >= threshold
    rows = [(os.path.abspath(query_paths[i]), os.path.abspath(reference_paths[int(arg[i])]), float(best[i]))
            for i in torch.nonzero(hit).flatten().tolist()]
    result = pd.DataFrame(rows, columns=COLUMNS)
    below = best[~hit & torch.isfinite(best)]
    result.attrs = {"queries": len(query_paths), "references": len(reference_paths),
                    "unreadable_queries": len(bad_queries), "unreadable_references": len(bad_refs),
                    "best_below_threshold": float(below.max()) if len(below) else None}
    return result


# ------------------------------------------------------------------------------------------------------------
# Planted duplicates of the generated data, the table, and the exclusion list for `prepare`.


def planted_pairs(caltech_root: str | os.PathLike, imagenet_root: str | os.PathLike) -> list[tuple[str, str]] | None:
    """The (caltech, imagenet) absolute paths the generator copied in (synthetic.json), or None for real data."""
    manifest = Path(caltech_root) / "synthetic.json"
    if not manifest.is_file():
        return None
    planted = json.loads(manifest.read_text()).get("imagenet_duplicates", [])
    return [(os.path.abspath(Path(caltech_root) / d["caltech"]), os.path.abspath(Path(imagenet_root) / d["imagenet"]))
            for d in planted]


def summary_path(csv_path: str | os.PathLike) -> Path:
    """The JSON beside an overlap CSV: the counts the table needs (the CSV only lists duplicates)."""
    return Path(csv_path).with_suffix(".json")


def read_overlap_csv(path: str | os.PathLike, columns: Sequence[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"overlap file {path} is missing: run the overlap analysis (snakemake {path})")
    df = pd.read_csv(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)}; it is not an overlap CSV "
                        f"(columns {', '.join(COLUMNS)}): rerun the overlap analysis")
    return df


def excluded_paths(csvs: Sequence[str | os.PathLike]) -> list[str]:
    """The imagenet_path column of every overlap CSV, without repeats: what `prepare --exclude` drops."""
    out: dict[str, None] = {}
    for path in csvs:
        out.update(dict.fromkeys(read_overlap_csv(path, ["imagenet_path"])["imagenet_path"].astype(str)))
    return list(out)

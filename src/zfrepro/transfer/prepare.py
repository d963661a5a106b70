"""Decode a transfer dataset once into the prepared-split format: Caltech-101/256 as all.pt, PASCAL VOC 2012 as
train.pt and val.pt with its difficult flags (paper section 5)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from zfrepro.data.datasets import image_list, open_caltech101, open_caltech256, open_voc
from zfrepro.data.prepare import data_params, encoding, prepare_image_list
from zfrepro.data.registry import CALTECH, TRANSFER
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save, atomic_write_json, load_result

DATASETS = TRANSFER  # the transfer sets (zfrepro.data.registry)
VOC_SPLITS = ("train", "val")


def _open_caltech(dataset: str, root: str | os.PathLike, background: bool) -> Any:
    if dataset == "caltech101":
        return open_caltech101(root, include_background=background)
    return open_caltech256(root, include_clutter=background)


def _kept_rows(paths: Sequence[str], skipped: Sequence[str]) -> list[int]:
    """Indices of `paths` that prepare_image_list kept (it lists the skipped ones as str(path))."""
    dropped = set(skipped)
    return [i for i, p in enumerate(paths) if str(p) not in dropped]


def _prepare_voc_split(root: str | os.PathLike, split: str, out_path: Path, p: dict[str, Any],
                       threads: int) -> Any:
    """One VOC image set into `out_path`, with "difficult_only" rows aligned to the kept images."""
    dataset = open_voc(root, split)
    paths, labels, classes = image_list(dataset)
    summary = prepare_image_list(paths, labels, classes, out_path, p, threads, root=root, desc=f"prepare voc {split}")
    keep = _kept_rows(paths, summary.skipped)
    if len(keep) != summary.count:
        raise DataError(f"{out_path}: {summary.count} images kept but {len(keep)} paths match; duplicate paths?")
    # prepare_image_list knows nothing of VOC's difficult flags, so add them to the written split.
    data = load_result(out_path)
    data["difficult_only"] = dataset.difficult_only[torch.as_tensor(keep, dtype=torch.long)].clone()
    atomic_torch_save(out_path, data)
    return summary


def prepare_transfer(dataset: str, root: str | os.PathLike, out_dir: str | os.PathLike,
                     params: dict[str, Any] | None, threads: int, background: bool = False) -> dict[str, Any]:
    """Decode a transfer dataset into `out_dir` (all.pt, or train.pt + val.pt for VOC) plus manifest.json.

    `params` is the config's data section (image_size, crop_size, cache, ...); `background` adds Caltech-101's
    BACKGROUND_Google or Caltech-256's clutter class as the last class. Returns the manifest.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"transfer dataset {dataset!r} is unknown; use one of {', '.join(DATASETS)}")
    out = Path(out_dir)
    p = data_params(params)
    summaries = {}
    if dataset in CALTECH:
        paths, labels, classes = image_list(_open_caltech(dataset, root, background))
        summaries["all"] = prepare_image_list(paths, labels, classes, out / "all.pt", p, threads, root=root,
                                              desc=f"prepare {dataset}")
    else:
        for split in VOC_SPLITS:
            summaries[split] = _prepare_voc_split(root, split, out / f"{split}.pt", p, threads)
    first = next(iter(summaries.values()))
    manifest: dict[str, Any] = {
        "dataset": dataset,
        "root": str(Path(root).resolve()),
        "image_size": p["image_size"],
        "crop_size": p["crop_size"],
        "classes": first.classes,
        "counts": {name: s.count for name, s in summaries.items()},
        "mode": {name: s.mode for name, s in summaries.items()},
        "encoding": {name: encoding(s.mode, p) for name, s in summaries.items()},
        "skipped": {name: s.skipped for name, s in summaries.items()},
    }
    if dataset in CALTECH:
        manifest["background"] = bool(background)
    atomic_write_json(out / "manifest.json", manifest)
    return manifest

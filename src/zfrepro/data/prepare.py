"""Decode a dataset once into the prepared-split format the trainer reads (`results/data/{dataset}/`).

Every image is decoded once, resized (shorter side to data.image_size) and centre-cropped in parallel worker
processes; unreadable files are skipped and listed. A split is written either as a uint8 tensor cache
(memory mode) or as shards of stored images beside the split file (stream mode, for splits too big for
memory; see zfrepro.data.shards), together with the per-pixel mean image of the training split on the
0..255 scale (paper, section 3). Peak memory in stream mode does not grow with the number of images beyond
the split's index (labels, offsets): each worker holds one image at a time.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zfrepro.data.datasets import image_list, imagenet_class_names, open_imagenet
from zfrepro.data.preprocess import load_rgb, resize_center_crop_array
from zfrepro.data.shards import FORMATS, encoding_name, index_of, remove_stale, shard_folder, shard_jobs, write_shard
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save, atomic_write_json
from zfrepro.parallel import map_in_workers

# The keys of the config `data` section that preparing reads. All are required: the workflow passes the whole
# section, and their defaults live in workflow/schemas/config.schema.yaml only.
DATA_KEYS = ("image_size", "crop_size", "cache", "cache_max_gb", "max_bad_fraction", "mean_max_images",
             "shard_format", "jpeg_quality", "shard_images")
CACHE_MODES = ("auto", "memory", "stream")
_BYTES_PER_GB = 1e9


@dataclass
class SplitSummary:
    """What prepare_image_list wrote: counts, skipped files, mode and (if asked) the mean image."""

    path: str
    count: int
    total: int
    mode: str
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    mean: torch.Tensor | None = None
    mean_images: int = 0
    class_names: list[str] | None = None
    excluded: int = 0


def data_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """The config `data` section with its values checked (ConfigError names the key); every key of DATA_KEYS
    is required."""
    merged = {k: v for k, v in (params or {}).items() if v is not None or k == "mean_max_images"}
    missing = [k for k in DATA_KEYS if k not in merged]
    if missing:
        raise ConfigError(f"data.{missing[0]}: missing; pass the whole data section of the config "
                          f"(keys {', '.join(DATA_KEYS)})")
    size = merged["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"data.image_size must be a positive integer, got {size!r}")
    crop = merged["crop_size"]
    if isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= size:
        raise ConfigError(f"data.crop_size must be an integer in 1..data.image_size ({size}), got {crop!r}")
    if merged["cache"] not in CACHE_MODES:
        raise ConfigError(f"data.cache must be one of {', '.join(CACHE_MODES)}, got {merged['cache']!r}")
    gb = merged["cache_max_gb"]
    if isinstance(gb, bool) or not isinstance(gb, int | float) or gb < 0:
        raise ConfigError(f"data.cache_max_gb must be a non-negative number, got {gb!r}")
    bad = merged["max_bad_fraction"]
    if isinstance(bad, bool) or not isinstance(bad, int | float) or not 0 <= bad <= 1:
        raise ConfigError(f"data.max_bad_fraction must be a number in [0, 1], got {bad!r}")
    most = merged["mean_max_images"]
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        raise ConfigError(f"data.mean_max_images must be null or a positive integer, got {most!r}")
    if merged["shard_format"] not in FORMATS:
        raise ConfigError(f"data.shard_format must be one of {', '.join(FORMATS)}, got {merged['shard_format']!r}")
    quality = merged["jpeg_quality"]
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"data.jpeg_quality must be an integer in 1..100, got {quality!r}")
    per_shard = merged["shard_images"]
    if isinstance(per_shard, bool) or not isinstance(per_shard, int) or per_shard < 1:
        raise ConfigError(f"data.shard_images must be a positive integer, got {per_shard!r}")
    return merged


def encoding(mode: str, params: dict[str, Any]) -> str:
    """How a split's pixels are stored, in words: uint8 (memory, raw shards) or the JPEG quality."""
    return "uint8" if mode == "memory" else encoding_name(params["shard_format"], params["jpeg_quality"])


def choose_mode(count: int, image_size: int, params: dict[str, Any]) -> str:
    """'memory' or 'stream' for a split of `count` images, following data.cache (auto: by decoded size)."""
    if params["cache"] != "auto":
        return params["cache"]
    decoded_bytes = count * 3 * image_size * image_size
    return "memory" if decoded_bytes < params["cache_max_gb"] * _BYTES_PER_GB else "stream"


def mean_selection(count: int, max_images: int | None) -> np.ndarray:
    """Boolean mask of the images the mean is taken over: all, or `max_images` evenly spaced ones.

    Even spacing over a class-sorted list keeps every class represented, unlike the first k images.
    """
    mask = np.zeros(count, dtype=bool)
    if max_images is None or max_images >= count:
        mask[:] = True
    else:
        mask[np.unique(np.linspace(0, count - 1, max_images).round().astype(np.int64))] = True
    return mask


def _decode(path: str, size: int) -> tuple[np.ndarray | None, str | None]:
    """Worker: (uint8 [3, size, size], None), or (None, reason) for an unreadable file."""
    try:
        return resize_center_crop_array(load_rgb(path), size), None
    except DataError as exc:
        return None, str(exc)


def _decoded(
    paths: Sequence[str], size: int, threads: int, desc: str
) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Decode `paths` in order with `threads` worker processes, showing progress on stderr."""
    return map_in_workers(partial(_decode, size=size), paths, threads, desc)


def prepare_image_list(
    paths: Sequence[str],
    labels: Sequence[Any],
    classes: Sequence[str],
    out_path: str | os.PathLike,
    params: dict[str, Any] | None,
    threads: int,
    root: str | os.PathLike = "",
    compute_mean: bool = False,
    desc: str | None = None,
) -> SplitSummary:
    """Decode `paths`, skip unreadable ones, and write a prepared split (contract format) to `out_path`.

    Labels are ints or multi-hot rows. With `compute_mean`, also return the per-pixel mean image (float32
    [3, S, S], 0..255) over up to data.mean_max_images of the readable images.
    """
    p = data_params(params)
    size, count = p["image_size"], len(paths)
    if count == 0:
        raise DataError(f"no images to prepare for {out_path} (the dataset under {root or '?'} is empty)")
    if len(labels) != count:
        raise DataError(f"{count} image paths but {len(labels)} labels for {out_path}")
    mode = choose_mode(count, size, p)
    selected = mean_selection(count, p["mean_max_images"]) if compute_mean else np.zeros(count, dtype=bool)
    desc = desc or Path(out_path).stem
    if mode == "memory":
        stored, keep, skipped, reasons, mean_sum, mean_count = _decode_into_memory(paths, size, selected, threads,
                                                                                   desc)
        shutil.rmtree(shard_folder(out_path), ignore_errors=True)  # left by an earlier stream-mode run
    else:
        stored, keep, skipped, reasons, mean_sum, mean_count = _write_shards(paths, selected, out_path, p, threads,
                                                                             desc)
    _check_bad_fraction(skipped, reasons, count, p["max_bad_fraction"], out_path)
    if compute_mean and mean_count == 0:
        raise DataError(f"no readable image to compute the mean image for {out_path}")
    split: dict[str, Any] = {
        "classes": [str(c) for c in classes],
        "labels": torch.as_tensor([labels[i] for i in keep], dtype=torch.int64),
        "image_size": size,
        "skipped": skipped,
        "root": str(Path(root).resolve()) if str(root) else "",
        **stored,
    }
    if mode != "memory":
        split["paths"] = [os.path.abspath(paths[i]) for i in keep]  # where each stored image came from
    atomic_torch_save(out_path, split)
    mean = torch.from_numpy((mean_sum / mean_count).astype(np.float32)) if compute_mean else None
    return SplitSummary(
        path=str(out_path), count=len(keep), total=count, mode=mode, classes=list(split["classes"]),
        skipped=skipped, mean=mean, mean_images=mean_count,
    )  # fmt: skip


def _decode_into_memory(
    paths: Sequence[str], size: int, selected: np.ndarray, threads: int, desc: str
) -> tuple[dict[str, Any], list[int], list[str], list[str], np.ndarray, int]:
    """Memory mode: every readable image into one uint8 tensor. Returns ({"images": ...}, kept rows, skipped
    files, their reasons, the mean image's float64 sum and count)."""
    count = len(paths)
    images = torch.empty((count, 3, size, size), dtype=torch.uint8)
    mean_sum = np.zeros((3, size, size), dtype=np.float64)  # float64: exact sums of 0..255 over millions
    mean_count = 0
    keep: list[int] = []
    skipped: list[str] = []
    reasons: list[str] = []
    for i, (array, reason) in enumerate(_decoded(paths, size, threads, desc)):
        if array is None:
            skipped.append(str(paths[i]))
            reasons.append(reason or "")
            continue
        images[len(keep)] = torch.from_numpy(array)
        keep.append(i)
        if selected[i]:
            mean_sum += array
            mean_count += 1
    # Slicing keeps the whole storage alive and torch.save would write all of it, so copy when short.
    stored = images if len(keep) == count else images[: len(keep)].clone()
    return {"images": stored}, keep, skipped, reasons, mean_sum, mean_count


def _write_shards(
    paths: Sequence[str], selected: np.ndarray, out_path: str | os.PathLike, p: dict[str, Any], threads: int,
    desc: str,
) -> tuple[dict[str, Any], list[int], list[str], list[str], np.ndarray, int]:
    """Stream mode: the images into shards beside `out_path`, one shard per worker task; shards an earlier
    (killed) run finished are kept. Same returns as _decode_into_memory, with {"shards": index}."""
    size = p["image_size"]
    folder = shard_folder(out_path)
    jobs = shard_jobs(paths, selected, folder, size, p["shard_format"], p["jpeg_quality"], p["shard_images"])
    remove_stale(folder, jobs)
    mean_sum = np.zeros((3, size, size), dtype=np.float64)
    mean_count = 0
    keep: list[int] = []
    skipped: list[str] = []
    reasons: list[str] = []
    metas = []
    resumed = 0
    for job, meta in zip(jobs, map_in_workers(write_shard, jobs, threads, desc, unit="shard", chunk=1), strict=True):
        keep.extend(job.start + int(r) for r in meta["kept"])
        skipped.extend(meta["skipped"])
        reasons.extend(meta["reasons"])
        mean_sum += meta["mean_sum"].numpy()
        mean_count += meta["mean_count"]
        resumed += meta["resumed"]
        metas.append({k: v for k, v in meta.items() if k not in ("mean_sum", "skipped", "reasons")})
    if resumed:
        print(f"{out_path}: kept {resumed} of {len(jobs)} shards an earlier run finished", file=sys.stderr)
    return {"shards": index_of(jobs, metas, Path(out_path))}, keep, skipped, reasons, mean_sum, mean_count


def _check_bad_fraction(
    skipped: list[str], reasons: list[str], count: int, limit: float, out_path: str | os.PathLike
) -> None:
    """Warn about skipped images; DataError naming data.max_bad_fraction when too many were unreadable."""
    if not skipped:
        return
    fraction = len(skipped) / count
    examples = "; ".join(reasons[:3])
    if fraction > limit:
        raise DataError(
            f"{len(skipped)} of {count} images ({fraction:.4%}) are unreadable for {out_path}, more than "
            f"data.max_bad_fraction = {limit}; fix the files or raise data.max_bad_fraction. "
            f"First: {examples}"
        )
    print(
        f"warning: skipped {len(skipped)} unreadable image(s) of {count} for {out_path} "
        f"(listed under 'skipped'): {examples}",
        file=sys.stderr,
    )


def prepare_split(
    root: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    params: dict[str, Any] | None,
    threads: int,
    classes: Sequence[str] | None = None,
    compute_mean: bool = False,
    exclude: Collection[str | os.PathLike] = (),
) -> SplitSummary:
    """Prepare one ImageNet split (`train` or `val`) into `out_path`.

    With `classes` (the training split's wnids), labels are mapped onto that order, so train and val agree
    even when a val folder lacks a class. Files in `exclude` are left out before decoding (see
    drop_excluded); SplitSummary.excluded counts them.
    """
    dataset = open_imagenet(root, split)
    paths, labels, wnids = image_list(dataset)
    paths, labels, excluded = drop_excluded(paths, labels, exclude, split)
    if classes is not None:
        index = {wnid: i for i, wnid in enumerate(classes)}
        unknown = sorted(set(wnids) - set(index))
        if unknown:
            raise DataError(
                f"data.imagenet_root: {split}/ has class folders absent from the training split: "
                f"{unknown[:5]}"
            )
        labels = [index[wnids[y]] for y in labels]
        names_by_wnid = dict(zip(wnids, imagenet_class_names(dataset), strict=True))
        wnids = list(classes)
        class_names = [names_by_wnid.get(w, w) for w in wnids]
    else:
        class_names = imagenet_class_names(dataset)
    summary = prepare_image_list(
        paths, labels, wnids, out_path, params, threads, root=root, compute_mean=compute_mean,
        desc=f"prepare {split}",
    )  # fmt: skip
    summary.class_names = class_names
    summary.excluded = excluded
    return summary


def drop_excluded(
    paths: Sequence[str], labels: Sequence[Any], exclude: Collection[str | os.PathLike], split: str
) -> tuple[list[str], list[Any], int]:
    """(paths, labels) without the files in `exclude` (compared as resolved absolute paths), and how many.

    Every excluded file must be in the split: a path that matches nothing means the list came from another
    copy of the dataset, and silently training on the images it meant to remove would defeat it.
    """
    if not exclude:
        return list(paths), list(labels), 0
    # Folders resolved once each (a million realpath calls would take minutes); the file name joined on.
    folder = lru_cache(maxsize=None)(os.path.realpath)

    def key(path: str | os.PathLike) -> str:
        absolute = os.path.abspath(path)
        return os.path.join(folder(os.path.dirname(absolute)), os.path.basename(absolute))

    drop = {key(p) for p in exclude}
    keep = [i for i, p in enumerate(paths) if key(p) not in drop]
    unmatched = len(drop) - (len(paths) - len(keep))
    if unmatched:
        present = {key(p) for p in paths}
        example = next(str(p) for p in sorted(drop) if p not in present)
        raise DataError(
            f"{unmatched} of the {len(drop)} images to exclude are not in the ImageNet {split} split (e.g. "
            f"{example}); the overlap CSVs (imagenet_path) were made for another data.imagenet_root: rerun "
            "the overlap analysis"
        )
    return [paths[i] for i in keep], [labels[i] for i in keep], len(paths) - len(keep)


def prepare_imagenet(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: dict[str, Any] | None,
    threads: int,
    exclude: Collection[str | os.PathLike] = (),
) -> dict[str, Any]:
    """Write train.pt, val.pt, mean.pt and manifest.json for ImageNet under `out_dir`; return the manifest.

    `exclude`: training files to leave out (the images the overlap analysis found in Caltech, paper 5);
    the manifest's "excluded" counts them.
    """
    out = Path(out_dir)
    p = data_params(params)
    train = prepare_split(root, "train", out / "train.pt", p, threads, compute_mean=True, exclude=exclude)
    val = prepare_split(root, "val", out / "val.pt", p, threads, classes=train.classes)
    assert train.mean is not None
    atomic_torch_save(out / "mean.pt", train.mean)
    manifest = {
        "dataset": "imagenet",
        "root": str(Path(root).resolve()),
        "image_size": p["image_size"],
        "crop_size": p["crop_size"],  # recorded so training and evaluation crop what was prepared for
        "classes": train.classes,
        "class_names": train.class_names,
        "counts": {"train": train.count, "val": val.count},
        "mode": {"train": train.mode, "val": val.mode},
        # how the pixels are stored: JPEG shards change them slightly, so the training fingerprint records it
        "encoding": {"train": encoding(train.mode, p), "val": encoding(val.mode, p)},
        "skipped": {"train": train.skipped, "val": val.skipped},
        "mean_images": train.mean_images,
        "excluded": train.excluded,
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest



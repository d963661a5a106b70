"""The non-pretrained baseline: one split's training images as a folder the ImageNet trainer reads, the network
trained from scratch there and scored on the split's test images (Tables 4, 5, Fig 9)."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from zfrepro.data.shards import subset_index
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save, atomic_write_json, load_json_result, load_result
from zfrepro.progress import progress


def _load_json(value: str | os.PathLike | Mapping) -> dict:
    return dict(value) if isinstance(value, Mapping) else load_json_result(value)


def _subset(parent: Mapping[str, Any], rows: Sequence[int], parent_path: Path, out_path: Path) -> dict[str, Any]:
    """Rows of a prepared split, in the same format: copied images (memory mode), or an index into the
    parent's shards (stream mode; the shards themselves are shared, not copied)."""
    index = torch.as_tensor(rows, dtype=torch.long)
    out: dict[str, Any] = {"classes": list(parent["classes"]), "labels": parent["labels"][index].clone(),
                           "image_size": int(parent["image_size"]), "skipped": [], "root": parent.get("root", ""),
                           "source": str(parent_path), "indices": index}
    if "images" in parent:
        out["images"] = parent["images"][index].clone()
    else:
        out["shards"] = subset_index(parent["shards"], index, parent_path, out_path)
        out["paths"] = [parent["paths"][i] for i in rows]
    return out


def split_mean(split: PreparedSplit, batch_size: int = 256, workers: int = 0) -> torch.Tensor:
    """Per-pixel mean image (float32 [3, S, S], 0..255) of all images of a split, decoded as the trainer does."""
    total = torch.zeros((3, split.image_size, split.image_size), dtype=torch.float64)
    batches = split.batches(torch.arange(len(split)), batch_size, workers=workers)
    for images, _ in progress(batches, desc="mean image", total=math.ceil(len(split) / batch_size), unit="batch",
                              leave=False):
        total += images.to(torch.float64).sum(0)
    return (total / max(1, len(split))).to(torch.float32)


def write_scratch_data(split_path: str | os.PathLike, splits_json: str | os.PathLike | Mapping, split_index: int,
                       n: int, out_dir: str | os.PathLike, threads: int = 1) -> dict[str, Any]:
    """A trainer-ready folder for split `split_index` at `n` training images per class (non-pretrained runs).

    train.pt = the split's training images, val.pt = its test images (rows of `split_path`, same storage
    mode), mean.pt = the training images' mean, manifest.json with the parent's crop_size. Returns the manifest.
    """
    split_path, out = Path(split_path), Path(out_dir)
    splits = _load_json(splits_json)
    if isinstance(split_index, bool) or not isinstance(split_index, int) or \
            not 0 <= split_index < len(splits["splits"]):
        raise ConfigError(f"transfer.splits: split {split_index!r} does not exist; the splits file has "
                          f"{len(splits['splits'])} (0..{len(splits['splits']) - 1})")
    chosen = splits["splits"][split_index]
    if str(n) not in chosen["train"]:
        raise ConfigError(f"train size {n!r} is not among the splits file's sizes {splits['sizes']}; add it to "
                          "the dataset's transfer train_sizes (or fig9_sizes)")
    if not split_path.exists():
        raise DataError(f"prepared split {split_path} is missing: run the prepare-transfer step")
    parent = load_result(split_path, mmap=True)  # mmap: only the chosen rows are read
    if list(parent["classes"]) != list(splits["classes"]):
        raise DataError(f"the splits file was made for other classes than {split_path}: rerun transfer-splits")
    parent_manifest = _load_json(split_path.parent / "manifest.json")
    train_rows, test_rows = chosen["train"][str(n)], chosen["test"]
    if max(train_rows + test_rows, default=-1) >= len(parent["labels"]):
        raise DataError(f"the splits file indexes past the {len(parent['labels'])} images of {split_path}: "
                        "rerun transfer-splits")
    atomic_torch_save(out / "train.pt", _subset(parent, train_rows, split_path, out / "train.pt"))
    atomic_torch_save(out / "val.pt", _subset(parent, test_rows, split_path, out / "val.pt"))
    train = PreparedSplit(out / "train.pt")
    mean = split_mean(train, workers=0 if train.in_memory else threads)
    atomic_torch_save(out / "mean.pt", mean)
    manifest = {
        "dataset": parent_manifest.get("dataset", splits.get("dataset")),
        "image_size": int(parent["image_size"]),
        "crop_size": int(parent_manifest["crop_size"]),
        "classes": list(parent["classes"]),
        "counts": {"train": len(train_rows), "val": len(test_rows)},
        "mode": dict.fromkeys(("train", "val"), "memory" if train.in_memory else "stream"),  # the parent's
        "encoding": dict.fromkeys(("train", "val"), parent_manifest.get("encoding", {}).get("all", "uint8")),
        "train_per_class": int(n),
        "split": split_index,
        "source": str(split_path),
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def run_scratch(data_dir: str | os.PathLike, splits_file: str | os.PathLike, split_index: int, n: int,
                arch: str, arch_params: dict, train_params: dict, out_dir: str | os.PathLike,
                device: str = "auto", threads: int = 1) -> dict[str, Any]:
    """The non-pretrained baseline for one (split, size): the transfer network trained from a fresh
    initialisation on the split's training images only, then scored on its test images.

    The split's images go to out_dir/.data (rewritten on a rerun, deleted at the end); the trainer writes
    final.pt and metrics.csv to out_dir and resumes there after an interruption; score.json is the result.
    """
    from zfrepro.io import atomic_write_json as write_json
    from zfrepro.model.train import train
    from zfrepro.model.train_config import TrainConfig
    from zfrepro.transfer.classifiers import score_scratch

    out = Path(out_dir)
    data = out / ".data"
    write_scratch_data(Path(data_dir) / "all.pt", splits_file, split_index, n, data, threads=threads)
    cfg = TrainConfig.from_dict({**train_params, "checkpoint_epochs": []})
    model = train(data, arch, arch_params, cfg, seed=split_index, out_dir=out, device=device, threads=threads)
    score = score_scratch(model, data, device=device)
    write_json(out / "score.json", score)
    shutil.rmtree(data)
    return score

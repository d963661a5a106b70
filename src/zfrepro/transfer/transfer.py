"""Transfer to Caltech-101, Caltech-256 and PASCAL VOC 2012 (paper section 5, Tables 4-7, Fig 9): the data side.

Four steps, each a function with a command around it:
  prepare_transfer  decode a target dataset once into the prepared-split format (all.pt, or VOC train/val.pt);
  make_splits       the random train/test splits (nested training sets, one test set per split);
  write_scratch_data  one split's images as a folder the ImageNet trainer reads; run_scratch trains the
                      network from scratch there and scores it (the non-pretrained baseline);
  extract_features  frozen features of chosen layers of the ImageNet model, from one forward pass.
The classifiers on top of the features live elsewhere; everything here is deterministic given its inputs.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from zfrepro.data.datasets import image_list, open_caltech101, open_caltech256, open_voc
from zfrepro.data.prepare import data_params, prepare_image_list
from zfrepro.data.preprocess import center_crop
from zfrepro.data.registry import CALTECH, TRANSFER
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save, atomic_write_json, load_json_result, load_result
from zfrepro.model.checkpoint import load_model
from zfrepro.options import json_arg, parse_json, resolve_device

DATASETS = TRANSFER  # the transfer sets (zfrepro.data.registry)
VOC_SPLITS = ("train", "val")
LAYER_KEYS = "transfer.table7_layers / transfer.voc.layer"


# ---------------------------------------------------------------------------------------------- preparation


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
        "skipped": {name: s.skipped for name, s in summaries.items()},
    }
    if dataset in CALTECH:
        manifest["background"] = bool(background)
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


# ---------------------------------------------------------------------------------------------- splits


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return int(value)


def _check_sizes(sizes: Any, key: str) -> list[int]:
    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not sizes:
        raise ConfigError(f"{key}: expected a non-empty list of training images per class, got {sizes!r}")
    return sorted({_positive_int(n, f"{key}[{i}]") for i, n in enumerate(sizes)})


def make_splits(labels: Sequence[int] | torch.Tensor | np.ndarray, classes: Sequence[str], sizes: Sequence[int],
                n_splits: int, test_per_class: int, seed: int, key: str, dataset: str | None = None) -> dict:
    """Random train/test splits of a single-label dataset (JSON-ready, indices into its prepared split).

    For split s and class c the class's indices are permuted with default_rng([seed, s, c]); the training set
    of size n is the first n of that permutation (so sizes are nested) and the test set is the next
    `test_per_class` after the largest size (fewer when the class is smaller: the paper's "up to 50").
    A class with no more images than the largest size raises ConfigError naming `key`.
    """
    sizes = _check_sizes(sizes, key)
    n_splits = _positive_int(n_splits, "transfer.splits")
    # fig9_sizes shares the Caltech-256 test size, so only a <dataset>.train_sizes key tells the section.
    section = key.rsplit(".", 1)[0] if key.endswith(".train_sizes") else f"transfer.{dataset or '<dataset>'}"
    test_per_class = _positive_int(test_per_class, f"{section}.test_per_class")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"transfer.seed: expected an integer >= 0, got {seed!r}")
    y = np.asarray(torch.as_tensor(labels).numpy() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    if y.ndim != 1:
        raise DataError(f"make_splits needs one label per image, got labels of shape {list(y.shape)} (multi-label?)")
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(f"labels lie in {y.min()}..{y.max()} but there are {len(classes)} classes")
    largest = sizes[-1]
    members = [np.flatnonzero(y == c) for c in range(len(classes))]
    for c, idx in enumerate(members):
        if len(idx) <= largest:
            raise ConfigError(f"{key}: class {classes[c]!r} has {len(idx)} images, but training on {largest} per "
                              f"class needs at least {largest + 1} (one left to test); lower the sizes or drop "
                              "the class")
    splits = []
    for s in range(n_splits):
        perms = [np.random.default_rng([int(seed), s, c]).permutation(idx) for c, idx in enumerate(members)]
        train = {str(n): sorted(int(i) for perm in perms for i in perm[:n]) for n in sizes}
        test = sorted(int(i) for perm in perms for i in perm[largest:largest + test_per_class])
        splits.append({"train": train, "test": test})
    return {"dataset": dataset, "seed": int(seed), "sizes": sizes, "test_per_class": test_per_class,
            "classes": [str(c) for c in classes], "splits": splits}


# ---------------------------------------------------------------------------------------------- scratch data


def _load_json(value: str | os.PathLike | Mapping) -> dict:
    return dict(value) if isinstance(value, Mapping) else load_json_result(value)


def _subset(parent: Mapping[str, Any], rows: Sequence[int], source: str) -> dict[str, Any]:
    """Rows of a prepared split, in the same format (images or paths, whichever the parent holds)."""
    index = torch.as_tensor(rows, dtype=torch.long)
    out: dict[str, Any] = {"classes": list(parent["classes"]), "labels": parent["labels"][index].clone(),
                           "image_size": int(parent["image_size"]), "skipped": [], "root": parent.get("root", ""),
                           "source": source, "indices": index}
    if "images" in parent:
        out["images"] = parent["images"][index].clone()
    else:
        out["paths"] = [parent["paths"][i] for i in rows]
    return out


def split_mean(split: PreparedSplit, batch_size: int = 256, workers: int = 0) -> torch.Tensor:
    """Per-pixel mean image (float32 [3, S, S], 0..255) of all images of a split, decoded as the trainer does."""
    total = torch.zeros((3, split.image_size, split.image_size), dtype=torch.float64)
    batches = split.batches(torch.arange(len(split)), batch_size, workers=workers)
    for images, _ in tqdm(batches, desc="mean image", total=math.ceil(len(split) / batch_size), unit="batch",
                          file=sys.stderr, mininterval=2.0, leave=False):
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
    atomic_torch_save(out / "train.pt", _subset(parent, train_rows, str(split_path)))
    atomic_torch_save(out / "val.pt", _subset(parent, test_rows, str(split_path)))
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
        "train_per_class": int(n),
        "split": split_index,
        "source": str(split_path),
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


# ---------------------------------------------------------------------------------------------- features


def pool_grid(shape: Sequence[int], max_feature_dim: int) -> int | None:
    """None when a [C, H, W] map fits max_feature_dim values; else the largest g with C*g*g <= max_feature_dim."""
    if len(shape) != 3 or math.prod(shape) <= max_feature_dim:
        return None
    grid = math.isqrt(max_feature_dim // shape[0])
    if grid < 1:
        raise ConfigError(f"transfer.max_feature_dim = {max_feature_dim} is below the {shape[0]} maps of a layer, "
                          "so not even a 1x1 grid fits; raise it")
    return grid


def layer_features(output: torch.Tensor, grid: int | None) -> torch.Tensor:
    """One layer's output [B, ...] as flat features [B, D], conv maps average-pooled to grid x grid first."""
    if grid is not None:
        output = F.adaptive_avg_pool2d(output, grid)
    return torch.flatten(output, 1)


def _check_layers(layers: Any, names: Sequence[str], model_path: str | os.PathLike) -> list[str]:
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ConfigError(f"{LAYER_KEYS}: expected a non-empty list of layer names, got {layers!r}")
    unknown = [layer for layer in layers if layer not in names]
    if unknown:
        raise ConfigError(f"{LAYER_KEYS}: {unknown} not layers of {model_path}; its layers are {list(names)}")
    return list(dict.fromkeys(layers))


@torch.no_grad()
def extract_features(model_path: str | os.PathLike, split_path: str | os.PathLike, mean_path: str | os.PathLike,
                     layers: Sequence[str], max_feature_dim: int, batch_size: int, device: str = "auto",
                     workers: int = 0) -> dict[str, dict[str, Any]]:
    """Frozen features of `layers` for every image of a prepared split, from one forward pass per batch.

    Centre crop of the mean-subtracted image (the model's crop_size), model in eval mode, outputs of
    ConvNet.forward_record; conv maps bigger than max_feature_dim are pooled (pool_grid). Returns per layer
    {"features" float16 [N, D], "labels", "layer", "map_shape", "grid", "model", "split", "classes"} (+
    "difficult_only" for VOC).
    """
    max_feature_dim = _positive_int(max_feature_dim, "transfer.max_feature_dim")
    batch_size = _positive_int(batch_size, "transfer.batch_size")
    dev = resolve_device(device)
    model, ckpt = load_model(model_path, dev)
    layers = _check_layers(layers, model.layer_names, model_path)
    crop = int(ckpt["crop_size"])
    split = PreparedSplit(split_path)
    mean = load_result(mean_path).to(dev)
    size = split.image_size
    if tuple(mean.shape) != (3, size, size) or not crop <= size:
        raise DataError(f"{split_path} holds {size}px images but the mean image {mean_path} is {list(mean.shape)} "
                        f"and the model crops {crop}px: prepare both with the same data.image_size")
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    shapes: dict[str, list[int]] = {}
    grids: dict[str, int | None] = {}
    batches = split.batches(torch.arange(len(split)), batch_size, workers=0 if split.in_memory else workers,
                            pin_memory=dev.type == "cuda")
    for images, _ in tqdm(batches, desc=f"features {Path(split_path).stem}", total=math.ceil(len(split) / batch_size),
                          unit="batch", file=sys.stderr, mininterval=2.0):
        _, record = model.forward_record(center_crop(images.to(dev, non_blocking=True), mean, crop))
        for layer in layers:
            output = record.outputs[layer]
            if layer not in shapes:
                shapes[layer] = list(output.shape[1:])
                grids[layer] = pool_grid(shapes[layer], max_feature_dim)
            chunks[layer].append(layer_features(output, grids[layer]).to(torch.float16).cpu())
        del record
    result = {}
    for layer in layers:
        features = torch.cat(chunks[layer]) if chunks[layer] else torch.empty((0, 0), dtype=torch.float16)
        if not torch.isfinite(features).all():
            raise DataError(f"{layer} features of {split_path} overflow float16 (|value| > 65504); the model "
                            f"{model_path} has diverged or its input is not mean-subtracted")
        result[layer] = {"features": features, "labels": split.labels, "layer": layer,
                         "map_shape": shapes.get(layer, []), "grid": grids.get(layer), "model": str(model_path),
                         "split": Path(split_path).stem, "classes": split.classes}
        if "difficult_only" in split.data:
            result[layer]["difficult_only"] = split.data["difficult_only"]
    return result


def save_features(result: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike) -> list[Path]:
    """Write each layer's features to {out_dir}/{layer}.pt (atomically); return the paths."""
    return [atomic_torch_save(Path(out_dir) / f"{layer}.pt", dict(data)) for layer, data in result.items()]


# ---------------------------------------------------------------------------------------------- command line


def configure_prepare_transfer_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro prepare-transfer`."""
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--root", required=True, help="the dataset folder (data.<dataset>_root)")
    p.add_argument("--out-dir", required=True, help="where all.pt (VOC: train.pt, val.pt) and manifest.json go")
    p.add_argument("--params", required=True, help="JSON: the data section of the config")
    p.add_argument("--background", type=json_arg(bool), default=False,
                   help="Caltech: keep the BACKGROUND_Google (101) or clutter (256) class as the last class")


def prepare_transfer_command(args: argparse.Namespace) -> None:
    torch.set_num_threads(max(1, args.threads))
    manifest = prepare_transfer(args.dataset, args.root, args.out_dir, parse_json(args.params, dict, "--params"),
                                max(1, args.threads), background=args.background)
    skipped = sum(len(v) for v in manifest["skipped"].values())
    print(f"{args.dataset}: {len(manifest['classes'])} classes, images {manifest['counts']}, modes "
          f"{manifest['mode']}, {skipped} skipped -> {args.out_dir}")


def configure_transfer_splits_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro transfer-splits`."""
    p.add_argument("--data-dir", required=True, help="prepared folder with all.pt and manifest.json")
    p.add_argument("--sizes", required=True, help="JSON list: training images per class")
    p.add_argument("--splits", type=int, required=True, help="number of random splits")
    p.add_argument("--test-per-class", type=int, required=True, help="test images per class (at most)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--key", required=True, help="the config key of the sizes, named in errors")
    p.add_argument("--out", required=True, help="the splits JSON file")


def transfer_splits_command(args: argparse.Namespace) -> None:
    torch.set_num_threads(max(1, args.threads))
    data_dir = Path(args.data_dir)
    data = load_result(data_dir / "all.pt", mmap=True)
    manifest = _load_json(data_dir / "manifest.json")
    splits = make_splits(data["labels"], data["classes"], parse_json(args.sizes, list, "--sizes"), args.splits,
                         args.test_per_class, args.seed, args.key, dataset=manifest.get("dataset"))
    atomic_write_json(args.out, splits)
    first = splits["splits"][0]
    print(f"{splits['dataset']}: {len(splits['splits'])} splits of {len(splits['classes'])} classes, train "
          f"{ {n: len(v) for n, v in first['train'].items()} } test {len(first['test'])} images -> {args.out}")


def run_scratch(data_dir: str | os.PathLike, splits_file: str | os.PathLike, split_index: int, n: int,
                arch: str, arch_params: dict, train_params: dict, out_dir: str | os.PathLike,
                device: str = "auto", threads: int = 1) -> dict[str, Any]:
    """The non-pretrained baseline for one (split, size): the transfer network trained from a fresh
    initialisation on the split's training images only, then scored on its test images.

    The split's images go to out_dir/.data (rewritten on a rerun, deleted at the end); the trainer writes
    final.pt and metrics.csv to out_dir and resumes there after an interruption; score.json is the result.
    """
    from zfrepro.io import atomic_write_json as write_json
    from zfrepro.model.train import TrainConfig, train
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


def configure_scratch_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro scratch`."""
    p.add_argument("--data-dir", required=True, help="prepared folder with all.pt and manifest.json")
    p.add_argument("--splits-file", required=True)
    p.add_argument("--split", type=int, required=True, help="which split (0-based; also the training seed)")
    p.add_argument("--n", type=int, required=True, help="training images per class")
    p.add_argument("--arch", required=True, help="the transfer network's name (transfer.arch)")
    p.add_argument("--arch-params", required=True, help="JSON: architectures.<arch>")
    p.add_argument("--train-params", required=True, help="JSON: the training section with transfer.scratch.training")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out-dir", required=True, help="final.pt, metrics.csv and score.json go here")


def scratch_command(args: argparse.Namespace) -> None:
    score = run_scratch(args.data_dir, args.splits_file, args.split, args.n, args.arch,
                        parse_json(args.arch_params, dict, "--arch-params"),
                        parse_json(args.train_params, dict, "--train-params"), args.out_dir, args.device,
                        max(1, args.threads))
    print(f"{score['dataset']} n={args.n} split {args.split}: mean per-class accuracy {score['accuracy']:.2f}% "
          f"on {score['test_images']} test images -> {args.out_dir}")


def configure_features_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro features`."""
    p.add_argument("--model", required=True, help="the pretrained ImageNet checkpoint (final.pt)")
    p.add_argument("--split-file", required=True, help="a prepared split (all.pt, train.pt or val.pt)")
    p.add_argument("--mean", required=True, help="the ImageNet mean image (results/data/imagenet/mean.pt)")
    p.add_argument("--layers", required=True, help='JSON list of layer names, e.g. ["conv5", "fc7"]')
    p.add_argument("--max-feature-dim", type=int, required=True, help="conv maps are pooled to fit this")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out-dir", required=True, help="{layer}.pt files go here")


def features_command(args: argparse.Namespace) -> None:
    torch.set_num_threads(max(1, args.threads))
    result = extract_features(args.model, args.split_file, args.mean, parse_json(args.layers, list, "--layers"),
                              args.max_feature_dim, args.batch_size, args.device, workers=max(1, args.threads))
    for path, (layer, data) in zip(save_features(result, args.out_dir), result.items(), strict=True):
        print(f"{layer}: map {data['map_shape']} grid {data['grid']} -> features "
              f"{list(data['features'].shape)} in {path}")

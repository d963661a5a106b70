"""Frozen features of chosen layers of the ImageNet model, from one forward pass per split (the input of every
classifier of Tables 4-7 and Fig 9)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save, load_result
from zfrepro.model.checkpoint import load_model, network_mean
from zfrepro.options import parse_json, resolve_device
from zfrepro.progress import progress
from zfrepro.transfer.splits import positive_int

LAYER_KEYS = "transfer.table7_layers / transfer.voc.layer"


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
    max_feature_dim = positive_int(max_feature_dim, "transfer.max_feature_dim")
    batch_size = positive_int(batch_size, "transfer.batch_size")
    dev = resolve_device(device)
    model, ckpt = load_model(model_path, dev)
    layers = _check_layers(layers, model.layer_names, model_path)
    crop = int(ckpt["crop_size"])
    split = PreparedSplit(split_path)
    mean = network_mean(model.spec, load_result(mean_path).to(dev))
    size = split.image_size
    if tuple(mean.shape) != (3, size, size) or not crop <= size:
        raise DataError(f"{split_path} holds {size}px images but the mean image {mean_path} is {list(mean.shape)} "
                        f"and the model crops {crop}px: prepare both with the same data.image_size")
    # Memory: the output features themselves (N x D float16 per layer, filled in place; O(N) inherent) plus one
    # batch of activations; nothing else grows with N.
    count = len(split)
    features: dict[str, torch.Tensor] = {}
    shapes: dict[str, list[int]] = {}
    grids: dict[str, int | None] = {}
    batches = split.batches(torch.arange(count), batch_size, workers=0 if split.in_memory else workers,
                            pin_memory=dev.type == "cuda", device=dev)
    # Whether each layer's features stayed finite, kept on the device and read once at the end (a check per
    # batch would make the host wait for the GPU every batch).
    finite: dict[str, torch.Tensor] = {}
    start = 0
    for images, _ in progress(batches, desc=f"features {Path(split_path).stem}", total=math.ceil(count / batch_size),
                              unit="batch"):
        _, record = model.forward_record(center_crop(images.to(dev, non_blocking=True), mean, crop))
        stop = start + len(images)
        per_layer = []
        for layer in layers:
            output = record.outputs[layer]
            if layer not in shapes:
                shapes[layer] = list(output.shape[1:])
                grids[layer] = pool_grid(shapes[layer], max_feature_dim)
            batch = layer_features(output, grids[layer]).to(torch.float16)
            ok = torch.isfinite(batch).all()
            finite[layer] = finite[layer] & ok if layer in finite else ok
            per_layer.append(batch)
        host = torch.cat(per_layer, dim=1).cpu()  # one copy from the device per batch, all layers together
        column = 0
        for layer, batch in zip(layers, per_layer, strict=True):
            if layer not in features:
                features[layer] = torch.empty((count, batch.shape[1]), dtype=torch.float16)
            features[layer][start:stop].copy_(host[:, column : column + batch.shape[1]])
            column += batch.shape[1]
        start = stop
        del record, per_layer
    for layer, ok in finite.items():
        if not ok:
            raise DataError(f"{layer} features of {split_path} overflow float16 (|value| > 65504); the model "
                            f"{model_path} has diverged or its input is not mean-subtracted")
    if start != count:
        raise DataError(f"{split_path}: read {start} of its {count} images")
    result = {}
    for layer in layers:
        result[layer] = {"features": features.get(layer, torch.empty((0, 0), dtype=torch.float16)),
                         "labels": split.labels, "layer": layer,
                         "map_shape": shapes.get(layer, []), "grid": grids.get(layer), "model": str(model_path),
                         "split": Path(split_path).stem, "classes": split.classes}
        if "difficult_only" in split.data:
            result[layer]["difficult_only"] = split.data["difficult_only"]
    return result


def save_features(result: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike) -> list[Path]:
    """Write each layer's features to {out_dir}/{layer}.pt (atomically); return the paths."""
    return [atomic_torch_save(Path(out_dir) / f"{layer}.pt", dict(data)) for layer, data in result.items()]


def configure_features_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro features`."""
    p.add_argument("--model", required=True, help="the pretrained ImageNet checkpoint (final.pt)")
    p.add_argument("--split-file", required=True, help="a prepared split (all.pt, train.pt or val.pt)")
    p.add_argument("--mean", required=True, help="the ImageNet mean image (results/data/imagenet/mean.pt)")
    p.add_argument("--layers", required=True, help='JSON list of layer names, e.g. ["conv5", "fc7"]')
    p.add_argument("--max-feature-dim", type=int, required=True, help="conv maps are pooled to fit this")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out-dir", required=True, help="{layer}.pt files go here")


def features_command(args: argparse.Namespace) -> None:
    torch.set_num_threads(max(1, args.threads))
    result = extract_features(args.model, args.split_file, args.mean, parse_json(args.layers, list, "--layers"),
                              args.max_feature_dim, args.batch_size, args.device, workers=max(1, args.threads))
    for path, (layer, data) in zip(save_features(result, args.out_dir), result.items(), strict=True):
        print(f"{layer}: map {data['map_shape']} grid {data['grid']} -> features "
              f"{list(data['features'].shape)} in {path}")

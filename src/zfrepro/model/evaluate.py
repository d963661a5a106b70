"""Error rates of a trained model: train top-1 on a fixed subset, validation top-1/top-5 on 1 and 10 crops.

The paper does not say whether its test numbers use 10 crops (project decision: report both). The validation
softmax outputs are kept too, so ensembles (Table 2) average them without running the models again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from zfrepro.data.preprocess import center_crop, ten_crops
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import DataError
from zfrepro.io import atomic_torch_save, atomic_write_json, load_result
from zfrepro.model.checkpoint import load_model, network_mean
from zfrepro.model.spec import num_parameters
from zfrepro.options import json_arg, resolve_device
from zfrepro.progress import progress

CENTER_CROP = 4  # its index in ten_crops (torchvision's ten_crop order); center_crop cuts the same one
TRAIN_SUBSET_SEED = 2014  # the train-error subset is fixed across models so their rows compare



def topk_wrong(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """How many rows of `scores` miss their label among the k highest, for each k (k capped at #classes)."""
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hit = top == labels[:, None]
    return {k: int((~hit[:, :k].any(1)).sum()) for k in ks}


@torch.no_grad()
def split_probabilities(model: nn.Module, split: PreparedSplit, mean: torch.Tensor, crop: int,
                        indices: torch.Tensor, batch_size: int, device: torch.device, workers: int = 0,
                        ten: bool = True) -> dict[str, torch.Tensor]:
    """Softmax outputs [N, C] over `indices` of a split: centre crop, and (optionally) the 10-crop average.

    Memory: the outputs themselves ([N, C] float32 per kind, filled in place; O(N) inherent) plus one batch.
    They are filled on `device` and copied to the CPU once at the end: a copy per batch would make the host
    wait for the GPU every batch.
    """
    count = len(indices)
    out: dict[str, torch.Tensor] = {}
    start = 0

    def put(kind: str, probs: torch.Tensor) -> None:
        if kind not in out:
            out[kind] = torch.empty((count, probs.shape[1]), dtype=torch.float32, device=probs.device)
        out[kind][start : start + len(probs)] = probs

    # Channels-last: oneDNN's preferred layout, 1.3-2.1x per forward pass of this study's networks on a CPU.
    model = model.to(memory_format=torch.channels_last)
    batches = split.batches(indices, batch_size, workers=workers, pin_memory=device.type == "cuda", device=device)
    desc = f"{'ten crops' if ten else 'centre crop'} {split.path.stem}"
    for images, _ in progress(batches, total=-(-count // batch_size), desc=desc, unit="batch"):
        images = images.to(device, non_blocking=True)
        if not ten:
            x = center_crop(images, mean, crop).contiguous(memory_format=torch.channels_last)
            put("center", model(x).softmax(1).float())
        else:
            crops = ten_crops(images, mean, crop)  # [B, 10, 3, c, c]
            b = crops.shape[0]
            x = crops.flatten(0, 1).contiguous(memory_format=torch.channels_last)
            probs = model(x).softmax(1).view(b, 10, -1).float()
            put("center", probs[:, CENTER_CROP])  # the centre crop is one of the ten: no second pass
            put("ten", probs.mean(1))
        start += len(images)
    if start != count:
        raise DataError(f"{split.path}: read {start} of the {count} images asked for")
    return {kind: probs.cpu() for kind, probs in out.items()}


def errors_of(probabilities: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, dict[str, float]]:
    """Top-1/top-5 error (%) of each kind of softmax output (centre, ten crops, an ensemble average)."""
    n = max(1, len(labels))
    result = {}
    for kind, probs in probabilities.items():
        wrong = topk_wrong(probs, labels)
        result[kind] = {"top1_error": 100.0 * wrong[1] / n, "top5_error": 100.0 * wrong[5] / n}
    return result


def split_errors(model: nn.Module, split: PreparedSplit, mean: torch.Tensor, crop: int,
                 indices: torch.Tensor, batch_size: int, device: torch.device, workers: int = 0,
                 ten: bool = True) -> dict[str, dict[str, float]]:
    """Top-1/top-5 error (%) over `indices` of a split, for the centre crop and (optionally) 10 crops."""
    probs = split_probabilities(model, split, mean, crop, indices, batch_size, device, workers, ten)
    return errors_of(probs, split.labels[indices])


def evaluate(model_path: str | Path, data_dir: str | Path, train_subset: int = 1000, batch_size: int = 32,
             device: str = "auto", threads: int = 2) -> tuple[dict, dict]:
    """All the error rates the tables need, as one JSON-ready dict (errors in %), and the validation
    predictions {"labels", "center", "ten"} (softmax outputs [N, C]) for ensembles."""
    torch.set_num_threads(max(1, threads))
    dev = resolve_device(device)
    data_dir = Path(data_dir)
    model, ckpt = load_model(model_path, dev)
    mean = network_mean(model.spec, load_result(data_dir / "mean.pt").to(dev))
    crop = int(ckpt["crop_size"])
    train_split, val_split = PreparedSplit(data_dir / "train.pt"), PreparedSplit(data_dir / "val.pt")
    if ckpt["classes"] is not None and train_split.classes != list(ckpt["classes"]):
        raise DataError(f"{model_path} was trained on other classes than {data_dir}: retrain the model")
    if len(train_split.classes) != model.spec.num_classes:  # imported weights that name no classes
        raise DataError(f"{model_path} has {model.spec.num_classes} outputs but {data_dir} has "
                        f"{len(train_split.classes)} classes: evaluate it on the data it was trained on")
    workers = 0 if val_split.in_memory else threads

    gen = torch.Generator().manual_seed(TRAIN_SUBSET_SEED)
    subset = torch.randperm(len(train_split), generator=gen)[: min(train_subset, len(train_split))]
    subset = subset.sort().values
    train = split_errors(model, train_split, mean, crop, subset, batch_size, dev, workers, ten=False)
    val_probs = split_probabilities(model, val_split, mean, crop, torch.arange(len(val_split)), batch_size, dev,
                                    workers)
    val = errors_of(val_probs, val_split.labels)
    metrics = {
        "arch": ckpt["arch"],
        "seed": ckpt["seed"],
        "epochs": ckpt["epoch"],
        "num_classes": len(train_split.classes),
        "chance_top1_error": 100.0 * (1 - 1 / len(train_split.classes)),
        "train_subset_images": len(subset),
        "val_images": len(val_split),
        "train": train["center"],
        "val": val,
        "parameters": num_parameters(model.spec),
    }
    origin = {"published": ckpt["published"]["name"]} if ckpt.get("published") else {}  # imported weights
    metrics.update(origin)
    predictions = {"arch": ckpt["arch"], "seed": ckpt["seed"], "epochs": ckpt["epoch"], **origin,
                   "labels": val_split.labels.clone(), "classes": list(val_split.classes), **val_probs}
    return metrics, predictions


# ---------------------------------------------------------------------------------------------- command line


def configure_evaluate_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--params", required=True, type=json_arg(dict), help="JSON: the evaluation section of the config")
    p.add_argument("--out", required=True, help="the metrics JSON")
    p.add_argument("--out-predictions", required=True,
                   help="a .pt file with the validation softmax outputs (centre crop and ten crops), for ensembles")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def evaluate_command(args: argparse.Namespace) -> None:
    # table_crops is a table choice, not an evaluation setting: everything else is passed as given
    options = {key: args.params[key] for key in ("train_subset", "batch_size") if key in args.params}
    metrics, predictions = evaluate(args.model, args.data_dir, device=args.device, threads=args.threads, **options)
    atomic_torch_save(args.out_predictions, predictions)
    atomic_write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))

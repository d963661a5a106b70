"""Figure 5: how features and the output change when an image is translated, scaled or rotated (claim 6).

Each chosen validation image is transformed on its prepared uint8 S x S form (before the centre crop, so
content from outside the crop moves in as in the paper's 256 -> 224 setting) with torchvision's functional
transforms; uncovered pixels get the mean pixel colour. The model then sees its usual mean-subtracted centre
crop. All variants of one image (and the image itself) go through one batched forward pass. For every
variant we keep the Euclidean distance between its feature vector and the original's at each chosen layer
(layer output flattened: conv1 after its pool/norm, fc7 after ReLU) and the probability of the true class.

Translations are configured in pixels at the paper's 224 crop and scaled by crop/224 (rounded to whole
pixels, so shifts are exact); scales are zoom-in ratios (resize up, centre crop back to S); rotations are
degrees about the image centre (bilinear).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torchvision.transforms.v2 import functional as TF

from zfrepro.analysis.mining import load_images
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import class_names, images_by_class, sample_by_class
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.checkpoint import open_inputs
from zfrepro.model.network import ConvNet
from zfrepro.options import resolve_device

KINDS = ("translation", "scale", "rotation")
PAPER_CROP = 224  # translations are given in pixels of the paper's 224 x 224 input
DEFAULT_LAYERS = ("conv1", "fc7")
EXAMPLES = 3  # transformed variants per image kept for the figure's first column
AXIS_LABELS = {"translation": "vertical shift (pixels at 224)", "scale": "scale (zoom ratio)",
               "rotation": "rotation (degrees)"}


# ---------------------------------------------------------------------------------------------- transforms


def mean_fill(mean: torch.Tensor) -> list[float]:
    """The mean pixel: the per-channel average of the mean image, rounded (the colour uncovered pixels get)."""
    return [float(round(v)) for v in mean.float().mean(dim=(-2, -1)).tolist()]


def translation_pixels(translations: Sequence[float], crop: int) -> list[int]:
    """Shifts at 224 -> whole pixels at this crop (x crop/224, halves rounded away from zero, so +-t match)."""
    return [int(math.copysign(math.floor(abs(t) * crop / PAPER_CROP + 0.5), t)) for t in translations]


def translate(image: torch.Tensor, dy: int, fill: Sequence[float]) -> torch.Tensor:
    """Shift uint8 image(s) [..., 3, S, S] down by dy pixels (up if negative); uncovered rows get `fill`."""
    return TF.affine(image, angle=0.0, translate=[0.0, float(dy)], scale=1.0, shear=[0.0, 0.0],
                     interpolation=TF.InterpolationMode.NEAREST, fill=list(fill))


def zoom(image: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zoom into uint8 image(s) [..., 3, S, S] by `ratio` >= 1: resize to round(S * ratio), centre crop to S."""
    size = image.shape[-1]
    big = max(size, round(size * ratio))
    resized = TF.resize(image, [big, big], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, [size, size])


def rotate(image: torch.Tensor, angle: float, fill: Sequence[float]) -> torch.Tensor:
    """Rotate uint8 image(s) [..., 3, S, S] by `angle` degrees anticlockwise about the centre (bilinear)."""
    return TF.rotate(image, float(angle), interpolation=TF.InterpolationMode.BILINEAR, fill=list(fill))


def transform(image: torch.Tensor, kind: str, value: float, fill: Sequence[float]) -> torch.Tensor:
    """One transformation by its applied value (pixels, zoom ratio or degrees)."""
    if kind == "translation":
        return translate(image, int(value), fill)
    if kind == "scale":
        return zoom(image, float(value))
    if kind == "rotation":
        return rotate(image, float(value), fill)
    raise ValueError(f"unknown transformation {kind!r}; expected one of {KINDS}")


def variants(image: torch.Tensor, applied: dict[str, Sequence[float]], fill: Sequence[float]) -> torch.Tensor:
    """The image followed by all its transformed versions, kind by kind in `applied` order: uint8 [1 + V, 3, S, S]."""
    out = [image]
    for kind, values in applied.items():
        out.extend(transform(image, kind, v, fill) for v in values)
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------- settings


def _numbers(values: Any, key: str) -> list[float]:
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(f"{key}: expected a non-empty list of numbers, got {values!r}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)]
    if bad:
        raise ConfigError(f"{key}: expected numbers, got {bad}")
    return [float(v) for v in values]


def check_settings(translations: Any, scales: Any, rotations: Any, layers: Any,
                   model: ConvNet) -> dict[str, list[float]]:
    """Validate the config values; return the configured values per kind (translations still at 224)."""
    values = {"translation": _numbers(translations, "invariance.translations"),
              "scale": _numbers(scales, "invariance.scales"),
              "rotation": _numbers(rotations, "invariance.rotations")}
    if min(values["scale"]) < 1:
        raise ConfigError(f"invariance.scales: zoom ratios must be >= 1 (the image is enlarged and centre-cropped "
                          f"back), got {values['scale']}")
    names = model.layer_names
    if not isinstance(layers, list | tuple) or not layers or any(layer not in names for layer in layers):
        raise ConfigError(f"invariance.layers: {layers!r} must be a non-empty list of layers of "
                          f"{model.spec.name}: {names}")
    return values


def example_indices(kind: str, n: int, k: int = EXAMPLES) -> list[int]:
    """Which of n values the figure shows: evenly spread; rotations wrap around, so 0, 1/k, 2/k of the list."""
    if n <= k:
        return list(range(n))
    if kind == "rotation":
        return [i * n // k for i in range(k)]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@torch.no_grad()
def measure(model: ConvNet, image: torch.Tensor, label: int, mean: torch.Tensor, applied: dict[str, Sequence[float]],
            layers: Sequence[str], fill: Sequence[float]) -> dict[str, Any]:
    """One image [3, S, S] uint8: per kind, distances [V] per layer and p(true) [V], plus the original's.

    One forward pass over the original and every variant (eval mode, on the model's device).
    """
    dev = next(model.parameters()).device
    batch = variants(image, applied, fill)
    crop = model.spec.input_size
    logits, record = model.forward_record(center_crop(batch.to(dev), mean.to(dev), crop))
    probs = logits.float().softmax(dim=1)[:, label].cpu()
    feats = {layer: record.outputs[layer].flatten(1).float().cpu() for layer in layers}
    dists = {layer: (f[1:] - f[0]).norm(dim=1) for layer, f in feats.items()}
    out: dict[str, Any] = {"p_original": float(probs[0]), "top1_original": int(logits[0].argmax()),
                           "norm": {layer: float(f[0].norm()) for layer, f in feats.items()}, "kinds": {}}
    shown = center_crop(batch, torch.zeros_like(mean), crop).round().to(torch.uint8)  # the crops, for display
    start = 0  # into the variants (batch row start + 1)
    for kind, values in applied.items():
        sl = slice(start, start + len(values))
        batch_rows = slice(start + 1, start + 1 + len(values))
        keep = [start + 1 + i for i in example_indices(kind, len(values))]
        out["kinds"][kind] = {"distance": {layer: d[sl] for layer, d in dists.items()},
                              "p_true": probs[batch_rows], "top1": logits[batch_rows].argmax(dim=1).cpu(),
                              "examples": shown[keep]}
        start += len(values)
    return out


def invariance_data(model_path: str | Path, data_dir: str | Path, images: Any, translations: Any, scales: Any,
                    rotations: Any, layers: Any = DEFAULT_LAYERS, device: str = "cpu",
                    sample: int = 0) -> dict[str, Any]:
    """Figure 5's numbers for the configured images (see the module docstring); a dict of tensors and lists.

    `sample` more validation images (sample_by_class, none of the figure's) are measured the same way and kept
    under "sample" (distances, p(true), feature norms; no example crops): claim 6's statistics use them with
    the figure's images, so its interval is not that of five images.
    """
    model, ckpt, split, mean = open_inputs(model_path, data_dir, "val")
    if list(split.classes) != list(ckpt["classes"]):
        raise DataError(f"{model_path} was trained on other classes than {split.path}: retrain the model or "
                        "point --data-dir at its prepared data")
    layers = list(layers)
    configured = check_settings(translations, scales, rotations, layers, model)
    device = resolve_device(device)
    model.to(device).eval()
    crop = model.spec.input_size
    indices = images_by_class(split, images, "invariance.images")
    fill = mean_fill(mean)
    applied = {"translation": [float(p) for p in translation_pixels(configured["translation"], crop)],
               "scale": configured["scale"], "rotation": configured["rotation"]}
    # What is plotted: translations as applied, converted back to pixels at 224 (rounding made them whole).
    plotted = {**configured, "translation": [p * PAPER_CROP / crop for p in applied["translation"]]}
    pixels = load_images(split, indices)
    labels = split.labels[indices]
    per_image = [measure(model, pixels[i], int(labels[i]), mean, applied, layers, fill) for i in range(len(indices))]

    kinds = {}
    for kind in KINDS:
        parts = [m["kinds"][kind] for m in per_image]
        kinds[kind] = {
            "configured": torch.tensor(configured[kind]), "applied": torch.tensor(applied[kind]),
            "x": torch.tensor(plotted[kind]),
            **_curves(per_image, kind, layers, len(applied[kind])),  # distance per layer and p_true: [N, V]
            "top1": torch.stack([p["top1"] for p in parts]),
            "example_index": torch.tensor(example_indices(kind, len(applied[kind]))),
            "examples": torch.stack([p["examples"] for p in parts]),  # uint8 [N, k, 3, c, c]
        }
    wnids = [split.classes[int(label)] for label in labels]
    extra = sample_by_class(split, sample, exclude=indices)
    extra_pixels, extra_labels = load_images(split, extra), split.labels[extra]
    measured = [measure(model, extra_pixels[i], int(extra_labels[i]), mean, applied, layers, fill)
                for i in range(len(extra))]
    sampled = {
        "indices": torch.tensor(extra, dtype=torch.int64), "labels": extra_labels.clone(),
        "kinds": {kind: _curves(measured, kind, layers, len(applied[kind])) for kind in KINDS},
        "norm": {layer: torch.tensor([m["norm"][layer] for m in measured], dtype=torch.float32) for layer in layers},
    }
    return {"kinds": kinds, "layers": layers, "sample": sampled, "indices": torch.tensor(indices),
            "labels": labels.clone(),
            "wnids": wnids, "class_names": class_names(data_dir, wnids), "images": [dict(s) for s in images],
            "p_original": torch.tensor([m["p_original"] for m in per_image]),
            "top1_original": torch.tensor([m["top1_original"] for m in per_image]),
            "norm": {layer: torch.tensor([m["norm"][layer] for m in per_image]) for layer in layers},
            "fill": fill, "crop": crop, "image_size": int(split.image_size), "model": str(model_path),
            "arch": str(ckpt.get("arch", model.spec.name))}


def _curves(measured: list[dict[str, Any]], kind: str, layers: Sequence[str], width: int) -> dict[str, Any]:
    """One transformation's feature distances per layer and p(true) of measured images, stacked to [N, width]
    ([0, width] for none: an empty sample)."""

    def stack(rows: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(rows) if rows else torch.zeros((0, width))

    return {"distance": {layer: stack([m["kinds"][kind]["distance"][layer] for m in measured]) for layer in layers},
            "p_true": stack([m["kinds"][kind]["p_true"] for m in measured])}


# ---------------------------------------------------------------------------------------------- summary


def magnitude(kind: str, x: torch.Tensor) -> torch.Tensor:
    """How far each applied value is from the identity (pixels, ratio - 1, degrees modulo a full turn)."""
    if kind == "translation":
        return x.abs()
    if kind == "scale":
        return (x - 1).abs()
    turn = x.remainder(360)
    return torch.minimum(turn, 360 - turn)


def summarize(data: dict[str, Any]) -> pd.DataFrame:
    """Claim 6 in numbers, one row per transformation (means over the images).

    For each layer: d(small)/norm (distance at the smallest non-identity step, relative to the original's
    feature norm) and d(small)/d(max) (how much of the whole range's largest change the smallest step
    already causes: near 1 = the layer changes at once, small = it changes gradually). For the output:
    p(true) of the original, mean and minimum p(true) over the transformations, and how often top-1 stays right.
    """
    rows = []
    for kind, k in data["kinds"].items():
        mag = magnitude(kind, k["applied"].double())
        nonzero = mag > 1e-9
        row: dict[str, Any] = {"transformation": kind}
        if nonzero.any():
            small = nonzero & (mag == mag[nonzero].min())
            step = float(magnitude(kind, k["x"].double())[small][0])
            row["smallest step"] = round(1 + step if kind == "scale" else step, 3)
            for layer in data["layers"]:
                d = k["distance"][layer].double()  # [N, V]
                d_small = d[:, small].mean(dim=1)
                rel = d_small / data["norm"][layer].double().clamp_min(1e-12)
                frac = d_small / d.max(dim=1).values.clamp_min(1e-12)
                row[f"{layer} d(small)/norm"] = round(float(rel.mean()), 4)
                row[f"{layer} d(small)/d(max)"] = round(float(frac.mean()), 4)
        p = k["p_true"].double()
        row["p(true) original"] = round(float(data["p_original"].double().mean()), 4)
        row["p(true) mean"] = round(float(p.mean()), 4)
        row["p(true) min"] = round(float(p.min(dim=1).values.mean()), 4)
        row["top-1 kept %"] = round(100 * float((k["top1"] == data["labels"][:, None]).double().mean()), 1)
        rows.append(row)
    return pd.DataFrame(rows)


SUMMARY_FOOTNOTE = (
    "Claim 6 of the paper: small transformations change layer-1 features a lot and layer-7 features little; "
    "the output is robust to translation and scale, not to rotation. Means over the Fig 5 images. smallest step: "
    "the smallest non-identity transformation (pixels at 224, zoom ratio, degrees); d(small): the Euclidean feature "
    "distance to the original there (mean of its +/- pair); norm: the original's feature norm; d(max): the largest "
    "distance over the whole range; p(true): softmax probability of the true class (min: each image's lowest); "
    "top-1 kept: share of (image, transformation) pairs still classified correctly. Definitions in "
    "src/zfrepro/analysis/invariance.py."
)



"""Figure 7 of Zeiler & Fergus: occlusion sensitivity (claim 7).

A grey square slides over the model input (grey = the mean pixel: 0 after mean subtraction); for every
position we record the class probabilities and the total activation of each map of one conv layer. All
positions of an image run as batches of occluded copies built with one vectorised mask, and the layer's
maps come from the same forward pass as the probabilities. Positions follow Captum's Occlusion grid: the
square's top-left corner at 0, stride, 2 * stride, ... until the square reaches the far border (the last
one may overhang it and is clipped there), so every pixel gets covered. With stride equal to the size and
baseline 0, Captum's attribution is exactly p(x) - p(x occluded) on each square.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zfrepro.analysis.mining import crop_u8, iter_conv_outputs, load_images
from zfrepro.analysis.projections import project_entries
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import class_names, images_by_class, sample_by_class
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.checkpoint import open_inputs
from zfrepro.model.network import ConvNet
from zfrepro.model.spec import CLASSIFIER
from zfrepro.options import parse_json, resolve_device
from zfrepro.progress import progress

# x [B, 3, H, W] -> (the chosen layer's maps [B, C, h, w], logits [B, K]) from one forward pass.
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------------------------------- geometry


def occluder_positions(input_size: int, size: int, stride: int) -> torch.Tensor:
    """Top-left offsets 0, stride, ... of a `size` square along an `input_size` side, up to the first that
    reaches the far border (it may overhang: clipped), as Captum's Occlusion places its windows."""
    if not isinstance(size, int) or not 1 <= size <= input_size:
        raise ConfigError(f"occlusion.size: the square's side must be an integer in 1..{input_size} (the model "
                          f"input), got {size!r}")
    if not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"occlusion.stride: expected a positive integer, got {stride!r}")
    return torch.arange(math.ceil((input_size - size) / stride) + 1) * stride


def occlusion_masks(ys: torch.Tensor, xs: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """bool [P, H, W]: True on the `size` square whose top-left corner is (ys[p], xs[p]) (clipped at the
    border), built by broadcasting, not a python loop."""
    rows = torch.arange(height, device=ys.device)
    cols = torch.arange(width, device=xs.device)
    in_rows = (rows >= ys[:, None]) & (rows < ys[:, None] + size)  # [P, H]
    in_cols = (cols >= xs[:, None]) & (cols < xs[:, None] + size)  # [P, W]
    return in_rows[:, :, None] & in_cols[:, None, :]


# ---------------------------------------------------------------------------------------------- forward


def model_forward(model: ConvNet, layer: str = "conv5") -> Forward:
    """A forward returning `layer`'s maps and the logits of one pass (eval semantics: no dropout, no
    switches recorded; equal to forward_record's outputs[layer] and logits)."""
    names = [c.name for c in model.spec.convs]
    if layer not in names:
        raise ConfigError(f"occlusion.layer: {layer!r} is not a conv layer of {model.spec.name}; use one of {names}")
    last = names[-1]

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = dict(iter_conv_outputs(model, x, (layer, last)))
        h = torch.flatten(outs[last], 1)
        for f in model.spec.fcs:
            h = F.relu(getattr(model, f.name)(h))
        return outs[layer], getattr(model, CLASSIFIER)(h)

    return forward


@torch.no_grad()
def occlusion_maps(forward: Forward, x: torch.Tensor, size: int, stride: int, batch_size: int = 128) -> dict:
    """Slide the square (value 0) over one input x [3, H, W] (H == W) in batches of `batch_size` copies.

    Returns "offsets" [n] (top-left corners along each axis), "probs" [n, n, K] (softmax per position),
    "totals" [n, n, C] (each map of the layer summed over its positions), and for the unoccluded input
    "base_probs" [K] and "base_maps" [C, h, w]. Entry [i, j] is the square at rows offsets[i], columns
    offsets[j].
    """
    if x.dim() != 3 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"occlusion_maps: expected one square input [3, H, W], got {list(x.shape)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"occlusion.batch_size: expected a positive integer, got {batch_size!r}")
    side = x.shape[-1]
    offsets = occluder_positions(side, size, stride).to(x.device, non_blocking=True)  # small; not waited for
    n = len(offsets)
    ys, xs = (g.reshape(-1) for g in torch.meshgrid(offsets, offsets, indexing="ij"))
    base_maps, base_logits = forward(x[None])
    probs, totals = [], []
    for start in range(0, n * n, batch_size):
        square = occlusion_masks(ys[start:start + batch_size], xs[start:start + batch_size], size, side, side)
        batch = torch.where(square[:, None], torch.zeros((), dtype=x.dtype, device=x.device), x[None])
        maps, logits = forward(batch)
        probs.append(logits.float().softmax(dim=1))
        totals.append(maps.float().sum(dim=(-2, -1)))
    return {"offsets": offsets.cpu(), "probs": torch.cat(probs).view(n, n, -1).cpu(),
            "totals": torch.cat(totals).view(n, n, -1).cpu(),
            "base_probs": base_logits.float().softmax(dim=1)[0].cpu(), "base_maps": base_maps[0].float().cpu()}


def occlude(model: ConvNet, x: torch.Tensor, size: int, stride: int, layer: str = "conv5",
            batch_size: int = 128) -> dict:
    """occlusion_maps for a ConvNet, run in eval mode (its mode is restored), and its conv `layer`."""
    was_training = model.training
    model.eval()
    try:
        return occlusion_maps(model_forward(model, layer), x, size, stride, batch_size)
    finally:
        model.train(was_training)


def strongest_map(base_maps: torch.Tensor) -> tuple[int, int, int]:
    """(channel, y, x) of the largest single activation of maps [C, h, w] (first in that order on ties):
    the paper's "strongest feature map" of the unoccluded image and where it peaks."""
    c, h, w = base_maps.shape
    flat = int(base_maps.reshape(-1).argmax())
    return flat // (h * w), (flat // w) % h, flat % w


# ---------------------------------------------------------------------------------------------- inputs


def _other_images(mined: Mapping[str, torch.Tensor], channel: int, exclude: int, count: int) -> list[tuple]:
    """Up to `count` mined (image, y, x) of `channel`, strongest first, other than image `exclude`."""
    rows = zip(mined["image"][channel].tolist(), mined["y"][channel].tolist(), mined["x"][channel].tolist(),
               strict=True)
    return [r for r in rows if r[0] >= 0 and r[0] != exclude][:count]


def occlusion_data(model_path: str | Path, data_dir: str | Path, top9: Mapping, images: Any, size: int,
                   stride: int, layer: str = "conv5", top_projections: int = 8, batch_size: int = 128,
                   device: str = "cpu", norm: str = "identity", sample: int = 0) -> dict:
    """Figure 7: for each chosen validation image, the occlusion maps and the projections of panel (c).

    Per image ("rows"): the displayed crop, per occluder position p(true class) "p_true", the most probable
    label "top_label" and its probability, the total activation "map_total" of the layer's strongest map
    (strongest on the unoccluded image), the full "probs"; the unoccluded values ("base_*"); "shown" = the
    position of lowest p(true class), drawn in panel (a) with "occluded_image"; and "projections" [1+k, 3,
    s, s]: that map's strongest activation on this image, then on k other images of the mined top-9.
    "sample": `sample` more validation images (sample_by_class, none of the figure's) with p(true) and the
    strongest map's total per position only, for claim 7's statistics (not drawn).
    """
    if not isinstance(top_projections, int) or top_projections < 0:
        raise ConfigError(f"occlusion.top_projections: expected an integer >= 0, got {top_projections!r}")
    if layer not in top9:
        raise ConfigError(f"occlusion.layer: {layer!r} is not in the mined top-9 file (it has "
                          f"{[k for k in top9 if k.startswith('conv')]}); mine that layer or change the layer")
    if top9.get("split", "val") != "val":
        raise DataError(f"the top-9 file was mined on the {top9['split']!r} split; Figure 7 needs the validation one")
    model, ckpt, split, mean = open_inputs(model_path, data_dir)
    if split.classes != list(ckpt["classes"]):
        raise DataError(f"{model_path} was trained on other classes than {data_dir}: retrain the model")
    crop = int(ckpt["crop_size"])
    offsets = occluder_positions(crop, size, stride)
    dev = resolve_device(device)
    names = class_names(data_dir, ckpt["classes"])
    # The projections run on the CPU model; the occlusion passes on a copy moved to the device once (moving the
    # model there and back for every image copied all its weights twice per image).
    on_device = model if dev.type == "cpu" else copy.deepcopy(model).to(dev)

    def occluded(index: int) -> tuple[torch.Tensor, dict, int, tuple[int, int, int]]:
        """One validation image: its pixels, occlude()'s maps, its label and its strongest map (channel, y, x)."""
        u8 = load_images(split, [index])
        occ = occlude(on_device, center_crop(u8, mean, crop)[0].to(dev), size, stride, layer, batch_size)
        return u8, occ, int(split.labels[index]), strongest_map(occ["base_maps"])

    rows = []
    for spec, index in zip(images, images_by_class(split, images, "occlusion.images"), strict=True):
        u8, occ, label, (channel, cy, cx) = occluded(index)
        p_true = occ["probs"][..., label]
        top_prob, top_label = occ["probs"].max(dim=-1)
        i, j = divmod(int(p_true.argmin()), p_true.shape[1])
        sy, sx = int(occ["offsets"][i]), int(occ["offsets"][j])
        shown = crop_u8(u8, crop)[0].clone()
        grey = crop_u8(mean.round().clamp(0, 255).to(torch.uint8)[None], crop)[0]  # the mean pixel
        shown[:, sy:sy + size, sx:sx + size] = grey[:, sy:sy + size, sx:sx + size]
        others = _other_images(top9[layer], channel, index, top_projections)
        entries = [(index, cy, cx), *others]
        proj, _ = project_entries(model, split, mean, layer, torch.full((len(entries),), channel),
                                  *(torch.tensor(col) for col in zip(*entries, strict=True)), norm=norm)
        rows.append({
            **spec, "index": index, "label": label, "class_name": names[label],
            "image": crop_u8(u8, crop)[0], "occluded_image": shown, "shown": (sy, sx),
            "channel": channel, "peak": (cy, cx), "map_total": occ["totals"][..., channel],
            "p_true": p_true, "top_label": top_label, "top_prob": top_prob, "probs": occ["probs"],
            "base_p_true": float(occ["base_probs"][label]), "base_label": int(occ["base_probs"].argmax()),
            "base_total": float(occ["base_maps"][channel].sum()), "projections": proj,
            "projection_images": torch.tensor([e[0] for e in entries]),
        })
    sampled = []
    chosen = sample_by_class(split, sample, exclude=[r["index"] for r in rows])
    for index in progress(chosen, desc="occlusion sample", unit="img"):
        _, occ, label, (channel, _, _) = occluded(index)
        sampled.append({"index": index, "label": label, "channel": channel, "p_true": occ["probs"][..., label],
                        "map_total": occ["totals"][..., channel]})
    return {"rows": rows, "sample": sampled, "class_names": names, "classes": list(ckpt["classes"]), "offsets": offsets,
            "size": size, "stride": stride, "layer": layer, "crop": crop, "model": str(model_path), "norm": norm}


def summary(data: Mapping) -> list[dict[str, Any]]:
    """Per image, the numbers behind claim 7: unoccluded and lowest p(true class), the fraction of positions
    where the prediction changes, the strongest map's total unoccluded and at its lowest, and the
    correlation over positions between that total and p(true class)."""
    out = []
    for r in data["rows"]:
        p, t = r["p_true"].flatten().double(), r["map_total"].flatten().double()
        corr = float(torch.corrcoef(torch.stack([p, t]))[0, 1]) if p.std() > 0 and t.std() > 0 else float("nan")
        out.append({"class": r["class_name"], "wnid": r["wnid"], "nth": r["nth"], "channel": r["channel"],
                    "p_true": r["base_p_true"], "p_true_min": float(p.min()),
                    "label_changed": float((r["top_label"] != r["label"]).double().mean()),
                    "map_total": r["base_total"], "map_total_min": float(t.min()), "corr_map_p": corr})
    return out


# ---------------------------------------------------------------------------------------------- command line


def configure_occlusion_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro occlusion` (Figure 7 data)."""
    p.add_argument("--model", required=True, help="trained checkpoint (final.pt)")
    p.add_argument("--data-dir", required=True, help="prepared data folder (val.pt, mean.pt, manifest.json)")
    p.add_argument("--top9", required=True, help="the model's mined top-9 file (panel c's other images)")
    p.add_argument("--images", required=True,
                   help='JSON list of {"wnid": ..., "nth": ...}: the nth (0-based) validation image of a class')
    p.add_argument("--size", type=int, required=True, help="side of the grey square in input pixels")
    p.add_argument("--stride", type=int, required=True, help="step between occluder positions in input pixels")
    p.add_argument("--layer", default="conv5", help="conv layer whose strongest map panels (b) and (c) show")
    p.add_argument("--top-projections", type=int, default=8, help="projections from other images in panel (c)")
    p.add_argument("--batch-size", type=int, default=128, help="occluded copies per forward pass")
    p.add_argument("--norm", default="identity", choices=["identity", "gradient"],
                   help="how the deconvnet passes contrast normalisation (panel c)")
    p.add_argument("--sample", type=int, default=0,
                   help="more validation images measured for claim 7's statistics (not drawn)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", required=True, help="the .pt file with the Figure 7 data")


def occlusion_command(args: argparse.Namespace) -> None:
    """Compute Figure 7's data, save it atomically and print the claim-7 summary."""
    from zfrepro.io import atomic_torch_save, load_result

    torch.set_num_threads(max(1, getattr(args, "threads", 1)))
    top9 = load_result(args.top9)
    images = parse_json(args.images, list, "--images")
    data = occlusion_data(args.model, args.data_dir, top9, images, args.size, args.stride, args.layer,
                          args.top_projections, args.batch_size, args.device, args.norm, args.sample)
    data["summary"] = summary(data)
    atomic_torch_save(args.out, data)
    for row in data["summary"]:
        print(json.dumps(row))

"""The computations behind Figures 1, 2, 4 and 6: mined activations projected by the deconvnet.

Each function returns plain tensors and dicts (saved by the command line as `results/analysis/...pt`),
so plotting never recomputes them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from zfrepro.analysis.deconvnet import Target, project
from zfrepro.analysis.mining import crop_u8, cut_patches, load_images, mine_top9, receptive_fields
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError
from zfrepro.io import load_result
from zfrepro.model.checkpoint import load_model, open_inputs
from zfrepro.model.network import ConvNet


def _inputs(split: PreparedSplit, indices: torch.Tensor, mean: torch.Tensor, crop: int) -> tuple[torch.Tensor, ...]:
    """Model inputs (mean-subtracted centre crops) and the matching uint8 crops for display."""
    images = load_images(split, indices)
    return center_crop(images, mean, crop), crop_u8(images, crop)


def project_entries(model: ConvNet, split: PreparedSplit, mean: torch.Tensor, layer: str,
                    channels: torch.Tensor, images: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor,
                    norm: str = "identity") -> tuple[torch.Tensor, torch.Tensor]:
    """Project each (image, channel, y, x) activation of `layer`; return (projections, image patches),
    both [N, 3, s, s] cut at the activation's receptive field (s = the field, at most the input size)."""
    crop = model.spec.input_size
    unique, local = torch.unique(images, return_inverse=True)
    x, shown = _inputs(split, unique, mean, crop)
    with torch.no_grad():
        _, record = model.forward_record(x)
        targets = [Target(int(i), layer, int(c), int(y), int(xx))
                   for i, c, y, xx in zip(local, channels, ys, xs, strict=True)]
        proj = project(model, x, targets, norm=norm, record=record)
    rf = receptive_fields(model.spec)[layer]
    size = min(rf.size, crop)
    projections = cut_patches(proj, rf, ys, xs, size=size)
    patches = cut_patches(shown[local], rf, ys, xs, size=size, fill=128)
    return projections, patches


def choose_maps(values: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """A random subset of `count` feature maps among those that fire at all (top value > 0), sorted."""
    alive = (values[:, 0] > 0).nonzero().flatten()
    pool = alive if len(alive) >= count else torch.arange(values.shape[0])
    return pool[torch.randperm(len(pool), generator=generator)[:count]].sort().values


def top9_figure_data(model_path: str | Path, data_dir: str | Path, top9: dict, maps_per_layer: int,
                     seed: int, norm: str = "identity") -> dict:
    """Figure 2: for a random subset of maps per layer, the 9 mined activations projected beside their patches."""
    model, _, split, mean = open_inputs(model_path, data_dir)
    gen = torch.Generator().manual_seed(seed)
    layers = {}
    for layer in (c.name for c in model.spec.convs):  # the spec's conv layers, in forward order
        if layer not in top9:
            continue
        mined = top9[layer]
        chosen = choose_maps(mined["value"], maps_per_layer, gen)
        k = mined["image"].shape[1]
        sel = {key: mined[key][chosen] for key in ("image", "y", "x", "value")}
        valid = sel["image"] >= 0
        proj, patch = project_entries(model, split, mean, layer, chosen.repeat_interleave(k)[valid.flatten()],
                                      sel["image"][valid], sel["y"][valid], sel["x"][valid], norm)
        shape = (len(chosen), k, *proj.shape[1:])
        projections = torch.zeros(shape)
        patches = torch.full(shape, 128, dtype=patch.dtype)
        projections.view(-1, *proj.shape[1:])[valid.flatten()] = proj
        patches.view(-1, *proj.shape[1:])[valid.flatten()] = patch
        layers[layer] = {"projections": projections, "patches": patches, "channels": chosen,
                         "values": sel["value"]}
    return {"layers": layers, "norm": norm}


def evolution_data(checkpoints: dict[int, str | Path], data_dir: str | Path, maps_per_layer: int,
                   train_images: int | None, seed: int, display_size: int, norm: str = "identity",
                   batch_size: int = 256, device: str | torch.device = "cpu", workers: int = 0) -> dict:
    """Figure 4: for the same random maps at every epoch, the strongest activation over (part of) the
    training set, projected with that epoch's weights, resized to a common display size. The search runs
    on `device` (the paper searched the whole training set: a GPU's work), the few projections on the CPU."""
    split = PreparedSplit(Path(data_dir) / "train.pt")
    mean = load_result(Path(data_dir) / "mean.pt")
    gen = torch.Generator().manual_seed(seed)
    epochs = sorted(checkpoints)
    first, _ = load_model(checkpoints[epochs[0]])
    chosen = {layer: torch.randperm(first.conv_layers()[layer].out_channels, generator=gen)[:maps_per_layer]
              for layer in first.conv_layers()}
    subset = torch.randperm(len(split), generator=gen)
    subset = subset[: train_images or len(split)].sort().values
    rows: dict[str, list[torch.Tensor]] = {layer: [] for layer in chosen}
    for epoch in epochs:
        model, ckpt = load_model(checkpoints[epoch])
        mined = mine_top9(model, split, mean, ckpt["crop_size"], layers=tuple(chosen), k=1,
                          batch_size=batch_size, indices=subset, device=device, workers=workers)
        model.to("cpu")
        for layer, maps in chosen.items():
            m = mined[layer]
            proj, _ = project_entries(model, split, mean, layer, maps, m["image"][maps, 0], m["y"][maps, 0],
                                      m["x"][maps, 0], norm)
            rows[layer].append(F.interpolate(proj, size=(display_size, display_size), mode="nearest"))
    projections = torch.cat([torch.stack(rows[layer], dim=1) for layer in chosen])  # [M, E, 3, s, s]
    labels = [layer for layer, maps in chosen.items() for _ in maps]  # the figure groups rows by layer
    channels = torch.cat(list(chosen.values()))
    return {"projections": projections, "epochs": epochs, "labels": labels, "channels": channels, "norm": norm}


def layer2_projections(model_path: str | Path, data_dir: str | Path, top9: dict, count: int, seed: int,
                       norm: str = "identity") -> torch.Tensor:
    """Fig 6 (d)/(e): the strongest validation activation of `count` random layer-2 maps, projected."""
    model, _, split, mean = open_inputs(model_path, data_dir)
    mined = top9["conv2"]
    maps = choose_maps(mined["value"], count, torch.Generator().manual_seed(seed))
    proj, _ = project_entries(model, split, mean, "conv2", maps, mined["image"][maps, 0], mined["y"][maps, 0],
                              mined["x"][maps, 0], norm)
    return proj


def unpooling_data(model_path: str | Path, data_dir: str | Path, layer: str, image: int, window: int) -> dict:
    """Figure 1: one real rectified map, its max-pooled map, the switches and the unpooled reconstruction.

    The map is the layer's strongest on the chosen validation image; `window` x `window` pooled units
    around its maximum are kept for display.
    """
    model, _, split, mean = open_inputs(model_path, data_dir)
    x, _ = _inputs(split, torch.tensor([image]), mean, model.spec.input_size)
    with torch.no_grad():
        _, record = model.forward_record(x)
    ops = record.ops[layer]
    if "pool" not in ops:
        raise ConfigError(f"visualize.fig1_layer: {layer} has no max pooling (ops {ops}); choose conv1, conv2 or conv5")
    # The pool's input: the rectified map, normalised first where the block normalises before pooling.
    pool_input = record.rectified[layer]
    if "norm" in ops and ops.index("norm") < ops.index("pool"):
        pool_input = model.lrn(pool_input)
    pool_input = pool_input[0]
    switches = record.switches[layer][0]
    spec = next(c for c in model.spec.convs if c.name == layer)
    pooled = F.max_pool2d(pool_input[None], spec.pool.kernel, spec.pool.stride, spec.pool.padding,
                          ceil_mode=spec.pool.ceil_mode)[0]
    channel = int(pooled.flatten(1).max(1).values.argmax())
    flat = torch.zeros(pool_input[channel].numel())
    flat.scatter_add_(0, switches[channel].flatten(), pooled[channel].flatten())  # overlapping windows add
    unpooled = flat.view_as(pool_input[channel])
    return {"layer": layer, "channel": channel, "image": image, "pool_input": pool_input[channel],
            "pooled": pooled[channel], "switches": switches[channel], "unpooled": unpooled,
            "ops": list(record.ops[layer]), "window": window}



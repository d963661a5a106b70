"""The feature atlas's computation: every feature map of conv1..conv5 with its mined top-9 projected by the
deconvnet (Fig 2 for every map), and the top-9 of chosen maps at each training checkpoint (Fig 4 for any map).

Nothing here recomputes what Fig 2 computes: the activations come from the cached mining result (`zfrepro
mine`), and each projection and patch from projections.project_entries, the function Fig 2 draws from (the
batched deconvnet). What is new is only the bookkeeping at the atlas's scale: every map of a layer is
thousands of projections, so entries are sorted by source image (entries that share an image share one
forward pass) and handed out a chunk at a time. The caller turns each chunk into display tiles at once, so
memory stays at one chunk of full projections even at paper shape (conv5's raw projections alone would be
~0.8 GB). Functions here do no I/O; report.atlas writes the pages, and commands.visualize (`zfrepro atlas`)
wires the two.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zfrepro.analysis.mining import mine_top9, patch_box, receptive_fields
from zfrepro.analysis.projections import choose_maps, project_entries
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.network import ConvNet

DEFAULT_EVOLUTION_MAPS = {"conv1": "all", "conv2": "all"}


@dataclass
class Chunk:
    """Projections of some mined entries of one layer: entry i is slot `slots[i]` (0 = strongest) of map
    `maps[i]`; `projections` float and `patches` uint8 [n, 3, s, s], cut at the receptive field as in Fig 2."""

    maps: torch.Tensor
    slots: torch.Tensor
    projections: torch.Tensor
    patches: torch.Tensor


@dataclass
class Cost:
    """Where the time goes: seconds in the deconvnet (project_entries: forward pass + projection + cut) and
    in the mining passes of the evolution, and how many projections were made; the writer adds its own."""

    seconds: dict[str, float] = field(default_factory=dict)
    projections: dict[str, int] = field(default_factory=dict)

    def add(self, phase: str, seconds: float, projections: int = 0) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        if projections:
            self.projections[phase] = self.projections.get(phase, 0) + projections

    def rate(self, phase: str) -> float | None:
        """Projections per second of `phase` (None before any time was spent)."""
        s = self.seconds.get(phase, 0.0)
        return self.projections.get(phase, 0) / s if s > 0 else None


def check_top9(top9: Mapping, model: ConvNet, path: str | Path = "--top9") -> list[str]:
    """The conv layers of `model` present in the mining result; a DataError if it was mined from another
    network (map counts differ) or holds none of them."""
    layers = [c.name for c in model.spec.convs if c.name in top9]
    if not layers:
        raise DataError(f"{path}: no conv layer of {model.spec.name} in the mining result (keys {sorted(top9)}); "
                        "rerun `zfrepro mine` for this model")
    for c in model.spec.convs:
        if c.name in top9 and top9[c.name]["value"].shape[0] != c.out_channels:
            raise DataError(f"{path}: {c.name} has {top9[c.name]['value'].shape[0]} maps but the model has "
                            f"{c.out_channels}; it was mined from another model: rerun `zfrepro mine` on it")
    return layers


@torch.no_grad()
def verify_top9(model: ConvNet, split: PreparedSplit, mean: torch.Tensor, top9: Mapping, layers: Sequence[str],
                per_layer: int = 8, path: str | Path = "--top9") -> None:
    """Recompute the strongest mined activation of `per_layer` maps per layer (the maps with the largest) with
    this model on these images; a DataError if they differ. The mining result is a cache keyed by nothing but
    its path: one mined before the model was retrained, or from other data, would otherwise be drawn as if it
    belonged to this model (with projections of activations that are no longer there)."""
    from zfrepro.analysis.mining import conv_outputs, load_images
    from zfrepro.data.preprocess import center_crop

    checks = []  # (layer, map, image, y, x, value)
    for layer in layers:
        mined = top9[layer]
        best = mined["value"][:, 0]
        for m in best.argsort(descending=True)[:per_layer].tolist():
            if mined["image"][m, 0] >= 0:
                checks.append((layer, m, *(int(mined[k][m, 0]) for k in ("image", "y", "x")), float(best[m])))
    images = sorted({c[2] for c in checks})
    row = {image: i for i, image in enumerate(images)}
    was_training = model.training
    model.eval()
    try:
        outs = conv_outputs(model, center_crop(load_images(split, images), mean, model.spec.input_size), layers)
    finally:
        model.train(was_training)
    for layer, m, image, y, x, value in checks:
        now = float(outs[layer][row[image], m, y, x])
        if abs(now - value) > 1e-3 * max(1.0, abs(value)):
            raise DataError(f"{path}: {layer} map {m}'s strongest activation (image {image}, unit ({y}, {x})) was "
                            f"mined as {value:.6g} but this model gives {now:.6g} on that image: the mining result "
                            "belongs to another model or other data (was the model retrained after mining?); "
                            "rerun `zfrepro mine` for this model and data")


def first_maps(top9: Mapping, layers: Sequence[str], n: int, title: str) -> tuple[dict, str]:
    """The mining result cut to the first `n` maps of each layer (a volume cut: the atlas of a paper-shape test),
    and a title that says so."""
    if n < 1:
        raise ConfigError(f"--maps-per-layer: expected a positive number of maps, got {n}")
    cut = dict(top9)
    for layer in layers:
        cut[layer] = {key: (value[:n] if torch.is_tensor(value) and value.dim() >= 1 else value)
                      for key, value in top9[layer].items()}
    return cut, f"{title} (the first {n} maps of each layer)"


def entry_boxes(model: ConvNet, layer: str, ys: torch.Tensor, xs: torch.Tensor) -> list[list[int] | None]:
    """(top, left, bottom, right) in the model's input crop of each mined unit (mining.patch_box), None for an
    empty top-k slot (y = -1): what the atlas draws on the full image."""
    rf, crop = receptive_fields(model.spec)[layer], model.spec.input_size
    return [list(patch_box(rf, int(y), int(x), crop)) if y >= 0 else None
            for y, x in zip(ys.tolist(), xs.tolist(), strict=True)]


def iter_layer_projections(model: ConvNet, split: PreparedSplit, mean: torch.Tensor, mined: Mapping, layer: str,
                           maps: torch.Tensor | Sequence[int] | None = None, chunk: int = 64,
                           norm: str = "identity", cost: Cost | None = None, phase: str = "atlas") -> Iterator[Chunk]:
    """Project every filled top-k slot of `maps` (default all) of `layer` (`mined` = that layer's mining
    result: value/image/y/x [C, k]), `chunk` entries per call of project_entries, entries sorted by image so
    that a chunk's entries share forward passes. Time and count go to `cost[phase]`."""
    if not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"--chunk: expected a positive integer (entries per deconvnet call), got {chunk!r}")
    maps = torch.arange(mined["image"].shape[0]) if maps is None else torch.as_tensor(maps, dtype=torch.int64)
    image = mined["image"][maps]  # [M, k]
    filled = (image >= 0).nonzero()  # [n, 2]: (row in maps, slot)
    rows, slots = filled[:, 0], filled[:, 1]
    order = torch.sort(image[rows, slots], stable=True).indices
    rows, slots = rows[order], slots[order]
    for start in range(0, len(rows), chunk):
        r, s = rows[start:start + chunk], slots[start:start + chunk]
        channels = maps[r]
        t0 = time.perf_counter()
        proj, patch = project_entries(model, split, mean, layer, channels, mined["image"][channels, s],
                                      mined["y"][channels, s], mined["x"][channels, s], norm)
        if cost is not None:
            cost.add(phase, time.perf_counter() - t0, len(r))
        yield Chunk(channels, s, proj, patch)


def evolution_maps(request: Mapping[str, object], top9: Mapping, channels: Mapping[str, int],
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """The maps whose evolution the atlas shows, per layer: request[layer] is "all", a list of map indices, or a
    count N (N random maps that fire, chosen as Fig 2 chooses them: projections.choose_maps with `seed`)."""
    out: dict[str, torch.Tensor] = {}
    gen = torch.Generator().manual_seed(seed)
    for layer, want in request.items():
        if layer not in channels:
            raise ConfigError(f"--evolution-maps: {layer!r} is not a conv layer of the model; use some of "
                              f"{list(channels)}")
        n = channels[layer]
        if want == "all":
            maps = torch.arange(n)
        elif isinstance(want, int) and not isinstance(want, bool) and want >= 0:
            maps = choose_maps(top9[layer]["value"], min(want, n), gen)
        elif isinstance(want, list) and all(isinstance(m, int) and not isinstance(m, bool) for m in want):
            bad = [m for m in want if not 0 <= m < n]
            if bad:
                raise ConfigError(f"--evolution-maps: {layer} maps {bad} are out of range; {layer} has maps 0..{n - 1}")
            maps = torch.tensor(sorted(set(want)), dtype=torch.int64)
        else:
            raise ConfigError(f"--evolution-maps: {layer}: expected \"all\", a count or a list of map indices, "
                              f"got {want!r}")
        if len(maps):
            out[layer] = maps
    return out


def iter_evolution(checkpoints: Mapping[int, str | Path], split: PreparedSplit, mean: torch.Tensor,
                   maps: Mapping[str, torch.Tensor], k: int = 9, indices: torch.Tensor | None = None,
                   chunk: int = 64, norm: str = "identity", batch_size: int = 128,
                   device: str | torch.device = "cpu", workers: int = 0,
                   cost: Cost | None = None) -> Iterator[tuple[int, str, dict, Iterator[Chunk]]]:
    """Fig 4 for chosen maps: at each checkpoint epoch (ascending), mine the top-k of `maps` over `indices` of
    `split` with that epoch's weights (mining.mine_top9, on `device`) and project them (on the CPU, as
    projections.evolution_data does). Yields (epoch, layer, mined [of the chosen maps, rows in `maps` order],
    chunks); consume the chunks before the next item."""
    from zfrepro.model.checkpoint import load_model

    for epoch in sorted(checkpoints):
        model, ckpt = load_model(checkpoints[epoch])
        t0 = time.perf_counter()
        mined = mine_top9(model, split, mean, ckpt["crop_size"], layers=tuple(maps), k=k, batch_size=batch_size,
                          indices=indices, device=device, workers=workers)
        model.to("cpu")
        if cost is not None:
            cost.add("evolution mining", time.perf_counter() - t0)
        for layer, chosen in maps.items():
            sel = {key: mined[layer][key][chosen] for key in ("value", "image", "y", "x")}
            yield epoch, layer, sel, iter_layer_projections(model, split, mean, mined[layer], layer, chosen, chunk,
                                                            norm, cost, "evolution")



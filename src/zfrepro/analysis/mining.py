"""Figure 2's mining: the top-k activations of every feature map over a split (k distinct images), the
receptive field of each conv layer's output units and the image patches under them.

One streaming pass, no gradients: per batch, each map's maximum over positions per image (so an image
enters a map's list at most once), merged into a running top-k. Memory is O(layers x maps x k) plus one
batch of activations, whatever the split size. Positions index the layer OUTPUT map (after its pool/norm),
as deconvnet.Target does, in the coordinates of the model's input: the centre crop of the prepared image.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zfrepro.data.preprocess import center_crop, crop_offsets
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.network import ConvNet
from zfrepro.model.spec import ArchSpec, out_len
from zfrepro.options import resolve_device
from zfrepro.progress import progress

EMPTY = -1  # image / y / x of a top-k slot that no image filled (fewer images than k)


# ---------------------------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's output units on the input: side `size`, `jump` input pixels between
    neighbouring units, `start` = centre of unit (0, 0) in input pixel indices (negative with padding).

    `ops` is the chain of (kernel, stride, padding, ceil_mode) below the layer, so patch_box can clip the
    field at every intermediate map, not only at the image.
    """

    size: int
    jump: int
    start: float
    ops: tuple[tuple[int, int, int, bool], ...] = ()

    @property
    def first(self) -> int:
        """Input index of the first row/column covered by unit 0 (may be < 0: padding)."""
        return int(round(self.start - (self.size - 1) / 2))


def _grow(rf: ReceptiveField, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> ReceptiveField:
    """Standard RF arithmetic for one conv or pool (kernel, stride, padding) on top of `rf`."""
    first = rf.first - padding * rf.jump
    size = rf.size + (kernel - 1) * rf.jump
    return ReceptiveField(size, rf.jump * stride, first + (size - 1) / 2,
                          (*rf.ops, (kernel, stride, padding, ceil_mode)))


def receptive_fields(spec: ArchSpec) -> dict[str, ReceptiveField]:
    """Receptive field of each conv block's OUTPUT (after its pool; LRN mixes channels, not positions).

    ZF at 224: conv1 11 px (jump 4), conv2 43, conv3 75, conv4 107, conv5 171 (jump 32).
    """
    rf = ReceptiveField(1, 1, 0.0)
    out: dict[str, ReceptiveField] = {}
    for c in spec.convs:
        rf = _grow(rf, c.kernel, c.stride, c.padding)
        if c.pool is not None:
            rf = _grow(rf, c.pool.kernel, c.pool.stride, c.pool.padding, c.pool.ceil_mode)
        out[c.name] = rf
    return out


def rf_box(rf: ReceptiveField, y: int, x: int, size: int | None = None) -> tuple[int, int, int, int]:
    """Unclipped (top, left, bottom, right), bottom/right exclusive, of the `size` x `size` window (default:
    the whole receptive field) centred on unit (y, x)'s receptive field; may extend past the image."""
    size = rf.size if size is None else size
    top = rf.first + y * rf.jump + (rf.size - size) // 2
    left = rf.first + x * rf.jump + (rf.size - size) // 2
    return top, left, top + size, left + size


def _support(rf: ReceptiveField, index: int, input_size: int) -> tuple[int, int]:
    """Input rows [lo, hi) that output row `index` depends on: the field walked back op by op, clipped to
    each map (padding, a ceil-mode partial window or rows a stride skips lie outside)."""
    sizes = [input_size]
    for kernel, stride, padding, ceil in rf.ops:
        sizes.append(out_len(sizes[-1], kernel, stride, padding, ceil))
    if not 0 <= index < sizes[-1]:
        raise ValueError(f"unit {index} is outside the layer's {sizes[-1]} rows at input size {input_size}")
    lo = hi = index  # inclusive
    for (kernel, stride, padding, _), n_in in zip(reversed(rf.ops), reversed(sizes[:-1]), strict=True):
        lo, hi = max(lo * stride - padding, 0), min(hi * stride - padding + kernel - 1, n_in - 1)
    return lo, hi + 1


def patch_box(rf: ReceptiveField, y: int, x: int, input_size: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), bottom/right exclusive, of the input pixels unit (y, x) depends on:
    image[..., top:bottom, left:right]. Inside the image it is the whole field; at the borders it is clipped
    to the image and, at the far border, to the parts of intermediate maps that exist."""
    if not rf.ops:  # a hand-made field: clip at the image only
        top, left, bottom, right = rf_box(rf, y, x)
        return max(top, 0), max(left, 0), min(bottom, input_size), min(right, input_size)
    (top, bottom), (left, right) = _support(rf, y, input_size), _support(rf, x, input_size)
    return top, left, bottom, right


def cut_patches(images: torch.Tensor, rf: ReceptiveField, ys: torch.Tensor | Sequence[int],
                xs: torch.Tensor | Sequence[int], size: int | None = None, fill: float = 0) -> torch.Tensor:
    """Patch of image n under unit (ys[n], xs[n]): [N, C, size, size], same dtype as `images` [N, C, H, W].

    The window is the receptive field (or `size` centred on it); parts outside the image are `fill`, so all
    patches of a layer have one size and the image content sits where the field lies (also at borders).
    """
    if images.dim() != 4:
        raise ValueError(f"expected images [N, C, H, W], got {tuple(images.shape)}")
    ys, xs = torch.as_tensor(ys).reshape(-1).tolist(), torch.as_tensor(xs).reshape(-1).tolist()
    if not len(ys) == len(xs) == images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {len(ys)} ys and {len(xs)} xs")
    size = rf.size if size is None else size
    n, c, h, w = images.shape
    out = torch.full((n, c, size, size), fill, dtype=images.dtype, device=images.device)
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        top, left, bottom, right = rf_box(rf, int(y), int(x), size)
        t, le, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
        if t < b and le < r:
            out[i, :, t - top : b - top, le - left : r - left] = images[i, :, t:b, le:r]
    return out


def cut_patch(image: torch.Tensor, rf: ReceptiveField, y: int, x: int, size: int | None = None,
              fill: float = 0) -> torch.Tensor:
    """One image [C, H, W] -> its patch [C, size, size] under unit (y, x) (see cut_patches)."""
    return cut_patches(image[None], rf, [y], [x], size, fill)[0]


# ---------------------------------------------------------------------------------------------- light forward


def conv_layer_names(model: ConvNet) -> list[str]:
    """The conv layers of the model's spec in forward order (ZF's conv1..conv5): what is mined by default."""
    return [c.name for c in model.spec.convs]


def _check_layers(model: ConvNet, layers: Sequence[str]) -> list[str]:
    """The model's conv layer names (ConfigError if `layers` names any other)."""
    names = [c.name for c in model.spec.convs]
    bad = [layer for layer in layers if layer not in names]
    if bad or not layers:
        raise ConfigError(f"layers {list(layers)}: {bad or 'none given'} not conv layers of "
                          f"{model.spec.name}; use some of {names}")
    return names


def iter_conv_outputs(model: ConvNet, x: torch.Tensor,
                      layers: Sequence[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, output) of the requested conv blocks (default: all of the spec's) in forward order, as
    forward_record's outputs.

    Same modules and ops as ConvNet.forward, but no switches, no fc layers, and it stops after the deepest
    requested layer; a caller that reduces each output before asking for the next keeps one map alive.
    """
    layers = conv_layer_names(model) if layers is None else layers
    names = _check_layers(model, layers)
    s = model.spec.input_size
    if x.dim() != 4 or x.shape[1] != model.spec.in_channels or x.shape[-2:] != (s, s):
        raise ValueError(f"{model.spec.name} expects input [N, {model.spec.in_channels}, {s}, {s}], "
                         f"got {list(x.shape)}")
    wanted = set(layers)
    last = max(names.index(layer) for layer in layers)
    x = model.scale_input(x)
    for c in model.spec.convs[: last + 1]:
        x = F.relu(getattr(model, c.name)(x), inplace=not torch.is_grad_enabled())
        for op in c.ops[2:]:
            if op == "pool":
                p = c.pool
                x = F.max_pool2d(x, p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode)
            else:
                x = model.lrn(x)
        if c.name in wanted:
            yield c.name, x


def conv_outputs(model: ConvNet, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The requested conv blocks' outputs as a dict (equal to forward_record(x)[1].outputs for them)."""
    return dict(iter_conv_outputs(model, x, layers))


# ---------------------------------------------------------------------------------------------- top-k


class TopK:
    """Streaming top-k per feature map over distinct images: each image contributes its maximum over
    positions (first position on ties), and ties between images keep the one seen first."""

    def __init__(self, layers: dict[str, int], k: int = 9):
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"k: expected a positive integer, got {k!r}")
        self.k = k
        self.channels = dict(layers)
        self.state: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # value, image, flat pos
        self.width: dict[str, int] = {}

    def _init(self, layer: str, out: torch.Tensor) -> None:
        c = self.channels[layer]
        if out.shape[1] != c:
            raise ValueError(f"{layer}: expected {c} maps, got output {tuple(out.shape)}")
        kw = {"device": out.device}
        self.state[layer] = (torch.full((c, self.k), -math.inf, dtype=torch.float32, **kw),
                             torch.full((c, self.k), EMPTY, dtype=torch.int64, **kw),
                             torch.full((c, self.k), EMPTY, dtype=torch.int64, **kw))
        self.width[layer] = out.shape[-1]

    def update_layer(self, layer: str, out: torch.Tensor, image_ids: torch.Tensor) -> None:
        """Merge one batch of `layer`'s outputs [B, C, h, w] of images `image_ids` [B] (distinct, unseen)."""
        if layer not in self.channels:
            raise ValueError(f"TopK tracks {list(self.channels)}, not {layer!r}")
        if layer not in self.state:
            self._init(layer, out)
        value, image, pos = self.state[layer]
        ids = torch.as_tensor(image_ids, dtype=torch.int64).to(out.device).reshape(-1)
        if out.dim() != 4 or out.shape[0] != ids.numel() or out.shape[1] != value.shape[0] \
                or out.shape[-1] != self.width[layer]:
            raise ValueError(f"{layer}: output {tuple(out.shape)} does not match {ids.numel()} images / "
                             f"{value.shape[0]} maps / width {self.width[layer]}")
        best, where = out.flatten(2).max(dim=2)  # [B, C]: one entry per image and map
        cand_v = torch.cat([value, best.t().float()], dim=1)  # [C, k + B]; old entries first (win ties)
        cand_i = torch.cat([image, ids.expand(value.shape[0], -1)], dim=1)
        cand_p = torch.cat([pos, where.t()], dim=1)
        order = cand_v.sort(dim=1, descending=True, stable=True).indices[:, : self.k]
        self.state[layer] = (cand_v.gather(1, order), cand_i.gather(1, order), cand_p.gather(1, order))

    def update(self, record_outputs: dict[str, torch.Tensor], image_ids: torch.Tensor) -> None:
        """Merge one batch: every tracked layer present in `record_outputs` (e.g. Record.outputs)."""
        for layer in self.channels:
            if layer in record_outputs:
                self.update_layer(layer, record_outputs[layer], image_ids)

    def result(self) -> dict[str, dict[str, torch.Tensor]]:
        """layer -> {"value" float [C,k], "image", "y", "x" int64 [C,k]} on the CPU, best first; slots no
        image filled hold value -inf and image/y/x -1."""
        out = {}
        for layer in self.channels:
            if layer not in self.state:
                raise ValueError(f"TopK: no batch of {layer} was seen")
            value, image, pos = (t.cpu() for t in self.state[layer])
            if torch.isnan(value).any():
                raise ValueError(f"{layer}: NaN activations; the model has diverged")
            w, empty = self.width[layer], image < 0
            y = torch.where(empty, EMPTY, pos // w)
            x = torch.where(empty, EMPTY, pos % w)
            out[layer] = {"value": value, "image": image, "y": y, "x": x}
        return out


# ---------------------------------------------------------------------------------------------- the pass


def mining_indices(n: int, max_images: int | None = None, seed: int = 0) -> torch.Tensor:
    """All n split indices, or a seeded random subset of max_images (splits are ordered by class), sorted."""
    if max_images is None or max_images >= n:
        return torch.arange(n)
    if max_images < 1:
        raise ConfigError(f"max_images: expected a positive integer or null, got {max_images!r}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_images].sort().values


@torch.no_grad()
def mine_top9(model: ConvNet, split: PreparedSplit, mean: torch.Tensor, crop: int,
              layers: Sequence[str] | None = None, k: int = 9, batch_size: int = 128,
              max_images: int | None = None, device: str | torch.device = "cpu",
              indices: torch.Tensor | Sequence[int] | None = None, seed: int = 0, workers: int = 0) -> dict:
    """Top-k activations of every map of `layers` (default: every conv layer of the spec) over the centre crops
    of a split (one pass, eval mode).

    Images: `indices` if given, else all (or `max_images` drawn with `seed`). The model is moved to
    `device` (in place, like Module.to) and left in its previous train/eval mode. Returns TopK.result()
    plus "split_path", "indices" (the split indices mined; "image" entries are split indices), "k", "crop".
    """
    layers = tuple(conv_layer_names(model) if layers is None else layers)
    _check_layers(model, layers)
    if crop != model.spec.input_size:
        raise ConfigError(f"data.crop_size: {crop} but {model.spec.name} takes {model.spec.input_size} inputs")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if indices is None:
        indices = mining_indices(len(split), max_images, seed)
    indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if indices.numel() and (indices.min() < 0 or indices.max() >= len(split)):
        raise DataError(f"{split.path}: indices outside 0..{len(split) - 1}")
    if not len(indices):
        raise DataError(f"{split.path}: no images to mine")
    if indices.unique().numel() != indices.numel():
        raise ValueError("indices must be distinct (each image may enter a map's top-k once)")
    dev = torch.device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    mean = mean.to(dev)
    maps = {c.name: c.out_channels for c in model.spec.convs if c.name in layers}
    top = TopK(maps, k)
    ids_on_device = indices.to(dev)  # once: a copy per layer and batch would make the host wait each time
    try:
        start = 0
        batches = split.batches(indices, batch_size, workers=0 if split.in_memory else workers,
                                pin_memory=dev.type == "cuda", device=dev)
        for images, _ in progress(batches, total=math.ceil(len(indices) / batch_size),
                                  desc=f"mine top-{k} {split.path.stem}", unit="batch"):
            ids = ids_on_device[start : start + len(images)]
            start += len(images)
            x = center_crop(images.to(dev, non_blocking=True), mean, crop)
            for name, out in iter_conv_outputs(model, x, layers):
                top.update_layer(name, out, ids)
    finally:
        model.train(was_training)
    return {**top.result(), "split_path": str(split.path), "indices": indices, "k": k, "crop": crop}


# ---------------------------------------------------------------------------------------------- images


def load_images(split: PreparedSplit, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """The prepared uint8 images [N, 3, S, S] of split indices `indices`, in that order (repeats allowed)."""
    idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if idx.numel() and (idx.min() < 0 or idx.max() >= len(split)):
        raise ValueError(f"{split.path}: image indices must lie in 0..{len(split) - 1} (-1 marks an empty "
                         f"top-k slot; drop those first), got {idx.tolist()}")
    if not idx.numel():
        return torch.zeros((0, 3, split.image_size, split.image_size), dtype=torch.uint8)
    if split.in_memory:
        return split.data["images"][idx]
    return torch.cat([images for images, _ in split.batches(idx, 256)])


def crop_u8(images_u8: torch.Tensor, crop: int) -> torch.Tensor:
    """The uint8 centre crop [N, 3, crop, crop] the model saw (no mean subtraction), for showing patches."""
    top, left = crop_offsets(images_u8.shape[-1], crop)[4]
    return images_u8[..., top : top + crop, left : left + crop]


# ---------------------------------------------------------------------------------------------- command line


def configure_mine_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", required=True)


def mine_command(args: argparse.Namespace) -> None:
    from zfrepro.io import atomic_torch_save
    from zfrepro.model.checkpoint import open_inputs

    torch.set_num_threads(max(1, args.threads))
    model, ckpt, split, mean = open_inputs(args.model, args.data_dir, args.split)
    result = mine_top9(model, split, mean, ckpt["crop_size"], k=args.k, batch_size=args.batch_size,
                       device=resolve_device(args.device), workers=max(1, args.threads))
    atomic_torch_save(args.out, {**result, "split": args.split, "model": str(args.model)})

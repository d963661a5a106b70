"""The deconvnet of Zeiler & Fergus section 2.1: project one activation (or any top-layer signal) to pixels.

Starting from a conv layer's output with every other activation zeroed, each block is walked down through
its ops in reverse: norm -> identity (default) or the exact LRN gradient; pool -> unpool with the recorded
switches, ADDING where overlapping windows share a location (the exact transpose of max pooling, unlike
F.max_unpool2d which keeps one); relu -> rectify the backward signal (ignoring the forward ReLU mask, which
is what separates it from plain gradients and guided backprop); conv -> transposed (flipped) filters, no
bias. With norm="gradient" and value="unit" a projection equals Captum's NeuronDeconvolution.

All targets of a chunk are walked down together as one batch, so the cost is a few batched convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zfrepro.errors import ConfigError
from zfrepro.model.network import ConvNet, Record

NORMS = ("identity", "gradient")
VALUES = ("activation", "unit")


@dataclass(frozen=True)
class Target:
    """One activation to project: image index in the batch, conv layer, map, and (y, x) in the layer OUTPUT."""

    image: int
    layer: str
    channel: int
    y: int
    x: int


# ---------------------------------------------------------------------------------------------- steps
# Module-level step functions, looked up at call time (the tests swap in wrong variants to prove they fail).


def _rectify(signal: torch.Tensor) -> torch.Tensor:
    """The deconvnet's ReLU: rectify the backward signal itself, whatever the forward activation was."""
    return F.relu(signal)


def _unpool(signal: torch.Tensor, switches: torch.Tensor, pool_input_shape: torch.Size) -> torch.Tensor:
    """Transpose of max pooling: put each pooled value at its switch, adding where windows share one."""
    k, c = signal.shape[:2]
    h, w = pool_input_shape[-2:]
    out = signal.new_zeros(k, c, h * w)
    out.scatter_add_(2, switches.flatten(2), signal.flatten(2))
    return out.view(k, c, h, w)


def _transpose_conv(signal: torch.Tensor, conv: nn.Conv2d, input_shape: torch.Size) -> torch.Tensor:
    """Filter with the layer's transposed (flipped) filters, no bias, back to the conv's input size."""
    extra = tuple(
        int(input_shape[-2 + i]) - ((signal.shape[-2 + i] - 1) * conv.stride[i] - 2 * conv.padding[i]
                                    + conv.dilation[i] * (conv.kernel_size[i] - 1) + 1)
        for i in range(2)
    )  # rows/columns the forward conv never reached (its stride skipped them): output_padding
    return F.conv_transpose2d(signal, conv.weight.detach(), None, conv.stride, conv.padding, extra,
                              conv.groups, conv.dilation)


def _channel_window_mean(t: torch.Tensor, before: int, after: int, size: int) -> torch.Tensor:
    """Mean over a window of `size` channels [c - before, c + after], zero-padded (as torch's LRN does)."""
    t5 = F.pad(t.unsqueeze(1), (0, 0, 0, 0, before, after))
    return F.avg_pool3d(t5, (size, 1, 1), stride=1).squeeze(1)


def _lrn_backward(signal: torch.Tensor, x: torch.Tensor, lrn: nn.LocalResponseNorm) -> torch.Tensor:
    """Vector-Jacobian product of torch's LocalResponseNorm at input x (closed form, works under no_grad).

    y_c = x_c d_c^-b, d_c = k + a * mean_{j in win(c)} x_j^2, so
    dx_j = g_j d_j^-b - 2ab x_j * mean_{c: j in win(c)} g_c x_c d_c^(-b-1) (the transposed window).
    """
    n, a, b, k = int(lrn.size), float(lrn.alpha), float(lrn.beta), float(lrn.k)
    d = _channel_window_mean(x * x, n // 2, (n - 1) // 2, n).mul(a).add(k)
    back = _channel_window_mean(signal * x * d.pow(-b - 1), (n - 1) // 2, n // 2, n)
    return signal * d.pow(-b) - (2 * a * b) * x * back


def _lrn_input(record: Record, layer: str, image: torch.Tensor) -> torch.Tensor:
    """The forward input of `layer`'s LRN for each target's image: the rectified map, pooled first if the
    block pools before normalizing (gathered through the switches, which is exactly the max)."""
    uniq, inverse = torch.unique(image, return_inverse=True)
    x = record.rectified[layer][uniq]
    for op in record.ops[layer][2:]:
        if op == "norm":
            break
        if op == "pool":
            sw = record.switches[layer][uniq]
            x = x.flatten(2).gather(2, sw.flatten(2)).view(sw.shape)
    return x[inverse]


def _walk(model: ConvNet, record: Record, layer: str, signal: torch.Tensor, image: torch.Tensor,
          norm: str) -> torch.Tensor:
    """Pass top signals [K, C, h, w] of `layer`'s output (row i belongs to image[i]) down to pixel space."""
    names = [c.name for c in model.spec.convs]
    convs = model.conv_layers()
    for name in reversed(names[: names.index(layer) + 1]):
        for op in reversed(record.ops[name]):
            if op == "norm":
                if norm == "gradient":
                    signal = _lrn_backward(signal, _lrn_input(record, name, image), model.lrn)
            elif op == "pool":
                signal = _unpool(signal, record.switches[name][image], record.pool_input_shape[name])
            elif op == "relu":
                signal = _rectify(signal)
            elif op == "conv":
                signal = _transpose_conv(signal, convs[name], record.conv_input_shape[name])
            else:
                raise ValueError(f"{name}: unknown op {op!r} in the record; expected conv, relu, pool, norm")
    # the transpose of the input's per-channel scaling (published networks), so projections are in pixel units
    return model.scale_input(signal)


# ---------------------------------------------------------------------------------------------- checks


def _check_choice(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: must be one of {list(allowed)}, got {value!r}")


def _ensure_record(model: ConvNet, images: torch.Tensor | None, record: Record | None) -> Record:
    """The given record, or one computed now (no grad); checks it matches `images` and has conv layers."""
    if record is None:
        if images is None:
            raise ConfigError("deconvnet: give the images or a record of them (model.forward_record)")
        with torch.no_grad():
            record = model.forward_record(images)[1]
    if not record.ops:
        raise ConfigError("deconvnet: the record has no conv layers; build it with model.forward_record")
    n = _num_images(record)
    if images is not None and len(images) != n:
        raise ConfigError(f"deconvnet: {len(images)} images but the record holds {n}; record the same batch")
    return record


def _num_images(record: Record) -> int:
    return int(next(iter(record.rectified.values())).shape[0])


def _check_layer(record: Record, layer: str) -> None:
    if layer not in record.ops:
        raise ConfigError(f"deconvnet layer {layer!r}: not a conv layer of this model; "
                          f"use one of {list(record.ops)}")


def _check_target(record: Record, t: Target, n_images: int) -> None:
    _check_layer(record, t.layer)
    c, h, w = record.outputs[t.layer].shape[1:]
    bounds = {"image": (t.image, n_images), "channel": (t.channel, c), "y": (t.y, h), "x": (t.x, w)}
    for field, (v, n) in bounds.items():
        if not 0 <= v < n:
            raise ConfigError(f"deconvnet target {t}: {field} {v} is out of range [0, {n})")


def _pixel_shape(record: Record) -> torch.Size:
    return next(iter(record.conv_input_shape.values()))[1:]


# ---------------------------------------------------------------------------------------------- API


@torch.no_grad()
def project(model: ConvNet, images: torch.Tensor | None, targets: Sequence[Target], norm: str = "identity",
            record: Record | None = None, chunk: int = 64, value: str = "activation") -> torch.Tensor:
    """Project each target activation to pixel space: float [K, 3, H, W], row k for targets[k].

    The top map keeps the target's activation (value="activation", the paper's "keep this one") or 1
    (value="unit", the gradient convention); the two differ by that positive factor only. `chunk` targets
    are walked down together (memory grows with chunk x the largest map).
    """
    _check_choice(norm, NORMS, "deconvnet.norm")
    _check_choice(value, VALUES, "deconvnet.value")
    if chunk < 1:
        raise ConfigError(f"deconvnet.chunk: expected a positive integer, got {chunk!r}")
    record = _ensure_record(model, images, record)
    targets = [Target(int(t.image), str(t.layer), int(t.channel), int(t.y), int(t.x)) for t in targets]
    n_images = _num_images(record)
    by_layer: dict[str, list[int]] = {}
    for k, t in enumerate(targets):
        _check_target(record, t, n_images)
        by_layer.setdefault(t.layer, []).append(k)
    first = next(iter(record.rectified.values()))
    out = first.new_zeros(len(targets), *_pixel_shape(record))
    for layer, rows in by_layer.items():
        act = record.outputs[layer]
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            img, ch, ys, xs = (torch.tensor([getattr(targets[k], f) for k in part], device=act.device)
                               for f in ("image", "channel", "y", "x"))
            top = act.new_zeros(len(part), *act.shape[1:])
            seed = act[img, ch, ys, xs] if value == "activation" else act.new_ones(len(part))
            top[torch.arange(len(part), device=act.device), ch, ys, xs] = seed
            out[part] = _walk(model, record, layer, top, img, norm)
    return out


@torch.no_grad()
def project_maps(model: ConvNet, images: torch.Tensor | None, layer: str, maps: torch.Tensor,
                 norm: str = "identity", record: Record | None = None, chunk: int = 64) -> torch.Tensor:
    """Project arbitrary signals `maps` [B, C, h, w] of `layer`'s output (row b for image b) to pixels
    [B, 3, H, W] (the general form of `project`, e.g. a whole feature map or several activations)."""
    _check_choice(norm, NORMS, "deconvnet.norm")
    if chunk < 1:
        raise ConfigError(f"deconvnet.chunk: expected a positive integer, got {chunk!r}")
    record = _ensure_record(model, images, record)
    _check_layer(record, layer)
    shape = record.outputs[layer].shape
    if tuple(maps.shape) != tuple(shape):
        raise ConfigError(f"deconvnet maps: expected the shape of {layer}'s output {list(shape)}, "
                          f"got {list(maps.shape)}")
    maps = maps.to(record.outputs[layer])
    parts = []
    for start in range(0, shape[0], chunk):
        img = torch.arange(start, min(start + chunk, shape[0]), device=maps.device)
        parts.append(_walk(model, record, layer, maps[img], img, norm))
    return torch.cat(parts)


def strongest(record: Record, layer: str, image: int) -> Target:
    """The single strongest activation of `layer` for one image (first in (channel, y, x) order on ties)."""
    _check_layer(record, layer)
    act = record.outputs[layer]
    if not 0 <= image < act.shape[0]:
        raise ConfigError(f"deconvnet: image {image} is out of range [0, {act.shape[0]})")
    c, h, w = act.shape[1:]
    flat = int(act[image].reshape(-1).argmax())
    return Target(int(image), layer, flat // (h * w), (flat // w) % h, flat % w)



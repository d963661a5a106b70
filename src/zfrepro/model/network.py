"""One configurable convnet built from an architecture spec: ZF (Fig 3), Krizhevsky's single column and
every Table 3 ablation are `ArchSpec` values, not classes.

Layer names are the paper's: conv1..conv5, fc6, fc7 and the classifier fc8; a removed layer leaves the
others' numbers unchanged. Each conv block applies the ops of `ConvSpec.ops` in order, always starting
with ("conv", "relu") followed by "pool" and/or "norm" (ZF: pool then norm; Krizhevsky: norm then pool).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zfrepro.errors import ConfigError

CLASSIFIER = "fc8"
CONFIG_KEYS = ("base", "width", "remove", "fc_units", "conv_maps", "seeds", "training")
REMOVABLE = (3, 4, 6, 7)  # layers 1, 2 and 5 carry the pooling that sizes the net; 8 is the classifier
SPEC_FORMAT = 1
# Krizhevsky's local response normalization (size, alpha, beta, k), used for "contrast normalization".
# torch.nn.LocalResponseNorm divides alpha by `size` (as Caffe does), unlike the formula in Krizhevsky 2012.
LRN = (5, 1e-4, 0.75, 2.0)


@dataclass(frozen=True)
class PoolSpec:
    """Max pooling of a conv block; ceil_mode=True keeps the partial last window (Fig 3 sizes)."""

    kernel: int = 3
    stride: int = 2
    padding: int = 0
    ceil_mode: bool = True


@dataclass(frozen=True)
class ConvSpec:
    """One conv block: conv -> ReLU, then optional max-pool and LRN in the order given by `ops`."""

    name: str
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: PoolSpec | None = None
    norm: bool = False
    norm_after_pool: bool = True

    @property
    def ops(self) -> tuple[str, ...]:
        """The block's operations in forward order, e.g. ("conv", "relu", "pool", "norm").

        The deconvnet walks this tuple backwards (norm -> identity, pool -> unpool with switches, ...).
        """
        tail: list[str] = []
        if self.pool is not None:
            tail.append("pool")
        if self.norm:
            tail.insert(len(tail) if self.norm_after_pool else 0, "norm")
        return ("conv", "relu", *tail)


@dataclass(frozen=True)
class FCSpec:
    """A hidden fully connected layer: Linear -> ReLU -> dropout(p)."""

    name: str
    units: int
    dropout: float = 0.5


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: conv blocks, hidden fc layers, then the classifier fc8 (num_classes units).

    `input_size` is the side of the square input crop; it sizes fc6's input (the flattened last conv block).
    Input normalisation, in pixel units (0..255): None for both is the paper's, the input minus the mean image of
    the training set; published ImageNet networks were trained on (pixel - `input_mean`) / `input_std` per channel
    (torchvision's mean and std times 255), so analyses subtract `input_mean` as a constant mean image and the
    network divides by `input_std` first.
    """

    name: str
    convs: tuple[ConvSpec, ...]
    fcs: tuple[FCSpec, ...]
    num_classes: int
    input_size: int = 224
    lrn: tuple[int, float, float, float] = LRN
    in_channels: int = 3
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None


# ---------------------------------------------------------------------------------------------- specs


def _scaled(n: int, width: float) -> int:
    """Scale a paper width by `width`, rounding half up, never below 1."""
    return max(1, int(math.floor(n * width + 0.5)))


def zf_spec(num_classes: int, input_size: int = 224, width: float = 1.0, dropout: float = 0.5) -> ArchSpec:
    """Zeiler & Fergus Fig 3: 7x7/2 first layer, pool 3/2 (ceil), LRN after the pool in layers 1-2.

    Paddings are a project decision giving exactly 110, 55, 26, 13, 13, 13, 13, 6 at a 224 input.
    """
    pool = PoolSpec(3, 2, 0, True)
    w = _scaled
    convs = (
        ConvSpec("conv1", w(96, width), 7, 2, 1, pool, norm=True, norm_after_pool=True),
        ConvSpec("conv2", w(256, width), 5, 2, 0, pool, norm=True, norm_after_pool=True),
        ConvSpec("conv3", w(384, width), 3, 1, 1),
        ConvSpec("conv4", w(384, width), 3, 1, 1),
        ConvSpec("conv5", w(256, width), 3, 1, 1, pool),
    )
    fcs = (FCSpec("fc6", w(4096, width), dropout), FCSpec("fc7", w(4096, width), dropout))
    return validate_spec(ArchSpec("zf", convs, fcs, num_classes, input_size))


def krizhevsky_spec(num_classes: int, input_size: int = 224, width: float = 1.0,
                    dropout: float = 0.5) -> ArchSpec:
    """Krizhevsky et al. 2012 as one dense column: 11x11/4, 5x5, 3x3 x3, 4096, 4096; LRN before the pool.

    Pools use ceil mode: identical sizes at 224 (55, 27, 27, 13, 13, 13, 13, 6), and at small inputs the
    last pool keeps as many positions as ZF's, so fc6 sees a comparable grid.
    """
    pool = PoolSpec(3, 2, 0, True)
    w = _scaled
    convs = (
        ConvSpec("conv1", w(96, width), 11, 4, 2, pool, norm=True, norm_after_pool=False),
        ConvSpec("conv2", w(256, width), 5, 1, 2, pool, norm=True, norm_after_pool=False),
        ConvSpec("conv3", w(384, width), 3, 1, 1),
        ConvSpec("conv4", w(384, width), 3, 1, 1),
        ConvSpec("conv5", w(256, width), 3, 1, 1, pool),
    )
    fcs = (FCSpec("fc6", w(4096, width), dropout), FCSpec("fc7", w(4096, width), dropout))
    return validate_spec(ArchSpec("krizhevsky", convs, fcs, num_classes, input_size))


# The base networks an architecture starts from (architectures.<name>.base): name -> spec builder. A new base
# network is one builder function here plus its name in the `base` enum of workflow/schemas/config.schema.yaml
# (tests/test_defaults.py fails when the two disagree).
BASE_NETWORKS = {"zf": zf_spec, "krizhevsky": krizhevsky_spec}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _layer_number(key: Any, where: str, allowed: tuple[int, ...]) -> int:
    """Parse a layer key (3 or "3"), checking it is one of `allowed`."""
    n = int(key) if _is_int(key) or (isinstance(key, str) and key.strip().isdigit()) else None
    if n is None or n not in allowed:
        raise ConfigError(f"{where}: layer {key!r} is not allowed here; use one of {list(allowed)}")
    return n


def _positive_int(v: Any, where: str) -> int:
    if not _is_int(v) or v < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {v!r}")
    return v


def _parse_remove(v: Any, where: str) -> set[int]:
    if not isinstance(v, list | tuple):
        raise ConfigError(f"{where}: expected a list of layer numbers from {list(REMOVABLE)}, e.g. [3, 4]; "
                          f"got {v!r}")
    return {_layer_number(k, where, REMOVABLE) for k in v}


def _parse_layer_map(v: Any, where: str, allowed: tuple[int, ...], what: str) -> dict[int, int]:
    """Parse {"3": 512, ...} (keys = layer numbers from `allowed`, values = positive ints)."""
    if not isinstance(v, Mapping):
        raise ConfigError(f"{where}: expected a mapping of layer number to {what}, e.g. "
                          f'{{"{allowed[0]}": 512}}, with layers from {list(allowed)}; got {v!r}')
    return {_layer_number(k, where, allowed): _positive_int(n, f"{where}.{k}") for k, n in v.items()}


def _check_not_removed(layers: set[int], remove: set[int], where: str, remove_key: str) -> None:
    both = sorted(layers & remove)
    if both:
        raise ConfigError(f"{where}: layer(s) {both} are also in {remove_key}; drop them from one of the two")


def spec_from_config(name: str, cfg: Mapping[str, Any], num_classes: int, input_size: int,
                     dropout: float = 0.5) -> ArchSpec:
    """Build the spec of `architectures.<name>` (keys: base, width, remove, fc_units, conv_maps, training).

    fc_units and conv_maps are paper-scale numbers (e.g. 8192, 512) and are scaled by `width` like the base
    widths, so a small model keeps the paper's ratios. `training` belongs to the trainer and is ignored here.
    """
    where = f"architectures.{name}"
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: expected a mapping with at least 'base' (one of {list(BASE_NETWORKS)}), "
                          f"got {cfg!r}")
    for key in cfg:
        if key not in CONFIG_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key; allowed keys are {', '.join(CONFIG_KEYS)}")
    base = cfg.get("base")
    if base not in BASE_NETWORKS:
        raise ConfigError(f"{where}.base: must be one of {list(BASE_NETWORKS)}, got {base!r}")
    width = cfg.get("width", 1.0)
    if not _is_number(width) or width <= 0:
        raise ConfigError(f"{where}.width: expected a positive number (1.0 = the paper's widths), "
                          f"got {width!r}")
    if not _is_number(dropout) or not 0 <= dropout < 1:
        raise ConfigError(f"training.dropout: expected a probability in [0, 1), got {dropout!r}")
    remove = _parse_remove(cfg.get("remove", []), f"{where}.remove")
    fc_raw = cfg.get("fc_units")
    if fc_raw is None:
        fc_units: dict[int, int] = {}
    elif _is_int(fc_raw):
        fc_units = {6: _positive_int(fc_raw, f"{where}.fc_units"), 7: fc_raw}
    else:
        fc_units = _parse_layer_map(fc_raw, f"{where}.fc_units", (6, 7), "units")
    conv_maps = _parse_layer_map(cfg.get("conv_maps") or {}, f"{where}.conv_maps", (1, 2, 3, 4, 5), "maps")
    _check_not_removed(set(conv_maps), remove, f"{where}.conv_maps", f"{where}.remove")
    if _is_int(fc_raw):  # one number for "layers 6,7": applies to whichever of them survive
        if remove >= {6, 7}:
            raise ConfigError(f"{where}.fc_units: layers 6 and 7 are both removed, so there is nothing "
                              "to resize; drop fc_units")
    else:
        _check_not_removed(set(fc_units), remove, f"{where}.fc_units", f"{where}.remove")

    spec = BASE_NETWORKS[base](num_classes, input_size=1 << 12, width=float(width), dropout=float(dropout))
    convs = tuple(
        dataclasses.replace(c, out_channels=_scaled(conv_maps[n], width)) if n in conv_maps else c
        for c in spec.convs if (n := int(c.name[4:])) not in remove
    )
    fcs = tuple(
        dataclasses.replace(f, units=_scaled(fc_units[n], width)) if n in fc_units else f
        for f in spec.fcs if (n := int(f.name[2:])) not in remove
    )
    return validate_spec(dataclasses.replace(spec, name=name, convs=convs, fcs=fcs, input_size=input_size))


# ---------------------------------------------------------------------------------------------- shapes


def out_len(n: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output length of a conv / pool along one axis, exactly as torch computes it."""
    span = n + 2 * padding - kernel
    if span < 0:
        return 0
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + padding:  # the last window must start inside the input
        out -= 1
    return out


def _trace(spec: ArchSpec, size: int) -> tuple[dict, dict, str | None]:
    """Shapes for an input side `size`: (block outputs, pre-pool rectified maps, first layer that fails)."""
    outputs: dict[str, tuple[int, ...]] = {}
    rectified: dict[str, tuple[int, int, int]] = {}
    h = size
    for c in spec.convs:
        h = out_len(h, c.kernel, c.stride, c.padding)
        if h < 1:
            return outputs, rectified, c.name
        rectified[c.name] = (c.out_channels, h, h)
        if c.pool is not None:
            p = c.pool
            h = out_len(h, p.kernel, p.stride, p.padding, p.ceil_mode)
            if h < 1:
                return outputs, rectified, c.name
        outputs[c.name] = (c.out_channels, h, h)
    for f in spec.fcs:
        outputs[f.name] = (f.units,)
    outputs[CLASSIFIER] = (spec.num_classes,)
    return outputs, rectified, None


def min_input_size(spec: ArchSpec) -> int:
    """The smallest input side for which every layer of `spec` has at least a 1x1 output."""
    for size in range(1, 1 << 14):
        if _trace(spec, size)[2] is None:
            return size
    raise ConfigError(f"architectures.{spec.name}: no input size up to {1 << 14} fits this architecture")


def output_shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    """Each layer's output shape (no batch dim), computed arithmetically: conv blocks after their pool/norm
    as (C, H, W), fc layers as (units,), fc8 as (num_classes,)."""
    outputs, _, bad = _trace(spec, spec.input_size)
    if bad is not None:
        _too_small(spec, bad)
    return outputs


def rectified_shapes(spec: ArchSpec) -> dict[str, tuple[int, int, int]]:
    """Each conv layer's post-ReLU, pre-pool map shape (C, H, W); ZF at 224: conv1 -> (96, 110, 110)."""
    _, rectified, bad = _trace(spec, spec.input_size)
    if bad is not None:
        _too_small(spec, bad)
    return rectified


def fc6_in_features(spec: ArchSpec) -> int:
    """Number of inputs of the first fc layer: the flattened output of the last conv block."""
    c, h, w = output_shapes(spec)[spec.convs[-1].name]
    return c * h * w


def _too_small(spec: ArchSpec, layer: str) -> None:
    raise ConfigError(
        f"architectures.{spec.name}: input size {spec.input_size} is too small, {layer} would have no "
        f"output; this architecture needs an input of at least {min_input_size(spec)} pixels (data.crop_size)"
    )


def num_parameters(spec: ArchSpec) -> int:
    """Number of learned parameters (weights + biases) of ConvNet(spec), computed from the spec."""
    total, cin = 0, spec.in_channels
    for c in spec.convs:
        total += cin * c.out_channels * c.kernel * c.kernel + c.out_channels
        cin = c.out_channels
    fin = fc6_in_features(spec)
    for units in [f.units for f in spec.fcs] + [spec.num_classes]:
        total += fin * units + units
        fin = units
    return total


def validate_spec(spec: ArchSpec) -> ArchSpec:
    """Check a spec's structure and that its input size fits; return it unchanged (ConfigError otherwise)."""
    where = f"architectures.{spec.name}"
    if not spec.convs:
        raise ConfigError(f"{where}: needs at least one conv layer")
    names = [c.name for c in spec.convs] + [f.name for f in spec.fcs] + [CLASSIFIER]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: layer names must be unique, got {names}")
    if not _is_int(spec.num_classes) or spec.num_classes < 1:
        raise ConfigError(f"{where}: the number of classes must be a positive integer, "
                          f"got {spec.num_classes!r}")
    if not _is_int(spec.input_size) or spec.input_size < 1:
        raise ConfigError(f"data.crop_size: the input size must be a positive integer, "
                          f"got {spec.input_size!r}")
    for c in spec.convs:
        if min(c.out_channels, c.kernel, c.stride) < 1 or c.padding < 0:
            raise ConfigError(f"{where}: {c.name} needs positive maps, kernel, stride and padding >= 0, "
                              f"got {c}")
        p = c.pool
        if p is not None and (min(p.kernel, p.stride) < 1 or not 0 <= 2 * p.padding <= p.kernel):
            raise ConfigError(f"{where}: {c.name}'s pool needs positive kernel/stride and 0 <= padding <= "
                              f"kernel/2 (torch's rule), got {p}")
    for f in spec.fcs:
        if f.units < 1 or not 0 <= f.dropout < 1:
            raise ConfigError(f"{where}: {f.name} needs units >= 1 and dropout in [0, 1), got {f}")
    for key in ("input_mean", "input_std"):
        values = getattr(spec, key)
        if values is not None and (len(values) != spec.in_channels or not all(_is_number(v) for v in values)
                                   or (key == "input_std" and min(values) <= 0)):
            raise ConfigError(f"{where}.{key}: expected {spec.in_channels} finite numbers (pixel units, std > 0), "
                              f"got {values!r}")
    output_shapes(spec)  # raises if the input is too small
    return spec


# ---------------------------------------------------------------------------------------------- network


@dataclass
class Record:
    """What forward_record keeps, keyed by layer name (what the deconvnet and the analyses need).

    outputs: every layer's output (conv blocks after all their ops; fc6/fc7 after ReLU, before dropout;
             fc8 = logits). rectified: each conv layer's post-ReLU map (before its pool/norm).
    switches: max-pool argmax indices (F.max_pool2d(return_indices=True); feed to F.max_unpool2d with
             output_size=pool_input_shape[name][-2:]). pool_input_shape: the pooled tensor's shape.
    conv_input_shape: the input shape of each conv (for conv_transpose2d's output size).
    ops: each conv block's op order (ConvSpec.ops).
    """

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    rectified: dict[str, torch.Tensor] = field(default_factory=dict)
    switches: dict[str, torch.Tensor] = field(default_factory=dict)
    pool_input_shape: dict[str, torch.Size] = field(default_factory=dict)
    conv_input_shape: dict[str, torch.Size] = field(default_factory=dict)
    ops: dict[str, tuple[str, ...]] = field(default_factory=dict)


class BandedLRN(nn.LocalResponseNorm):
    """torch's LocalResponseNorm (same parameters, same function, equal to it to rounding in the tests), with the
    window sum of x^2 over channels taken as `size` shifted slices of the zero-padded squares. torch pads and
    average-pools a 5-D view instead, which made LRN about a third of a CPU training step of the default
    networks; this is 2-2.5x faster forward and backward, and elementwise, so independent of the batch. On a GPU
    and for bf16/fp16 inputs it takes `_pooled` instead (fewer kernels, float32 reduction, the input's dtype)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            return self._pooled(x)
        channels = x.shape[1]
        squares = F.pad(x * x, (0, 0, 0, 0, self.size // 2, (self.size - 1) // 2))
        total = squares[:, :channels]
        for offset in range(1, self.size):
            total = total + squares[:, offset:offset + channels]
        return x / (total / self.size).mul(self.alpha).add(self.k).pow(self.beta)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The GPU and reduced-precision path: the window mean of x^2 as one average pool over channels, all in
        float32 (x^2 summed in bf16 loses most of its bits), and the result in x's dtype, so that bf16
        activations stay bf16 into the pooling and conv2 (CUDA autocast would otherwise run pow in float32 and
        hand float32 on). About 8 kernels where the slices take 11."""
        wide = x if x.dtype == torch.float64 else x.float()
        squares = (wide * wide).unsqueeze(1)  # [B, 1, C, H, W]
        # zero-padded by size // 2 on both sides; an even window gives one output too many at the far end
        mean = F.avg_pool3d(squares, (self.size, 1, 1), stride=1, padding=(self.size // 2, 0, 0))
        mean = mean.squeeze(1)[:, : x.shape[1]]
        return (wide / mean.mul(self.alpha).add(self.k).pow(self.beta)).to(x.dtype)


class ConvNet(nn.Module):
    """The network of an ArchSpec. Modules are attributes named conv1.., fc6.., fc8 (state_dict keys
    "conv1.weight", ...); pooling, ReLU and dropout are functional, LRN is the shared module `lrn`."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = validate_spec(spec)
        size, alpha, beta, k = spec.lrn
        self.lrn = BandedLRN(int(size), alpha=float(alpha), beta=float(beta), k=float(k))
        # Per-channel 1/input_std, or None (the paper's networks): not in the state dict, so checkpoints keep
        # exactly the weights of the original (a published file's keys map one to one).
        self.input_scale: torch.Tensor | None
        scale = None if spec.input_std is None else 1.0 / torch.tensor(spec.input_std).view(1, -1, 1, 1)
        self.register_buffer("input_scale", scale, persistent=False)
        cin = spec.in_channels
        for c in spec.convs:
            self.add_module(c.name, nn.Conv2d(cin, c.out_channels, c.kernel, c.stride, c.padding))
            cin = c.out_channels
        fin = fc6_in_features(spec)
        for f in spec.fcs:
            self.add_module(f.name, nn.Linear(fin, f.units))
            fin = f.units
        self.add_module(CLASSIFIER, nn.Linear(fin, spec.num_classes))
        # Resolved once so that the training path does no string work per layer.
        self._conv_plan = [(getattr(self, c.name), c.ops[2:], c.pool) for c in spec.convs]
        self._fc_plan = [(getattr(self, f.name), f.dropout) for f in spec.fcs]

    @property
    def layer_names(self) -> list[str]:
        """All layer names in forward order, e.g. ["conv1", ..., "conv5", "fc6", "fc7", "fc8"]."""
        return [c.name for c in self.spec.convs] + [f.name for f in self.spec.fcs] + [CLASSIFIER]

    def conv_layers(self) -> dict[str, nn.Conv2d]:
        """name -> Conv2d, in forward order (the trainer renormalizes these filters after each step)."""
        return {c.name: getattr(self, c.name) for c in self.spec.convs}

    def fc_layers(self) -> dict[str, nn.Linear]:
        """name -> Linear for fc6, fc7 (those present) and the classifier fc8, in forward order."""
        names = [f.name for f in self.spec.fcs] + [CLASSIFIER]
        return {name: getattr(self, name) for name in names}

    def replace_classifier(self, num_classes: int) -> nn.Linear:
        """Swap fc8 for a fresh `num_classes`-way layer (transfer experiments); updates `spec`; returns it."""
        old: nn.Linear = getattr(self, CLASSIFIER)
        new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
        self.spec = validate_spec(dataclasses.replace(self.spec, num_classes=num_classes))
        self.add_module(CLASSIFIER, new)
        return new

    def _check_input(self, x: torch.Tensor) -> None:
        s = self.spec.input_size
        if x.dim() != 4 or x.shape[1] != self.spec.in_channels or x.shape[-2:] != (s, s):
            raise ValueError(f"{self.spec.name} expects input [N, {self.spec.in_channels}, {s}, {s}], "
                             f"got {list(x.shape)}")

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """The mean-subtracted input divided by spec.input_std (published networks); unchanged otherwise."""
        return x if self.input_scale is None else x * self.input_scale

    def _pool(self, x: torch.Tensor, p: PoolSpec) -> torch.Tensor:
        return F.max_pool2d(x, p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; the training path, with no recording."""
        self._check_input(x)
        x = self.scale_input(x)
        for conv, tail, pool in self._conv_plan:
            x = F.relu(conv(x), inplace=True)  # conv's backward does not need its output
            for op in tail:
                x = self._pool(x, pool) if op == "pool" else self.lrn(x)
        x = torch.flatten(x, 1)
        for fc, p in self._fc_plan:
            x = F.dropout(F.relu(fc(x), inplace=True), p, self.training)
        return getattr(self, CLASSIFIER)(x)

    def forward_record(self, x: torch.Tensor) -> tuple[torch.Tensor, Record]:
        """Logits and a Record of every layer (see Record); differentiable unless run under no_grad."""
        self._check_input(x)
        x = self.scale_input(x)
        rec = Record()
        for c, (conv, tail, pool) in zip(self.spec.convs, self._conv_plan, strict=True):
            rec.conv_input_shape[c.name] = x.shape
            rec.ops[c.name] = c.ops
            x = F.relu(conv(x))
            rec.rectified[c.name] = x
            for op in tail:
                if op == "pool":
                    rec.pool_input_shape[c.name] = x.shape
                    x, rec.switches[c.name] = F.max_pool2d(x, pool.kernel, pool.stride, pool.padding,
                                                           ceil_mode=pool.ceil_mode, return_indices=True)
                else:
                    x = self.lrn(x)
            rec.outputs[c.name] = x
        x = torch.flatten(x, 1)
        for f, (fc, p) in zip(self.spec.fcs, self._fc_plan, strict=True):
            x = F.relu(fc(x))
            rec.outputs[f.name] = x
            x = F.dropout(x, p, self.training)
        logits = getattr(self, CLASSIFIER)(x)
        rec.outputs[CLASSIFIER] = logits
        return logits, rec


def init_weights_(model: nn.Module, scheme: str = "gaussian", std: float = 0.01,
                  generator: torch.Generator | None = None) -> nn.Module:
    """Initialize every Conv2d / Linear in place: "gaussian" = N(0, std) (the paper's "weights initialized
    to 1e-2"), "kaiming" = He normal (fan_in, ReLU; `std` unused); biases 0. Returns the model."""
    if scheme not in ("gaussian", "kaiming"):
        raise ConfigError(f"training.init.scheme: must be 'gaussian' or 'kaiming', got {scheme!r}")
    if scheme == "gaussian" and (not _is_number(std) or std <= 0):
        raise ConfigError(f"training.init.std: expected a positive number, got {std!r}")
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                if scheme == "gaussian":
                    nn.init.normal_(m.weight, 0.0, float(std), generator=generator)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


# ---------------------------------------------------------------------------------------------- (de)serialize


def spec_to_dict(spec: ArchSpec) -> dict[str, Any]:
    """Plain-python form of a spec (dicts, lists, str, int, float, bool, None) for checkpoints that are
    loaded with torch.load(weights_only=True). The input normalisation is written only when set, so the specs of
    the paper's networks (and their checkpoints) are unchanged."""
    normalisation = {key: [float(v) for v in getattr(spec, key)]
                     for key in ("input_mean", "input_std") if getattr(spec, key) is not None}
    return {
        "format": SPEC_FORMAT,
        "name": spec.name,
        "num_classes": int(spec.num_classes),
        "input_size": int(spec.input_size),
        "in_channels": int(spec.in_channels),
        "lrn": [int(spec.lrn[0]), float(spec.lrn[1]), float(spec.lrn[2]), float(spec.lrn[3])],
        "convs": [
            {"name": c.name, "out_channels": c.out_channels, "kernel": c.kernel, "stride": c.stride,
             "padding": c.padding, "norm": c.norm, "norm_after_pool": c.norm_after_pool,
             "pool": None if c.pool is None else dataclasses.asdict(c.pool)}
            for c in spec.convs
        ],
        "fcs": [{"name": f.name, "units": f.units, "dropout": float(f.dropout)} for f in spec.fcs],
        **normalisation,
    }


def spec_from_dict(d: Mapping[str, Any]) -> ArchSpec:
    """Inverse of spec_to_dict; ConfigError if the dict is not a spec of a known format."""
    if not isinstance(d, Mapping) or d.get("format") != SPEC_FORMAT:
        raise ConfigError(f"checkpoint 'spec': not an architecture spec of format {SPEC_FORMAT}; "
                          "was the checkpoint written by zfrepro?")
    try:
        convs = tuple(
            ConvSpec(**{k: v for k, v in c.items() if k != "pool"},
                     pool=None if c["pool"] is None else PoolSpec(**c["pool"]))
            for c in d["convs"]
        )
        fcs = tuple(FCSpec(**f) for f in d["fcs"])
        spec = ArchSpec(d["name"], convs, fcs, d["num_classes"], d["input_size"], tuple(d["lrn"]),
                        d.get("in_channels", 3),
                        *(None if d.get(key) is None else tuple(d[key]) for key in ("input_mean", "input_std")))
    except (KeyError, TypeError) as e:
        raise ConfigError(f"checkpoint 'spec': malformed architecture spec ({e}); "
                          "re-train or re-save the checkpoint") from e
    return validate_spec(spec)

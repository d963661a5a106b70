"""Architecture specs: what a network is, as plain frozen values (ZF, Krizhevsky's single column and every
Table 3 ablation are `ArchSpec` values, not classes), the shapes they imply, their checks and their JSON form.

Layer names are the spec's own (the paper's conv1..conv5, fc6, fc7 for the base networks; the classifier is always
fc8); a removed layer leaves the others' names unchanged. Each conv block applies the ops of `ConvSpec.ops` in
order, always starting with ("conv", "relu") followed by "pool" and/or "norm" (ZF: pool then norm; Krizhevsky:
norm then pool). The network built from a spec is `zfrepro.model.network.ConvNet`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zfrepro.errors import ConfigError

CLASSIFIER = "fc8"
SPEC_FORMAT = 1
# Krizhevsky's local response normalization (size, alpha, beta, k), used for "contrast normalization".
# torch.nn.LocalResponseNorm divides alpha by `size` (as Caffe does), unlike the formula in Krizhevsky 2012.
LRN = (5, 1e-4, 0.75, 2.0)


def is_int(v: Any) -> bool:
    """An int that is not a bool (YAML's true is an int to Python)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


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
    if not is_int(spec.num_classes) or spec.num_classes < 1:
        raise ConfigError(f"{where}: the number of classes must be a positive integer, "
                          f"got {spec.num_classes!r}")
    if not is_int(spec.input_size) or spec.input_size < 1:
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
        if values is not None and (len(values) != spec.in_channels or not all(is_number(v) for v in values)
                                   or (key == "input_std" and min(values) <= 0)):
            raise ConfigError(f"{where}.{key}: expected {spec.in_channels} finite numbers (pixel units, std > 0), "
                              f"got {values!r}")
    output_shapes(spec)  # raises if the input is too small
    return spec


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

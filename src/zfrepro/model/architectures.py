"""The base networks (ZF's Fig 3, Krizhevsky's single column) and the config's `architectures.<name>` turned
into an `ArchSpec`: width scaling, removed layers, resized layers, with one clear line per bad key."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from zfrepro.errors import ConfigError
from zfrepro.model.spec import ArchSpec, ConvSpec, FCSpec, PoolSpec, is_int, is_number, validate_spec

CONFIG_KEYS = ("base", "width", "remove", "fc_units", "conv_maps", "seeds", "training")


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
# (tests/test_defaults.py fails when the two disagree). Its layers may be any number of convN and fcN (the
# classifier is fc8): the config's layer numbers (remove, conv_maps, fc_units) are read from its spec.
BASE_NETWORKS = {"zf": zf_spec, "krizhevsky": krizhevsky_spec}


def layer_number(name: str) -> int:
    """The number in a layer's name: conv3 -> 3, fc7 -> 7."""
    return int(name.removeprefix("conv").removeprefix("fc"))


def removable_layers(spec: ArchSpec) -> tuple[int, ...]:
    """The layers `remove` may name: conv layers without a pool (the pools size the net) and hidden fc layers
    (the classifier stays); ZF's and Krizhevsky's 3, 4, 6 and 7."""
    return tuple(layer_number(c.name) for c in spec.convs if c.pool is None) + tuple(
        layer_number(f.name) for f in spec.fcs)


def _layer_number(key: Any, where: str, allowed: tuple[int, ...]) -> int:
    """Parse a layer key (3 or "3"), checking it is one of `allowed`."""
    n = int(key) if is_int(key) or (isinstance(key, str) and key.strip().isdigit()) else None
    if n is None or n not in allowed:
        raise ConfigError(f"{where}: layer {key!r} is not allowed here; use one of {list(allowed)}")
    return n


def _positive_int(v: Any, where: str) -> int:
    if not is_int(v) or v < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {v!r}")
    return v


def _parse_remove(v: Any, where: str, removable: tuple[int, ...]) -> set[int]:
    if not isinstance(v, list | tuple):
        raise ConfigError(f"{where}: expected a list of layer numbers from {list(removable)}, e.g. "
                          f"{list(removable[:2])}; got {v!r}")
    return {_layer_number(k, where, removable) for k in v}


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
    if not is_number(width) or width <= 0:
        raise ConfigError(f"{where}.width: expected a positive number (1.0 = the paper's widths), "
                          f"got {width!r}")
    if not is_number(dropout) or not 0 <= dropout < 1:
        raise ConfigError(f"training.dropout: expected a probability in [0, 1), got {dropout!r}")
    spec = BASE_NETWORKS[base](num_classes, input_size=1 << 12, width=float(width), dropout=float(dropout))
    remove = _parse_remove(cfg.get("remove", []), f"{where}.remove", removable_layers(spec))
    hidden_fcs = tuple(layer_number(f.name) for f in spec.fcs)
    fc_raw = cfg.get("fc_units")
    if fc_raw is None:
        fc_units: dict[int, int] = {}
    elif is_int(fc_raw):
        fc_units = {n: _positive_int(fc_raw, f"{where}.fc_units") for n in hidden_fcs}
    else:
        fc_units = _parse_layer_map(fc_raw, f"{where}.fc_units", hidden_fcs, "units")
    conv_maps = _parse_layer_map(cfg.get("conv_maps") or {}, f"{where}.conv_maps",
                                 tuple(layer_number(c.name) for c in spec.convs), "maps")
    _check_not_removed(set(conv_maps), remove, f"{where}.conv_maps", f"{where}.remove")
    if is_int(fc_raw):  # one number for all hidden fc layers (the paper's 6 and 7): applies to those that survive
        if remove >= set(hidden_fcs):
            raise ConfigError(f"{where}.fc_units: layers {' and '.join(map(str, hidden_fcs))} are removed, so "
                              "there is nothing to resize; drop fc_units")
    else:
        _check_not_removed(set(fc_units), remove, f"{where}.fc_units", f"{where}.remove")

    convs = tuple(
        dataclasses.replace(c, out_channels=_scaled(conv_maps[n], width)) if n in conv_maps else c
        for c in spec.convs if (n := layer_number(c.name)) not in remove
    )
    fcs = tuple(
        dataclasses.replace(f, units=_scaled(fc_units[n], width)) if n in fc_units else f
        for f in spec.fcs if (n := layer_number(f.name)) not in remove
    )
    return validate_spec(dataclasses.replace(spec, name=name, convs=convs, fcs=fcs, input_size=input_size))

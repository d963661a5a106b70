"""Layer-1 filter statistics for Fig 6 and the paper's claims 1 and 2.

Claim 1: with filter renormalization no single layer-1 filter dominates; without it a few do.
Claim 2: ZF's 7x7 stride-2 layer 1 has fewer "dead" filters (and more distinctive ones) than Krizhevsky's
11x11 stride 4. The paper shows both only as pictures (Fig 6 a-c); these numbers make them testable.

Definitions (filter i = the weights W_i of output map i, shape [3, k, k], n filters, biases ignored):
  norm_i        RMS of W_i = sqrt(mean(W_i ** 2)), the quantity the paper's renormalization clips at 0.1.
  gini          Gini coefficient of the norms: sum_i (2 i - n - 1) x_(i) / (n sum_i x_i) with x sorted
                ascending (= mean absolute difference over all ordered pairs / (2 mean)); 0 when all
                filters have the same norm, (n-1)/n when one filter holds all of it.
  max_median    max norm / median norm (inf if the median is 0).
  top_share     share of the summed norms held by the top ceil(top_fraction * n) filters (at least one).
  structure_i   share of W_i's energy that is not its mean colour: sum_c,y,x (W_i[c,y,x] - m_c) ** 2 /
                sum W_i ** 2, with m_c the mean of channel c; 0 for a flat (constant-colour) or zero
                filter, about 1 - 1/k^2 for white noise.
  dead          norm_i < dead_fraction * median norm (default 1%).
  weak          norm_i < weak_fraction * median norm (default 10%; includes the dead ones).
  flat          structure_i < flat_threshold (default 0.2): at least 80% of the energy is one flat colour,
                i.e. no distinctive spatial pattern.
  near_dead     weak or flat (the union; includes the dead ones).
  at_radius     norm_i >= 0.99 * radius (filters held at the renormalization radius; only if radius given).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from zfrepro.options import json_arg

# The per-filter arrays of filter_stats; filter_stats_table leaves them out (one row of scalars per model).
ARRAY_KEYS = ("norms", "structure")


def _weights(conv1_weight: Any) -> np.ndarray:
    """The weights as float64 numpy [n, c, k, k] (accepts a torch tensor or an array)."""
    w = conv1_weight.detach().cpu().numpy() if hasattr(conv1_weight, "detach") else conv1_weight
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[0] < 1:
        raise ValueError(f"conv1_weight: expected filters [n, channels, k, k], got shape {list(w.shape)}")
    if not np.isfinite(w).all():
        raise ValueError("conv1_weight: contains NaN or inf")
    return w


def rms_norms(conv1_weight: Any) -> np.ndarray:
    """RMS value of each filter, [n] (the norm that filter renormalization clips)."""
    w = _weights(conv1_weight)
    return np.sqrt((w.reshape(len(w), -1) ** 2).mean(axis=1))


def gini(values: Any) -> float:
    """Gini coefficient of non-negative values (0 = all equal, (n-1)/n = one holds everything); 0 if all 0."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0 or (x < 0).any():
        raise ValueError("gini: needs at least one value, all >= 0")
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.size
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))


def top_share(values: Any, top_fraction: float = 0.05) -> float:
    """Share of the sum held by the largest ceil(top_fraction * n) values (at least one)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    total = x.sum()
    if total == 0:
        return 0.0
    k = max(1, math.ceil(top_fraction * x.size - 1e-9))  # 5% of 96 -> 5 filters; the epsilon absorbs float noise
    return float(x[:k].sum() / total)


def structure_fraction(conv1_weight: Any) -> np.ndarray:
    """Per filter, the share of its energy beyond its mean colour (0 = flat, ~1 = pure pattern), [n]."""
    w = _weights(conv1_weight)
    dc = w.mean(axis=(2, 3), keepdims=True)
    energy = (w ** 2).sum(axis=(1, 2, 3))
    pattern = ((w - dc) ** 2).sum(axis=(1, 2, 3))
    out = np.zeros(len(w))
    np.divide(pattern, energy, out=out, where=energy > 0)  # a zero filter has no structure
    return out


def filter_stats(conv1_weight: Any, model_name: str, *, top_fraction: float = 0.05,
                 dead_fraction: float = 0.01, weak_fraction: float = 0.1, flat_threshold: float = 0.2,
                 radius: float | None = 0.1) -> dict[str, Any]:
    """The statistics of the module docstring for one model's layer-1 filters [n, 3, k, k].

    Returns scalars (model, filters, kernel, norm_min/median/mean/max, gini, max_median, top_share,
    top_fraction, dead, weak, flat, near_dead, at_radius, radius) plus the per-filter arrays "norms" and
    "structure" (numpy [n]).
    """
    w = _weights(conv1_weight)
    norms = rms_norms(w)
    structure = structure_fraction(w)
    median = float(np.median(norms))
    dead = norms < dead_fraction * median
    weak = norms < weak_fraction * median
    flat = structure < flat_threshold
    return {
        "model": model_name,
        "filters": int(len(w)),
        "kernel": int(w.shape[-1]),
        "norm_min": float(norms.min()),
        "norm_median": median,
        "norm_mean": float(norms.mean()),
        "norm_max": float(norms.max()),
        "gini": gini(norms),
        "max_median": float(norms.max() / median) if median > 0 else math.inf,
        "top_share": top_share(norms, top_fraction),
        "top_fraction": float(top_fraction),
        "dead": int(dead.sum()),
        "weak": int(weak.sum()),
        "flat": int(flat.sum()),
        "near_dead": int((weak | flat).sum()),
        "at_radius": None if radius is None else int((norms >= 0.99 * radius).sum()),
        "radius": radius,
        "norms": norms,
        "structure": structure,
    }


def filter_stats_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model from filter_stats results (the per-filter arrays left out), in the given order."""
    records = [{k: v for k, v in row.items() if k not in ARRAY_KEYS} for row in rows]
    if not records:
        raise ValueError("filter_stats_table: no rows")
    return pd.DataFrame.from_records(records)


# ---------------------------------------------------------------------------------------------- command line


FOOTNOTE = ("Claims 1 and 2 of the paper: with filter renormalisation no layer-1 filter dominates; the 7x7 "
            "stride-2 first layer has fewer dead filters than 11x11 stride 4. Norms are RMS values of each "
            "filter; definitions of every column in src/zfrepro/analysis/filters.py.")


def configure_filters_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.analysis.projections import _projection_options

    p.add_argument("--filters", required=True, type=json_arg(dict),
                   help="JSON: {panel: final.pt} whose layer-1 filters to show")
    p.add_argument("--projections", required=True, type=json_arg(dict),
                   help="JSON: {panel: final.pt} whose layer-2 maps to project")
    p.add_argument("--top9", required=True, type=json_arg(dict), help="JSON: {panel: top9.pt}, the mined activations")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    _projection_options(p)


def filters_command(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.projections import layer2_projections
    from zfrepro.io import atomic_torch_save, load_result
    from zfrepro.model.checkpoint import load_model
    from zfrepro.report.write import write_table

    torch.set_num_threads(max(1, args.threads))
    weights, stats = {}, []
    for panel, path in args.filters.items():  # Fig 6 (a), (b), (c): layer-1 filters
        model, ckpt = load_model(path)
        weights[panel] = model.conv_layers()["conv1"].weight.detach().clone()
        radius = ckpt.get("training", {}).get("filter_radius")  # the radius this network was trained with
        stats.append(filter_stats(weights[panel], f"({panel}) {ckpt['arch']}", radius=radius))
    projections = {panel: layer2_projections(path, args.data_dir, load_result(args.top9[panel]), args.maps,
                                             args.seed, args.norm)
                   for panel, path in args.projections.items()}  # Fig 6 (d), (e)
    atomic_torch_save(args.out, {"filters": weights, "projections": projections})
    write_table(filter_stats_table(stats), args.out_csv, args.out_md, "Fig 6: layer-1 filter statistics", FOOTNOTE)

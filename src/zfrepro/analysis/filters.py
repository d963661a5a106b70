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
  max_median_peak, peak_epoch
                the largest max_median over the kept epoch checkpoints and the final model, and its epoch
                (claim 1 is about training: a filter may dominate early and be overtaken later).

Spectra (claim 2: "a mix of extremely high and low frequency information, with little coverage of the mid
frequencies", and "aliasing artifacts caused by the large stride"). Each filter's (or image's) power is that
of its own k x k DFT summed over the colour channels, so the shares are exact fractions of its energy
(Parseval); a DFT bin (fy, fx) has radial frequency sqrt(fy^2 + fx^2) in cycles per input pixel (0.5 =
the pixel Nyquist). The frequency grid is 1/k: 7x7 and 11x11 filters are compared on their own grids.
  low/mid/high_share   mean over filters of the share of power at radial frequency below, inside and at or
                above the middle band [lo, hi) (visualize.fig6_mid_band).
  alias_share   mean over filters of the share of power that layer 1's stride s aliases: bins with
                max(|fy|, |fx|) > 1 / (2 s), the Nyquist frequency of sampling every s pixels (separable
                sampling: the alias-free region is a square, not a disc).
  l2_alias_share
                the same share for the network's layer-2 projections (Fig 6 d, e; each image's mean colour
                removed first), with s = its layer-1 stride: the grid pattern that a stride-s layer 1
                leaves in what layer 2 sees. Only for networks whose layer 2 is projected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The per-filter arrays of filter_stats; filter_stats_table leaves them out (one row of scalars per model).
ARRAY_KEYS = ("norms", "structure", "mid", "alias")
MID_BAND = (0.125, 0.375)  # cycles per pixel: the middle half of 0..0.5 (visualize.fig6_mid_band)


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


def near_dead_mask(conv1_weight: Any, weak_fraction: float = 0.1, flat_threshold: float = 0.2) -> np.ndarray:
    """bool [n]: the near-dead filters (weak or flat, module docstring)."""
    w = _weights(conv1_weight)
    norms = rms_norms(w)
    return (norms < weak_fraction * float(np.median(norms))) | (structure_fraction(w) < flat_threshold)


def max_median(values: Any) -> float:
    """Largest over median of non-negative values (inf when the median is 0): how far one filter stands out."""
    x = np.asarray(values, dtype=np.float64)
    median = float(np.median(x))
    return float(x.max() / median) if median > 0 else math.inf


# ---------------------------------------------------------------------------------------------- spectra


def _images(images: Any, name: str = "images") -> np.ndarray:
    """float64 numpy [n, c, h, w] from a torch tensor or an array."""
    a = images.detach().cpu().numpy() if hasattr(images, "detach") else images
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"{name}: expected [n, channels, h, w], got shape {list(a.shape)}")
    return a


def power_spectrum(images: Any, remove_mean: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(power [n, h, w], fy [h, 1], fx [1, w]): each image's h x w DFT power summed over channels, and the
    frequency of each bin in cycles per pixel. remove_mean: subtract each channel's mean first (no DC)."""
    a = _images(images)
    if remove_mean:
        a = a - a.mean(axis=(2, 3), keepdims=True)
    power = (np.abs(np.fft.fft2(a)) ** 2).sum(axis=1)
    h, w = a.shape[-2:]
    return power, np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]


def _shares(power: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """[n, len(masks)]: each image's share of its power in each mask of bins (0 for an image without power)."""
    total = power.sum(axis=(1, 2))
    parts = np.stack([(power * m).sum(axis=(1, 2)) for m in masks], axis=1)
    out = np.zeros_like(parts)
    np.divide(parts, total[:, None], out=out, where=total[:, None] > 0)
    return out


def radial_shares(images: Any, edges: Any, remove_mean: bool = False) -> np.ndarray:
    """[n, len(edges) - 1]: share of each image's power at radial frequency in [edges[i], edges[i+1])."""
    power, fy, fx = power_spectrum(images, remove_mean)
    r = np.sqrt(fy ** 2 + fx ** 2)
    edges = np.asarray(edges, dtype=np.float64)
    return _shares(power, [(r >= lo) & (r < hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)])


def band_shares(images: Any, band: tuple[float, float] = MID_BAND, remove_mean: bool = False) -> np.ndarray:
    """[n, 3]: share of each image's power below, inside and at or above the radial band [lo, hi)."""
    lo, hi = band
    if not 0 <= lo < hi:
        raise ValueError(f"visualize.fig6_mid_band: expected 0 <= low < high cycles per pixel, got {list(band)}")
    return radial_shares(images, [0.0, lo, hi, math.inf], remove_mean)


def alias_share(images: Any, stride: int, remove_mean: bool = False) -> np.ndarray:
    """[n]: share of each image's power that sampling every `stride` pixels aliases: max(|fy|, |fx|) > 1/(2 s)."""
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: expected a positive integer, got {stride!r}")
    power, fy, fx = power_spectrum(images, remove_mean)
    return _shares(power, [np.maximum(np.abs(fy), np.abs(fx)) > 1 / (2 * stride) + 1e-12])[:, 0]


# ---------------------------------------------------------------------------------------------- statistics


def filter_stats(conv1_weight: Any, model_name: str, *, top_fraction: float = 0.05,
                 dead_fraction: float = 0.01, weak_fraction: float = 0.1, flat_threshold: float = 0.2,
                 radius: float | None = 0.1, stride: int | None = None,
                 mid_band: tuple[float, float] = MID_BAND) -> dict[str, Any]:
    """The statistics of the module docstring for one model's layer-1 filters [n, 3, k, k].

    Returns scalars (model, filters, kernel, norm_min/median/mean/max, gini, max_median, top_share,
    top_fraction, dead, weak, flat, near_dead, at_radius, radius, stride, low/mid/high_share, alias_share)
    plus the per-filter arrays "norms", "structure", "mid" (mid-band share) and "alias" (numpy [n]; alias
    and alias_share only with a stride).
    """
    w = _weights(conv1_weight)
    norms = rms_norms(w)
    structure = structure_fraction(w)
    median = float(np.median(norms))
    dead = norms < dead_fraction * median
    weak = norms < weak_fraction * median
    flat = structure < flat_threshold
    bands = band_shares(w, mid_band)
    alias = None if stride is None else alias_share(w, stride)
    return {
        "model": model_name,
        "filters": int(len(w)),
        "kernel": int(w.shape[-1]),
        "norm_min": float(norms.min()),
        "norm_median": median,
        "norm_mean": float(norms.mean()),
        "norm_max": float(norms.max()),
        "gini": gini(norms),
        "max_median": max_median(norms),
        "top_share": top_share(norms, top_fraction),
        "top_fraction": float(top_fraction),
        "dead": int(dead.sum()),
        "weak": int(weak.sum()),
        "flat": int(flat.sum()),
        "near_dead": int((weak | flat).sum()),
        "at_radius": None if radius is None else int((norms >= 0.99 * radius).sum()),
        "radius": radius,
        "stride": stride,
        "low_share": float(bands[:, 0].mean()),
        "mid_share": float(bands[:, 1].mean()),
        "high_share": float(bands[:, 2].mean()),
        "alias_share": None if alias is None else float(alias.mean()),
        "norms": norms,
        "structure": structure,
        "mid": bands[:, 1],
        "alias": alias,
    }


def peak_dominance(history: Mapping[int, Any]) -> tuple[float, int]:
    """(largest max_median, its epoch) over {epoch: conv1 weight} (the kept checkpoints and the final model)."""
    if not history:
        raise ValueError("peak_dominance: no epochs")
    values = {int(epoch): max_median(rms_norms(w)) for epoch, w in history.items()}
    epoch = max(sorted(values), key=lambda e: values[e])  # the earliest epoch on ties
    return values[epoch], epoch


def filter_stats_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model from filter_stats results (the per-filter arrays left out), in the given order."""
    records = [{k: v for k, v in row.items() if k not in ARRAY_KEYS} for row in rows]
    if not records:
        raise ValueError("filter_stats_table: no rows")
    return pd.DataFrame.from_records(records)


FOOTNOTE = ("Claims 1 and 2 of the paper: with filter renormalisation no layer-1 filter dominates; the 7x7 "
            "stride-2 first layer has fewer dead filters than 11x11 stride 4, covers the middle spatial frequencies "
            "and removes the aliasing of layer 2. Norms are RMS values of each filter; max_median_peak: the largest "
            "max_median over the kept epochs and the final model (peak_epoch). Spectra: power of each filter's own "
            "DFT; low/mid/high_share: below, inside, above the middle band {band} cycles per pixel; alias_share: "
            "above the Nyquist frequency 1/(2 stride) of layer 1's stride; l2_alias_share: the same for the "
            "layer-2 projections of Fig 6 (d, e). Definitions of every column in src/zfrepro/analysis/filters.py.")


@dataclass(frozen=True)
class Layer1:
    """One network's layer 1 in Fig 6: its final filters, the kept epochs' filters, and how it was trained."""

    arch: str
    filters: Any  # [out, 3, k, k] tensor of the final model
    history: Mapping[int, Any]  # {epoch: filters}, the final epoch included
    stride: int
    radius: float | None  # the filter renormalisation radius it was trained with (None: none)


@dataclass(frozen=True)
class Layer2:
    """One network's layer-2 projections in Fig 6 (d, e), with its layer-1 stride (their Nyquist limit)."""

    arch: str
    projections: Any  # [maps, 3, h, w] tensor
    stride: int


@dataclass(frozen=True)
class FilterStudy:
    """Fig 6's results by role, as `zfrepro filters` saves them under the figure's panel letters."""

    no_renorm: Layer1 | None  # (a) ZF trained without filter renormalisation (None: visualize.no_renorm_arch null)
    krizhevsky: Layer1  # (b)
    zf: Layer1  # (c)
    krizhevsky_layer2: Layer2 | None  # (d), when layer-2 maps are projected (visualize.fig6_layer2_maps)
    zf_layer2: Layer2 | None  # (e)
    mid_band: tuple[float, float]

    LAYER1_PANELS = {"no_renorm": "a", "krizhevsky": "b", "zf": "c"}
    LAYER2_PANELS = {"krizhevsky_layer2": "d", "zf_layer2": "e"}

    @classmethod
    def from_saved(cls, data: Mapping) -> FilterStudy:
        """The study from the filters command's .pt (panel letters: a-c layer 1, d-e layer 2)."""
        layer1 = {role: Layer1(str(data["arches"][p]), data["filters"][p], data["history"].get(p, {}),
                               int(data["strides"][p]), data.get("radii", {}).get(p)) if p in data["filters"] else None
                  for role, p in cls.LAYER1_PANELS.items()}
        layer2 = {role: Layer2(str(data["arches"][p]), data["projections"][p], int(data["strides"][p]))
                  if p in data["projections"] else None for role, p in cls.LAYER2_PANELS.items()}
        return cls(**layer1, **layer2, mid_band=tuple(data["mid_band"]))

    def layer1_panels(self) -> dict[str, Any]:
        """{panel letter: filters} for the figure's layout."""
        return {p: getattr(self, role).filters for role, p in self.LAYER1_PANELS.items()
                if getattr(self, role) is not None}

    def layer2_panels(self) -> dict[str, Any]:
        """{panel letter: projections} of the networks projected, for the figure's layout."""
        return {p: getattr(self, role).projections for role, p in self.LAYER2_PANELS.items()
                if getattr(self, role) is not None}

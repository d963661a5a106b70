"""Fig 6: layer-1 filters of each network side by side, and layer-2 deconvnet projections (architecture
selection, section 4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from zfrepro.report.figures.style import (
    add_axes,
    as_numpy,
    grid_shape,
    new_figure,
    normalize_for_display,
    paper_style,
    save_figure,
    show_image,
    tile_gap,
    tile_mosaic,
    to_hwc,
)

FIG6_TITLES = {
    "a": "(a) Layer 1, no renormalization",
    "b": "(b) Layer 1, Krizhevsky et al.",
    "c": "(c) Layer 1, ours (ZF)",
    "d": "(d) Layer 2, Krizhevsky et al.",
    "e": "(e) Layer 2, ours (ZF)",
}


def _filter_mosaic(w: np.ndarray, scale: str, clip_percentile: float) -> np.ndarray:
    """Layer-1 filters [C, 3, k, k] as one image. scale="panel": one symmetric scale for all filters
    (0 = grey, so weak or dead filters look grey and dominating ones stand out, as in Fig 6 a);
    scale="filter": each filter stretched on its own."""
    if scale == "panel":
        s = float(np.percentile(np.abs(w), clip_percentile)) or 1.0
        disp = np.clip(0.5 + 0.5 * w / s, 0, 1)
    elif scale == "filter":
        disp = normalize_for_display(w)
    else:
        raise ValueError(f"fig6_filters: filter_scale must be 'panel' or 'filter', got {scale!r}")
    r, c = grid_shape(len(w))
    return tile_mosaic(to_hwc(disp), r, c, tile_gap(w.shape[-1]))


def fig6_filters(filters: Mapping[str, Any], projections: Mapping[str, Any], out: str | Path, *,
                 titles: Mapping[str, str] | None = None, filter_scale: str = "panel",
                 clip_percentile: float = 99.5, percentile: float = 0.0, symmetric: bool = True,
                 width: float = 7.5) -> Figure:
    """Fig 6: layer-1 filter panels (top row) and layer-2 projection panels (bottom row).

    filters: panel -> float [C, 3, k, k] (paper: "a" no renormalization, "b" Krizhevsky, "c" ZF);
    projections: panel -> float [M, 3, h, w] ("d" Krizhevsky layer 2, "e" ZF layer 2). Titles default to
    the paper's panel captions (FIG6_TITLES) and fall back to the key. filter_scale: "panel" (one scale
    per panel, saturating at the clip_percentile of |w|) or "filter" (each stretched on its own).
    Projections are stretched per image (normalize_for_display with `percentile`, `symmetric`).
    """
    if set(filters) & set(projections):
        raise ValueError(f"fig6_filters: panel names must differ between filters and projections, "
                         f"got {sorted(set(filters) & set(projections))} in both")
    titles = {**FIG6_TITLES, **(titles or {})}
    rows = []
    for kind, panels in (("filters", filters), ("projections", projections)):
        row = []
        for key in sorted(panels):
            a = as_numpy(panels[key]).astype(np.float64)
            if a.ndim != 4:
                raise ValueError(f"fig6_filters: {kind}[{key!r}] must be [N, 3, h, w], got {list(a.shape)}")
            if kind == "filters":
                img = _filter_mosaic(a, filter_scale, clip_percentile)
            else:
                r, c = grid_shape(len(a))
                img = tile_mosaic(to_hwc(normalize_for_display(a, percentile, symmetric)), r, c, tile_gap(a.shape[-1]))
            row.append((titles.get(key, key), img))
        if row:
            rows.append(row)
    if not rows:
        raise ValueError("fig6_filters: no panels")
    col_gap, title_h, row_gap = 0.3, 0.3, 0.15
    layout = []
    for row in rows:
        side = (width - col_gap * (len(row) - 1)) / len(row)
        layout.append([(t, img, i * (side + col_gap), side, side * img.shape[0] / img.shape[1])
                       for i, (t, img) in enumerate(row)])
    total = sum(title_h + max(p[4] for p in r) + row_gap for r in layout) - row_gap
    with paper_style():
        fig = new_figure(width, total)
        y = total
        for r in layout:
            row_h = max(p[4] for p in r)
            y -= title_h + row_h
            for title, img, left, side, hgt in r:
                ax = add_axes(fig, left, y + row_h - hgt, side, hgt)
                show_image(ax, img, side)
                ax.set_title(title, loc="left", fontsize=8.5)
            y -= row_gap
        save_figure(fig, out)
    return fig

"""Figure 5 of the paper: feature distances and p(true class) under translation, scale and rotation.

Drawn from the dict `zfrepro invariance` saves (nothing is recomputed): one row per transformation (a
vertical translation, b scale, c rotation); columns: example transformed images (one column of tiles per
image, as the model sees them), the Euclidean feature distance to the original at each layer, p(true class).
One curve per image, in the same colour as the frame under its example tiles; one legend with class names.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zfrepro.analysis.invariance import AXIS_LABELS, KINDS
from zfrepro.report.figures.style import (
    as_numpy,
    fit_image,
    layer_title,
    new_figure,
    paper_style,
    save_figure,
    tile_gap,
    tile_mosaic,
    to_hwc,
)

ROW_TITLES = {"translation": "Vertical translation", "scale": "Scale", "rotation": "Rotation"}
LEGEND_WRAP = 42  # characters per line of a class name in the legend


def _value_label(kind: str, x: float) -> str:
    """Short label of one example's transformation (at the figure's units)."""
    if kind == "translation":
        return f"{x:+.0f} px" if round(x) else "0 px"
    if kind == "scale":
        return f"x{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.0f}\N{DEGREE SIGN}"


def _examples(ax: Axes, kind: str, entry: Mapping[str, Any], colors: list, width_in: float) -> None:
    """Tiles: one column per image, one row per example value; a colour bar under each column."""
    ex = as_numpy(entry["examples"])  # [N, k, 3, c, c] uint8
    n, k, _, c, _ = ex.shape
    tiles = to_hwc(ex.transpose(1, 0, 2, 3, 4).reshape(n * k, 3, c, c).astype(np.float64) / 255.0)
    gap = tile_gap(c)
    mosaic = tile_mosaic(tiles, k, n, gap)
    bar = max(2, round(0.08 * c))
    strip = np.ones((gap + bar, mosaic.shape[1], 3))
    for i, color in enumerate(colors[:n]):
        strip[gap:, i * (c + gap):i * (c + gap) + c] = color
    img = np.concatenate([mosaic, strip])
    h, w = img.shape[:2]
    ax.imshow(fit_image(img, width_in), extent=(0, w, h, 0), interpolation="nearest", aspect="equal")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([(c + gap) * r + c / 2 for r in range(k)])
    xs = as_numpy(entry["x"])[as_numpy(entry["example_index"]).astype(int)]
    ax.set_yticklabels([_value_label(kind, float(x)) for x in xs], fontsize=7)
    ax.tick_params(axis="y", length=0, pad=2)
    for side in ax.spines.values():
        side.set_visible(False)


def _curves(ax: Axes, x: np.ndarray, y: np.ndarray, colors: list, kind: str) -> None:
    """One line per image (rows of y) against the transformation values x."""
    for i in range(y.shape[0]):
        ax.plot(x, y[i], color=colors[i], lw=1.2, marker="o", ms=2.2)
    if kind == "rotation":
        ax.set_xticks(np.arange(0, 361, 90))
    ax.set_xlabel(AXIS_LABELS[kind])
    ax.grid(True, color="0.9", lw=0.6)
    ax.tick_params(labelsize=7)
    sns.despine(ax=ax)


def fig5_invariance(data: Mapping[str, Any], out: str | Path, *, width: float | None = None,
                    row_height: float = 2.35) -> Figure:
    """Fig 5 from the invariance data dict; writes PNG + PDF and returns the Figure (width: inches, default
    2.75 per column)."""
    kinds = [kind for kind in KINDS if kind in data["kinds"]]
    layers = list(data["layers"])
    names = list(data["class_names"])
    if not kinds or not layers:
        raise ValueError("fig5_invariance: the data hold no transformations or no layers")
    n = len(names)
    colors = sns.color_palette("colorblind" if n <= 10 else "husl", n)
    ncols = 2 + len(layers)
    width = width or 2.75 * ncols
    with paper_style():
        legend_rows = -(-n // min(n, 3))
        bottom = 0.55 + 0.16 * (legend_rows + 1)  # inches under the last row: its x labels, then the legend
        height = row_height * len(kinds) + bottom
        fig = new_figure(width, height)
        grid = fig.add_gridspec(len(kinds), ncols, width_ratios=[1.25] + [1] * (ncols - 1), wspace=0.34,
                                hspace=0.55, left=0.05, right=0.99, top=1 - 0.25 / height, bottom=bottom / height)
        ex_width = width * 0.94 * 1.25 / (1.25 + ncols - 1)
        for r, kind in enumerate(kinds):
            entry = data["kinds"][kind]
            x = as_numpy(entry["x"]).astype(np.float64)
            letter = "abc"[r] if r < 3 else str(r + 1)
            ax = fig.add_subplot(grid[r, 0])
            _examples(ax, kind, entry, colors, ex_width)
            ax.set_title(f"{letter}1  {ROW_TITLES.get(kind, kind)}", loc="left", fontweight="bold")
            for j, layer in enumerate(layers):
                ax = fig.add_subplot(grid[r, 1 + j])
                _curves(ax, x, as_numpy(entry["distance"][layer]).astype(np.float64), colors, kind)
                ax.set_ylim(bottom=0)
                ax.set_ylabel("Euclidean distance")
                ax.set_title(f"{letter}{2 + j}  {layer_title(layer)}", loc="left", fontweight="bold")
            ax = fig.add_subplot(grid[r, ncols - 1])
            _curves(ax, x, as_numpy(entry["p_true"]).astype(np.float64), colors, kind)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("P(true class)")
            ax.set_title(f"{letter}{ncols}  P(true class)", loc="left", fontweight="bold")
        handles = [Line2D([], [], color=colors[i], lw=1.6, marker="o", ms=3,
                          label=textwrap.shorten(name, LEGEND_WRAP * 2, placeholder="...")) for i, name in
                   enumerate(names)]
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=min(n, 3), frameon=False,
                   fontsize=7.5, title="true class of each image", title_fontsize=8)
        save_figure(fig, out)
    return fig

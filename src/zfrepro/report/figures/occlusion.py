"""Figure 7 of Zeiler & Fergus, drawn from `zfrepro occlusion`'s data (nothing is recomputed here).

One row per image: (a) the input with the grey square at the position where p(true class) is lowest,
(b) the total activation of the layer's strongest map, (c) that map projected for this image (black frame)
beside its projections from other validation images, (d) p(true class), (e) the most probable class, as
functions of the occluder position. Heat-map cells sit at the occluder's centre in input pixels, so they
line up with panel (a); the grey margin is where no occluder centre lies (the square stays in the image).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from zfrepro.report.figures.style import (
    add_axes,
    as_numpy,
    grid_shape,
    layer_title,
    new_figure,
    normalize_for_display,
    paper_style,
    save_figure,
    show_image,
    tile_gap,
    tile_mosaic,
    to_hwc,
)

OTHER = "0.75"  # colour of the labels lumped together in panel (e)
MARGIN = "0.93"  # heat-map background where no occluder centre lies
TITLES = ("(a) input, grey square where\np(true class) is lowest", "(b) {layer}, strongest\nfeature map (total)",
          "(c) {layer}, projections\nof that map", "(d) p(true class)", "(e) most probable class")


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _share(where: np.ndarray) -> str:
    """Fraction of occluder positions as a percentage ("<1%" rather than a misleading "0%")."""
    f = float(where.mean())
    return "<1%" if 0 < f < 0.005 else f"{f:.0%}"


def _extent(offsets: np.ndarray, size: int) -> tuple[float, float, float, float]:
    """imshow extent placing cell i at the centre of the square starting at offsets[i] (pixel units)."""
    centres = offsets + size / 2
    half = (offsets[1] - offsets[0]) / 2 if len(offsets) > 1 else size / 2
    return centres[0] - half, centres[-1] + half, centres[-1] + half, centres[0] - half


def _frame(ax: Axes, crop: int) -> None:
    ax.set_xlim(0, crop)
    ax.set_ylim(crop, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor(MARGIN)
    for s in ax.spines.values():
        s.set_color("0.3")
        s.set_linewidth(0.6)


def _colorbar(fig: Figure, ax: Axes, image: Any, label: str) -> None:
    cax = ax.inset_axes((1.04, 0.0, 0.06, 1.0))
    bar = fig.colorbar(image, cax=cax)
    bar.ax.tick_params(labelsize=6, length=2, pad=1)
    bar.set_label(label, fontsize=6.5, labelpad=2)
    bar.outline.set_linewidth(0.5)


def label_colours(top_label: np.ndarray, true_label: int, max_labels: int) -> tuple[list[int], dict[int, Any]]:
    """The labels panel (e) names, by area (the true class first if present), and a colour for each; the
    rest share the colour OTHER. At most `max_labels` are named."""
    labels, counts = np.unique(top_label, return_counts=True)
    order = [int(v) for v in labels[np.argsort(-counts, kind="stable")]]
    if true_label in order:
        order.remove(true_label)
        order.insert(0, true_label)
    named = order[:max_labels]
    palette = sns.color_palette("tab10", 10)
    return named, {lab: palette[i % 10] for i, lab in enumerate(named)}


def _label_panel(ax: Axes, row: Mapping, names: Sequence[str], extent: tuple, crop: int,
                 max_labels: int) -> None:
    """Panel (e): the most probable label per position as colours, with a legend naming them."""
    top = as_numpy(row["top_label"]).astype(np.int64)
    named, colours = label_colours(top, int(row["label"]), max_labels)
    index = np.full(top.shape, len(named))
    for i, lab in enumerate(named):
        index[top == lab] = i
    cmap = ListedColormap([colours[lab] for lab in named] + [OTHER])
    ax.imshow(index, cmap=cmap, vmin=-0.5, vmax=len(named) + 0.5, extent=extent, interpolation="nearest")
    _frame(ax, crop)
    handles = [Patch(fc=colours[lab], ec="0.3", lw=0.4,
                     label=_wrap(f"{names[lab]}{' (true)' if lab == int(row['label']) else ''}"
                                 f" {_share(top == lab)}", 30)) for lab in named]
    rest = index == len(named)
    if rest.any():
        handles.append(Patch(fc=OTHER, ec="0.3", lw=0.4, label=f"other classes {_share(rest)}"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.04, 1.0), frameon=False, fontsize=6,
              handlelength=1.0, handleheight=1.0, borderaxespad=0.0, labelspacing=0.5)


def _projection_mosaic(projections: Any, percentile: float) -> np.ndarray:
    """Panel (c): this image's projection (first, black frame) then the other images', near-square grid."""
    proj = as_numpy(projections).astype(np.float64)
    if proj.ndim != 4 or len(proj) == 0:
        raise ValueError(f"fig7_occlusion: projections must be [1 + k, 3, h, w], got {list(proj.shape)}")
    tiles = to_hwc(normalize_for_display(proj, percentile, symmetric=True))
    h = tiles.shape[1]
    border = max(1, round(0.05 * h))
    tiles[0, :border], tiles[0, -border:], tiles[0, :, :border], tiles[0, :, -border:] = 0, 0, 0, 0
    rows, cols = grid_shape(len(tiles))
    return tile_mosaic(tiles, rows, cols, tile_gap(h))


def fig7_occlusion(data: Mapping[str, Any], out: str | Path, *, max_labels: int = 5, percentile: float = 1.0,
                   panel: float = 1.55) -> Figure:
    """Fig 7 from occlusion_data's dict: one row per image, panels (a)-(e) (see the module docstring).

    max_labels: classes named in panel (e)'s legend (the rest are "other classes"); percentile: contrast
    stretch of the projections (zero = mid grey); panel: side of each panel in inches.
    """
    rows = list(data["rows"])
    if not rows:
        raise ValueError("fig7_occlusion: no images")
    names, crop, size = list(data["class_names"]), int(data["crop"]), int(data["size"])
    offsets = as_numpy(data["offsets"]).astype(np.float64)
    extent = _extent(offsets, size)
    layer = layer_title(str(data["layer"]))
    gap, bar_room, legend_w, head_h, row_gap, title_h = 0.22, 0.55, 2.15, 0.32, 0.12, 0.36
    lefts, x = [], 0.05
    for room in (gap, bar_room + 0.05, gap, bar_room + 0.05, 0.0):
        lefts.append(x)
        x += panel + room
    width = x + legend_w
    total = title_h + len(rows) * (head_h + panel + row_gap)
    with paper_style():
        fig = new_figure(width, total)
        y = total - title_h
        for k, row in enumerate(rows):
            label = int(row["label"])
            base = int(row["base_label"])
            head = (f"{names[label]}  ({row['wnid']}, validation image {row['nth']}): unoccluded "
                    f"p(true) = {row['base_p_true']:.2f}, predicted "
                    f"{'correctly' if base == label else names[base]}; strongest {layer} map: #{row['channel']}")
            fig.text(lefts[0] / width, (y - 0.06) / total, head, ha="left", va="top", fontsize=7.5)
            y -= head_h + panel
            axes = [add_axes(fig, left, y, panel, panel) for left in lefts]
            if k == 0:
                for ax, title in zip(axes, TITLES, strict=True):
                    ax.text(0.0, 1.0 + (head_h + 0.03) / panel, title.format(layer=layer), transform=ax.transAxes,
                            ha="left", va="bottom", fontsize=8)
            ax = axes[0]
            ax.imshow(to_hwc(as_numpy(row["occluded_image"]).astype(np.float64) / 255.0), extent=(0, crop, crop, 0),
                      interpolation="nearest")
            sy, sx = (int(v) for v in row["shown"])
            ax.add_patch(Rectangle((sx, sy), size, size, fill=False, ec="white", lw=0.8))
            _frame(ax, crop)
            im = axes[1].imshow(as_numpy(row["map_total"]), cmap="inferno", extent=extent, interpolation="nearest")
            _frame(axes[1], crop)
            _colorbar(fig, axes[1], im, "total activation")
            show_image(axes[2], _projection_mosaic(row["projections"], percentile), panel)
            im = axes[3].imshow(as_numpy(row["p_true"]), cmap="viridis", vmin=0, vmax=1, extent=extent,
                                interpolation="nearest")
            _frame(axes[3], crop)
            _colorbar(fig, axes[3], im, "p(true class)")
            _label_panel(axes[4], row, names, extent, crop, max_labels)
            y -= row_gap
        save_figure(fig, out)
    return fig


# ---------------------------------------------------------------------------------------------- command line

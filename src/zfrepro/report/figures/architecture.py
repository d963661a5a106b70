"""Fig 3: the architecture of a network spec drawn as boxes, and `architecture_table`, the same as a table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Polygon

from zfrepro.io import atomic_write_text
from zfrepro.model.spec import CLASSIFIER, ArchSpec, output_shapes, rectified_shapes
from zfrepro.report.figures.style import (
    add_axes,
    layer_title,
    new_figure,
    paper_style,
    save_figure,
)


def architecture_table(spec: ArchSpec) -> pd.DataFrame:
    """Fig 3 as a table: one row per operation (input, conv, pool, norm, fc) with its output size.

    Columns: layer, operation, filter, stride, padding, out_c, out_h, out_w, description. Sizes come from
    zfrepro.model.spec.rectified_shapes (conv rows, post-ReLU) and output_shapes (pool, fc rows).
    """
    rect, outs = rectified_shapes(spec), output_shapes(spec)
    s = spec.input_size
    rows: list[dict[str, Any]] = [dict(layer="input", operation="input", out_c=spec.in_channels, out_h=s, out_w=s,
                                       description=f"{s}x{s}x{spec.in_channels} image")]
    size_, lrn = spec.lrn[0], spec.lrn
    for c in spec.convs:
        shape = rect[c.name]
        rows.append(dict(layer=c.name, operation="conv", filter=f"{c.kernel}x{c.kernel}", stride=c.stride,
                         padding=c.padding, out_c=shape[0], out_h=shape[1], out_w=shape[2],
                         description=f"{c.out_channels} filters {c.kernel}x{c.kernel} stride {c.stride}, ReLU"))
        for op in c.ops[2:]:
            if op == "pool":
                p = c.pool
                shape = outs[c.name]  # LRN keeps the size, so the pooled size is the block's output size
                rows.append(dict(layer=c.name, operation="pool", filter=f"{p.kernel}x{p.kernel}", stride=p.stride,
                                 padding=p.padding, out_c=shape[0], out_h=shape[1], out_w=shape[2],
                                 description=f"{p.kernel}x{p.kernel} max pool stride {p.stride}"
                                             + (" (ceil mode)" if p.ceil_mode else "")))
            else:
                rows.append(dict(layer=c.name, operation="norm", filter=f"{size_} maps", out_c=shape[0],
                                 out_h=shape[1], out_w=shape[2],
                                 description=f"contrast norm. (LRN size {lrn[0]}, alpha {lrn[1]:g}, "
                                             f"beta {lrn[2]:g}, k {lrn[3]:g})"))
    for f in spec.fcs:
        rows.append(dict(layer=f.name, operation="fc", out_c=f.units,
                         description=f"{f.units} units, ReLU, dropout {f.dropout:g}"))
    rows.append(dict(layer=CLASSIFIER, operation="fc", out_c=spec.num_classes,
                     description=f"{spec.num_classes}-way softmax"))
    df = pd.DataFrame.from_records(rows, columns=["layer", "operation", "filter", "stride", "padding", "out_c",
                                                  "out_h", "out_w", "description"])
    for col in ("stride", "padding", "out_c", "out_h", "out_w"):
        df[col] = df[col].astype("Int64")
    df["filter"] = df["filter"].fillna("")
    return df


def _side(h: int) -> float:
    """Drawn side of a map of h x h (square root scale, so 224 and 6 both stay legible)."""
    return max(0.3, 1.7 * math.sqrt(h / 224))


def _depth(c: int) -> float:
    """Drawn depth of c maps (log scale)."""
    return max(0.06, 0.11 * math.log2(max(c, 1)) - 0.1)


def _box_height(kind: str, size: int) -> float:
    """Drawn height of a map box (side) or an fc bar (log of its units)."""
    return _side(size) if kind == "map" else 0.25 + 0.13 * math.log2(max(size, 2))


def _box(ax: Axes, x: float, w: float, h: float, d: float, color: str) -> tuple[float, float]:
    """A 3D-looking box: front face w x h centred on y = 0 at x, receding up-right by depth d.
    Returns the box's right and top extent."""
    dx, dy = 0.55 * d, 0.4 * d
    y0 = -h / 2
    base = np.array(sns.desaturate(color, 0.8))
    front = [(x, y0), (x + w, y0), (x + w, y0 + h), (x, y0 + h)]
    top = [(x, y0 + h), (x + w, y0 + h), (x + w + dx, y0 + h + dy), (x + dx, y0 + h + dy)]
    right = [(x + w, y0), (x + w + dx, y0 + dy), (x + w + dx, y0 + h + dy), (x + w, y0 + h)]
    for pts, shade in ((right, 0.75), (top, 1.15), (front, 1.0)):
        ax.add_patch(Polygon(pts, closed=True, fc=np.clip(base * shade, 0, 1), ec="0.25", lw=0.6))
    return x + w + dx, y0 + h + dy


def _arch_groups(spec: ArchSpec) -> list[dict[str, Any]]:
    """Drawing plan for Fig 3: per stage its title, boxes (kind, size, maps) and caption lines."""
    rect, outs = rectified_shapes(spec), output_shapes(spec)
    s = spec.input_size
    groups = [dict(title="Input", boxes=[("map", s, spec.in_channels)], caption=[f"image size {s}"])]
    for c in spec.convs:
        boxes = [("map", rect[c.name][1], c.out_channels)]
        caption = [f"{c.out_channels} filters", f"{c.kernel}x{c.kernel} stride {c.stride}"]
        for op in c.ops[2:]:
            if op == "pool":
                boxes.append(("map", outs[c.name][1], c.out_channels))
                caption.append(f"{c.pool.kernel}x{c.pool.kernel} max pool stride {c.pool.stride}")
            else:
                caption.append("contrast norm.")
        groups.append(dict(title=layer_title(c.name), boxes=boxes, caption=caption))
    for f in spec.fcs:
        groups.append(dict(title=layer_title(f.name), boxes=[("fc", f.units, f.units)],
                           caption=[f"{f.units} units", "dropout" if f.dropout else "no dropout"]))
    groups.append(dict(title="Output", boxes=[("fc", spec.num_classes, spec.num_classes)],
                       caption=[f"{spec.num_classes} class", "softmax"]))
    return groups


def fig3_architecture(spec: ArchSpec, out_png: str | Path, out_csv: str | Path) -> Figure:
    """Fig 3: the architecture of `spec` drawn as boxes (sizes from zfrepro.model.spec) plus the CSV table
    (architecture_table) at out_csv."""
    table = architecture_table(spec)
    groups = _arch_groups(spec)
    colors = sns.color_palette("Blues", 3)[1], sns.color_palette("Oranges", 3)[1]
    gap, inner, label_room = 0.6, 0.25, 0.2
    x = 0.0
    placed = []  # (group, [(kind, size, maps, x, w, h, d)], left, right)
    for g in groups:
        left, items = x, []
        for kind, size, maps in g["boxes"]:
            x += label_room if kind == "map" else 0.0  # room for the rotated size label left of a map box
            w, d = (_side(size), _depth(maps)) if kind == "map" else (0.16, 0.12)
            items.append((kind, size, maps, x, w, _box_height(kind, size), d))
            x += w + 0.55 * d + inner
        placed.append((g, items, left, x - inner))
        x += gap
    xmax = x - gap
    half = max(it[5] / 2 for _, items, _, _ in placed for it in items)
    top = max(it[5] / 2 + 0.4 * it[6] for _, items, _, _ in placed for it in items) + 0.32
    lines = max(len(g["caption"]) for g in groups)
    lo_caption = -half - 0.3
    x0, x1, y0, y1 = -0.1, xmax + 0.1, lo_caption - 0.2 * lines - 0.1, top + 0.3
    scale = min(0.75, 16.0 / (x1 - x0))  # inches per drawing unit
    with paper_style():
        fig = new_figure((x1 - x0) * scale, (y1 - y0) * scale)
        ax = add_axes(fig, 0, 0, *fig.get_size_inches())
        for g, items, left, right in placed:
            for kind, size, maps, bx, w, h, d in items:
                rx, ty = _box(ax, bx, w, h, d, colors[0] if kind == "map" else colors[1])
                if kind == "map":
                    ax.text(bx - 0.04, 0, str(size), ha="right", va="center", fontsize=7, rotation=90)
                    ax.text(bx + w / 2, -h / 2 - 0.05, str(size), ha="center", va="top", fontsize=7)
                    ax.text((bx + rx) / 2 + 0.1, ty + 0.04, str(maps), ha="center", va="bottom", fontsize=7)
            ax.text((left + right) / 2, top, g["title"], ha="center", va="bottom", fontsize=9, fontweight="bold")
            ax.text((left + right) / 2, lo_caption, "\n".join(g["caption"]), ha="center", va="top", fontsize=7,
                    linespacing=1.3)
        for (_, _, _, r0), (_, _, l1, _) in zip(placed[:-1], placed[1:], strict=True):
            ax.add_patch(FancyArrowPatch((r0 + 0.05, 0), (l1 - 0.02, 0), arrowstyle="-|>", mutation_scale=8,
                                         lw=0.9, color="0.35"))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_axis_off()
        save_figure(fig, out_png)
    atomic_write_text(out_csv, table.to_csv(index=False))
    return fig

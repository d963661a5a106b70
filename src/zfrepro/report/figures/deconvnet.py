"""The deconvnet figures: Fig 1 (the deconvnet and unpooling), Fig 2 (top-9 projections beside their
patches), Fig 4 (feature evolution during training) and Fig 6 (layer-1 filters, layer-2 projections).

Drawn from arrays (nothing is recomputed here); see zfrepro.report.figures.style for the conventions.
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from zfrepro.report.figures.style import (
    add_axes,
    as_numpy,
    check_shape,
    grid_shape,
    layer_title,
    new_figure,
    normalize_for_display,
    paper_style,
    patches_to_unit,
    save_figure,
    show_image,
    tile_gap,
    tile_mosaic,
    to_hwc,
)

SEPARATOR = "0.6"  # the grey line between projections and patches (Fig 2)


FORWARD_OPS = {"conv": "convolution\n(filters $F$)", "relu": "rectified linear\nfunction",
               "pool": "max pooling\n(record switches)", "norm": "contrast\nnormalization"}


DECONV_OPS = {"conv": "filtering with\ntransposed filters $F^T$", "relu": "rectified linear\nfunction",
              "pool": "max unpooling\n(with switches)"}


NORM_BACKWARD = {"identity": "identity\n(norm not inverted)", "gradient": "LRN gradient\n(transpose)"}


# ---------------------------------------------------------------------------------------------- Fig 1


def _pool_window(pooled_hw: tuple[int, int], pooled: np.ndarray, window: int | tuple[int, int, int] | None,
                 max_window: int) -> tuple[int, int, int, int]:
    """(top, left, rows, cols) of the pooled units shown: `window` = (top, left, size), or the whole map if
    small, else a square (of side `window` if an int, max_window - 2 if None) around the strongest unit."""
    ph, pw = pooled_hw
    if isinstance(window, tuple | list):
        top, left, size = window
        if not (0 <= top < ph and 0 <= left < pw and size >= 1):
            raise ValueError(f"fig1_deconvnet: window {window} lies outside the pooled map {ph}x{pw}")
        return top, left, min(size, ph - top), min(size, pw - left)
    if window is None and max(ph, pw) <= max_window:
        return 0, 0, ph, pw
    size = max_window - 2 if window is None else int(window)
    if size < 1:
        raise ValueError(f"fig1_deconvnet: window must be a positive size or (top, left, size), got {window}")
    size = min(size, ph, pw)
    r, c = np.unravel_index(int(np.argmax(pooled)), pooled.shape)
    top = int(np.clip(r - size // 2, 0, ph - size))
    left = int(np.clip(c - size // 2, 0, pw - size))
    return top, left, size, size


def _fmt(v: float) -> str:
    """Compact cell label; zeros stay blank so the switches stand out."""
    if v == 0:
        return ""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _heatmap(ax: Axes, m: np.ndarray, vmax: float, annotate: bool, cmap: str = "viridis") -> None:
    ax.imshow(m, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("0.3")
    if annotate and m.size <= 144:
        for (r, c), v in np.ndenumerate(m):
            bright = vmax > 0 and v / vmax > 0.6
            ax.text(c, r, _fmt(float(v)), ha="center", va="center", fontsize=5.5,
                    color="black" if bright else "white")


def _mark_switches(ax: Axes, counts: np.ndarray) -> None:
    """Outline every switch location; a location chosen by several (overlapping) windows gets a thick
    orange frame, because unpooling adds their values there."""
    for (r, c), n in np.ndenumerate(counts):
        if n:
            shared = n > 1
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=2.0 if shared else 1.2,
                                   ec="#ff7f00" if shared else "#e41a1c"))


def _deconv_diagram(ax: Axes, ops: Sequence[str], norm: str, title: str | None) -> None:
    """Two ladders: the convnet layer going up (right) and its attached deconvnet layer going down (left)."""
    n = len(ops)
    box_w, box_h, step = 3.6, 0.78, 1.15
    xs = {"deconv": 2.2, "conv": 7.2}
    ys = [1.3 + i * step for i in range(n)]
    top = ys[-1] + step
    ends = {"conv": ("layer below\npooled maps", "layer above\n(pooled maps)"),
            "deconv": ("reconstruction\n(layer below)", "layer above\nreconstruction")}
    styles = {"conv": dict(fc="#d6e6f5", ec="#3a6ea5"), "deconv": dict(fc="#fbe3cf", ec="#c0631b")}
    for side, x in xs.items():
        ax.text(x, top + 0.85, "Convnet" if side == "conv" else "Deconvnet", ha="center", va="bottom",
                fontsize=9, fontweight="bold")
        ax.text(x, 0.35, ends[side][0], ha="center", va="center", fontsize=7, color="0.25")
        ax.text(x, top + 0.2, ends[side][1], ha="center", va="center", fontsize=7, color="0.25")
        for op, y in zip(ops, ys, strict=True):
            label = FORWARD_OPS[op] if side == "conv" else DECONV_OPS.get(op) or NORM_BACKWARD[norm]
            ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0.02,rounding_size=0.12", lw=1, **styles[side]))
            ax.text(x, y, label, ha="center", va="center", fontsize=7)
        stops = [0.35] + ys + [top + 0.2]
        for y0, y1 in zip(stops[:-1], stops[1:], strict=True):
            lo, hi = y0 + (0.3 if y0 == 0.35 else box_h / 2), y1 - (0.3 if y1 == top + 0.2 else box_h / 2)
            start, end = ((x, lo), (x, hi)) if side == "conv" else ((x, hi), (x, lo))
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, lw=1,
                                         color=styles[side]["ec"]))
    for op, y in zip(ops, ys, strict=True):  # what the deconvnet borrows from the forward pass
        what = {"pool": "switches", "conv": "$F$"}.get(op)
        if what:
            ax.add_patch(FancyArrowPatch((xs["conv"] - box_w / 2, y), (xs["deconv"] + box_w / 2, y),
                                         arrowstyle="-|>", mutation_scale=9, lw=1, ls="--", color="0.35"))
            ax.text((xs["conv"] + xs["deconv"]) / 2, y + 0.1, what, ha="center", va="bottom", fontsize=7,
                    color="0.2")
    ax.set_xlim(0, 9.4)
    ax.set_ylim(0, top + 1.3)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def fig1_deconvnet(pooled: Any, switches: Any, unpooled: Any, rectified: Any, layer_sequence: Sequence[str],
                   out: str | Path, *, pool: tuple[int, int, int] = (3, 2, 0),
                   window: int | tuple[int, int, int] | None = None, max_window: int = 6,
                   norm: str = "identity", title: str | None = None, annotate: bool = True) -> Figure:
    """Fig 1: the deconvnet ladder for one conv block beside real pooling / unpooling of one map.

    rectified [H, W]: one post-ReLU map (the pool's input); pooled [h, w]: its max-pooled map; switches
    [h, w]: flat indices into rectified (F.max_pool2d's indices for that map); unpooled [H, W]: the
    unpooled map (values put back at the switches, overlapping windows added). layer_sequence: the block's
    ops, e.g. ("conv", "relu", "pool", "norm"). pool = (kernel, stride, padding) sizes the rectified crop
    shown for the pooled `window`: (top, left, size), or an int side of a square around the strongest
    pooled unit; by default the whole map if its side <= max_window, else a max_window - 2 square around
    the strongest. norm: "identity" or "gradient", how the deconvnet passes contrast normalization.
    The rectified and unpooled crops mark every switch inside them (thick orange where overlapping windows
    share one), so the unpooled crop can hold contributions of pooled units just outside the window.
    """
    ops = list(layer_sequence)
    bad = [op for op in ops if op not in FORWARD_OPS]
    if bad or not ops:
        raise ValueError(f"fig1_deconvnet: layer_sequence must use {list(FORWARD_OPS)}, got {ops}")
    if norm not in NORM_BACKWARD:
        raise ValueError(f"fig1_deconvnet: norm must be one of {list(NORM_BACKWARD)}, got {norm!r}")
    rect = check_shape("rectified", np.squeeze(as_numpy(rectified)).astype(np.float64), 2, "one map [H, W]")
    unp = check_shape("unpooled", np.squeeze(as_numpy(unpooled)).astype(np.float64), 2, "one map [H, W]")
    pooled_a = check_shape("pooled", np.squeeze(as_numpy(pooled)).astype(np.float64), 2, "one map [h, w]")
    sw = check_shape("switches", np.squeeze(as_numpy(switches)).astype(np.int64), 2, "indices [h, w]")
    if unp.shape != rect.shape or sw.shape != pooled_a.shape:
        raise ValueError(f"fig1_deconvnet: unpooled {list(unp.shape)} must match rectified {list(rect.shape)} "
                         f"and switches {list(sw.shape)} must match pooled {list(pooled_a.shape)}")
    H, W = rect.shape
    if sw.min() < 0 or sw.max() >= H * W:
        raise ValueError(f"fig1_deconvnet: switches must be flat indices into the {H}x{W} rectified map")

    counts = np.bincount(sw.ravel(), minlength=H * W).reshape(H, W)  # windows choosing each location
    top, left, nr, nc = _pool_window(pooled_a.shape, pooled_a, window, max_window)
    k, s, p = pool
    r0, c0 = max(0, top * s - p), max(0, left * s - p)
    r1, c1 = min(H, (top + nr - 1) * s - p + k), min(W, (left + nc - 1) * s - p + k)
    crops = {"rect": rect[r0:r1, c0:c1], "pooled": pooled_a[top:top + nr, left:left + nc],
             "unpooled": unp[r0:r1, c0:c1]}
    vmax = max(float(np.max(v)) for v in crops.values()) or 1.0

    with paper_style():
        fig_h, side, y_mid = 3.9, 2.7, 2.1
        fig = new_figure(12.0, fig_h)
        _deconv_diagram(add_axes(fig, 0.0, 0.0, 4.2, fig_h), ops, norm, title)
        cell = side / max(crops["rect"].shape)
        x = 4.75
        panels = [("rect", "rectified feature map\n+ switches (max locations)"), ("pooled", "pooled map"),
                  ("unpooled", "unpooled map\n(values at the switches)")]
        axes = []
        for key, label in panels:
            h, w = crops[key].shape
            ax = add_axes(fig, x, y_mid - h * cell / 2, w * cell, h * cell)
            _heatmap(ax, crops[key], vmax, annotate)
            if key != "pooled":
                _mark_switches(ax, counts[r0:r1, c0:c1])
            ax.set_title(label, fontsize=8)
            axes.append(ax)
            x += w * cell + 0.85
        ya = y_mid / fig_h
        for a, b, text in ((axes[0], axes[1], "max pool"), (axes[1], axes[2], "unpool")):
            x0, x1 = a.get_position().x1 + 0.006, b.get_position().x0 - 0.006
            fig.add_artist(FancyArrowPatch((x0, ya), (x1, ya), transform=fig.transFigure, arrowstyle="-|>",
                                           mutation_scale=10, lw=1.2, color="0.3"))
            fig.text((x0 + x1) / 2, ya + 0.025, text, ha="center", va="bottom", fontsize=7.5)
        cax = add_axes(fig, x - 0.6, y_mid - 1.2, 0.12, 2.4)
        fig.colorbar(axes[0].images[0], cax=cax).set_label("activation", fontsize=7)
        cax.tick_params(labelsize=6)
        handles = [Line2D([], [], marker="s", ls="", mfc="none", mec="#e41a1c", mew=1.2, ms=8,
                          label="switch (one window)"),
                   Line2D([], [], marker="s", ls="", mfc="none", mec="#ff7f00", mew=2.0, ms=8,
                          label="switch shared by overlapping windows (unpooling adds their values)")]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(4.7 / 12, (y_mid - side / 2 - 0.08) / fig_h),
                   frameon=False, fontsize=7, ncol=2)
        save_figure(fig, out)
    return fig


# ---------------------------------------------------------------------------------------------- Fig 2


def _fig2_panel(entry: Mapping[str, Any], name: str, percentile: float,
                symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """One layer's projection and patch mosaics (maps in a near-square grid, each its 3x3 top-9 grid)."""
    proj = check_shape(f"fig2_top9[{name}]['projections']", as_numpy(entry["projections"]), 5, "[M, 9, 3, h, w]")
    patches = check_shape(f"fig2_top9[{name}]['patches']", as_numpy(entry["patches"]), 5, "[M, 9, 3, h, w]")
    channels = np.asarray(as_numpy(entry["channels"])).ravel()
    if proj.shape[:2] != patches.shape[:2] or proj.shape[-2:] != patches.shape[-2:] or len(channels) != len(proj):
        raise ValueError(f"fig2_top9[{name}]: projections {list(proj.shape)}, patches {list(patches.shape)} and "
                         f"channels [{len(channels)}] must agree on maps, images and size")
    m, k, _, h, _ = proj.shape
    kr, kc = grid_shape(k)
    mr, mc = grid_shape(m)
    gap = tile_gap(h)
    out = []
    for tiles in (to_hwc(normalize_for_display(proj, percentile, symmetric)), to_hwc(patches_to_unit(patches))):
        maps = np.stack([tile_mosaic(tiles[i], kr, kc, gap) for i in range(m)])
        out.append(tile_mosaic(maps, mr, mc, 4 * gap))
    return out[0], out[1]


def fig2_top9(layers: Mapping[str, Mapping[str, Any]], out: str | Path, *, width: float = 7.5,
              rows: Sequence[Sequence[str]] | None = None, percentile: float = 0.0,
              symmetric: bool = True) -> Figure:
    """Fig 2: per layer, M maps' top-9 projections (left) beside the matching image patches (right).

    layers: name -> {"projections": float [M, 9, 3, h, w], "patches": uint8 or float [M, 9, 3, h, w],
    "channels": [M]}, in display order. rows: which layers share a row of the page (default: the first two,
    then one per row, as in the paper). Projections are stretched per image (normalize_for_display with
    `percentile`, `symmetric`: zero = mid grey); NaN images (fewer than 9 found) are left blank.
    """
    names = list(layers)
    if not names:
        raise ValueError("fig2_top9: no layers")
    rows = [list(r) for r in rows] if rows is not None else ([names[:2]] + [[n] for n in names[2:]])
    if sorted(sum(rows, [])) != sorted(names):
        raise ValueError(f"fig2_top9: rows {rows} must list each layer {names} exactly once")
    mosaics = {n: _fig2_panel(layers[n], n, percentile, symmetric) for n in names}
    sep, col_gap, title_h, row_gap = 0.16, 0.3, 0.22, 0.12
    layout = []  # (name, left, side width, image height) per panel, rows top to bottom
    for row in rows:
        cell = (width - col_gap * (len(row) - 1)) / len(row)
        side = (cell - sep) / 2
        heights = [side * mosaics[n][0].shape[0] / mosaics[n][0].shape[1] for n in row]
        layout.append([(n, i * (cell + col_gap), side, hgt) for i, (n, hgt) in enumerate(zip(row, heights,
                                                                                              strict=True))])
    total = sum(title_h + max(p[3] for p in r) + row_gap for r in layout)
    with paper_style():
        fig = new_figure(width, total)
        y = total
        for r in layout:
            row_h = max(p[3] for p in r)
            y -= title_h + row_h
            for name, left, side, hgt in r:
                bottom = y + row_h - hgt
                for j, img in enumerate(mosaics[name]):
                    show_image(add_axes(fig, left + j * (side + sep), bottom, side, hgt), img, side)
                xs = (left + side + sep / 2) / width
                fig.add_artist(Line2D([xs, xs], [bottom / total, (bottom + hgt) / total], lw=1.5, color=SEPARATOR,
                                      transform=fig.transFigure))
                fig.text((left + side + sep / 2) / width, (y + row_h + 0.04) / total, layer_title(name),
                         ha="center", va="bottom", fontsize=9)
            y -= row_gap
        save_figure(fig, out)
    return fig


# ---------------------------------------------------------------------------------------------- Fig 4


def fig4_evolution(projections: Any, epochs: Sequence[int], labels: Sequence[str], out: str | Path, *,
                   percentile: float = 1.0, symmetric: bool = True, width: float = 7.0) -> Figure:
    """Fig 4: one row per map, one column per epoch; rows grouped by layer (consecutive equal labels).

    projections: float [M, E, 3, h, w], or a list of M arrays [E, 3, h_m, w_m] (sizes may differ between
    layers, not within one). labels: each map's layer name (e.g. "conv2"; shown as "Layer 2"). Each image
    is contrast-enhanced on its own (normalize_for_display with `percentile`, `symmetric`: zero = mid grey).
    """
    maps = [as_numpy(p) for p in projections] if isinstance(projections, list | tuple) else list(as_numpy(projections))
    epochs, labels = list(epochs), list(labels)
    if not maps or len(labels) != len(maps):
        raise ValueError(f"fig4_evolution: {len(maps)} maps but {len(labels)} labels")
    for i, m in enumerate(maps):
        if m.ndim != 4 or m.shape[0] != len(epochs):
            raise ValueError(f"fig4_evolution: map {i} must be [E={len(epochs)}, 3, h, w], got {list(m.shape)}")
    groups: list[tuple[str, list[np.ndarray]]] = []
    for label, m in zip(labels, maps, strict=True):
        if groups and groups[-1][0] == label:
            groups[-1][1].append(m)
        else:
            groups.append((label, [m]))
    label_w, title_h, group_gap = 0.75, 0.25, 0.2
    img_w = width - label_w
    e = len(epochs)
    mosaics = []
    for label, ms in groups:
        if len({m.shape for m in ms}) != 1:
            raise ValueError(f"fig4_evolution: the maps labelled {label!r} differ in size")
        tiles = to_hwc(normalize_for_display(np.concatenate(ms), percentile, symmetric))  # [rows * E, h, w, 3]
        mosaics.append(tile_mosaic(tiles, len(ms), e, tile_gap(ms[0].shape[-1])))
    heights = [img_w * m.shape[0] / m.shape[1] for m in mosaics]
    total = title_h + sum(heights) + group_gap * (len(groups) - 1)
    with paper_style():
        fig = new_figure(width, total)
        y = total - title_h
        for i, ((label, ms), img, hgt) in enumerate(zip(groups, mosaics, heights, strict=True)):
            y -= hgt
            ax = add_axes(fig, label_w, y, img_w, hgt)
            show_image(ax, img, img_w)
            fig.text((label_w - 0.1) / width, (y + hgt / 2) / total, layer_title(label), ha="right",
                     va="center", fontsize=9)
            if i == 0:
                tile_w = img.shape[1] / e
                for j, ep in enumerate(epochs):
                    ax.text((j + 0.5) * tile_w, -0.04 * img.shape[0] / len(ms), f"Epoch {ep}", ha="center",
                            va="bottom", fontsize=8)
            y -= group_gap
        save_figure(fig, out)
    return fig

"""The paper's Figures 1, 2, 3, 4 and 6, drawn from arrays and specs (nothing is recomputed here).

Every figure function builds a matplotlib Figure on the Agg canvas (no display, no pyplot state), writes it
with `save_figure` as PNG (150 dpi) and PDF beside it, and returns the Figure so callers can inspect it.
Arrays may be numpy arrays or torch tensors. Images are channel-first [..., 3, h, w] as torch keeps them.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle
from PIL import Image

from zfrepro.io import atomic_write_bytes, atomic_write_text
from zfrepro.model.network import CLASSIFIER, ArchSpec, output_shapes, rectified_shapes

DPI = 150
RASTER_DPI = 300  # mosaics are resampled to at most this many pixels per inch of their printed size
SEPARATOR = "0.6"  # the grey line between projections and patches (Fig 2)
BACKGROUND = 1.0  # white gaps between tiles

FORWARD_OPS = {"conv": "convolution\n(filters $F$)", "relu": "rectified linear\nfunction",
               "pool": "max pooling\n(record switches)", "norm": "contrast\nnormalization"}
DECONV_OPS = {"conv": "filtering with\ntransposed filters $F^T$", "relu": "rectified linear\nfunction",
              "pool": "max unpooling\n(with switches)"}
NORM_BACKWARD = {"identity": "identity\n(norm not inverted)", "gradient": "LRN gradient\n(transpose)"}
FIG6_TITLES = {
    "a": "(a) Layer 1, no renormalization",
    "b": "(b) Layer 1, Krizhevsky et al.",
    "c": "(c) Layer 1, ours (ZF)",
    "d": "(d) Layer 2, Krizhevsky et al.",
    "e": "(e) Layer 2, ours (ZF)",
}


# ---------------------------------------------------------------------------------------------- basics


@contextmanager
def _style():
    """Seaborn's clean white paper style for the duration of one figure (the global rcParams stay as they are)."""
    rc = {**sns.axes_style("white"), **sns.plotting_context("paper")}
    rc.update({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"], "pdf.fonttype": 42,
               "figure.facecolor": "white", "axes.titlesize": 9, "axes.labelsize": 9, "font.size": 8})
    with rc_context(rc):
        yield


def _new_figure(width: float, height: float) -> Figure:
    """A Figure (inches) on the Agg canvas, outside pyplot so nothing accumulates in a global registry."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out_png: str | Path, dpi: int = DPI) -> tuple[Path, Path]:
    """Write `fig` as PNG (dpi) and PDF with the same stem, each atomically; close it; return both paths."""
    png = Path(out_png)
    if png.suffix.lower() != ".png":
        raise ValueError(f"save_figure: the output must end in .png (the PDF goes beside it), got {png}")
    pdf = png.with_suffix(".pdf")
    for path, fmt, extra in ((png, "png", {"dpi": dpi}), (pdf, "pdf", {"metadata": {"CreationDate": None}})):
        buf = io.BytesIO()  # render fully before touching the file, then rename into place
        fig.savefig(buf, format=fmt, bbox_inches="tight", pad_inches=0.05, facecolor="white", **extra)
        atomic_write_bytes(path, buf.getvalue())
    if "matplotlib.pyplot" in sys.modules:  # only a pyplot-made figure is registered anywhere
        sys.modules["matplotlib.pyplot"].close(fig)
    return png, pdf


def _np(x: Any) -> np.ndarray:
    """numpy view of an array or torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def _check_shape(name: str, a: np.ndarray, ndim: int, what: str) -> np.ndarray:
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {what}, got shape {list(a.shape)}")
    return a


def normalize_for_display(x: Any, percentile: float = 0.0, symmetric: bool = False) -> np.ndarray:
    """Per-image contrast stretch to 0..1 over the last three axes [..., C, H, W] (each image on its own).

    symmetric=False: the `percentile`-th and (100 - percentile)-th values map to 0 and 1 (min and max at 0;
    if they coincide, min and max are used). symmetric=True (signed signals such as deconvnet projections):
    zero maps to 0.5 and the (100 - percentile)-th percentile of |x| over the image's non-zero values
    (exact zeros carry no signal, e.g. outside a projection's support) to 0 / 1. Values beyond are clipped;
    a constant image becomes 0.5; NaN stays NaN (a missing image).
    """
    a = _np(x).astype(np.float64)
    if a.ndim < 3:
        raise ValueError(f"normalize_for_display: expected images [..., C, H, W], got shape {list(a.shape)}")
    if not 0 <= percentile < 50:
        raise ValueError(f"normalize_for_display: percentile must be in [0, 50), got {percentile}")
    flat = a.reshape(-1, int(np.prod(a.shape[-3:])))
    out = np.full(flat.shape, 0.5)
    for i, img in enumerate(flat):
        v = img[np.isfinite(img)]
        if symmetric:
            v = np.abs(v[v != 0])
            s = float(np.percentile(v, 100 - percentile)) if v.size else 0.0
            if s > 0:
                out[i] = np.clip(0.5 + 0.5 * img / s, 0.0, 1.0)
            continue
        if v.size == 0:
            continue
        lo, hi = np.percentile(v, [percentile, 100 - percentile])
        if hi <= lo:
            lo, hi = v.min(), v.max()
        if hi > lo:
            out[i] = np.clip((img - lo) / (hi - lo), 0.0, 1.0)
    out[np.isnan(flat)] = np.nan
    return out.reshape(a.shape)


def _patches_to_unit(x: Any) -> np.ndarray:
    """Image patches [..., 3, h, w] on 0..1: uint8 / 255; floats as 0..1 if within it, 0..255 if within
    that, otherwise (e.g. mean-subtracted) stretched per image."""
    a = _np(x)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    a = a.astype(np.float64)
    lo, hi = np.nanmin(a) if a.size else 0.0, np.nanmax(a) if a.size else 0.0
    if lo >= 0 and hi <= 1:
        return a
    if lo >= 0 and hi <= 255:
        return a / 255.0
    return normalize_for_display(a)


def _hwc(chw: np.ndarray) -> np.ndarray:
    """[..., C, H, W] -> [..., H, W, 3] (a single channel is repeated as grey)."""
    a = np.moveaxis(chw, -3, -1)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.shape[-1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {a.shape[-1]}")
    return a


def _grid(n: int, cols: int | None = None) -> tuple[int, int]:
    """Rows, cols of a near-square grid for n tiles."""
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def _mosaic(tiles: np.ndarray, rows: int, cols: int, gap: int) -> np.ndarray:
    """Tiles [N, h, w, 3] (NaN = blank) into one image [rows*h + gaps, cols*w + gaps, 3] on white."""
    n, h, w, _ = tiles.shape
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), BACKGROUND)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = np.nan_to_num(tiles[i], nan=BACKGROUND)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def _tile_gap(h: int) -> int:
    """Gap between tiles in pixels: about 6% of a tile, at least one pixel."""
    return max(1, round(0.06 * h))


def _fit(img: np.ndarray, width_in: float) -> np.ndarray:
    """Resample a 0..1 mosaic for printing at `width_in`: nearest-neighbour upscaling by an integer factor
    keeps small filters crisp; area-style (Lanczos) downscaling keeps the PDF small. Returns uint8."""
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    target = max(1, int(width_in * RASTER_DPI))
    h, w = u8.shape[:2]
    if w < target / 2:
        f = max(1, target // w)
        return np.repeat(np.repeat(u8, f, axis=0), f, axis=1)
    if w > target:
        size = (target, max(1, round(h * target / w)))
        return np.asarray(Image.fromarray(u8).resize(size, Image.Resampling.LANCZOS))
    return u8


def _show(ax: Axes, img: np.ndarray, width_in: float) -> None:
    """Show a 0..1 mosaic filling `ax` (extent in the mosaic's own pixel coordinates), no frame or ticks."""
    h, w = img.shape[:2]
    ax.imshow(_fit(img, width_in), extent=(0, w, h, 0), interpolation="nearest", aspect="auto")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()


def _add_axes(fig: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """Axes at a position given in inches from the figure's lower-left corner."""
    fw, fh = fig.get_size_inches()
    return fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))


def layer_title(name: str) -> str:
    """The paper's panel title for a layer name: conv3 -> "Layer 3", fc6 -> "Layer 6"; others unchanged."""
    for prefix in ("conv", "fc"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return f"Layer {int(name[len(prefix):])}"
    return name


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
    rect = _check_shape("rectified", np.squeeze(_np(rectified)).astype(np.float64), 2, "one map [H, W]")
    unp = _check_shape("unpooled", np.squeeze(_np(unpooled)).astype(np.float64), 2, "one map [H, W]")
    pooled_a = _check_shape("pooled", np.squeeze(_np(pooled)).astype(np.float64), 2, "one map [h, w]")
    sw = _check_shape("switches", np.squeeze(_np(switches)).astype(np.int64), 2, "indices [h, w]")
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

    with _style():
        fig_h, side, y_mid = 3.9, 2.7, 2.1
        fig = _new_figure(12.0, fig_h)
        _deconv_diagram(_add_axes(fig, 0.0, 0.0, 4.2, fig_h), ops, norm, title)
        cell = side / max(crops["rect"].shape)
        x = 4.75
        panels = [("rect", "rectified feature map\n+ switches (max locations)"), ("pooled", "pooled map"),
                  ("unpooled", "unpooled map\n(values at the switches)")]
        axes = []
        for key, label in panels:
            h, w = crops[key].shape
            ax = _add_axes(fig, x, y_mid - h * cell / 2, w * cell, h * cell)
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
        cax = _add_axes(fig, x - 0.6, y_mid - 1.2, 0.12, 2.4)
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
    proj = _check_shape(f"fig2_top9[{name}]['projections']", _np(entry["projections"]), 5, "[M, 9, 3, h, w]")
    patches = _check_shape(f"fig2_top9[{name}]['patches']", _np(entry["patches"]), 5, "[M, 9, 3, h, w]")
    channels = np.asarray(_np(entry["channels"])).ravel()
    if proj.shape[:2] != patches.shape[:2] or proj.shape[-2:] != patches.shape[-2:] or len(channels) != len(proj):
        raise ValueError(f"fig2_top9[{name}]: projections {list(proj.shape)}, patches {list(patches.shape)} and "
                         f"channels [{len(channels)}] must agree on maps, images and size")
    m, k, _, h, _ = proj.shape
    kr, kc = _grid(k)
    mr, mc = _grid(m)
    gap = _tile_gap(h)
    out = []
    for tiles in (_hwc(normalize_for_display(proj, percentile, symmetric)), _hwc(_patches_to_unit(patches))):
        maps = np.stack([_mosaic(tiles[i], kr, kc, gap) for i in range(m)])
        out.append(_mosaic(maps, mr, mc, 4 * gap))
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
    with _style():
        fig = _new_figure(width, total)
        y = total
        for r in layout:
            row_h = max(p[3] for p in r)
            y -= title_h + row_h
            for name, left, side, hgt in r:
                bottom = y + row_h - hgt
                for j, img in enumerate(mosaics[name]):
                    _show(_add_axes(fig, left + j * (side + sep), bottom, side, hgt), img, side)
                xs = (left + side + sep / 2) / width
                fig.add_artist(Line2D([xs, xs], [bottom / total, (bottom + hgt) / total], lw=1.5, color=SEPARATOR,
                                      transform=fig.transFigure))
                fig.text((left + side + sep / 2) / width, (y + row_h + 0.04) / total, layer_title(name),
                         ha="center", va="bottom", fontsize=9)
            y -= row_gap
        save_figure(fig, out)
    return fig


# ---------------------------------------------------------------------------------------------- Fig 3


def architecture_table(spec: ArchSpec) -> pd.DataFrame:
    """Fig 3 as a table: one row per operation (input, conv, pool, norm, fc) with its output size.

    Columns: layer, operation, filter, stride, padding, out_c, out_h, out_w, description. Sizes come from
    zfrepro.model.network.rectified_shapes (conv rows, post-ReLU) and output_shapes (pool, fc rows).
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
    """Fig 3: the architecture of `spec` drawn as boxes (sizes from zfrepro.model.network) plus the CSV table
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
    with _style():
        fig = _new_figure((x1 - x0) * scale, (y1 - y0) * scale)
        ax = _add_axes(fig, 0, 0, *fig.get_size_inches())
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


# ---------------------------------------------------------------------------------------------- Fig 4


def fig4_evolution(projections: Any, epochs: Sequence[int], labels: Sequence[str], out: str | Path, *,
                   percentile: float = 1.0, symmetric: bool = True, width: float = 7.0) -> Figure:
    """Fig 4: one row per map, one column per epoch; rows grouped by layer (consecutive equal labels).

    projections: float [M, E, 3, h, w], or a list of M arrays [E, 3, h_m, w_m] (sizes may differ between
    layers, not within one). labels: each map's layer name (e.g. "conv2"; shown as "Layer 2"). Each image
    is contrast-enhanced on its own (normalize_for_display with `percentile`, `symmetric`: zero = mid grey).
    """
    maps = [_np(p) for p in projections] if isinstance(projections, list | tuple) else list(_np(projections))
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
        tiles = _hwc(normalize_for_display(np.concatenate(ms), percentile, symmetric))  # [rows * E, h, w, 3]
        mosaics.append(_mosaic(tiles, len(ms), e, _tile_gap(ms[0].shape[-1])))
    heights = [img_w * m.shape[0] / m.shape[1] for m in mosaics]
    total = title_h + sum(heights) + group_gap * (len(groups) - 1)
    with _style():
        fig = _new_figure(width, total)
        y = total - title_h
        for i, ((label, ms), img, hgt) in enumerate(zip(groups, mosaics, heights, strict=True)):
            y -= hgt
            ax = _add_axes(fig, label_w, y, img_w, hgt)
            _show(ax, img, img_w)
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


# ---------------------------------------------------------------------------------------------- Fig 6


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
    r, c = _grid(len(w))
    return _mosaic(_hwc(disp), r, c, _tile_gap(w.shape[-1]))


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
            a = _np(panels[key]).astype(np.float64)
            if a.ndim != 4:
                raise ValueError(f"fig6_filters: {kind}[{key!r}] must be [N, 3, h, w], got {list(a.shape)}")
            if kind == "filters":
                img = _filter_mosaic(a, filter_scale, clip_percentile)
            else:
                r, c = _grid(len(a))
                img = _mosaic(_hwc(normalize_for_display(a, percentile, symmetric)), r, c, _tile_gap(a.shape[-1]))
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
    with _style():
        fig = _new_figure(width, total)
        y = total
        for r in layout:
            row_h = max(p[4] for p in r)
            y -= title_h + row_h
            for title, img, left, side, hgt in r:
                ax = _add_axes(fig, left, y + row_h - hgt, side, hgt)
                _show(ax, img, side)
                ax.set_title(title, loc="left", fontsize=8.5)
            y -= row_gap
        save_figure(fig, out)
    return fig

"""What every figure shares: the paper style, figure creation and saving (PNG + PDF), display scaling of
images, tiles and mosaics, and fitting and showing them on axes.

Every figure function builds a matplotlib Figure on the Agg canvas (no display, no pyplot state), writes it
with `save_figure` as PNG (150 dpi) and PDF beside it, and returns the Figure so callers can inspect it.
Arrays may be numpy arrays or torch tensors. Images are channel-first [..., 3, h, w] as torch keeps them.
"""

from __future__ import annotations

import io
import math
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from zfrepro.io import atomic_write_bytes

DPI = 150
RASTER_DPI = 300  # mosaics are resampled to at most this many pixels per inch of their printed size
BACKGROUND = 1.0  # white gaps between tiles


@contextmanager
def paper_style():
    """Seaborn's clean white paper style for the duration of one figure (the global rcParams stay as they are)."""
    rc = {**sns.axes_style("white"), **sns.plotting_context("paper")}
    rc.update({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"], "pdf.fonttype": 42,
               "figure.facecolor": "white", "axes.titlesize": 9, "axes.labelsize": 9, "font.size": 8})
    with rc_context(rc):
        yield


def new_figure(width: float, height: float) -> Figure:
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


def as_numpy(x: Any) -> np.ndarray:
    """numpy view of an array or torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def check_shape(name: str, a: np.ndarray, ndim: int, what: str) -> np.ndarray:
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
    a = as_numpy(x).astype(np.float64)
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


def patches_to_unit(x: Any) -> np.ndarray:
    """Image patches [..., 3, h, w] on 0..1: uint8 / 255; floats as 0..1 if within it, 0..255 if within
    that, otherwise (e.g. mean-subtracted) stretched per image."""
    a = as_numpy(x)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    a = a.astype(np.float64)
    lo, hi = np.nanmin(a) if a.size else 0.0, np.nanmax(a) if a.size else 0.0
    if lo >= 0 and hi <= 1:
        return a
    if lo >= 0 and hi <= 255:
        return a / 255.0
    return normalize_for_display(a)


def to_hwc(chw: np.ndarray) -> np.ndarray:
    """[..., C, H, W] -> [..., H, W, 3] (a single channel is repeated as grey)."""
    a = np.moveaxis(chw, -3, -1)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.shape[-1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {a.shape[-1]}")
    return a


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """Rows, cols of a near-square grid for n tiles."""
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def tile_mosaic(tiles: np.ndarray, rows: int, cols: int, gap: int) -> np.ndarray:
    """Tiles [N, h, w, 3] (NaN = blank) into one image [rows*h + gaps, cols*w + gaps, 3] on white."""
    n, h, w, _ = tiles.shape
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), BACKGROUND)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = np.nan_to_num(tiles[i], nan=BACKGROUND)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def tile_gap(h: int) -> int:
    """Gap between tiles in pixels: about 6% of a tile, at least one pixel."""
    return max(1, round(0.06 * h))


def fit_image(img: np.ndarray, width_in: float) -> np.ndarray:
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


def show_image(ax: Axes, img: np.ndarray, width_in: float) -> None:
    """Show a 0..1 mosaic filling `ax` (extent in the mosaic's own pixel coordinates), no frame or ticks."""
    h, w = img.shape[:2]
    ax.imshow(fit_image(img, width_in), extent=(0, w, h, 0), interpolation="nearest", aspect="auto")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()


def add_axes(fig: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """Axes at a position given in inches from the figure's lower-left corner."""
    fw, fh = fig.get_size_inches()
    return fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))


def layer_title(name: str) -> str:
    """The paper's panel title for a layer name: conv3 -> "Layer 3", fc6 -> "Layer 6"; others unchanged."""
    for prefix in ("conv", "fc"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return f"Layer {int(name[len(prefix):])}"
    return name

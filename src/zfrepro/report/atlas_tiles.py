"""The atlas's images: tiles of projections and patches laid out as Fig 2 cards, grids and evolution
strips (uint8 arrays), saved as PNG or JPEG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

THUMB_TILE = 40  # largest tile side on the layer grids (bigger fields are shrunk; smaller ones are scaled by CSS)


LARGE_TILE = 128  # largest tile side on a map's own page


CARD_WIDTH = 264  # CSS pixels a grid card's image is scaled up to (by whole factors, pixelated)


SOURCE_WIDTH = 224  # CSS pixels a full source image is scaled up to (by whole factors)


BACKGROUND = 255


STRIP_TILE = 48  # CSS pixels an evolution tile is scaled up to (by whole factors)


SMALL_TILE = 24  # cards with tiles up to this side are PNG (magnified by CSS), larger ones JPEG


def save_png(path: Path, hwc: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(hwc).save(path, format="PNG", compress_level=6)


def save_card(path: Path, hwc: np.ndarray, tile: int) -> str:
    """A card as PNG when its tiles are small (they are magnified, where JPEG's blocks would show) and as
    JPEG otherwise (a fifth of the bytes: the paper-shape atlas stays tens of MB); returns the file name."""
    if tile <= SMALL_TILE:
        path = path.with_suffix(".png")
        save_png(path, hwc)
    else:
        path = path.with_suffix(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(hwc).save(path, format="JPEG", quality=90)
    return path.name


def to_u8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """[.., 3, h, w] floats on 0..1 -> uint8 [.., h, w, 3]."""
    a = np.asarray(x, dtype=np.float64)
    return np.moveaxis(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8), -3, -1)


def shrink_to(x: torch.Tensor, side: int) -> torch.Tensor:
    """Float images [n, 3, s, s] to side x side (area average when shrinking; unchanged when s <= side)."""
    if x.shape[-1] <= side:
        return x
    return F.interpolate(x, size=(side, side), mode="area")


def grid_shape(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def mosaic(tiles: np.ndarray, gap: int) -> np.ndarray:
    """uint8 tiles [k, t, t, 3] in a near-square grid on white."""
    k, t = tiles.shape[0], tiles.shape[1]
    rows, cols = grid_shape(k)
    out = np.full((rows * t + (rows - 1) * gap, cols * t + (cols - 1) * gap, 3), BACKGROUND, dtype=np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        out[r * (t + gap):r * (t + gap) + t, c * (t + gap):c * (t + gap) + t] = tiles[i]
    return out


def card(projections: np.ndarray, patches: np.ndarray, gap: int) -> np.ndarray:
    """Fig 2's layout for one map: the top-k projections (left) beside their patches (right)."""
    left, right = mosaic(projections, gap), mosaic(patches, gap)
    sep = np.full((left.shape[0], 4 * gap + 2, 3), BACKGROUND, dtype=np.uint8)
    return np.concatenate([left, sep, right], axis=1)


def row(tiles: np.ndarray, gap: int) -> np.ndarray:
    """uint8 tiles [k, t, t, 3] in one row on white (an evolution strip)."""
    k, t = tiles.shape[0], tiles.shape[1]
    out = np.full((t, k * t + (k - 1) * gap, 3), BACKGROUND, dtype=np.uint8)
    for i in range(k):
        out[:, i * (t + gap):i * (t + gap) + t] = tiles[i]
    return out


def css_scale(natural: int, target: int) -> int:
    """Whole-number CSS scale that brings `natural` pixels closest to `target` without exceeding it (>= 1)."""
    return max(1, target // max(1, natural))

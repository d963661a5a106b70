"""Figure 8: the images of the correspondence study, original and with each part (and a random box) masked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from zfrepro.report.figures.style import as_numpy, new_figure, paper_style, save_figure


def column_title(name: str) -> str:
    """'original' -> 'Original', 'right_eye' -> 'Right eye' (the paper's column names)."""
    return name.replace("_", " ").capitalize()


def fig8_correspondence(display: Any, columns: Sequence[str], out: str | Path, *, title: str | None = None,
                        tile: float = 1.1) -> Figure:
    """Fig 8: one row per image, one column per condition (original, each part masked, random).

    display: uint8 [n, K, 3, h, w] (what the network sees); columns: the K condition names.
    """
    tiles = as_numpy(display)
    if tiles.ndim != 5 or tiles.shape[2] != 3 or tiles.shape[1] != len(columns):
        raise ValueError(f"fig8_correspondence: expected display [n, {len(columns)}, 3, h, w], "
                         f"got {list(tiles.shape)}")
    n, k = tiles.shape[:2]
    gap, head = 0.06, 0.3 + (0.25 if title else 0.0)
    width, height = k * tile + (k - 1) * gap, head + n * tile + (n - 1) * gap
    with paper_style():
        fig = new_figure(width, height)
        for i in range(n):
            for j in range(k):
                left = j * (tile + gap)
                bottom = height - head - (i + 1) * tile - i * gap
                ax = fig.add_axes((left / width, bottom / height, tile / width, tile / height))
                ax.imshow(np.ascontiguousarray(tiles[i, j].transpose(1, 2, 0)), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_linewidth(0.4)
                if i == 0:
                    ax.set_title(column_title(columns[j]), fontsize=9, pad=3)
        if title:
            fig.text(0.5, 1 - 0.08 / height, title, ha="center", va="top", fontsize=9)
        save_figure(fig, out)
    return fig

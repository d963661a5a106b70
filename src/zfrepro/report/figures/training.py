"""Training curves of every trained network: loss and top-1 error per epoch, learning-rate drops marked.

Drawn from the metrics.csv each training run writes (zfrepro.model.train: one row per epoch with the rate the
epoch was trained at, the training loss and top-1 error averaged over the epoch's steps, and the centre-crop
top-1 error on the validation split after it). The trainer computes no validation loss, so the loss panels show
the training loss only; the error panels show training (dashed) and validation (solid).

Small multiples, one cell per network (its loss beside its error, in its own colour), so that thirteen networks
stay readable; every loss panel shares one y scale and every error panel another, so cells compare at a glance.
The seeds of a network are thin lines of the same colour. A dotted vertical line at epoch e marks a learning-rate
drop after epoch e (epoch e + 1 trained at the lower rate), labelled with the factor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from zfrepro.errors import DataError
from zfrepro.report.figures.style import new_figure, paper_style, save_figure

COLUMNS = ("epoch", "lr", "train_loss", "train_top1_error", "val_top1_error_center")
DROP_STYLE = {"color": "0.45", "ls": ":", "lw": 0.9}
DROP_LABEL = "_lr_drop"  # the label of a drop's vertical line (underscored: no legend entry of its own)
TRAIN_LS, VAL_LS = "--", "-"


def read_metrics(path: str | Path) -> pd.DataFrame:
    """One run's metrics.csv, sorted by epoch, with the columns the figure needs (DataError naming the file)."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"training_curves: cannot read {path}: {err}") from err
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing or df.empty:
        what = f"lacks the column(s) {', '.join(missing)}" if missing else "has no epochs"
        raise DataError(f"training_curves: {path} {what}: rerun the training (zfrepro train writes them)")
    return df.sort_values("epoch").reset_index(drop=True)


def lr_drops(df: pd.DataFrame) -> list[tuple[int, float]]:
    """(epoch e, factor) for every drop: epoch e was the last at the old rate, e + 1 the first at the lower one
    (the lr column holds the rate each epoch was trained at); factor = old rate / new rate."""
    epochs, lr = df["epoch"].to_numpy(), df["lr"].to_numpy(dtype=np.float64)
    return [(int(epochs[i - 1]), float(lr[i - 1] / lr[i])) for i in range(1, len(lr)) if lr[i] < lr[i - 1]]


def _factor_label(factor: float) -> str:
    return f"lr \N{DIVISION SIGN}{factor:.3g}"


def _seed_label(path: str | Path) -> str:
    found = re.search(r"seed(\d+)", str(path))
    return f"seed {found.group(1)}" if found else Path(path).parent.name


def _as_list(paths: str | Path | Sequence[str | Path]) -> list[str | Path]:
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def _limits(values: list[np.ndarray], floor: float | None = None, ceiling: float | None = None) -> tuple[float, float]:
    """A y range holding every finite value, with a margin (clamped to [floor, ceiling])."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if not finite.size:
        return (floor or 0.0, ceiling or 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.08 * (hi - lo) if hi > lo else max(0.05 * abs(hi), 0.5)
    lo, hi = lo - pad, hi + pad
    return (max(lo, floor) if floor is not None else lo, min(hi, ceiling) if ceiling is not None else hi)


def _mark_drops(ax: Axes, drops: list[tuple[int, float]], label: bool, min_gap: float) -> None:
    """A vertical line per drop; with `label`, its factor beside it, once for drops closer than `min_gap`
    epochs (the seeds of a plateau schedule drop at nearby epochs)."""
    labelled = -math.inf
    for epoch, factor in drops:
        ax.axvline(epoch, **DROP_STYLE, zorder=1, label=DROP_LABEL)
        if label and epoch - labelled >= min_gap:
            labelled = epoch
            ax.annotate(_factor_label(factor), (epoch, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", ha="left", va="top", fontsize=6,
                        color=DROP_STYLE["color"])


def training_curves(runs: Mapping[str, str | Path | Sequence[str | Path]], out_png: str | Path,
                    data_note: str = "", *, cells_per_row: int | None = None, cell_width: float = 3.6,
                    cell_height: float = 1.55) -> Figure:
    """The training curves of every network in `runs` (label -> its runs' metrics.csv paths, one per seed, in
    the order given); writes PNG + PDF and returns the Figure.

    Each network is one cell of two axes, loss then top-1 error, titled with its label (and its seed count).
    For tests and readers: each axes' gid is "<network>/loss" or "<network>/error", each curve's label
    "<network> <seed> <metrics column>", each drop's vertical line labelled DROP_LABEL. `data_note` (e.g.
    'generated data') goes into the title.
    """
    if not runs:
        raise ValueError("training_curves: no networks given")
    data = {name: [(_seed_label(p), read_metrics(p)) for p in _as_list(paths)] for name, paths in runs.items()}
    empty = [name for name, seeds in data.items() if not seeds]
    if empty:
        raise ValueError(f"training_curves: no metrics.csv given for {', '.join(empty)}")
    n = len(data)
    per_row = cells_per_row or (1 if n == 1 else 2 if n <= 4 else 3)
    rows = math.ceil(n / per_row)
    colors = sns.color_palette("colorblind" if n <= 10 else "husl", n)
    loss_lim = _limits([df["train_loss"].to_numpy(dtype=float) for seeds in data.values() for _, df in seeds],
                       floor=0.0)
    err_lim = _limits([df[c].to_numpy(dtype=float) for seeds in data.values() for _, df in seeds
                       for c in ("train_top1_error", "val_top1_error_center")], floor=0.0, ceiling=100.0)
    max_epoch = max(int(df["epoch"].max()) for seeds in data.values() for _, df in seeds)
    any_val = any(df["val_top1_error_center"].notna().any() for seeds in data.values() for _, df in seeds)

    with paper_style():
        top, bottom = 0.85, 0.42  # inches: the title and legend above, the epoch labels below
        width, height = cell_width * per_row, cell_height * rows + top + bottom
        fig = new_figure(width, height)
        outer = fig.add_gridspec(rows, per_row, left=0.055, right=0.99, top=1 - top / height,
                                 bottom=bottom / height, wspace=0.28, hspace=0.72)
        for i, (name, seeds) in enumerate(data.items()):
            cell = outer[divmod(i, per_row)].subgridspec(1, 2, wspace=0.34)
            color, thin = colors[i], len(seeds) > 1
            lw, alpha = (0.8, 0.85) if thin else (1.3, 1.0)
            drops = sorted({drop for _, df in seeds for drop in lr_drops(df)})
            for j, quantity in enumerate(("loss", "error")):
                ax = fig.add_subplot(cell[0, j])
                ax.set_gid(f"{name}/{quantity}")
                _mark_drops(ax, drops, label=j == 0, min_gap=max(2.0, 0.12 * max_epoch))
                for seed, df in seeds:
                    x = df["epoch"].to_numpy()
                    if quantity == "loss":
                        ax.plot(x, df["train_loss"].to_numpy(dtype=float), color=color, ls=TRAIN_LS, lw=lw,
                                alpha=alpha, label=f"{name} {seed} train_loss")
                        continue
                    ax.plot(x, df["train_top1_error"].to_numpy(dtype=float), color=color, ls=TRAIN_LS, lw=lw,
                            alpha=alpha, label=f"{name} {seed} train_top1_error")
                    ax.plot(x, df["val_top1_error_center"].to_numpy(dtype=float), color=color, ls=VAL_LS,
                            lw=lw, alpha=alpha, marker="o" if len(x) == 1 else None, ms=2.5,
                            label=f"{name} {seed} val_top1_error_center")
                ax.set_xlim(0.7, max_epoch + 0.3)
                ax.set_ylim(*(loss_lim if quantity == "loss" else err_lim))
                ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
                ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
                ax.grid(True, color="0.92", lw=0.5)
                ax.tick_params(labelsize=6.5, pad=1.5)
                ax.set_ylabel("training loss" if quantity == "loss" else "top-1 error (%)", fontsize=7, labelpad=2)
                if i >= n - per_row:  # the lowest cell of its column
                    ax.set_xlabel("epoch", fontsize=7, labelpad=1)
                if j == 0:
                    seeds_note = f" ({len(seeds)} seeds)" if thin else ""
                    ax.set_title(f"{name}{seeds_note}", loc="left", fontsize=8, fontweight="bold", color=color,
                                 pad=8)
                sns.despine(ax=ax)
        handles = [Line2D([], [], color="0.2", ls=TRAIN_LS, lw=1.3, label="training (mean over the epoch)"),
                   Line2D([], [], color="0.2", ls=VAL_LS, lw=1.3, label="validation (centre crop, after the epoch)"),
                   Line2D([], [], **DROP_STYLE, label="learning rate divided after this epoch")]
        if not any_val:
            handles.pop(1)
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.3 / height), ncol=len(handles),
                   frameon=False, fontsize=7, handlelength=2.6, columnspacing=1.6, borderaxespad=0)
        fig.suptitle("Training curves" + (f" ({data_note})" if data_note else ""), y=1 - 0.06 / height,
                     va="top", fontsize=10, fontweight="bold")
        save_figure(fig, out_png)
    return fig

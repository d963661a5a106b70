"""Figure 9 of the paper: Caltech-256 accuracy against the number of training images per class.

Drawn from the classifier results (nothing is recomputed): our ImageNet-pretrained softmax and our
non-pretrained convnet as mean ± sd over splits, the paper's Table 5 points for both (open markers), and the
best result of Bo et al. 2013 at 60 images as a horizontal line: the paper's point is how few images the
pretrained features need to pass it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from zfrepro.report import paper
from zfrepro.report.figures.style import new_figure, paper_style, save_figure
from zfrepro.report.transfer_tables import only_dataset, read_pretrained, read_scratch

COLORS = {"pretrained": sns.color_palette("deep")[0], "scratch": sns.color_palette("deep")[3]}
LABELS = {"pretrained": "ImageNet-pretrained", "scratch": "non-pretrained"}
PAPER_ROWS = {"pretrained": "ImageNet-pretrained", "scratch": "non-pretrained"}


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per training size: mean and sample sd (0 with one split) of the accuracy over splits."""
    g = df.groupby("train_per_class")["accuracy"]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1).fillna(0.0)}).sort_index()


def _paper_points(row: str) -> tuple[list[int], list[float]]:
    published = paper.TABLE5.set_index("method").loc[row]
    sizes = sorted(int(c[3:-5]) for c in paper.TABLE5.columns if c.endswith("_mean"))
    return sizes, [float(published[f"acc{n}_mean"]) for n in sizes]


def _curve(ax: Axes, key: str, df: pd.DataFrame) -> None:
    if len(df):
        s = _summary(df)
        ax.errorbar(s.index, s["mean"], yerr=s["sd"], color=COLORS[key], marker="o", ms=3.5, lw=1.4, capsize=2.5,
                    label=f"ours, {LABELS[key]}")
    sizes, values = _paper_points(PAPER_ROWS[key])
    ax.plot(sizes, values, ls="none", marker="s", ms=5, mfc="none", mec=COLORS[key], mew=1.2,
            label=f"paper, {LABELS[key]}")


def _legend_rank(label: str) -> tuple[int, int]:
    """ours before the paper's points within each model; pretrained first; the reference line last."""
    model = next((i for i, key in enumerate(LABELS) if label.endswith(LABELS[key])), len(LABELS))
    return model, not label.startswith("ours")


def fig9(pretrained_csv: str | Path, scratch_jsons: Sequence[str | Path], out_png: str | Path,
         data_note: str = "", *, width: float = 4.2, height: float = 3.2) -> Figure:
    """Fig 9 from our Caltech-256 results; writes PNG + PDF and returns the Figure. `data_note` (e.g.
    'generated data') goes into the title so a plot of generated images is never mistaken for the real one."""
    ours = {"pretrained": only_dataset(read_pretrained(pretrained_csv), "caltech256", "the pretrained CSV"),
            "scratch": only_dataset(read_scratch(scratch_jsons), "caltech256", "the scratch scores")}
    with paper_style():
        fig = new_figure(width, height)
        ax = fig.add_subplot(1, 1, 1)
        for key, df in ours.items():
            _curve(ax, key, df)
        ax.axhline(paper.BO_2013_CALTECH256_60, color="0.35", ls="--", lw=1.0, label="Bo et al. 2013, 60 images")
        largest = max([*_paper_points(PAPER_ROWS["pretrained"])[0],
                       *(int(df["train_per_class"].max()) for df in ours.values() if len(df))])
        ax.set_xticks(np.arange(0, largest + 1, 15))  # the paper's sizes are multiples of 15
        ax.set_xlim(0, largest + 3)
        ax.set_ylim(0, 100)
        ax.set_xlabel("training images per class")
        ax.set_ylabel("mean per-class accuracy (%)")
        ax.set_title("Caltech-256" + (f" ({data_note})" if data_note else ""))
        ax.grid(True, color="0.9", lw=0.6)
        ax.tick_params(labelsize=7)
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: _legend_rank(labels[i]))  # errorbars come last otherwise
        ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=6.5, frameon=False,
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        sns.despine(ax=ax)
        save_figure(fig, out_png)
    return fig

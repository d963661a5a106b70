"""zfrepro.report.figures (style, deconvnet, architecture, occlusion, transfer): every function writes a PNG and a
PDF of the expected layout from the data it is given. Figs 5, 7 and 8 are drawn from real analysis data in
test_invariance.py, test_occlusion.py and test_correspondence.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from zfrepro.model.architectures import krizhevsky_spec, spec_from_config, zf_spec
from zfrepro.model.spec import output_shapes, rectified_shapes
from zfrepro.report import paper
from zfrepro.report.figures.architecture import fig3_architecture
from zfrepro.report.figures.deconvnet import fig1_deconvnet, fig2_top9, fig4_evolution
from zfrepro.report.figures.filters import fig6_filters
from zfrepro.report.figures.occlusion import label_colours
from zfrepro.report.figures.style import new_figure, normalize_for_display, save_figure
from zfrepro.report.figures.transfer import fig9

from conftest import drawn_figure

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def _written(png, min_px: int = 200, max_px: int = 6000) -> tuple[int, int]:
    """Check the PNG and its PDF exist and are sane; return the PNG's pixel size."""
    pdf = png.with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        im.load()
        w, h = im.size
    assert min_px <= w <= max_px and min_px // 4 <= h <= max_px, (w, h)
    assert not [p for p in png.parent.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave no temp files
    return w, h


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = new_figure(4.0, 2.0)
    fig.add_subplot().plot([0, 1], [1, 0])
    png, pdf = save_figure(fig, tmp_path / "sub" / "f.png")
    assert png == tmp_path / "sub" / "f.png" and pdf == tmp_path / "sub" / "f.pdf"
    w, h = _written(png)
    assert w == pytest.approx(4 * 150, rel=0.1) and h == pytest.approx(2 * 150, rel=0.15)  # 150 dpi
    with pytest.raises(ValueError, match=".png"):
        save_figure(fig, tmp_path / "f.pdf")


def test_normalize_for_display_per_image():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 3, 5, 5))
    x[1, 2] = 7.0  # a constant image
    x[0, 1] = np.nan  # a missing image
    out = normalize_for_display(x)
    assert out.shape == x.shape
    img = x[0, 0]
    assert out[0, 0] == pytest.approx((img - img.min()) / (img.max() - img.min()))
    assert np.all(out[1, 2] == 0.5)
    assert np.isnan(out[0, 1]).all()
    scaled = x.copy()
    scaled[1, 0] *= 100  # each image is stretched on its own
    assert normalize_for_display(scaled)[1, 0] == pytest.approx(out[1, 0])
    assert normalize_for_display(scaled)[0, 0] == pytest.approx(out[0, 0])


def test_normalize_for_display_percentile_and_symmetric():
    x = np.arange(100, dtype=float).reshape(1, 1, 10, 10)
    out = normalize_for_display(torch.tensor(x), percentile=10)
    lo, hi = np.percentile(x, [10, 90])
    assert out == pytest.approx(np.clip((x - lo) / (hi - lo), 0, 1))
    signed = np.zeros((1, 3, 4, 4))
    signed[0, 0, 0, 0], signed[0, 1, 1, 1] = 2.0, -1.0
    sym = normalize_for_display(signed, symmetric=True)
    assert sym[0, 2, 3, 3] == 0.5 and sym[0, 0, 0, 0] == 1.0 and sym[0, 1, 1, 1] == 0.25
    assert np.all(normalize_for_display(np.zeros((1, 3, 2, 2)), symmetric=True) == 0.5)


def _pool_example(size: int = 11, seed: int = 0):
    """A real rectified map, its 3x3/2 max pool with switches, and the unpooled map (overlaps added)."""
    g = torch.Generator().manual_seed(seed)
    rect = F.relu(torch.randn(size, size, generator=g))
    pooled, switches = F.max_pool2d(rect[None, None], 3, 2, ceil_mode=True, return_indices=True)
    unpooled = torch.zeros(size * size).scatter_add_(0, switches.flatten(), pooled.flatten()).view(size, size)
    return pooled[0, 0], switches[0, 0], unpooled, rect


def test_fig1_deconvnet(tmp_path):
    pooled, switches, unpooled, rect = _pool_example()
    fig = fig1_deconvnet(pooled, switches, unpooled, rect, ["conv", "relu", "pool", "norm"],
                         tmp_path / "fig1.png")
    _written(tmp_path / "fig1.png")
    assert len(fig.axes) == 5  # diagram, rectified, pooled, unpooled, colour bar
    diagram_text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for words in ("max unpooling", "transposed filters", "max pooling", "contrast\nnormalization", "identity"):
        assert words in diagram_text
    # the panels show the given values: pooled map in full (5x5 <= max_window), crops of the same size
    assert np.array_equal(fig.axes[2].images[0].get_array(), pooled.numpy())
    assert np.array_equal(fig.axes[3].images[0].get_array(), unpooled.numpy())

    big = _pool_example(41, seed=1)
    fig = fig1_deconvnet(*big, ["conv", "relu", "pool"], tmp_path / "big.png", window=(2, 3, 4))
    assert np.array_equal(fig.axes[2].images[0].get_array(), big[0][2:6, 3:7].numpy())
    assert fig.axes[1].images[0].get_array().shape == (9, 9)  # 4 pooled rows span (4 - 1) * 2 + 3 rows
    fig = fig1_deconvnet(*big, ["conv", "relu", "pool"], tmp_path / "big.png", window=3)
    shown = fig.axes[2].images[0].get_array()
    assert shown.shape == (3, 3) and shown.max() == big[0].max()  # a 3x3 window holding the strongest unit
    with pytest.raises(ValueError, match="switches"):
        fig1_deconvnet(pooled, switches + 1000, unpooled, rect, ["conv"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="layer_sequence"):
        fig1_deconvnet(pooled, switches, unpooled, rect, ["conv", "dropout"], tmp_path / "x.png")


def _top9(m: int, size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"projections": rng.normal(size=(m, 9, 3, size, size)).astype(np.float32),
            "patches": rng.integers(0, 256, size=(m, 9, 3, size, size), dtype=np.uint8),
            "channels": np.arange(m)}


def test_fig2_top9(tmp_path):
    layers = {name: _top9(m, size, i) for i, (name, m, size) in
              enumerate(zip(LAYERS, (4, 6, 9, 9, 9), (7, 12, 16, 20, 24), strict=True))}
    layers["conv5"]["projections"][0, 8] = np.nan  # fewer than 9 images for this map: left blank
    fig = fig2_top9(layers, tmp_path / "fig2.png")
    _written(tmp_path / "fig2.png")
    assert len(fig.axes) == 2 * len(LAYERS)  # projections and patches per layer
    assert sorted(t.get_text() for t in fig.texts) == [f"Layer {i}" for i in range(1, 6)]
    # every pixel comes from the input: the first patch tile is the first patch (nearest upscaling)
    shown = fig.axes[1].images[0].get_array()
    f = shown.shape[0] // (2 * (3 * 7 + 2) + 4)  # 2x2 maps of 3x3 tiles of 7 px, 1 px gaps, 4 px map gap
    assert np.array_equal(shown[:7 * f:f, :7 * f:f], layers["conv1"]["patches"][0, 0].transpose(1, 2, 0))
    bad = dict(layers, conv1=dict(layers["conv1"], channels=np.arange(3)))
    with pytest.raises(ValueError, match="conv1"):
        fig2_top9(bad, tmp_path / "bad.png")


def test_architecture_table_and_fig3(tmp_path):
    fig = fig3_architecture(zf_spec(1000), tmp_path / "zf.png", tmp_path / "zf.csv")
    _written(tmp_path / "zf.png")
    assert len(fig.axes) == 1
    df = pd.read_csv(tmp_path / "zf.csv")
    assert list(df.columns) == ["layer", "operation", "filter", "stride", "padding", "out_c", "out_h", "out_w",
                                "description"]
    sized = df[df.operation.isin(["conv", "pool"])]
    assert list(sized.out_h) == [110, 55, 26, 13, 13, 13, 13, 6]  # the paper's Fig 3
    assert list(df[df.operation == "fc"].out_c) == [4096, 4096, 1000]
    assert df.loc[1, ["filter", "stride", "padding"]].tolist() == ["7x7", 2, 1]
    assert list(df[df.layer == "conv1"].operation) == ["conv", "pool", "norm"]


@pytest.mark.parametrize("arch", [
    {"base": "krizhevsky"},
    {"base": "krizhevsky", "remove": [3, 4]},
    {"base": "zf", "remove": [3, 4, 6, 7]},
    {"base": "zf", "fc_units": 8192, "conv_maps": {"3": 512, "4": 1024, "5": 512}},
])
def test_fig3_variants_follow_the_spec(tmp_path, arch):
    spec = spec_from_config("variant", arch, 1000, 224)
    fig3_architecture(spec, tmp_path / "v.png", tmp_path / "v.csv")
    _written(tmp_path / "v.png")
    df = pd.read_csv(tmp_path / "v.csv")
    rect, outs = rectified_shapes(spec), output_shapes(spec)
    convs = df[df.operation == "conv"]
    assert list(convs.layer) == [c.name for c in spec.convs]
    assert list(convs.out_h) == [rect[c.name][1] for c in spec.convs]
    pools = df[df.operation == "pool"]
    assert list(pools.out_h) == [outs[n][1] for n in pools.layer]
    assert list(df[df.operation == "fc"].layer) == [f.name for f in spec.fcs] + ["fc8"]
    removed = {f"conv{n}" for n in arch.get("remove", []) if n < 6} | {f"fc{n}" for n in arch.get("remove", [])}
    assert not removed & set(df.layer)
    if "fc_units" in arch:
        assert list(df[df.layer.isin(["fc6", "fc7"])].out_c) == [8192, 8192]
        assert list(convs.out_c) == [96, 256, 512, 1024, 512]
    if arch == {"base": "krizhevsky"}:
        assert list(df[df.operation.isin(["conv", "pool"])].out_h) == [55, 27, 27, 13, 13, 13, 13, 6]
        assert list(df[df.layer == "conv1"].operation) == ["conv", "norm", "pool"]  # LRN before the pool
    assert krizhevsky_spec(10).input_size == 224


def test_fig4_evolution(tmp_path):
    rng = np.random.default_rng(0)
    epochs = [1, 2, 5, 10]
    arr = rng.normal(size=(5, 4, 3, 10, 10))
    labels = ["conv1", "conv1", "conv2", "conv5", "conv5"]
    fig = fig4_evolution(arr, epochs, labels, tmp_path / "fig4.png")
    _written(tmp_path / "fig4.png")
    assert len(fig.axes) == 3  # one per layer group
    assert [t.get_text() for t in fig.texts] == ["Layer 1", "Layer 2", "Layer 5"]
    assert [t.get_text() for t in fig.axes[0].texts] == [f"Epoch {e}" for e in epochs]
    # per-layer sizes may differ (projections cropped to each layer's receptive field)
    maps = [rng.normal(size=(4, 3, 7, 7)), rng.normal(size=(4, 3, 7, 7)), torch.randn(4, 3, 20, 20)]
    fig = fig4_evolution(maps, epochs, ["conv1", "conv1", "conv3"], tmp_path / "list.png")
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="labels"):
        fig4_evolution(arr, epochs, labels[:2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="E=3"):
        fig4_evolution(arr, epochs[:3], labels, tmp_path / "x.png")


def test_fig6_filters(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 3, 7, 7)) * 0.01
    a[0] *= 100  # one dominating filter
    a[1] = 0.0  # a dead filter: mid grey on the panel's shared scale
    filters = {"a": a, "b": rng.normal(size=(16, 3, 11, 11)), "c": torch.randn(16, 3, 7, 7)}
    projections = {"d": rng.normal(size=(6, 3, 20, 20)), "e": rng.normal(size=(6, 3, 20, 20))}
    fig = fig6_filters(filters, projections, tmp_path / "fig6.png")
    _written(tmp_path / "fig6.png")
    assert len(fig.axes) == 5
    assert [ax.get_title(loc="left")[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    shown = fig.axes[0].images[0].get_array()
    f = shown.shape[1] // (4 * 7 + 3)  # 12 filters: 3 rows x 4 columns of 7 px, 1 px gaps
    dead_tile = shown[0:7 * f, 8 * f:(8 + 7) * f]  # row 0, column 1
    assert np.all(dead_tile == 128)
    # one scale for the panel: next to the dominating filter the others stay near grey (claim 1's picture)
    weak_tile = shown[0:7 * f, 16 * f:(16 + 7) * f].astype(int)  # row 0, column 2
    assert np.abs(weak_tile - 128).max() <= 5
    assert shown[0:7 * f, 0:7 * f].min() == 0 and shown[0:7 * f, 0:7 * f].max() == 255
    fig = fig6_filters({"c": filters["c"]}, {}, tmp_path / "one.png", filter_scale="filter",
                       titles={"c": "(c) ZF"})
    assert len(fig.axes) == 1 and fig.axes[0].get_title(loc="left") == "(c) ZF"
    with pytest.raises(ValueError, match="differ"):
        fig6_filters({"a": a}, {"a": projections["d"]}, tmp_path / "x.png")


def test_label_colours_put_the_true_class_first_and_cap_the_legend():
    top = np.array([[3, 3, 3], [1, 1, 2], [0, 4, 4]])
    named, colours = label_colours(top, true_label=2, max_labels=3)
    assert named == [2, 3, 1] and set(colours) == {1, 2, 3}


def test_fig9_writes_png_and_pdf_with_the_reference_line(tmp_path):
    accs = {n: [20.0 + n / 2, 22.0 + n / 2] for n in (1, 2, 4, 8, 15, 30, 45, 60)}
    pretrained = tmp_path / "p.csv"  # the classify command's CSV: one row per size and split
    pd.DataFrame([{"dataset": "caltech256", "classifier": "softmax", "layer": "fc7", "train_per_class": n,
                   "split": s, "accuracy": a} for n, split_accs in accs.items() for s, a in enumerate(split_accs)]
                 ).to_csv(pretrained, index=False)
    scratch = []  # the scratch command's score.json files
    for n, split_accs in {15: [5.0, 6.0], 60: [20.0, 25.0]}.items():
        for s, a in enumerate(split_accs):
            scratch.append(tmp_path / f"caltech256_n{n}_split{s}.json")
            scratch[-1].write_text(json.dumps({"dataset": "caltech256", "train_per_class": n, "split": s,
                                               "accuracy": a, "test_images": 100, "classes": 4}))
    fig = fig9(pretrained, scratch, tmp_path / "fig9.png", "generated data")
    _written(tmp_path / "fig9.png")
    drawn_figure(tmp_path / "fig9.png")
    ax = fig.axes[0]
    assert "generated data" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert "Bo et al. 2013, 60 images" in labels and "paper, ImageNet-pretrained" in labels
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["Bo et al. 2013, 60 images"].get_ydata()) == [paper.BO_2013_CALTECH256_60] * 2
    assert list(lines["paper, non-pretrained"].get_ydata()) == [9.0, 22.5, 31.2, 38.8]
    ours = [c for c in ax.containers if c.get_label() == "ours, ImageNet-pretrained"][0]
    assert list(ours.lines[0].get_ydata()) == [21.0 + n / 2 for n in accs]  # mean over the two splits


# ---------------------------------------------------------------------------------------------- training curves


def _metrics_csv(path, lr, seed_shift=0.0, validate=True):
    """A metrics.csv as zfrepro train writes it, with known values: epoch e has loss 3 - e/10 (+ shift)."""
    epochs = np.arange(1, len(lr) + 1)
    df = pd.DataFrame({"epoch": epochs, "lr": lr, "train_loss": 3.0 - epochs / 10 + seed_shift,
                       "train_top1_error": 90.0 - 5 * epochs + seed_shift,
                       "val_top1_error_center": (92.0 - 4 * epochs + seed_shift) if validate else np.nan,
                       "seconds": 1.5, "images_per_second": 100.0})
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path, df


def test_lr_drops_are_the_epochs_after_which_the_rate_falls():
    from zfrepro.report.figures.training import lr_drops

    df = pd.DataFrame({"epoch": [1, 2, 3, 4, 5, 6], "lr": [0.1, 0.1, 0.01, 0.01, 0.02, 0.001]})
    # epoch 3 is the first at 0.01 (drop after 2, /10); the rise at 5 is no drop; epoch 6 at 0.001 (after 5, /20)
    assert lr_drops(df) == [(2, pytest.approx(10.0)), (5, pytest.approx(20.0))]
    assert lr_drops(df.iloc[:2]) == []


def test_training_curves_draw_every_run_with_its_lr_drops(tmp_path):
    from zfrepro.errors import DataError
    from zfrepro.report.figures.training import DROP_LABEL, training_curves

    a0, a0_df = _metrics_csv(tmp_path / "zf" / "seed0" / "metrics.csv", [0.1, 0.1, 0.01, 0.01, 0.01, 0.001])
    a1, a1_df = _metrics_csv(tmp_path / "zf" / "seed1" / "metrics.csv", [0.1, 0.1, 0.1, 0.1, 0.05, 0.05], 1.0)
    b0, b0_df = _metrics_csv(tmp_path / "kz" / "seed0" / "metrics.csv", [0.01] * 4, 0.5, validate=False)
    png = tmp_path / "out" / "training_curves.png"
    fig = training_curves({"zf": [a0, a1], "kz": str(b0)}, png, "generated data")
    _written(png)
    drawn_figure(png)
    assert "generated data" in fig._suptitle.get_text()
    axes = {ax.get_gid(): ax for ax in fig.axes}
    assert set(axes) == {"zf/loss", "zf/error", "kz/loss", "kz/error"}

    def curves(gid):
        return {line.get_label(): line for line in axes[gid].get_lines() if line.get_label() != DROP_LABEL}

    # The drawn data are the CSV columns, seed by seed; training dashed, validation solid.
    for net, runs in {"zf": {"seed 0": a0_df, "seed 1": a1_df}, "kz": {"seed 0": b0_df}}.items():
        loss, error = curves(f"{net}/loss"), curves(f"{net}/error")
        assert set(loss) == {f"{net} {s} train_loss" for s in runs}
        assert set(error) == {f"{net} {s} {c}" for s in runs for c in ("train_top1_error", "val_top1_error_center")}
        for seed, df in runs.items():
            for col, line in [("train_loss", loss[f"{net} {seed} train_loss"]),
                              ("train_top1_error", error[f"{net} {seed} train_top1_error"]),
                              ("val_top1_error_center", error[f"{net} {seed} val_top1_error_center"])]:
                np.testing.assert_array_equal(line.get_xdata(), df["epoch"])
                np.testing.assert_allclose(line.get_ydata(), df[col], equal_nan=True)
                assert line.get_linestyle() == ("-" if col.startswith("val") else "--")
    # One colour per network, the same for its seeds and in both panels.
    colour = {net: {line.get_color() for gid in (f"{net}/loss", f"{net}/error") for line in curves(gid).values()}
              for net in ("zf", "kz")}
    assert len(colour["zf"]) == 1 and len(colour["kz"]) == 1 and colour["zf"] != colour["kz"]
    # Drops, by hand: seed 0 after epochs 2 (/10) and 5 (/10); seed 1 after epoch 4 (/2); kz none.
    for gid in ("zf/loss", "zf/error"):
        drops = [line for line in axes[gid].get_lines() if line.get_label() == DROP_LABEL]
        assert sorted(line.get_xdata()[0] for line in drops) == [2, 4, 5]
    assert not [line for gid in ("kz/loss", "kz/error") for line in axes[gid].get_lines()
                if line.get_label() == DROP_LABEL]
    # Labelled once per cluster of nearby drops (2 and 4 are 2 epochs apart, 5 is next to 4), on the loss panel.
    assert [t.get_text() for t in axes["zf/loss"].texts] == ["lr \N{DIVISION SIGN}10", "lr \N{DIVISION SIGN}2"]
    assert not axes["zf/error"].texts
    # Shared scales: every loss panel alike, every error panel alike (within 0-100%).
    assert axes["zf/loss"].get_ylim() == axes["kz/loss"].get_ylim()
    assert axes["zf/error"].get_ylim() == axes["kz/error"].get_ylim()
    lo, hi = axes["zf/error"].get_ylim()
    assert 0 <= lo < 60 and 87 < hi <= 100
    assert "zf (2 seeds)" == axes["zf/loss"].get_title(loc="left") and axes["kz/loss"].get_title(loc="left") == "kz"

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"epoch": [1], "lr": [0.1]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="train_loss"):
        training_curves({"zf": [bad]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no networks"):
        training_curves({}, tmp_path / "x.png")

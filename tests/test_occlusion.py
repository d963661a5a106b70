"""Occlusion (Fig 7): batched positions equal a one-at-a-time loop, panel (d) equals Captum's Occlusion,
a hand-made model whose answer is known, image selection, the command and the figure."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from PIL import Image

from zfrepro.analysis.mining import mine_top9
from zfrepro.analysis.occlusion import (
    model_forward,
    occlude,
    occluder_positions,
    occlusion_data,
    occlusion_maps,
    occlusion_masks,
    strongest_map,
)
from zfrepro.cli import main as cli_main
from zfrepro.commands.analyses import configure_occlusion_parser, occlusion_command
from zfrepro.data.preprocess import center_crop, crop_offsets
from zfrepro.data.splits import PreparedSplit, class_names, images_by_class, sample_by_class
from zfrepro.errors import ConfigError
from zfrepro.model.architectures import zf_spec
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import spec_to_dict


def _model(classes: int = 5, size: int = 64, seed: int = 0) -> ConvNet:
    """A random ZF small enough for loops (width 0.125, 64 px input: layer 5 is 2x2)."""
    gen = torch.Generator().manual_seed(seed)
    return init_weights_(ConvNet(zf_spec(classes, size, width=0.125)), "gaussian", std=0.05, generator=gen).eval()


def _image(size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randn(3, size, size, generator=torch.Generator().manual_seed(seed)) * 60


# ---------------------------------------------------------------------------------------------- geometry


def test_positions_follow_captums_grid_and_bad_values_name_the_key():
    assert occluder_positions(84, 18, 3).tolist() == list(range(0, 67, 3))
    assert occluder_positions(10, 4, 4).tolist() == [0, 4, 8]  # the last square overhangs: clipped
    assert occluder_positions(10, 4, 3).tolist() == [0, 3, 6]
    assert occluder_positions(10, 10, 3).tolist() == [0]
    for size, stride, key in ((0, 1, "occlusion.size"), (11, 1, "occlusion.size"), (4, 0, "occlusion.stride")):
        with pytest.raises(ConfigError, match=key):
            occluder_positions(10, size, stride)


def test_masks_are_the_squares_cut_by_hand():
    ys, xs = torch.tensor([0, 3, 6, 2, 8]), torch.tensor([5, 0, 6, 2, 9])
    masks = occlusion_masks(ys, xs, 4, 10, 10)
    for m, y, x in zip(masks, ys.tolist(), xs.tolist(), strict=True):
        expected = torch.zeros(10, 10, dtype=torch.bool)
        expected[y:y + 4, x:x + 4] = True
        assert torch.equal(m, expected)


# ---------------------------------------------------------------------------------------------- forward


def test_model_forward_is_forward_record():
    model, x = _model(), torch.stack([_image(seed=1), _image(seed=2)])
    logits, record = model.forward_record(x)
    for layer in ("conv2", "conv5"):
        maps, out = model_forward(model, layer)(x)
        assert torch.allclose(maps, record.outputs[layer], atol=1e-5)
        assert torch.allclose(out, logits, atol=1e-5)
    with pytest.raises(ConfigError, match="occlusion.layer"):
        model_forward(model, "fc7")


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_batched_positions_equal_a_slow_loop(batch_size):
    model, x = _model(), _image()
    size, stride = 16, 7
    got = occlude(model, x, size, stride, "conv5", batch_size)
    offsets = list(range(0, 50, stride))  # 0..49: the last square overhangs the border by one pixel
    assert got["offsets"].tolist() == offsets
    with torch.no_grad():
        for i, y in enumerate(offsets):  # slow reference: one occluded copy at a time, full recorded forward
            for j, xx in enumerate(offsets):
                occluded = x.clone()
                occluded[:, y:y + size, xx:xx + size] = 0
                logits, record = model.forward_record(occluded[None])
                assert torch.allclose(got["probs"][i, j], logits.softmax(1)[0], atol=1e-5)
                assert torch.allclose(got["totals"][i, j], record.outputs["conv5"][0].sum((-2, -1)), atol=1e-4)
        logits, record = model.forward_record(x[None])
    assert torch.allclose(got["base_probs"], logits.softmax(1)[0], atol=1e-6)
    assert torch.allclose(got["base_maps"], record.outputs["conv5"][0], atol=1e-6)


def _captum(model: ConvNet, x: torch.Tensor, size: int, stride: int, target: int) -> torch.Tensor:
    from captum.attr import Occlusion

    occ = Occlusion(lambda inp: model(inp).softmax(dim=1))
    return occ.attribute(x[None], sliding_window_shapes=(3, size, size), strides=(3, stride, stride),
                         baselines=0, target=target, perturbations_per_eval=64)[0]


def test_panel_d_agrees_with_captum_occlusion():
    model, x = _model(), _image()
    target = 2
    # stride == size: Captum's attribution is p(x) - p(x occluded) on each square (the last ones clipped)
    size = 12
    got = occlude(model, x, size, size, batch_size=50)
    attr = _captum(model, x, size, size, target)
    drop = got["base_probs"][target] - got["probs"][..., target]
    expected = torch.zeros(64, 64)
    for i, y in enumerate(got["offsets"].tolist()):
        for j, xx in enumerate(got["offsets"].tolist()):
            expected[y:y + size, xx:xx + size] = drop[i, j]
    assert torch.allclose(attr, expected.expand(3, -1, -1), atol=1e-5)
    # overlapping squares: Captum averages the drops of every square covering a pixel
    size, stride = 16, 6
    got = occlude(model, x, size, stride, batch_size=50)
    attr = _captum(model, x, size, stride, target)
    drop = got["base_probs"][target] - got["probs"][..., target]
    total, count = torch.zeros(64, 64), torch.zeros(64, 64)
    for i, y in enumerate(got["offsets"].tolist()):
        for j, xx in enumerate(got["offsets"].tolist()):
            total[y:y + size, xx:xx + size] += drop[i, j]
            count[y:y + size, xx:xx + size] += 1
    assert (count > 0).all()
    expected = total / count
    assert torch.allclose(attr, expected.expand(3, -1, -1), atol=1e-5)


def test_hand_made_model_gives_the_known_answer():
    # A 12x12 image, a 4x4 "object" of ones at rows/columns 4..7. The layer map is the image's first
    # channel, so its total is the object's visible area; logits (visible - 10, 0).
    x = torch.zeros(3, 12, 12)
    x[0, 4:8, 4:8] = 1.0

    def forward(batch):
        maps = batch[:, :1]
        visible = maps.sum((-2, -1))[:, 0]
        return maps, torch.stack([visible - 10, torch.zeros_like(visible)], dim=1)

    got = occlusion_maps(forward, x, size=4, stride=2, batch_size=4)
    assert got["offsets"].tolist() == [0, 2, 4, 6, 8]
    per_axis = torch.tensor([0.0, 2, 4, 2, 0])  # rows of [p, p+4) inside [4, 8), by hand
    visible = 16 - per_axis[:, None] * per_axis[None, :]
    assert torch.equal(got["totals"][..., 0], visible)
    assert torch.allclose(got["probs"][..., 0], torch.sigmoid(visible - 10))
    top = got["probs"].argmax(-1)
    expected = torch.zeros(5, 5, dtype=torch.long)
    expected[2, 1:4] = expected[1:4, 2] = 1  # visible area 8 or 0 (a cross around the centre) -> label 1
    assert torch.equal(top, expected)
    assert got["base_probs"][0] == pytest.approx(float(torch.sigmoid(torch.tensor(6.0))))
    assert strongest_map(torch.tensor([[[0.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [3.0, 3.0]]])) == (1, 1, 0)


# ---------------------------------------------------------------------------------------------- data


def test_command_and_figure_end_to_end(tiny_prepared, tmp_path):
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    model = _model(classes=len(split.classes), size=64)
    ckpt = tmp_path / "final.pt"
    torch.save({"arch": "zf", "spec": spec_to_dict(model.spec), "model": model.state_dict(), "epoch": 0,
                "classes": split.classes, "crop_size": 64, "seed": 0}, ckpt)
    top9 = tmp_path / "top9.pt"
    torch.save({**mine_top9(model, split, mean, 64, k=3), "split": "val"}, top9)
    images = [{"wnid": split.classes[1], "nth": 2}, {"wnid": split.classes[-1], "nth": 0}]
    parser = argparse.ArgumentParser()
    configure_occlusion_parser(parser)
    out = tmp_path / "occlusion.pt"
    args = parser.parse_args(["--model", str(ckpt), "--data-dir", str(tiny_prepared), "--top9", str(top9),
                              "--images", json.dumps(images), "--size", "14", "--stride", "5", "--top-projections",
                              "2", "--batch-size", "16", "--sample", "2", "--device", "cpu", "--out", str(out)])
    occlusion_command(args)
    data = torch.load(out, weights_only=True)
    # The sample: two more images, none of the figure's, each measured as occlude() measures it directly.
    figure = images_by_class(split, images, "occlusion.images")
    assert [r["index"] for r in data["sample"]] == sample_by_class(split, 2, exclude=figure)
    for r in data["sample"]:
        direct = occlude(model, center_crop(split.data["images"][r["index"]:r["index"] + 1], mean, 64)[0], 14, 5)
        assert torch.allclose(r["p_true"], direct["probs"][..., int(split.labels[r["index"]])], atol=1e-6)
        assert torch.allclose(r["map_total"], direct["totals"][..., strongest_map(direct["base_maps"])[0]], atol=1e-5)
    assert [r["wnid"] for r in data["rows"]] == [images[0]["wnid"], images[1]["wnid"]]
    row = data["rows"][0]
    index = images_by_class(split, images, "occlusion.images")[0]
    assert row["index"] == index and row["label"] == int(split.labels[index])
    x = center_crop(split.data["images"][index:index + 1], mean, 64)[0]
    direct = occlude(model, x, 14, 5)
    assert torch.allclose(row["p_true"], direct["probs"][..., row["label"]], atol=1e-6)
    assert row["channel"] == strongest_map(direct["base_maps"])[0]
    assert torch.allclose(row["map_total"], direct["totals"][..., row["channel"]], atol=1e-5)
    assert row["projections"].shape[0] == 1 + 2 and int(row["projection_images"][0]) == index
    assert index not in row["projection_images"][1:].tolist()
    assert row["class_name"] == class_names(tiny_prepared, split.classes)[row["label"]]
    sy, sx = row["shown"]  # panel (a) shows the square at the lowest p(true class)
    assert float(row["p_true"].min()) == pytest.approx(float(direct["probs"][..., row["label"]].min()))
    assert float(row["p_true"][sy // 5, sx // 5]) == pytest.approx(float(row["p_true"].min()))
    top, left = crop_offsets(72, 64)[4]
    grey = mean.round().to(torch.uint8)[:, top:top + 64, left:left + 64]
    square = torch.zeros(64, 64, dtype=torch.bool)
    square[sy:sy + 14, sx:sx + 14] = True
    assert torch.equal(row["occluded_image"][:, square], grey[:, square])  # the mean pixel
    assert torch.equal(row["occluded_image"][:, ~square], row["image"][:, ~square])
    assert {"p_true", "p_true_min", "corr_map_p"} <= set(data["summary"][0])
    png = tmp_path / "fig" / "fig7.png"
    assert cli_main(["plot", "fig7_occlusion", "--inputs", json.dumps({"data": str(out)}), "--out", str(png)]) == 0
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert im.size[0] > 1000 and im.size[1] > 300
    bad = parser.parse_args(["--model", str(ckpt), "--data-dir", str(tiny_prepared), "--top9", str(top9),
                             "--images", "[{\"wnid\": \"nope\", \"nth\": 0}]", "--size", "14", "--stride", "5",
                             "--out", str(tmp_path / "bad.pt")])
    with pytest.raises(ConfigError, match="occlusion.images"):
        occlusion_command(bad)
    with pytest.raises(ConfigError, match="occlusion.layer"):
        occlusion_data(ckpt, tiny_prepared, {"conv1": {}}, images, 14, 5)

"""Fig 5 (invariance): transforms against hand-made shifts and rotations, distances against numpy, identity
transforms against a plain forward pass, image choice, settings errors, the commands and the figure."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from zfrepro.analysis.invariance import (
    check_settings,
    invariance_data,
    mean_fill,
    measure,
    rotate,
    summarize,
    transform,
    translate,
    translation_pixels,
    zoom,
)
from zfrepro.cli import main as cli_main
from zfrepro.commands.analyses import configure_invariance_parser, invariance_command
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit, images_by_class, sample_by_class
from zfrepro.errors import ConfigError
from zfrepro.model.architectures import zf_spec
from zfrepro.model.network import ConvNet
from zfrepro.model.spec import spec_to_dict

from conftest import drawn_figure


@pytest.fixture(scope="module")
def setup(tiny_prepared, tmp_path_factory):
    """An untrained tiny ZF checkpoint for the tiny prepared data (weights need not be trained here)."""
    torch.manual_seed(0)
    split = PreparedSplit(tiny_prepared / "val.pt")
    crop = 64
    model = ConvNet(zf_spec(len(split.classes), input_size=crop, width=0.125)).eval()
    path = tmp_path_factory.mktemp("inv") / "final.pt"
    torch.save({"spec": spec_to_dict(model.spec), "model": model.state_dict(), "classes": split.classes,
                "crop_size": crop, "arch": "zf"}, path)
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    return {"path": path, "model": model, "split": split, "mean": mean, "data_dir": tiny_prepared}


def _image(seed: int = 0, size: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- transforms


@pytest.mark.parametrize("k", [3, -4])
def test_translation_equals_shifting_by_hand(k):
    img, fill = _image(), [7.0, 8.0, 9.0]
    expected = torch.roll(img, k, dims=-2)
    rows = slice(0, k) if k > 0 else slice(k, None)  # the rows that wrapped around get the fill
    expected[:, rows] = torch.tensor([7, 8, 9], dtype=torch.uint8)[:, None, None]
    assert torch.equal(translate(img, k, fill), expected)
    assert torch.equal(transform(img, "translation", k, fill), expected)


def test_translations_are_scaled_from_224_and_rounded_symmetrically():
    # 60 * 84 / 224 = 22.5 -> 23 (halves away from zero, so -60 -> -23); 5 * 84 / 224 = 1.875 -> 2
    assert translation_pixels([-60, -5, 0, 5, 60], 84) == [-23, -2, 0, 2, 23]
    assert translation_pixels([-60, 13, 60], 224) == [-60, 13, 60]


def test_rotation_by_a_full_turn_is_the_identity_and_90_degrees_is_rot90():
    img, fill = _image(1), [0.0, 0.0, 0.0]
    assert torch.equal(rotate(img, 0, fill), img)
    assert torch.equal(rotate(img, 360, fill), img)
    assert torch.equal(rotate(img, 90, fill), torch.rot90(img, 1, dims=(-2, -1)))  # anticlockwise


def test_zoom_is_an_enlarged_centre_crop():
    img = _image(2)
    assert torch.equal(zoom(img, 1.0), img)
    big = F.interpolate(img[None].float(), size=(32, 32), mode="bilinear", align_corners=False)[0]
    expected = big[:, 8:24, 8:24].round().clamp(0, 255)
    assert (zoom(img, 2.0).float() - expected).abs().max() <= 1  # uint8 rounding only


def test_mean_fill_is_the_mean_pixel():
    mean = torch.stack([torch.full((4, 4), 10.2), torch.arange(16.0).view(4, 4), torch.full((4, 4), 200.7)])
    assert mean_fill(mean) == [10.0, 8.0, 201.0]


# ---------------------------------------------------------------------------------------------- measurement


def test_distances_and_probabilities_match_one_image_at_a_time(setup):
    """Batched measure() against a slow reference: each variant alone, distances with numpy."""
    model, split, mean = setup["model"], setup["split"], setup["mean"]
    image, label, fill = split.data["images"][1], int(split.labels[1]), mean_fill(mean)
    applied = {"translation": [-3.0, 2.0], "scale": [1.3], "rotation": [25.0]}
    got = measure(model, image, label, mean, applied, ["conv1", "fc7"], fill)

    def features(img):
        with torch.no_grad():
            logits, rec = model.forward_record(center_crop(img[None], mean, 64))
        return {k: rec.outputs[k][0].flatten().double().numpy() for k in ("conv1", "fc7")}, \
            float(logits.softmax(1)[0, label])

    ref, p0 = features(image)
    assert got["p_original"] == pytest.approx(p0, rel=1e-5)
    for kind, values in applied.items():
        for i, v in enumerate(values):
            feats, p = features(transform(image, kind, v, fill))
            assert float(got["kinds"][kind]["p_true"][i]) == pytest.approx(p, rel=1e-4, abs=1e-6)
            for layer in ("conv1", "fc7"):
                expected = np.linalg.norm(feats[layer] - ref[layer])
                assert expected > 0
                assert float(got["kinds"][kind]["distance"][layer][i]) == pytest.approx(expected, rel=1e-4)
    assert float(got["norm"]["fc7"]) == pytest.approx(np.linalg.norm(ref["fc7"]), rel=1e-5)


def test_identity_transforms_give_zero_distance_and_the_plain_probability(setup):
    images = [{"wnid": setup["split"].classes[0], "nth": 1}, {"wnid": setup["split"].classes[-1], "nth": 0}]
    d = invariance_data(setup["path"], setup["data_dir"], images, [0, 40], [1.0, 1.5], [0, 90, 360], ["conv1", "fc7"])
    split, mean, model = setup["split"], setup["mean"], setup["model"]
    idx = d["indices"]
    with torch.no_grad():
        plain = model(center_crop(split.data["images"][idx], mean, 64)).softmax(1)[torch.arange(2), split.labels[idx]]
    assert torch.allclose(d["p_original"], plain, atol=1e-6)
    identity = {"translation": [0], "scale": [0], "rotation": [0, 2]}  # positions of the identities
    for kind, where in identity.items():
        k = d["kinds"][kind]
        for layer in ("conv1", "fc7"):
            assert torch.all(k["distance"][layer][:, where] <= 1e-4 * d["norm"][layer][:, None])
            assert torch.all(k["distance"][layer][:, 1] > 0)  # the real transforms do change the features
        assert torch.allclose(k["p_true"][:, where], plain[:, None].expand(-1, len(where)), atol=1e-5)
    assert d["kinds"]["translation"]["applied"].tolist() == [0, 11]  # 40 * 64 / 224 = 11.4 -> 11 pixels
    assert d["kinds"]["translation"]["x"][1] == pytest.approx(11 * 224 / 64)
    assert d["kinds"]["rotation"]["examples"].shape == (2, 3, 3, 64, 64)
    assert d["kinds"]["rotation"]["examples"].dtype == torch.uint8


def test_images_are_the_nth_of_their_class(setup):
    split = setup["split"]
    wnid = split.classes[1]
    members = (split.labels == 1).nonzero().flatten().tolist()
    specs = [{"wnid": wnid, "nth": 2}, {"wnid": wnid, "nth": 0}]
    assert images_by_class(split, specs, "invariance.images") == [members[2], members[0]]
    with pytest.raises(ConfigError, match=r"invariance.images\[0\].wnid"):
        images_by_class(split, [{"wnid": "n00000000", "nth": 0}], "invariance.images")
    with pytest.raises(ConfigError, match=r"invariance.images\[1\].nth.*0\.\.3"):
        images_by_class(split, [{"wnid": wnid, "nth": 0}, {"wnid": wnid, "nth": len(members)}],
                        "invariance.images")


def test_the_sample_is_measured_as_the_figures_images_are(setup):
    # The extra images' numbers equal those of the same images given as figure images (an independent path).
    split = setup["split"]
    figure = [{"wnid": split.classes[0], "nth": 0}]
    args = ([0, 40], [1.0, 1.5], [0, 90], ["conv1", "fc7"])
    d = invariance_data(setup["path"], setup["data_dir"], figure, *args, sample=3)
    extra = d["sample"]["indices"].tolist()
    assert extra == sample_by_class(split, 3, exclude=d["indices"].tolist())
    assert d["indices"].tolist()[0] not in extra
    specs = []
    for index in extra:  # the same images as {wnid, nth}
        label = int(split.labels[index])
        nth = (split.labels == label).nonzero().flatten().tolist().index(index)
        specs.append({"wnid": split.classes[label], "nth": nth})
    direct = invariance_data(setup["path"], setup["data_dir"], specs, *args)
    for kind in ("translation", "scale", "rotation"):
        assert torch.allclose(d["sample"]["kinds"][kind]["p_true"], direct["kinds"][kind]["p_true"])
        for layer in ("conv1", "fc7"):
            assert torch.allclose(d["sample"]["kinds"][kind]["distance"][layer],
                                  direct["kinds"][kind]["distance"][layer])
    assert torch.allclose(d["sample"]["norm"]["fc7"], direct["norm"]["fc7"])
    assert len(invariance_data(setup["path"], setup["data_dir"], figure, *args)["sample"]["labels"]) == 0


def test_bad_settings_name_their_key(setup):
    model = setup["model"]
    with pytest.raises(ConfigError, match="invariance.scales"):
        check_settings([0], [0.5, 1.0], [0], ["fc7"], model)
    with pytest.raises(ConfigError, match="invariance.layers"):
        check_settings([0], [1.0], [0], ["conv9"], model)
    with pytest.raises(ConfigError, match="invariance.rotations"):
        check_settings([0], [1.0], [], ["fc7"], model)


def test_summary_by_hand():
    """One image, one layer: distances at +-1 px are 2 and 4 (mean 3), the maximum 6, the norm 10."""
    kind = {"applied": torch.tensor([-2.0, -1.0, 0.0, 1.0]), "x": torch.tensor([-2.0, -1.0, 0.0, 1.0]),
            "distance": {"fc7": torch.tensor([[6.0, 2.0, 0.0, 4.0]])},
            "p_true": torch.tensor([[0.5, 0.9, 1.0, 0.2]]), "top1": torch.tensor([[1, 1, 1, 0]])}
    data = {"kinds": {"translation": kind}, "layers": ["fc7"], "norm": {"fc7": torch.tensor([10.0])},
            "p_original": torch.tensor([1.0]), "labels": torch.tensor([1])}
    row = summarize(data).iloc[0]
    assert row["smallest step"] == 1
    assert row["fc7 d(small)/norm"] == pytest.approx(0.3)
    assert row["fc7 d(small)/d(max)"] == pytest.approx(0.5)
    assert row["p(true) mean"] == pytest.approx(0.65)
    assert row["p(true) min"] == pytest.approx(0.2)
    assert row["top-1 kept %"] == pytest.approx(75.0)


# ---------------------------------------------------------------------------------------------- commands


def _parse(configure, argv):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)  # the lead's cli adds it to every subcommand
    configure(p)
    return p.parse_args(argv)


def test_commands_write_the_data_the_summary_and_the_figure(setup, tmp_path, capsys):
    wnids = setup["split"].classes
    images = f'[{{"wnid": "{wnids[0]}", "nth": 0}}, {{"wnid": "{wnids[2]}", "nth": 1}}]'
    out = tmp_path / "invariance.pt"
    args = _parse(configure_invariance_parser, [
        "--model", str(setup["path"]), "--data-dir", str(setup["data_dir"]), "--images", images,
        "--translations", "[-60, 0, 60]", "--scales", "[1, 1.4, 1.8]", "--rotations", "[0, 180]",
        "--layers", '["conv1", "fc7"]', "--out", str(out), "--out-csv", str(tmp_path / "s.csv"),
        "--out-md", str(tmp_path / "s.md")])
    invariance_command(args)
    data = torch.load(out, weights_only=True)
    assert data["wnids"] == [wnids[0], wnids[2]]
    assert data["kinds"]["scale"]["distance"]["fc7"].shape == (2, 3)
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table["transformation"]) == ["translation", "scale", "rotation"]
    assert "conv1 d(small)/norm" in capsys.readouterr().out
    png = tmp_path / "fig5.png"
    assert cli_main(["plot", "fig5_invariance", "--inputs", json.dumps({"data": str(out)}), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    drawn_figure(png)  # a real drawing (not blank) with its PDF


def test_bad_images_json_is_a_config_error(setup, tmp_path):
    args = _parse(configure_invariance_parser, [
        "--model", str(setup["path"]), "--data-dir", str(setup["data_dir"]), "--images", "{not json",
        "--translations", "[0]", "--scales", "[1]", "--rotations", "[0]", "--out", str(tmp_path / "x.pt")])
    with pytest.raises(ConfigError, match="--images"):
        invariance_command(args)

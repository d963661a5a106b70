"""Table 1 / Fig 8: Delta by hand and against scipy, masks on the recorded boxes, the parts CSV's errors,
random boxes, skipped images, and the whole command chain against a one-image-at-a-time reimplementation."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw
from scipy.spatial.distance import hamming, pdist

from zfrepro.analysis.correspondence import (
    SIGN_RTOL,
    choose_images,
    crop_geometry,
    delta,
    feature_signs,
    hamming_fractions,
    mask_box,
    preprocess,
    random_boxes,
)
from zfrepro.analysis.parts_csv import load_parts_csv
from zfrepro.cli import main as cli_main
from zfrepro.commands.analyses import (
    configure_correspondence_parser,
    configure_table1_parser,
    correspondence_command,
    table1_command,
)
from zfrepro.data.preprocess import center_crop, load_rgb, resize_center_crop
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.architectures import zf_spec
from zfrepro.model.network import ConvNet
from zfrepro.model.spec import spec_to_dict

from conftest import REPO, drawn_figure

# --------------------------------------------------------------------------------------------- the measure


def test_delta_by_hand():
    eps = torch.tensor([[1.0, -2.0, 0.0, 3.0],    # signs + - 0 +
                        [2.0, -1.0, 1.0, -1.0],   # signs + - + -   differs from row 0 at 2 of 4
                        [0.5, 0.0, 0.0, 4.0]])    # signs + 0 0 +   row 0: 1 of 4, row 1: 3 of 4
    assert hamming_fractions(feature_signs(eps)).tolist() == [0.5, 0.25, 0.75]
    assert delta(eps) == pytest.approx(0.5)


def test_rounding_noise_is_no_change():
    eps = torch.tensor([[1e-9, -1.0], [-1e-9, -1.0]])
    assert delta(eps) == 0.5  # raw signs: the tiny values disagree
    assert delta(eps, scale=torch.tensor([1.0, 1.0])) == 0.0
    assert feature_signs(torch.tensor([[2 * SIGN_RTOL]]), torch.tensor([1.0])).item() == 1


def test_hamming_matches_scipy():
    rng = np.random.default_rng(0)
    eps = rng.normal(size=(6, 200)) * (rng.random((6, 200)) < 0.4)  # many exact zeros, as after a ReLU
    signs = feature_signs(torch.from_numpy(eps))
    ours = hamming_fractions(signs).numpy()
    np.testing.assert_allclose(ours, pdist(np.sign(eps), metric="hamming"))
    for k, (i, j) in enumerate(itertools.combinations(range(6), 2)):
        assert ours[k] == pytest.approx(hamming(np.sign(eps[i]), np.sign(eps[j])))
    with pytest.raises(ConfigError, match="correspondence.images"):
        hamming_fractions(signs[:1])


# --------------------------------------------------------------------------------------------- masks


def _smooth_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    small = rng.integers(0, 256, size=(max(2, height // 6), max(2, width // 6), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def test_mask_changes_exactly_the_box():
    rng = np.random.default_rng(1)
    image = _smooth_image(rng, 40, 30)
    colour = np.array([115, 107, 101], dtype=np.uint8)
    out = mask_box(image, (5, 7, 12, 20), colour)
    inside = np.zeros(image.shape[:2], bool)
    inside[7:20, 5:12] = True
    assert (out[inside] == colour).all()
    np.testing.assert_array_equal(out[~inside], image[~inside])
    assert not (image[inside] == colour).all(axis=-1).any()  # the test image had no such pixels before


@pytest.mark.parametrize("size", [(150, 101), (97, 131), (60, 50)])  # landscape, portrait, upscaled
def test_mask_lands_on_the_box_after_resize_and_crops(size):
    width, height = size
    image_size, crop = 72, 63  # an odd difference: the centre crop's offset rounds
    rng = np.random.default_rng(width)
    image = _smooth_image(rng, width, height)
    colour = np.array([200, 30, 90], dtype=np.uint8)
    box = (width // 3, height // 4, width // 3 + width // 5, height // 4 + height // 5)
    # Independent masking with PIL, and the usual preprocessing (resize_center_crop, then the centre crop).
    drawn = Image.fromarray(image)
    ImageDraw.Draw(drawn).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=tuple(int(c) for c in colour))
    np.testing.assert_array_equal(mask_box(image, box, colour), np.asarray(drawn))
    zero = torch.zeros(3, image_size, image_size)
    plain = center_crop(preprocess(image, image_size)[None], zero, crop)[0]
    masked = center_crop(resize_center_crop(drawn, image_size)[None], zero, crop)[0]
    x0, y0, x1, y1 = crop_geometry(width, height, image_size, crop).to_input(box)
    centres = torch.arange(crop) + 0.5
    margin = 1.5 + max(width, height) / image_size  # the antialiasing filter's reach, in input pixels

    def band(lo: float, hi: float, m: float) -> torch.Tensor:
        return (centres >= lo - m) & (centres <= hi + m)

    inside = band(x0, x1, -margin)[None, :] & band(y0, y1, -margin)[:, None]
    near = band(x0, x1, margin)[None, :] & band(y0, y1, margin)[:, None]
    assert inside.sum() > 4
    target = torch.tensor(colour, dtype=torch.float32)[:, None]
    assert (masked[:, inside] - target).abs().max() <= 1  # inside: the mask colour
    assert torch.equal(masked[:, ~near], plain[:, ~near])  # away from the box: untouched
    changed = (masked != plain).any(0).nonzero()
    assert changed[:, 1].min() >= x0 - margin and changed[:, 1].max() <= x1 + margin
    assert changed[:, 0].min() >= y0 - margin and changed[:, 0].max() <= y1 + margin


@pytest.mark.parametrize("size, image_size, crop", [((150, 101), 72, 63), ((97, 131), 72, 64), ((60, 50), 96, 84),
                                                     ((113, 112), 96, 84)])
def test_box_geometry_matches_the_real_preprocessing(size, image_size, crop):
    # A white box on black through resize_center_crop and the centre crop: the resampling filter is
    # symmetric, so the bright blob's centroid and mass are the mapped box's centre and area.
    width, height = size
    box = (width // 3 + 1, height // 3, width // 3 + width // 6, height // 3 + height // 7 + 1)
    image = mask_box(np.zeros((height, width, 3), np.uint8), box, np.array([255, 255, 255], np.uint8))
    seen = center_crop(preprocess(image, image_size)[None], torch.zeros(3, image_size, image_size), crop)[0, 0]
    x0, y0, x1, y1 = crop_geometry(width, height, image_size, crop).to_input(box)
    weight = seen.double() / 255
    centres = torch.arange(crop, dtype=torch.float64) + 0.5
    assert float((weight.sum(0) * centres).sum() / weight.sum()) == pytest.approx((x0 + x1) / 2, abs=0.05)
    assert float((weight.sum(1) * centres).sum() / weight.sum()) == pytest.approx((y0 + y1) / 2, abs=0.05)
    assert float(weight.sum()) == pytest.approx((x1 - x0) * (y1 - y0), rel=0.01)


def test_random_boxes_have_part_sizes_inside_the_region():
    sizes = [[(5, 4), (7, 6)], [(3, 3)]]
    regions = [(10.4, 2.0, 40.0, 30.5), (0.0, 0.0, 12.0, 9.0)]
    boxes = random_boxes(sizes, regions, repeats=200, seed=3)
    assert boxes.shape == (200, 2, 4)
    for i, (rx0, ry0, rx1, ry1) in enumerate(regions):
        b = boxes[:, i]
        assert (b[:, 0] >= rx0).all() and (b[:, 1] >= ry0).all() and (b[:, 2] <= rx1).all() and (b[:, 3] <= ry1).all()
        assert {(int(w), int(h)) for w, h in zip(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], strict=True)} == set(sizes[i])
    assert len({tuple(b) for b in boxes[:, 0]}) > 50  # positions vary
    np.testing.assert_array_equal(boxes, random_boxes(sizes, regions, 200, seed=3))
    assert not np.array_equal(boxes, random_boxes(sizes, regions, 200, seed=4))


# --------------------------------------------------------------------------------------------- parts CSV


def _write_csv(tmp_path: Path, text: str, images: tuple[str, ...] = ("cls/a.png",)) -> Path:
    for name in images:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30)).save(tmp_path / name)
    path = tmp_path / "parts.csv"
    path.write_text(text)
    return path


HEADER = "image,part,x0,y0,x1,y1\n"


def test_parts_csv_is_read(tmp_path):
    path = _write_csv(tmp_path, "# a comment\n" + HEADER + "cls/a.png,nose,1,2,5,6.2\n\ncls/a.png,left_eye,0,0,3,3\n")
    [entry] = load_parts_csv(path)
    assert entry.group == "cls" and entry.path == tmp_path / "cls/a.png" and entry.line == 3
    assert entry.boxes == {"nose": (1, 2, 5, 6), "left_eye": (0, 0, 3, 3)}


@pytest.mark.parametrize("text, match", [
    ("image,part,x0,y0,x1\ncls/a.png,nose,1,2,5\n", r"parts\.csv, line 1: missing column\(s\) y1"),
    (HEADER + "cls/a.png,nose,1,two,5,6\n", r"parts\.csv, line 2, column y0: 'two' is not a number"),
    (HEADER + "cls/a.png,nose,7,2,5,6\n", r"parts\.csv, line 2, columns x0,x1: x1 \(5\) must be larger"),
    (HEADER + "cls/b.png,nose,1,2,5,6\n", r"parts\.csv, line 2, column image: image file .*cls/b\.png does not"),
    (HEADER + ",nose,1,2,5,6\n", r"parts\.csv, line 2, column image: empty"),
    (HEADER + "cls/a.png,nose,1,2,5,6\ncls/a.png,nose,1,2,5,6\n", r"line 3, column part: 'nose' .* twice"),
    (HEADER + "cls/a.png,nose,1,2,5\n", r"parts\.csv, line 2: 5 fields"),
    (HEADER, r"parts\.csv has a header but no rows"),
    ("", r"parts\.csv is empty"),
])
def test_parts_csv_errors_name_the_file_and_the_column(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_parts_csv(_write_csv(tmp_path, text))


def test_a_box_outside_the_image_names_its_own_line(tmp_path):
    # b.png's first row is line 5; its left eye, on line 6, reaches past the 40 px wide image.
    rows = ["dog/a.png,nose,10,10,14,14", "dog/a.png,left_eye,20,10,24,14", "dog/a.png,right_eye,12,4,16,8",
            "dog/b.png,nose,10,10,14,14", "dog/b.png,left_eye,30,10,45,14", "dog/b.png,right_eye,12,4,16,8"]
    path = _write_csv(tmp_path, HEADER + "\n".join(rows) + "\n", ("dog/a.png", "dog/b.png"))
    with pytest.raises(DataError, match=r"^parts CSV \S*parts\.csv, line 6, column x1: the left_eye box "
                       r"\(30, 10, 45, 14\) of dog/b\.png reaches outside the 40x30 image; correct the box "
                       r"\(x1 <= 40, y1 <= 30"):
        choose_images(load_parts_csv(path), 2, None, 30, 24, path)
    entry = load_parts_csv(path)[1]
    assert entry.line == 5 and entry.lines == {"nose": 5, "left_eye": 6, "right_eye": 7}


@pytest.mark.parametrize("part, suggestion", [("rigth_eye", "right_eye"), ("noze", "nose"), ("Left_Eye", "left_eye"),
                                              ("left eye", "left_eye"), ("lefteye", "left_eye")])
def test_a_misspelt_part_is_named_with_the_right_spelling(tmp_path, part, suggestion):
    path = _write_csv(tmp_path, HEADER + f"cls/a.png,nose,1,2,5,6\ncls/a.png,{part},0,0,3,3\n")
    with pytest.raises(DataError, match=rf"^parts CSV \S*parts\.csv, line 3, column part: '{part}' is not a known "
                       rf"part; did you mean '{suggestion}'\? Correct the spelling"):
        load_parts_csv(path)


def test_deliberately_different_parts_are_allowed(tmp_path):
    # Other parts get their own Table 1 row; left_ear is as close to left_eye by difflib's ratio as noze to nose.
    path = _write_csv(tmp_path, HEADER + "cls/a.png,left_ear,1,2,5,6\ncls/a.png,nose_tip,0,0,3,3\n")
    [entry] = load_parts_csv(path)
    assert set(entry.boxes) == {"left_ear", "nose_tip"}


def test_missing_parts_csv_points_at_the_template(tmp_path):
    with pytest.raises(DataError, match="nope.csv does not exist.*template"):
        load_parts_csv(tmp_path / "nope.csv")


def test_template_parses():
    entries = load_parts_csv(REPO / "config" / "correspondence_parts.template.csv", check_files=False)
    assert len(entries) >= 1 and all(set(e.boxes) == {"right_eye", "left_eye", "nose"} for e in entries)


def test_images_whose_parts_the_crop_cuts_are_skipped(tmp_path):
    images = ("dog/a.png", "dog/b.png", "dog/c.png", "dog/d.png")
    # 40x30 images, S = 30, c = 24: the model sees x in [8, 32), y in [3, 27).
    rows = ["dog/a.png,nose,10,10,14,14", "dog/a.png,left_eye,2,10,6,14",  # the eye lies left of the crop
            "dog/b.png,nose,10,10,14,14", "dog/b.png,left_eye,20,10,24,14",
            "dog/c.png,nose,10,10,14,14",                                   # no left eye box
            "dog/d.png,nose,9,4,13,8", "dog/d.png,left_eye,26,20,30,24"]
    path = _write_csv(tmp_path, HEADER + "\n".join(rows) + "\n", images)
    chosen, parts, group, skipped = choose_images(load_parts_csv(path), 2, None, 30, 24, path)
    assert [c.entry.name for c in chosen] == ["dog/b.png", "dog/d.png"] and group == "dog"
    assert parts == ["left_eye", "nose"]
    assert skipped[0][0] == "dog/a.png" and "left eye 0% visible" in skipped[0][1]
    assert skipped[1] == ("dog/c.png", "no box for left_eye")
    with pytest.raises(ConfigError, match="correspondence.images = 3.*dog: 2 usable, 2 skipped"):
        choose_images(load_parts_csv(path), 3, None, 30, 24, path)
    with pytest.raises(ConfigError, match="correspondence.wnid 'cat'.*classes there: dog"):
        choose_images(load_parts_csv(path), 2, "cat", 30, 24, path)


def test_too_few_usable_images_says_why_with_the_lines(tmp_path):
    images = ("dog/a.png", "dog/b.png", "dog/c.png", "dog/d.png", "dog/e.png", "dog/f.png")
    rows = ["dog/a.png,nose,10,10,14,14", "dog/a.png,left_eye,2,10,6,14",   # lines 2-3: the eye is cut
            "dog/b.png,nose,10,10,14,14", "dog/b.png,left_eye,20,10,24,14",  # lines 4-5: usable
            *(f"dog/{c}.png,nose,10,10,14,14" for c in "cdef")]              # lines 6-9: no left eye box
    path = _write_csv(tmp_path, HEADER + "\n".join(rows) + "\n", images)
    with pytest.raises(ConfigError) as info:
        choose_images(load_parts_csv(path), 2, None, 30, 24, path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"correspondence.images = 2, but no class in parts CSV {path} ")
    assert ("(dog: 1 usable, 5 skipped [line 3: dog/a.png: the crop the network sees cuts a part box (left eye 0% "
            "visible); line 6: dog/c.png: no box for left_eye; line 7: dog/d.png: no box for left_eye; and 2 more]); "
            "fix the boxes or part names on those lines" in message)


# --------------------------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def random_zf(tiny_prepared, tmp_path_factory) -> Path:
    """An untrained width-1/8 ZF for the tiny prepared data, saved like a trained checkpoint."""
    manifest = json.loads((tiny_prepared / "manifest.json").read_text())
    torch.manual_seed(0)
    spec = zf_spec(len(manifest["classes"]), manifest["crop_size"], width=0.125)
    path = tmp_path_factory.mktemp("model") / "final.pt"
    torch.save({"arch": "zf", "spec": spec_to_dict(spec), "model": ConvNet(spec).state_dict(), "epoch": 0,
                "classes": manifest["classes"], "crop_size": manifest["crop_size"], "seed": 0}, path)
    return path


def _run(configure, command, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    command(parser.parse_args(argv))


def _one_at_a_time_delta(model_path, data_dir, entries, part, crop, rtol) -> float:
    """Delta for one part, recomputed independently: PIL masking, one image per forward pass, scipy."""
    from zfrepro.model.checkpoint import load_model

    model, _ = load_model(model_path)
    mean = torch.load(data_dir / "mean.pt", weights_only=True)
    colour = tuple(int(v) for v in torch.round(mean.mean(dim=(1, 2))).tolist())
    signs = []
    for entry in entries:
        original = load_rgb(entry.path)
        masked = original.copy()
        x0, y0, x1, y1 = entry.boxes[part]
        ImageDraw.Draw(masked).rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
        with torch.no_grad():
            feats = [model.forward_record(center_crop(resize_center_crop(img, mean.shape[-1])[None], mean, crop))[1]
                     .outputs["conv5"].flatten().double() for img in (original, masked)]
        eps = (feats[0] - feats[1]).numpy()
        eps[np.abs(eps) <= rtol * feats[0].abs().max().item()] = 0
        signs.append(np.sign(eps))
    return float(np.mean([hamming(a, b) for a, b in itertools.combinations(signs, 2)]))


def test_commands_end_to_end(tiny_imagenet, tiny_prepared, random_zf, tmp_path):
    out = tmp_path / "analysis" / "correspondence.pt"
    _run(configure_correspondence_parser, correspondence_command,
         ["--model", str(random_zf), "--data-dir", str(tiny_prepared), "--parts-csv", str(tiny_imagenet / "parts.csv"),
          "--images", "3", "--random-repeats", "4", "--layers", '["conv5", "fc7"]', "--seed", "1", "--out", str(out)])
    data = torch.load(out, weights_only=True)
    assert data["parts"] == ["right_eye", "left_eye", "nose"] and data["layers"] == ["conv5", "fc7"]
    assert len(data["images"]) == 3 and data["group"] == "n91000001"
    assert data["random_boxes"].shape == (4, 3, 4) and data["display"].shape[:2] == (3, 5)
    for layer in data["layers"]:
        for key, (mean, sd) in data["summary"][layer].items():
            assert 0 <= mean <= 1 and sd >= 0, (layer, key)
        pairs = data["random_pair_distances"][layer]
        assert data["summary"][layer]["random"][0] == pytest.approx(float(pairs.mean()))
    # The batched pipeline agrees with an independent one-image-at-a-time recomputation.
    entries = {e.name: e for e in load_parts_csv(tiny_imagenet / "parts.csv")}
    for part in data["parts"]:
        expected = _one_at_a_time_delta(random_zf, tiny_prepared, [entries[n] for n in data["images"]], part,
                                        data["settings"]["crop_size"], SIGN_RTOL)
        assert data["summary"]["conv5"][part][0] == pytest.approx(expected, abs=1e-9)

    csv, md = tmp_path / "table1.csv", tmp_path / "table1.md"
    _run(configure_table1_parser, table1_command, ["--input", str(out), "--out-csv", str(csv), "--out-md", str(md)])
    table = pd.read_csv(csv)
    assert list(table["occlusion"]) == ["right eye", "left eye", "nose", "random"]
    assert list(table["paper_layer5_mean"]) == [0.067, 0.069, 0.079, 0.107]
    assert list(table["paper_layer7_sd"]) == [0.015, 0.013, 0.011, 0.014]
    assert table.loc[3, "ours_layer7_mean"] == pytest.approx(data["summary"]["fc7"]["random"][0], abs=1e-4)
    assert "Claim 8" in md.read_text() and "n91000001" in md.read_text()

    png = tmp_path / "fig8.png"
    assert cli_main(["plot", "fig8_correspondence", "--inputs", json.dumps({"data": str(out)}), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000
    drawn_figure(png)  # a real drawing (not blank) with its PDF

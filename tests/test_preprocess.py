"""Decoding and the paper's ten crops, checked against hand-computed values and torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from zfrepro.data.preprocess import (
    _gathered_crops,
    center_crop,
    crop_offsets,
    load_rgb,
    random_ten_crop,
    resize_center_crop,
    ten_crop_select,
    ten_crops,
)
from zfrepro.errors import DataError

from conftest_data import random_image, write_truncated_jpeg

# ----------------------------------------------------------------------------------------------- crops


def test_crop_offsets_hand_computed():
    assert crop_offsets(5, 3) == [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]
    assert crop_offsets(256, 224) == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    # odd margin: torchvision rounds (9 - 6) / 2 = 1.5 to 2
    assert crop_offsets(9, 6)[4] == (2, 2)
    with pytest.raises(ValueError):
        crop_offsets(4, 5)


def _arange_image() -> torch.Tensor:
    """One 3x4x4 image whose pixel (c, y, x) = 16c + 4y + x."""
    return torch.arange(48, dtype=torch.uint8).reshape(1, 3, 4, 4)


def test_ten_crops_hand_computed_on_arange_image():
    crops = ten_crops(_arange_image(), torch.zeros(3, 4, 4), 3)
    assert crops.shape == (1, 10, 3, 3, 3) and crops.dtype == torch.float32
    channel0 = crops[0, :, 0]
    assert channel0[0].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]  # top-left
    assert channel0[1].tolist() == [[1, 2, 3], [5, 6, 7], [9, 10, 11]]  # top-right
    assert channel0[2].tolist() == [[4, 5, 6], [8, 9, 10], [12, 13, 14]]  # bottom-left
    assert channel0[3].tolist() == [[5, 6, 7], [9, 10, 11], [13, 14, 15]]  # bottom-right
    # centre: torchvision rounds the margin (4 - 3) / 2 = 0.5 half-to-even, to 0
    assert channel0[4].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]
    # crops 5..9 are the five crops of the mirrored image: top-left of the mirror = mirrored top-right
    assert channel0[5].tolist() == [[3, 2, 1], [7, 6, 5], [11, 10, 9]]
    assert channel0[6].tolist() == [[2, 1, 0], [6, 5, 4], [10, 9, 8]]
    assert crops[0, 0, 2].tolist() == [[32, 33, 34], [36, 37, 38], [40, 41, 42]]  # channel 2, top-left


def test_mean_is_subtracted_at_full_size():
    images = _arange_image()
    mean = torch.full((3, 4, 4), 0.5)
    mean[:, 0, 0] = 10.0  # only crops covering pixel (0, 0) see this
    crops = ten_crops(images, mean, 3)
    assert crops[0, 0, 0, 0, 0].item() == 0 - 10.0
    assert crops[0, 6, 0, 0, 2].item() == 0 - 10.0  # mirrored top-right crop of the mirror holds (0, 0)
    assert crops[0, 3, 0, 0, 0].item() == 5 - 0.5


@pytest.mark.parametrize(("size", "crop"), [(9, 6), (10, 7), (96, 84), (32, 32)])
def test_ten_crops_matches_torchvision(size, crop):
    g = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8, generator=g)
    mean = torch.rand(3, size, size, generator=g) * 255
    ours = ten_crops(images, mean, crop)
    reference = TF.ten_crop(images.float() - mean, [crop, crop])
    assert torch.equal(ours, torch.stack(reference, dim=1))
    assert torch.equal(center_crop(images, mean, crop), TF.center_crop(images.float() - mean, [crop, crop]))


def test_random_ten_crop_reproducible_and_covers_all_crops():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (500, 3, 12, 12), dtype=torch.uint8, generator=g)
    mean = torch.rand(3, 12, 12, generator=g) * 255
    a = random_ten_crop(images, mean, 9, torch.Generator().manual_seed(7))
    b = random_ten_crop(images, mean, 9, torch.Generator().manual_seed(7))
    c = random_ten_crop(images, mean, 9, torch.Generator().manual_seed(8))
    assert a.shape == (500, 3, 9, 9) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    # every sample is exactly one of its ten crops, and all ten occur
    matches = (ten_crops(images, mean, 9) == a[:, None]).flatten(2).all(-1)  # [B, 10]
    assert torch.all(matches.sum(1) >= 1)
    chosen = matches.float().argmax(1)
    assert set(chosen.tolist()) == set(range(10))


def test_ten_crop_select_takes_the_given_crops():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (20, 3, 10, 10), dtype=torch.uint8, generator=g)
    mean = torch.rand(3, 10, 10, generator=g) * 255
    indices = torch.arange(20) % 10
    all_crops = ten_crops(images, mean, 7)
    assert torch.equal(ten_crop_select(images, mean, 7, indices), all_crops[torch.arange(20), indices])
    # the GPU's gather, run here on the CPU, gives the same crops as the CPU's slices
    shuffled = torch.randperm(20, generator=g) % 10
    assert torch.equal(_gathered_crops(images, mean, 7, shuffled), ten_crop_select(images, mean, 7, shuffled))
    # random_ten_crop draws its indices with randint(0, 10) from the generator
    drawn = torch.randint(0, 10, (20,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(
        random_ten_crop(images, mean, 7, torch.Generator().manual_seed(3)), all_crops[torch.arange(20), drawn]
    )
    with pytest.raises(ValueError):
        ten_crop_select(images, mean, 7, torch.full((20,), 10))
    with pytest.raises(ValueError):
        ten_crop_select(images, mean, 7, torch.zeros(3, dtype=torch.long))


def test_random_ten_crop_with_image_as_mean_is_zero():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    for i in range(4):
        out = random_ten_crop(images[i : i + 1], images[i].float(), 5, torch.Generator().manual_seed(i))
        assert torch.count_nonzero(out) == 0


def test_crop_shape_errors():
    with pytest.raises(ValueError):
        center_crop(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(3, 7, 7), 5)
    with pytest.raises(ValueError):
        ten_crops(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(3, 8, 8), 5)


# ----------------------------------------------------------------------------------------------- decoding


def test_load_rgb_modes(tmp_path):
    rng = np.random.default_rng(0)
    rgb = random_image(rng, 24, 18)

    grey = rgb.convert("L")
    grey.save(tmp_path / "grey.JPEG", format="JPEG")
    out = np.asarray(load_rgb(tmp_path / "grey.JPEG"))
    assert out.shape == (18, 24, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()

    rgb.convert("CMYK").save(tmp_path / "cmyk.JPEG", format="JPEG")
    out = load_rgb(tmp_path / "cmyk.JPEG")
    assert out.mode == "RGB"
    with Image.open(tmp_path / "cmyk.JPEG") as raw:
        assert raw.mode == "CMYK"
        assert np.array_equal(np.asarray(out), np.asarray(raw.convert("RGB")))
    assert np.abs(np.asarray(out).astype(int) - np.asarray(rgb).astype(int)).mean() < 12

    rgb.save(tmp_path / "png_inside.JPEG", format="PNG")  # ImageNet has one of these
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "png_inside.JPEG")), np.asarray(rgb))

    palette = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "palette.png")), np.asarray(palette.convert("RGB")))


def test_load_rgb_transparency_and_16_bit(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = np.asarray(load_rgb(tmp_path / "rgba.png"))
    assert out[0, 0].tolist() == [200, 0, 0] and out[3, 3].tolist() == [255, 255, 255]

    Image.fromarray(rgba, mode="RGBA").convert("LA").save(tmp_path / "la.png")
    assert load_rgb(tmp_path / "la.png").mode == "RGB"

    wide = np.array([[0, 257 * 10], [257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as raw:
        assert raw.mode.startswith("I")
    out = np.asarray(load_rgb(tmp_path / "grey16.png"))
    assert out[..., 0].tolist() == [[0, 10], [100, 255]] and (out[..., 2] == out[..., 0]).all()

    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bits.png")
    assert np.asarray(load_rgb(tmp_path / "bits.png"))[0].tolist() == [[255] * 3, [0] * 3]


def test_load_rgb_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(1)
    bad = write_truncated_jpeg(tmp_path / "truncated.JPEG", rng)
    with pytest.raises(DataError, match="truncated.JPEG"):
        load_rgb(bad)
    (tmp_path / "garbage.JPEG").write_bytes(b"this is not an image" * 10)
    with pytest.raises(DataError, match="garbage.JPEG"):
        load_rgb(tmp_path / "garbage.JPEG")
    (tmp_path / "empty.JPEG").write_bytes(b"")
    with pytest.raises(DataError, match="empty.JPEG"):
        load_rgb(tmp_path / "empty.JPEG")
    with pytest.raises(DataError, match="missing.JPEG"):
        load_rgb(tmp_path / "missing.JPEG")


@pytest.mark.parametrize("size_wh", [(40, 30), (30, 40), (16, 16), (9, 50)])
def test_resize_center_crop_matches_torchvision(tmp_path, size_wh):
    rng = np.random.default_rng(2)
    img = random_image(rng, *size_wh)
    out = resize_center_crop(img, 16)
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8
    reference = v2.Compose([v2.Resize(16, antialias=True), v2.CenterCrop(16), v2.PILToTensor()])(img)
    assert torch.equal(out, reference)

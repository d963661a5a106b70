"""Tests for zfrepro.analysis.mining: the streaming top-k against a brute-force sort of all activations, receptive
fields against hand-computed values and autograd, the light forward against forward_record, patches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from zfrepro.analysis.mining import (
    ReceptiveField,
    TopK,
    conv_outputs,
    crop_u8,
    cut_patch,
    cut_patches,
    load_images,
    mine_top9,
    patch_box,
    receptive_fields,
    rf_box,
)
from zfrepro.data.prepare import prepare_image_list
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError
from zfrepro.model.architectures import krizhevsky_spec, zf_spec
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import output_shapes

from conftest import TINY_DATA

SPECS = {"zf": zf_spec, "krizhevsky": krizhevsky_spec}
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def _model(arch: str, size: int, width: float, seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    model = ConvNet(SPECS[arch](num_classes=3, input_size=size, width=width))
    init_weights_(model, "kaiming", generator=torch.Generator().manual_seed(seed))
    for conv in model.conv_layers().values():  # nonzero biases, so maps differ in sparsity
        torch.nn.init.uniform_(conv.bias, -0.1, 0.2)
    return model.eval()


def _split(tmp_path, n: int, size: int = 72, seed: int = 0) -> PreparedSplit:
    """A cache-mode prepared split of random uint8 images."""
    gen = torch.Generator().manual_seed(seed)
    data = {"classes": ["a", "b"], "labels": torch.arange(n) % 2, "image_size": size,
            "images": torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)}
    path = tmp_path / f"split{n}.pt"
    torch.save(data, path)
    return PreparedSplit(path)


def _brute_topk(maps: torch.Tensor, image_ids: list[int], k: int) -> dict[str, list]:
    """The paper's words, slowly: sort every activation of a map (all images, all positions) descending,
    walk down taking an entry only if its image is not taken yet, until k. Ties: lower image, then position."""
    n, c, h, w = maps.shape
    out = {"value": [], "image": [], "y": [], "x": []}
    for ch in range(c):
        entries = [(float(maps[i, ch, y, x]), image_ids[i], y * w + x)
                   for i in range(n) for y in range(h) for x in range(w)]
        entries.sort(key=lambda e: (-e[0], e[1], e[2]))
        taken: list[tuple] = []
        for v, img, pos in entries:
            if all(img != t[1] for t in taken):
                taken.append((v, img, pos))
            if len(taken) == k:
                break
        taken += [(-math.inf, -1, None)] * (k - len(taken))
        out["value"].append([t[0] for t in taken])
        out["image"].append([t[1] for t in taken])
        out["y"].append([-1 if t[2] is None else t[2] // w for t in taken])
        out["x"].append([-1 if t[2] is None else t[2] % w for t in taken])
    return out


def _assert_matches(got: dict[str, torch.Tensor], ref: dict[str, list]) -> None:
    for key in ("image", "y", "x"):
        assert got[key].tolist() == ref[key], key
    torch.testing.assert_close(got["value"], torch.tensor(ref["value"]), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- top-k


def test_topk_streaming_equals_brute_force_on_random_maps():
    gen = torch.Generator().manual_seed(1)
    sizes = [7, 1, 12, 5]  # uneven batches, one of a single image
    maps = {"a": torch.randn(sum(sizes), 4, 5, 6, generator=gen), "b": torch.randn(sum(sizes), 3, 2, 2, generator=gen)}
    ids = torch.randperm(100, generator=gen)[: sum(sizes)]  # arbitrary, non-contiguous image ids
    top = TopK({"a": 4, "b": 3}, k=9)
    start = 0
    for b in sizes:
        top.update({name: m[start : start + b] for name, m in maps.items()}, ids[start : start + b])
        start += b
    result = top.result()
    for name, m in maps.items():
        # the reference breaks ties by image id; with continuous data there are none
        _assert_matches(result[name], _brute_topk(m, ids.tolist(), 9))
        assert result[name]["image"].dtype == torch.int64


def test_topk_images_are_distinct_even_when_one_image_dominates():
    maps = torch.zeros(6, 2, 4, 4)
    maps[0] = 100.0 + torch.arange(32.0).view(2, 4, 4)  # image 0 holds every large value
    maps[1:, :, 0, 0] = torch.arange(1.0, 6.0)[:, None]
    top = TopK({"L": 2}, k=3)
    top.update({"L": maps[:3]}, torch.arange(3))
    top.update({"L": maps[3:]}, torch.arange(3, 6))
    r = top.result()["L"]
    assert r["image"].tolist() == [[0, 5, 4], [0, 5, 4]]
    assert r["value"][:, 0].tolist() == [115.0, 131.0]  # image 0's max, at its last position
    assert r["y"][:, 0].tolist() == [3, 3] and r["x"][:, 0].tolist() == [3, 3]


def test_topk_k_larger_than_images_fills_minus_one():
    top = TopK({"L": 3}, k=9)
    maps = torch.rand(5, 3, 2, 2)
    top.update({"L": maps}, torch.tensor([4, 3, 2, 1, 0]))
    r = top.result()["L"]
    assert r["image"].shape == (3, 9)
    assert (r["image"][:, 5:] == -1).all() and (r["y"][:, 5:] == -1).all() and (r["x"][:, 5:] == -1).all()
    assert torch.isinf(r["value"][:, 5:]).all() and (r["value"][:, 5:] < 0).all()
    assert all(sorted(row) == [0, 1, 2, 3, 4] for row in r["image"][:, :5].tolist())
    assert (r["value"][:, :5].diff(dim=1) <= 0).all()


def test_topk_rejects_bad_input():
    with pytest.raises(ConfigError):
        TopK({"L": 2}, k=0)
    top = TopK({"L": 2}, k=2)
    with pytest.raises(ValueError):
        top.update_layer("L", torch.rand(3, 5, 2, 2), torch.arange(3))  # 5 maps, not 2
    with pytest.raises(ValueError):
        top.result()  # nothing seen


# ---------------------------------------------------------------------------------------------- light forward


@pytest.mark.parametrize("arch", ["zf", "krizhevsky"])
def test_conv_outputs_equal_forward_record_and_stop_early(arch):
    model = _model(arch, 64, 1 / 16)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        _, rec = model.forward_record(x)
        outs = conv_outputs(model, x)
    assert list(outs) == list(LAYERS)
    for name in LAYERS:
        assert torch.equal(outs[name], rec.outputs[name]), name
    called = []
    hook = model.conv3.register_forward_hook(lambda *_: called.append(1))
    with torch.no_grad():
        part = conv_outputs(model, x, ("conv2", "conv1"))
    hook.remove()
    assert list(part) == ["conv1", "conv2"] and not called
    with pytest.raises(ConfigError):
        conv_outputs(model, x, ("conv9",))


# ---------------------------------------------------------------------------------------------- the pass


def test_mine_top9_equals_brute_force_on_a_tiny_model(tmp_path):
    split = _split(tmp_path, 23)
    mean = torch.full((3, 72, 72), 120.0)
    model = _model("zf", 64, 1 / 32)
    model.train()
    mined = mine_top9(model, split, mean, 64, batch_size=5, k=9)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        _, rec = model.forward_record(center_crop(split.data["images"], mean, 64))
    for name in LAYERS:
        _assert_matches(mined[name], _brute_topk(rec.outputs[name], list(range(23)), 9))
        images = mined[name]["image"]
        assert all(len(set(row)) == 9 for row in images.tolist())  # 9 distinct images per map
    assert mined["indices"].tolist() == list(range(23))
    assert mined["split_path"] == str(split.path)


def test_mine_top9_batch_of_one_equals_one_batch(tmp_path):
    """The streaming pass holds one batch: batches of 1 image and all images at once give the same top-k."""
    split = _split(tmp_path, 19, seed=3)
    mean = torch.full((3, 72, 72), 110.0)
    model = _model("zf", 64, 1 / 32, seed=2)
    one = mine_top9(model, split, mean, 64, batch_size=1, k=9)
    whole = mine_top9(model, split, mean, 64, batch_size=len(split), k=9)
    for name in LAYERS:
        for key in ("image", "y", "x"):
            assert torch.equal(one[name][key], whole[name][key]), (name, key)
        # float sums of a batch of 1 and of 19 may differ in the last bits (different conv kernels)
        torch.testing.assert_close(one[name]["value"], whole[name]["value"], rtol=1e-4, atol=1e-5)


def test_mine_top9_subset_layers_and_k_beyond_images(tmp_path):
    split = _split(tmp_path, 30)
    mean = torch.zeros(3, 72, 72)
    model = _model("krizhevsky", 64, 1 / 32)
    mined = mine_top9(model, split, mean, 64, layers=("conv2", "conv5"), k=12, batch_size=4, max_images=7)
    assert {"conv2", "conv5"} <= set(mined) and "conv1" not in mined
    chosen = set(mined["indices"].tolist())
    assert len(chosen) == 7
    for name in ("conv2", "conv5"):
        r = mined[name]
        assert (r["image"][:, 7:] == -1).all()
        assert all(set(row) == chosen for row in r["image"][:, :7].tolist())
    explicit = mine_top9(model, split, mean, 64, layers=("conv5",), k=3, indices=mined["indices"])
    assert torch.equal(explicit["conv5"]["image"], mined["conv5"]["image"][:, :3])


def test_mine_top9_rejects_bad_config(tmp_path):
    split = _split(tmp_path, 3)
    model = _model("zf", 64, 1 / 32)
    mean = torch.zeros(3, 72, 72)
    with pytest.raises(ConfigError):
        mine_top9(model, split, mean, 64, layers=("conv6",))
    with pytest.raises(ConfigError):
        mine_top9(model, split, mean, 56)


# ---------------------------------------------------------------------------------------------- receptive fields


def test_receptive_fields_hand_computed():
    zf = receptive_fields(zf_spec(10, 224))
    assert [(zf[n].size, zf[n].jump, zf[n].first) for n in LAYERS] == [
        (11, 4, -1), (43, 16, -1), (75, 16, -17), (107, 16, -33), (171, 32, -49)]
    kr = receptive_fields(krizhevsky_spec(10, 224))
    # AlexNet's pool5 receptive field is the well-known 195 pixels, jump 32
    assert [(kr[n].size, kr[n].jump) for n in LAYERS] == [(19, 8), (67, 16), (99, 16), (131, 16), (195, 32)]
    assert patch_box(zf["conv1"], 0, 0, 224) == (0, 0, 10, 10)
    assert patch_box(zf["conv1"], 10, 20, 224) == (39, 79, 50, 90)


def _nonzero_box(grad: torch.Tensor) -> tuple[int, int, int, int]:
    rows = grad.any(1).nonzero().flatten()
    cols = grad.any(0).nonzero().flatten()
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def _units(h: int, w: int) -> list[tuple[int, int]]:
    return [(0, 0), (h // 2, w // 2), (h - 1, w - 1), (0, w - 1)]


@pytest.mark.parametrize("size", [84, 224])
@pytest.mark.parametrize("arch", ["zf", "krizhevsky"])
def test_receptive_fields_equal_autograd_support_of_a_linear_twin(arch, size):
    """Every conv a ones filter, every max pool an average pool of the same geometry: d unit / d input is
    then nonzero exactly on the (clipped) receptive field."""
    spec = SPECS[arch](3, size)
    rfs, shapes = receptive_fields(spec), output_shapes(spec)
    inp = torch.ones(1, 1, size, size, requires_grad=True)
    h, outs = inp, {}
    for c in spec.convs:
        h = F.conv2d(h, torch.ones(1, 1, c.kernel, c.kernel), stride=c.stride, padding=c.padding)
        if c.pool is not None:
            p = c.pool
            h = F.avg_pool2d(h, p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode)
        outs[c.name] = h
    for name, out in outs.items():
        assert out.shape[-2:] == shapes[name][1:]
        for y, x in _units(*out.shape[-2:]):
            (grad,) = torch.autograd.grad(out[0, 0, y, x], inp, retain_graph=True)
            support = grad[0, 0] != 0
            box = patch_box(rfs[name], y, x, size)
            assert _nonzero_box(support) == box, (name, y, x)
            assert int(support.sum()) == (box[2] - box[0]) * (box[3] - box[1])


@pytest.mark.parametrize("size", [84, 224])
@pytest.mark.parametrize("arch", ["zf", "krizhevsky"])
def test_receptive_fields_bound_the_real_models_gradient(arch, size):
    """The real model (max pooling, ReLU, LRN, random signed weights): over a batch of random images the
    input-gradient of one unit stays inside patch_box, and for a centre unit reaches all its sides."""
    model = _model(arch, size, 1 / 16)
    rfs = receptive_fields(model.spec)
    x = torch.randn(32, 3, size, size, generator=torch.Generator().manual_seed(0), requires_grad=True)
    _, rec = model.forward_record(x)
    for name in LAYERS:
        out = rec.outputs[name]
        for y, xx in _units(*out.shape[-2:]):
            ch = int((out[:, :, y, xx] > 0).sum(0).argmax())  # the map most often alive there
            # one unit per image; images are independent, so the gradient of the sum is each image's own
            (grad,) = torch.autograd.grad(out[:, ch, y, xx].sum(), x, retain_graph=True)
            support = (grad != 0).any(0).any(0)  # union over images and colour channels
            top, left, bottom, right = patch_box(rfs[name], y, xx, size)
            inside = torch.zeros_like(support)
            inside[top:bottom, left:right] = True
            assert support.any() and not (support & ~inside).any(), (name, y, xx)
            if (y, xx) == (out.shape[-2] // 2, out.shape[-1] // 2):
                assert _nonzero_box(support) == (top, left, bottom, right), name


# ---------------------------------------------------------------------------------------------- patches


def test_cut_patch_pads_at_borders_to_the_full_field():
    rf = ReceptiveField(size=5, jump=2, start=1.0)  # unit 0 covers -1..3
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 8, 8) + 1
    corner = cut_patch(image, rf, 0, 0, fill=-7)
    assert corner.shape == (2, 5, 5)
    assert (corner[:, 0, :] == -7).all() and (corner[:, :, 0] == -7).all()
    assert torch.equal(corner[:, 1:, 1:], image[:, 0:4, 0:4])
    inner = cut_patch(image, rf, 1, 2)
    assert torch.equal(inner, image[:, 1:6, 3:8])
    far = cut_patch(image, rf, 3, 3)  # rows/cols 5..9: two past the edge
    assert torch.equal(far[:, :3, :3], image[:, 5:8, 5:8]) and (far[:, 3:, :] == 0).all()
    small = cut_patch(image, rf, 1, 2, size=3)  # the central 3x3 of the field
    assert torch.equal(small, image[:, 2:5, 4:7])
    assert rf_box(rf, 1, 2, 3) == (2, 4, 5, 7)
    u8 = image.to(torch.uint8)
    batch = cut_patches(torch.stack([u8, u8]), rf, torch.tensor([0, 1]), torch.tensor([0, 2]), fill=128)
    assert batch.dtype == torch.uint8 and batch.shape == (2, 2, 5, 5)
    assert (batch[0, :, 0] == 128).all() and torch.equal(batch[1], inner.to(torch.uint8))


def test_patches_of_a_layer_have_one_size_and_match_patch_box():
    spec = zf_spec(3, 84)
    rf = receptive_fields(spec)["conv2"]
    image = torch.rand(3, 84, 84)
    for y, x in [(0, 0), (1, 2), (3, 3)]:
        patch = cut_patch(image, rf, y, x)
        assert patch.shape == (3, rf.size, rf.size)
        top, left, bottom, right = patch_box(rf, y, x, 84)
        ftop, fleft, _, _ = rf_box(rf, y, x)
        inner = patch[:, top - ftop : bottom - ftop, left - fleft : right - fleft]
        assert torch.equal(inner, image[:, top:bottom, left:right])


# ---------------------------------------------------------------------------------------------- images


def test_load_images_in_memory_and_crop(tmp_path):
    split = _split(tmp_path, 6)
    got = load_images(split, torch.tensor([4, 0, 4]))
    assert torch.equal(got, split.data["images"][[4, 0, 4]])
    assert load_images(split, []).shape == (0, 3, 72, 72)
    with pytest.raises(ValueError):
        load_images(split, [0, -1])
    mean = torch.zeros(3, 72, 72)
    assert torch.equal(crop_u8(got, 64).float(), center_crop(got, mean, 64))


def test_load_images_stream_mode(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    params = {**TINY_DATA, "image_size": 40, "crop_size": 32, "cache": "stream", "shard_format": "raw"}
    prepare_image_list(paths, [0, 0, 0], ["a"], tmp_path / "stream.pt", params, threads=1)
    split = PreparedSplit(tmp_path / "stream.pt")
    assert not split.in_memory
    got = load_images(split, [2, 0])
    expected = torch.stack([torch.from_numpy(np.array(Image.open(paths[i]))).permute(2, 0, 1) for i in (2, 0)])
    assert torch.equal(got, expected)

"""zfrepro.transfer.features: frozen features against a forward pass done by hand, the pooling grid against
torch's adaptive bins, stream and memory splits alike, and the `features` command."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zfrepro.commands.transfer import configure_features_parser, features_command
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError
from zfrepro.transfer.features import extract_features, layer_features, pool_grid, save_features
from zfrepro.transfer.prepare import prepare_transfer

from conftest import TINY_DATA, run_command

STREAM = dict(TINY_DATA, cache="stream", shard_format="raw")  # raw: the same pixels as memory

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _adaptive_by_hand(x: torch.Tensor, g: int) -> torch.Tensor:
    """Average pooling over torch's adaptive bins [floor(i*H/g), ceil((i+1)*H/g)), one bin at a time."""
    h, w = x.shape[-2:]
    out = torch.empty((*x.shape[:-2], g, g), dtype=x.dtype)
    for i in range(g):
        for j in range(g):
            rows = slice(i * h // g, math.ceil((i + 1) * h / g))
            cols = slice(j * w // g, math.ceil((j + 1) * w / g))
            out[..., i, j] = x[..., rows, cols].mean(dim=(-2, -1))
    return out


def test_pool_grid_is_the_largest_that_fits_and_pooling_matches_the_bins():
    for shape, cap in (((12, 15, 15), 300), ((48, 3, 3), 300), ((96, 110, 110), 9216), ((256, 13, 13), 9216)):
        c, h, w = shape
        if c * h * w <= cap:
            assert pool_grid(shape, cap) is None
        else:
            assert pool_grid(shape, cap) == max(g for g in range(1, h + 1) if c * g * g <= cap)
    assert pool_grid((96, 110, 110), 9216) == 9 and pool_grid((256, 6, 6), 9216) is None
    assert pool_grid((4096,), 100) is None  # fc outputs are never pooled
    with pytest.raises(ConfigError, match="transfer.max_feature_dim"):
        pool_grid((20, 4, 4), 10)
    x = torch.randn(2, 3, 7, 7)
    for g in (1, 2, 3, 5):
        expected = _adaptive_by_hand(x, g).flatten(1)
        torch.testing.assert_close(layer_features(x, g), expected)
        torch.testing.assert_close(F.adaptive_avg_pool2d(x, g).flatten(1), expected)
    assert torch.equal(layer_features(x, None), x.flatten(1))


def test_features_equal_a_forward_pass_done_by_hand(prepared_caltech101, random_zf_files, tmp_path):
    model_path, mean_path, model = random_zf_files
    split = PreparedSplit(prepared_caltech101 / "all.pt")
    result = extract_features(model_path, prepared_caltech101 / "all.pt", mean_path, ["conv1", "conv2", "conv3", "fc7"],
                              max_feature_dim=300, batch_size=7, device="cpu")
    assert [result[k]["map_shape"] for k in result] == [[12, 15, 15], [32, 3, 3], [48, 3, 3], [512]]
    assert [result[k]["grid"] for k in result] == [5, None, 2, None]  # 12*5*5 = 300; 48*2*2 = 192 <= 300 < 432
    assert [result[k]["features"].shape[1] for k in result] == [300, 288, 192, 512]
    mean = torch.load(mean_path, weights_only=True)
    for i in (0, len(split) - 1):
        x = center_crop(split.data["images"][i:i + 1], mean, 64)
        with torch.no_grad():
            _, rec = model.forward_record(x)
            h = rec.outputs["conv5"].flatten(1)
            fc6 = torch.relu(h @ model.fc6.weight.T + model.fc6.bias)
            fc7 = torch.relu(fc6 @ model.fc7.weight.T + model.fc7.bias)
        expected = {"conv1": rec.outputs["conv1"].reshape(12, 5, 3, 5, 3).mean((2, 4)).flatten(),  # 3x3 blocks
                    "conv2": rec.outputs["conv2"].flatten(),
                    "conv3": _adaptive_by_hand(rec.outputs["conv3"], 2).flatten(), "fc7": fc7[0]}
        for layer, value in expected.items():
            got = result[layer]["features"][i]
            assert got.dtype == torch.float16
            torch.testing.assert_close(got.float(), value, rtol=2e-3, atol=1e-3 * float(value.abs().max()))
    paths = save_features(result, tmp_path)
    saved = torch.load(tmp_path / "fc7.pt", weights_only=True)
    assert paths[-1] == tmp_path / "fc7.pt" and torch.equal(saved["labels"], split.labels)
    assert saved["layer"] == "fc7" and saved["split"] == "all" and saved["model"] == str(model_path)
    assert saved["grid"] is None and saved["map_shape"] == [512]


def test_features_from_a_stream_split_equal_the_memory_ones_and_bad_layers_are_named(
        transfer_roots, prepared_caltech101, random_zf_files, tmp_path):
    model_path, mean_path, _ = random_zf_files
    prepare_transfer("caltech101", transfer_roots["caltech101"], tmp_path, STREAM, threads=1)
    args = (model_path, None, mean_path, ["conv5"], 9216, 16, "cpu")
    memory = extract_features(*args[:1], prepared_caltech101 / "all.pt", *args[2:])["conv5"]
    stream = extract_features(*args[:1], tmp_path / "all.pt", *args[2:], workers=1)["conv5"]
    assert torch.equal(memory["features"], stream["features"])
    with pytest.raises(ConfigError, match=r"transfer\.table7_layers.*'fc7'"):
        extract_features(model_path, prepared_caltech101 / "all.pt", mean_path, ["conv9"], 9216, 16, "cpu")


def test_features_command_writes_one_file_per_layer(prepared_caltech101, random_zf_files, tmp_path, capsys):
    model_path, mean_path, model = random_zf_files
    run_command(configure_features_parser, features_command,
                ["--model", str(model_path), "--split-file", str(prepared_caltech101 / "all.pt"), "--mean",
                 str(mean_path), "--layers", '["conv2", "fc6"]', "--max-feature-dim", "100", "--batch-size", "8",
                 "--device", "cpu", "--out-dir", str(tmp_path / "features")])
    conv2 = torch.load(tmp_path / "features" / "conv2.pt", weights_only=True)
    assert conv2["grid"] == 1 and conv2["features"].shape[1] == 32  # 32*2*2 = 128 > 100
    # fc6 (512 units at width 0.125, unpooled): one row per image of the split, in its order, with its labels.
    fc6 = torch.load(tmp_path / "features" / "fc6.pt", weights_only=True)
    split = PreparedSplit(prepared_caltech101 / "all.pt")
    assert fc6["features"].shape == (len(split), model.spec.fcs[0].units) == (len(split), 512)
    assert torch.equal(fc6["labels"], split.labels) and fc6["classes"] == split.classes
    x = center_crop(split.data["images"], torch.load(mean_path, weights_only=True), 64)
    with torch.no_grad():
        by_hand = model.forward_record(x)[1].outputs["fc6"]
    torch.testing.assert_close(fc6["features"].float(), by_hand, rtol=2e-3, atol=1e-3 * float(by_hand.abs().max()))
    assert "conv2: map [32, 3, 3] grid 1" in capsys.readouterr().out


def test_features_batch_of_one_equal_one_batch_and_fill_one_buffer(prepared_caltech101, random_zf_files):
    """Features are written into one preallocated [N, D] tensor per layer, batch by batch: batches of 1
    (and of a size that does not divide N) give what one batch of all images gives, and each layer's tensor
    owns exactly its N x D values (no concatenated copies kept alive)."""
    model_path, mean_path, _ = random_zf_files
    split_path = prepared_caltech101 / "all.pt"
    n = len(PreparedSplit(split_path))
    args = (model_path, split_path, mean_path, ["conv2", "fc7"], 300)
    whole = extract_features(*args, batch_size=n, device="cpu")
    for batch_size in (1, 7):
        part = extract_features(*args, batch_size=batch_size, device="cpu")
        for layer in ("conv2", "fc7"):
            # a batch of 1 and one of N may take different conv kernels: float32 sums differ in the last bits,
            # which float16 rounding mostly hides
            torch.testing.assert_close(part[layer]["features"], whole[layer]["features"], rtol=2e-3, atol=2e-3)
    for layer in ("conv2", "fc7"):
        features = whole[layer]["features"]
        assert features.shape[0] == n and features.is_contiguous()
        assert features.untyped_storage().nbytes() == features.numel() * features.element_size()

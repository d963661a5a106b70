"""Transfer data (section 5): prepared Caltech/VOC splits against the files on disk and the XML, random splits
against their rule, features against a forward pass done by hand, scratch-training folders against indexing."""

from __future__ import annotations

import argparse
import json
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zfrepro.data.datasets import VOC_CLASSES
from zfrepro.data.preprocess import center_crop, load_rgb, resize_center_crop_array
from zfrepro.data.splits import PreparedSplit
from zfrepro.data.synthetic import generate
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.checkpoint import load_model
from zfrepro.model.network import ConvNet, init_weights_, spec_from_config, spec_to_dict
from zfrepro.model.train import TrainConfig, train
from zfrepro.transfer.classifiers import score_scratch
from zfrepro.transfer.features import (
    configure_features_parser,
    extract_features,
    features_command,
    layer_features,
    pool_grid,
    save_features,
)
from zfrepro.transfer.prepare import configure_prepare_transfer_parser, prepare_transfer, prepare_transfer_command
from zfrepro.transfer.scratch import configure_scratch_parser, scratch_command, write_scratch_data
from zfrepro.transfer.splits import configure_transfer_splits_parser, make_splits, transfer_splits_command

from conftest import TINY_ARCHS, TINY_DATA
from conftest_data import make_voc, write_truncated_jpeg

CALTECH_PARAMS = {"image_size": 64, "classes": 3, "min_per_class": 8, "max_per_class": 10}
DATA = dict(TINY_DATA, cache="memory")
STREAM = dict(TINY_DATA, cache="stream")


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids thread start-up and contention costs on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Generated Caltech-101, Caltech-256 and VOC 2012 folders in the real layouts."""
    base = tmp_path_factory.mktemp("transfer_synthetic")
    params = {"caltech101": {**CALTECH_PARAMS, "background_images": 3},
              "caltech256": {**CALTECH_PARAMS, "clutter_images": 4},
              "voc": {"image_size": 64, "train_images": 6, "val_images": 5, "max_objects": 2}}
    for dataset, p in params.items():
        generate(dataset, base / dataset, p, seed=0, workers=1)
    return {d: base / d for d in params}


@pytest.fixture(scope="module")
def prepared101(roots, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "caltech101"
    prepare_transfer("caltech101", roots["caltech101"], out, DATA, threads=1)
    return out


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> tuple[Path, Path, ConvNet]:
    """A tiny random ZF checkpoint in train.snapshot's format (64 px crops) and a 72 px mean image."""
    out = tmp_path_factory.mktemp("model")
    spec = spec_from_config("zf", TINY_ARCHS["zf"], num_classes=5, input_size=64)
    model = init_weights_(ConvNet(spec), "gaussian", std=0.05, generator=torch.Generator().manual_seed(0)).eval()
    ckpt = {"arch": "zf", "spec": spec_to_dict(spec), "model": model.state_dict(), "epoch": 1,
            "classes": [f"c{i}" for i in range(5)], "crop_size": 64, "seed": 0, "training": {}}
    torch.save(ckpt, out / "final.pt")
    mean = 100 + 40 * torch.rand((3, 72, 72), generator=torch.Generator().manual_seed(1))
    torch.save(mean, out / "mean.pt")
    return out / "final.pt", out / "mean.pt", model


def _decode(path: Path, size: int = 72) -> torch.Tensor:
    return torch.from_numpy(resize_center_crop_array(load_rgb(path), size))


def _caltech101_files(root: Path, background: bool) -> tuple[list[str], list[list[Path]]]:
    """Class folders (sorted, as torchvision lists them) and their image files, numbered 1..n."""
    base = root / "caltech101" / "101_ObjectCategories"
    names = sorted(n for n in os.listdir(base) if n != "BACKGROUND_Google")
    if background:
        names.append("BACKGROUND_Google")
    files = [[base / n / f"image_{k + 1:04d}.jpg" for k in range(len(os.listdir(base / n)))] for n in names]
    return names, files


# ---------------------------------------------------------------------------------------------- preparation


def test_caltech101_matches_the_files_and_background_adds_the_last_class(roots, prepared101, tmp_path):
    names, files = _caltech101_files(roots["caltech101"], background=False)
    data = torch.load(prepared101 / "all.pt", weights_only=True)
    manifest = json.loads((prepared101 / "manifest.json").read_text())
    assert data["classes"] == names == manifest["classes"]
    assert data["labels"].tolist() == [c for c, f in enumerate(files) for _ in f]
    assert manifest["counts"] == {"all": sum(map(len, files))} and manifest["background"] is False
    assert manifest["mode"] == {"all": "memory"} and manifest["skipped"] == {"all": []}
    assert (manifest["image_size"], manifest["crop_size"]) == (72, 64)
    flat = [p for f in files for p in f]
    assert torch.equal(data["images"], torch.stack([_decode(p) for p in flat]))

    with_bg = prepare_transfer("caltech101", roots["caltech101"], tmp_path / "bg", STREAM, threads=1,
                               background=True)
    names_bg, files_bg = _caltech101_files(roots["caltech101"], background=True)
    assert with_bg["classes"] == names_bg and names_bg[-1] == "BACKGROUND_Google"
    assert with_bg["counts"]["all"] == sum(map(len, files)) + 3 and with_bg["background"] is True
    stream = torch.load(tmp_path / "bg" / "all.pt", weights_only=True)
    assert stream["paths"] == [os.path.abspath(p) for f in files_bg for p in f] and "images" not in stream
    assert stream["labels"].tolist() == [c for c, f in enumerate(files_bg) for _ in f]


def test_caltech256_drops_or_keeps_the_clutter_class(roots, tmp_path):
    base = roots["caltech256"] / "caltech256" / "256_ObjectCategories"
    folders = sorted(os.listdir(base))
    counts = [len(os.listdir(base / f)) for f in folders]
    assert folders[-1].endswith(".clutter") and counts[-1] == 4
    plain = prepare_transfer("caltech256", roots["caltech256"], tmp_path / "plain", DATA, threads=1)
    clutter = prepare_transfer("caltech256", roots["caltech256"], tmp_path / "clutter", DATA, threads=1,
                               background=True)
    assert plain["classes"] == folders[:-1] and clutter["classes"] == folders
    assert plain["counts"]["all"] == sum(counts[:-1]) and clutter["counts"]["all"] == sum(counts)
    labels = torch.load(tmp_path / "clutter" / "all.pt", weights_only=True)["labels"]
    assert torch.bincount(labels).tolist() == counts


def _xml_labels(path: Path) -> tuple[list[int], list[bool]]:
    """Multi-hot presence and "all objects difficult" per class, read straight from the annotation."""
    present, easy = [0] * 20, [False] * 20
    for obj in ET.parse(path).getroot().iter("object"):
        c = VOC_CLASSES.index(obj.find("name").text.strip())
        present[c] = 1
        easy[c] = easy[c] or obj.find("difficult").text.strip() == "0"
    return present, [bool(p and not e) for p, e in zip(present, easy, strict=True)]


def test_voc_labels_match_the_xml_files(roots, tmp_path):
    manifest = prepare_transfer("voc", roots["voc"], tmp_path, DATA, threads=1)
    base = roots["voc"] / "VOCdevkit" / "VOC2012"
    assert manifest["classes"] == list(VOC_CLASSES) and "background" not in manifest
    for split in ("train", "val"):
        ids = (base / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        data = torch.load(tmp_path / f"{split}.pt", weights_only=True)
        parsed = [_xml_labels(base / "Annotations" / f"{i}.xml") for i in ids]
        assert data["labels"].tolist() == [p for p, _ in parsed] and data["labels"].shape == (len(ids), 20)
        assert data["difficult_only"].tolist() == [d for _, d in parsed]
        assert manifest["counts"][split] == len(ids)
        assert torch.equal(data["images"], torch.stack([_decode(base / "JPEGImages" / f"{i}.jpg") for i in ids]))


def test_voc_unreadable_image_is_dropped_with_its_label_rows(tmp_path):
    images = {"a": [("cat", False)], "b": [("dog", True), ("cat", False)], "c": [("dog", True)],
              "d": [("person", False), ("dog", False)]}
    root = make_voc(tmp_path / "voc", images, {"train": ["a", "b", "c", "d"], "val": ["a"]})
    bad = root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "b.jpg"
    write_truncated_jpeg(bad, np.random.default_rng(0))
    manifest = prepare_transfer("voc", root, tmp_path / "out", {**DATA, "max_bad_fraction": 0.5}, threads=1)
    assert manifest["skipped"] == {"train": [str(bad)], "val": []} and manifest["counts"]["train"] == 3
    data = torch.load(tmp_path / "out" / "train.pt", weights_only=True)
    cat, dog, person = (VOC_CLASSES.index(n) for n in ("cat", "dog", "person"))
    expect_labels, expect_difficult = torch.zeros(3, 20, dtype=torch.int64), torch.zeros(3, 20, dtype=torch.bool)
    expect_labels[0, cat] = expect_labels[1, dog] = expect_labels[2, person] = expect_labels[2, dog] = 1
    expect_difficult[1, dog] = True  # c: its only dog is difficult; d's dog is not
    assert torch.equal(data["labels"], expect_labels) and torch.equal(data["difficult_only"], expect_difficult)
    with pytest.raises(DataError, match="max_bad_fraction"):
        prepare_transfer("voc", root, tmp_path / "strict", DATA, threads=1)
    with pytest.raises(ConfigError, match="caltech101"):
        prepare_transfer("imagenet", root, tmp_path / "x", DATA, threads=1)


# ---------------------------------------------------------------------------------------------- splits


def test_make_splits_on_a_tiny_label_vector_follows_the_rule():
    labels = [1, 0, 1, 0, 0, 1, 1, 0]  # class 0 at 1, 3, 4, 7; class 1 at 0, 2, 5, 6
    out = make_splits(labels, ["a", "b"], [2, 1], 2, 1, seed=7, key="transfer.caltech101.train_sizes")
    assert out["sizes"] == [1, 2] and out["classes"] == ["a", "b"] and out["test_per_class"] == 1
    members = {0: np.array([1, 3, 4, 7]), 1: np.array([0, 2, 5, 6])}
    for s, split in enumerate(out["splits"]):
        perm = {c: m[np.random.default_rng([7, s, c]).permutation(4)] for c, m in members.items()}
        assert split["train"]["1"] == sorted([perm[0][0], perm[1][0]])
        assert split["train"]["2"] == sorted([*perm[0][:2], *perm[1][:2]])
        assert split["test"] == sorted([perm[0][2], perm[1][2]])
    assert json.loads(json.dumps(out)) == out


def test_make_splits_are_nested_disjoint_balanced_and_deterministic():
    rng = np.random.default_rng(3)
    counts = [12, 20, 15, 30, 11]
    labels = rng.permutation(np.repeat(np.arange(5), counts))
    sizes, test = [2, 5, 10], 8
    out = make_splits(torch.as_tensor(labels), list("abcde"), sizes, 3, test, seed=1, key="k")
    assert out == make_splits(labels.tolist(), list("abcde"), sizes, 3, test, seed=1, key="k")
    assert out != make_splits(labels, list("abcde"), sizes, 3, test, seed=2, key="k")
    for split in out["splits"]:
        trains = [set(split["train"][str(n)]) for n in sizes]
        assert trains[0] < trains[1] < trains[2]
        assert not trains[2] & set(split["test"])
        for n, t in zip(sizes, trains, strict=True):
            assert np.bincount(labels[sorted(t)], minlength=5).tolist() == [n] * 5
        assert np.bincount(labels[split["test"]], minlength=5).tolist() == [min(test, c - 10) for c in counts]
    assert out["splits"][0]["test"] != out["splits"][1]["test"]


def test_make_splits_errors_name_the_key_and_the_short_class():
    labels = [0] * 5 + [1] * 3
    with pytest.raises(ConfigError, match=r"transfer\.fig9_sizes: class 'b' has 3 images"):
        make_splits(labels, ["a", "b"], [1, 3], 1, 1, seed=0, key="transfer.fig9_sizes")
    make_splits(labels, ["a", "b"], [1, 2], 1, 1, seed=0, key="transfer.fig9_sizes")  # 3 > 2: fine
    with pytest.raises(ConfigError, match=r"transfer\.caltech101\.train_sizes"):
        make_splits(labels, ["a", "b"], [0], 1, 1, seed=0, key="transfer.caltech101.train_sizes")
    with pytest.raises(ConfigError, match=r"transfer\.caltech101\.test_per_class"):
        make_splits(labels, ["a", "b"], [1], 1, 0, seed=0, key="transfer.caltech101.train_sizes")


# ---------------------------------------------------------------------------------------------- features


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


def test_features_equal_a_forward_pass_done_by_hand(prepared101, model_files, tmp_path):
    model_path, mean_path, model = model_files
    split = PreparedSplit(prepared101 / "all.pt")
    result = extract_features(model_path, prepared101 / "all.pt", mean_path, ["conv1", "conv2", "conv3", "fc7"],
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
        roots, prepared101, model_files, tmp_path):
    model_path, mean_path, _ = model_files
    prepare_transfer("caltech101", roots["caltech101"], tmp_path, STREAM, threads=1)
    args = (model_path, None, mean_path, ["conv5"], 9216, 16, "cpu")
    memory = extract_features(*args[:1], prepared101 / "all.pt", *args[2:])["conv5"]
    stream = extract_features(*args[:1], tmp_path / "all.pt", *args[2:], workers=1)["conv5"]
    assert torch.equal(memory["features"], stream["features"])
    with pytest.raises(ConfigError, match=r"transfer\.table7_layers.*'fc7'"):
        extract_features(model_path, prepared101 / "all.pt", mean_path, ["conv9"], 9216, 16, "cpu")


# ---------------------------------------------------------------------------------------------- scratch data


def test_scratch_data_is_the_parent_indexed_and_the_trainer_runs_on_it(prepared101, tmp_path):
    parent = torch.load(prepared101 / "all.pt", weights_only=True)
    splits = make_splits(parent["labels"], parent["classes"], [2, 4], 2, 3, seed=0, key="k", dataset="caltech101")
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    out = tmp_path / "data"
    manifest = write_scratch_data(prepared101 / "all.pt", tmp_path / "splits.json", 1, 4, out)
    rows, test = splits["splits"][1]["train"]["4"], splits["splits"][1]["test"]
    train_pt, val_pt = (torch.load(out / f"{s}.pt", weights_only=True) for s in ("train", "val"))
    assert torch.equal(train_pt["images"], parent["images"][rows])
    assert torch.equal(train_pt["labels"], parent["labels"][rows])
    assert torch.equal(val_pt["images"], parent["images"][test]) and val_pt["classes"] == parent["classes"]
    mean = torch.load(out / "mean.pt", weights_only=True)
    np.testing.assert_allclose(mean.numpy(), parent["images"][rows].numpy().astype(np.float64).mean(0), rtol=1e-6)
    assert mean.dtype == torch.float32
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 12, "val": 9} and manifest["crop_size"] == 64
    assert (manifest["dataset"], manifest["train_per_class"], manifest["split"]) == ("caltech101", 4, 1)
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 4, "checkpoint_epochs": [], "amp": False})
    final = train(out, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path / "run", device="cpu", threads=1)
    assert torch.load(final, weights_only=True)["classes"] == parent["classes"]
    with pytest.raises(ConfigError, match="train size 3"):
        write_scratch_data(prepared101 / "all.pt", splits, 0, 3, tmp_path / "bad")
    with pytest.raises(ConfigError, match="split 2"):
        write_scratch_data(prepared101 / "all.pt", splits, 2, 4, tmp_path / "bad")


# ---------------------------------------------------------------------------------------------- commands


def _run(configure, command, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    configure(parser)
    command(parser.parse_args(argv))


def test_commands_write_the_contract_files(roots, prepared101, model_files, tmp_path, capsys):
    model_path, mean_path, model = model_files
    data = tmp_path / "caltech256"
    _run(configure_prepare_transfer_parser, prepare_transfer_command,
         ["--dataset", "caltech256", "--root", str(roots["caltech256"]), "--out-dir", str(data),
          "--params", json.dumps(STREAM), "--background", "false"])
    assert json.loads((data / "manifest.json").read_text())["mode"] == {"all": "stream"}
    _run(configure_transfer_splits_parser, transfer_splits_command,
         ["--data-dir", str(data), "--sizes", "[3, 1]", "--splits", "2", "--test-per-class", "2", "--seed", "5",
          "--key", "transfer.fig9_sizes", "--out", str(tmp_path / "splits.json")])
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert (splits["dataset"], splits["sizes"], splits["seed"], len(splits["splits"])) == ("caltech256", [1, 3], 5, 2)
    write_scratch_data(data / "all.pt", tmp_path / "splits.json", 0, 3, tmp_path / "scratch")
    scratch = torch.load(tmp_path / "scratch" / "train.pt", weights_only=True)
    parent = torch.load(data / "all.pt", weights_only=True)
    rows = splits["splits"][0]["train"]["3"]
    assert scratch["paths"] == [parent["paths"][i] for i in rows]  # stream mode stays stream mode
    mean = torch.load(tmp_path / "scratch" / "mean.pt", weights_only=True)
    by_hand = np.mean([_decode(Path(parent["paths"][i])).numpy().astype(np.float64) for i in rows], axis=0)
    np.testing.assert_allclose(mean.numpy(), by_hand, rtol=1e-6)
    _run(configure_features_parser, features_command,
         ["--model", str(model_path), "--split-file", str(prepared101 / "all.pt"), "--mean", str(mean_path),
          "--layers", '["conv2", "fc6"]', "--max-feature-dim", "100", "--batch-size", "8", "--device", "cpu",
          "--out-dir", str(tmp_path / "features")])
    conv2 = torch.load(tmp_path / "features" / "conv2.pt", weights_only=True)
    assert conv2["grid"] == 1 and conv2["features"].shape[1] == 32  # 32*2*2 = 128 > 100
    # fc6 (512 units at width 0.125, unpooled): one row per image of the split, in its order, with its labels.
    fc6 = torch.load(tmp_path / "features" / "fc6.pt", weights_only=True)
    split = PreparedSplit(prepared101 / "all.pt")
    assert fc6["features"].shape == (len(split), model.spec.fcs[0].units) == (len(split), 512)
    assert torch.equal(fc6["labels"], split.labels) and fc6["classes"] == split.classes
    x = center_crop(split.data["images"], torch.load(mean_path, weights_only=True), 64)
    with torch.no_grad():
        by_hand = model.forward_record(x)[1].outputs["fc6"]
    torch.testing.assert_close(fc6["features"].float(), by_hand, rtol=2e-3, atol=1e-3 * float(by_hand.abs().max()))
    # The non-pretrained baseline in one command: data, training from scratch, score; the data is removed.
    train_params = {"epochs": 1, "batch_size": 4, "amp": False, "init": {"scheme": "gaussian", "std": 0.03}}
    _run(configure_scratch_parser, scratch_command,
         ["--data-dir", str(data), "--splits-file", str(tmp_path / "splits.json"), "--split", "1", "--n", "1",
          "--arch", "zf", "--arch-params", json.dumps(TINY_ARCHS["zf"]), "--train-params", json.dumps(train_params),
          "--device", "cpu", "--out-dir", str(tmp_path / "run")])
    score = json.loads((tmp_path / "run" / "score.json").read_text())
    assert (score["dataset"], score["train_per_class"], score["split"]) == ("caltech256", 1, 1)
    assert score["test_images"] == len(splits["splits"][1]["test"])
    assert not (tmp_path / "run" / ".data").exists()
    # The score is the trained model's: scoring final.pt again on the same split's data (rewritten) gives it.
    _, ckpt = load_model(tmp_path / "run" / "final.pt")
    assert ckpt["classes"] == parent["classes"] and ckpt["epoch"] == 1
    write_scratch_data(data / "all.pt", tmp_path / "splits.json", 1, 1, tmp_path / "again")
    again = score_scratch(tmp_path / "run" / "final.pt", tmp_path / "again", device="cpu")
    assert again["accuracy"] == score["accuracy"] and again["test_images"] == score["test_images"]
    printed = capsys.readouterr().out
    assert "caltech256" in printed and "conv2: map [32, 3, 3] grid 1" in printed and "n=1 split 1" in printed

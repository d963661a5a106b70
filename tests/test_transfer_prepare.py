"""zfrepro.transfer.prepare: prepared Caltech-101/256 and VOC 2012 splits against the files on disk and the XML
annotations, the background/clutter choice, unreadable images, and the `prepare-transfer` command."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from zfrepro.commands.transfer import configure_prepare_transfer_parser, prepare_transfer_command
from zfrepro.data.datasets import VOC_CLASSES
from zfrepro.data.preprocess import load_rgb, resize_center_crop_array
from zfrepro.errors import ConfigError, DataError
from zfrepro.transfer.prepare import prepare_transfer

from conftest import TINY_DATA, run_command
from conftest_data import make_voc, write_truncated_jpeg

DATA = dict(TINY_DATA, cache="memory")
STREAM = dict(TINY_DATA, cache="stream")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_caltech101_matches_the_files_and_background_adds_the_last_class(transfer_roots, prepared_caltech101, tmp_path):
    names, files = _caltech101_files(transfer_roots["caltech101"], background=False)
    data = torch.load(prepared_caltech101 / "all.pt", weights_only=True)
    manifest = json.loads((prepared_caltech101 / "manifest.json").read_text())
    assert data["classes"] == names == manifest["classes"]
    assert data["labels"].tolist() == [c for c, f in enumerate(files) for _ in f]
    assert manifest["counts"] == {"all": sum(map(len, files))} and manifest["background"] is False
    assert manifest["mode"] == {"all": "memory"} and manifest["skipped"] == {"all": []}
    assert (manifest["image_size"], manifest["crop_size"]) == (72, 64)
    flat = [p for f in files for p in f]
    assert torch.equal(data["images"], torch.stack([_decode(p) for p in flat]))

    with_bg = prepare_transfer("caltech101", transfer_roots["caltech101"], tmp_path / "bg", STREAM, threads=1,
                               background=True)
    names_bg, files_bg = _caltech101_files(transfer_roots["caltech101"], background=True)
    assert with_bg["classes"] == names_bg and names_bg[-1] == "BACKGROUND_Google"
    assert with_bg["counts"]["all"] == sum(map(len, files)) + 3 and with_bg["background"] is True
    stream = torch.load(tmp_path / "bg" / "all.pt", weights_only=True)
    assert stream["paths"] == [os.path.abspath(p) for f in files_bg for p in f] and "images" not in stream
    assert stream["labels"].tolist() == [c for c, f in enumerate(files_bg) for _ in f]


def test_caltech256_drops_or_keeps_the_clutter_class(transfer_roots, tmp_path):
    base = transfer_roots["caltech256"] / "caltech256" / "256_ObjectCategories"
    folders = sorted(os.listdir(base))
    counts = [len(os.listdir(base / f)) for f in folders]
    assert folders[-1].endswith(".clutter") and counts[-1] == 4
    plain = prepare_transfer("caltech256", transfer_roots["caltech256"], tmp_path / "plain", DATA, threads=1)
    clutter = prepare_transfer("caltech256", transfer_roots["caltech256"], tmp_path / "clutter", DATA, threads=1,
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


def test_voc_labels_match_the_xml_files(transfer_roots, tmp_path):
    manifest = prepare_transfer("voc", transfer_roots["voc"], tmp_path, DATA, threads=1)
    base = transfer_roots["voc"] / "VOCdevkit" / "VOC2012"
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


def test_prepare_transfer_command_writes_the_split_and_its_manifest(transfer_roots, tmp_path, capsys):
    out = tmp_path / "caltech256"
    run_command(configure_prepare_transfer_parser, prepare_transfer_command,
                ["--dataset", "caltech256", "--root", str(transfer_roots["caltech256"]), "--out-dir", str(out),
                 "--params", json.dumps(STREAM), "--background", "false"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == {"all": "stream"} and manifest["background"] is False
    # Stream mode: the image files in class order (the clutter class left out), not decoded images.
    base = transfer_roots["caltech256"] / "caltech256" / "256_ObjectCategories"
    folders = sorted(os.listdir(base))[:-1]
    files = [sorted(os.listdir(base / f)) for f in folders]
    data = torch.load(out / "all.pt", weights_only=True)
    assert "images" not in data and data["classes"] == manifest["classes"] == folders
    assert data["paths"] == [os.path.abspath(base / f / name) for f, names in zip(folders, files, strict=True)
                             for name in names]
    assert data["labels"].tolist() == [c for c, names in enumerate(files) for _ in names]
    assert capsys.readouterr().out.startswith(f"caltech256: 3 classes, images {{'all': {len(data['paths'])}}}")

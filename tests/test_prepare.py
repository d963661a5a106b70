"""Preparing splits: tensors equal the decoded files, the mean image, both modes, skipped files, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from zfrepro.data.datasets import image_list, open_voc
from zfrepro.data.prepare import choose_mode, data_params, mean_selection, prepare_image_list, prepare_imagenet
from zfrepro.data.preprocess import load_rgb, resize_center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError

from conftest_data import make_imagenet, make_voc, write_jpeg, write_truncated_jpeg

WNIDS = ["n01440764", "n01443537", "n02102040"]
SIZE = 16


def _params(**overrides):
    return {"image_size": SIZE, "crop_size": 12, "cache": "memory", "cache_max_gb": 8,
            "max_bad_fraction": 0.2, "mean_max_images": None, "shard_format": "raw", "jpeg_quality": 90,
            "shard_images": 3, **overrides}  # fmt: skip


@pytest.fixture
def quirky_imagenet(tmp_path):
    """3 classes x 4 train images plus a grey, a CMYK, a PNG-inside-.JPEG and a truncated one (16)."""
    root = make_imagenet(tmp_path / "imagenet", WNIDS, train_per_class=4, val_per_class=2)
    rng = np.random.default_rng(5)
    train = root / "train"
    grey = train / WNIDS[0] / "grey.JPEG"
    Image.open(write_jpeg(grey, rng)).convert("L").save(grey)
    img = Image.open(write_jpeg(train / WNIDS[1] / "cmyk.JPEG", rng))
    img.convert("CMYK").save(train / WNIDS[1] / "cmyk.JPEG", format="JPEG")
    img.save(train / WNIDS[2] / "png.JPEG", format="PNG")
    write_truncated_jpeg(train / WNIDS[2] / "truncated.JPEG", rng)
    return root


def _decoded(paths):
    return torch.stack([resize_center_crop(load_rgb(p), SIZE) for p in paths])


def test_prepare_imagenet_cache_mode(quirky_imagenet, tmp_path, capsys):
    out = tmp_path / "prepared"
    manifest = prepare_imagenet(quirky_imagenet, out, _params(), threads=2)
    train = torch.load(out / "train.pt", weights_only=True)
    assert set(train) == {"classes", "labels", "image_size", "skipped", "root", "images"}
    assert train["classes"] == WNIDS and train["image_size"] == SIZE
    assert train["root"] == str(quirky_imagenet.resolve())
    assert [s.rsplit("/", 1)[-1] for s in train["skipped"]] == ["truncated.JPEG"]
    assert "skipped 1 unreadable" in capsys.readouterr().err

    # independent reference: list the folders ourselves, decode each readable file
    expected_paths, expected_labels = [], []
    for label, wnid in enumerate(WNIDS):
        for path in sorted((quirky_imagenet / "train" / wnid).iterdir()):
            if path.name != "truncated.JPEG":
                expected_paths.append(path)
                expected_labels.append(label)
    assert train["labels"].dtype == torch.int64 and train["labels"].tolist() == expected_labels
    images = train["images"]
    assert images.dtype == torch.uint8 and images.shape == (15, 3, SIZE, SIZE)
    assert torch.equal(images, _decoded(expected_paths))

    mean = torch.load(out / "mean.pt", weights_only=True)
    reference = np.mean([np.asarray(t, dtype=np.float64) for t in _decoded(expected_paths)], axis=0)
    assert mean.dtype == torch.float32 and mean.shape == (3, SIZE, SIZE)
    assert np.allclose(mean.numpy(), reference, atol=1e-4)

    val = torch.load(out / "val.pt", weights_only=True)
    assert val["labels"].tolist() == [0, 0, 1, 1, 2, 2] and val["images"].shape == (6, 3, SIZE, SIZE)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["counts"] == {"train": 15, "val": 6}
    assert manifest["mode"] == {"train": "memory", "val": "memory"}
    assert manifest["classes"] == WNIDS and manifest["image_size"] == SIZE and manifest["mean_images"] == 15
    assert manifest["crop_size"] == 12
    assert manifest["class_names"] == [f"class {w}" for w in WNIDS]
    assert len(manifest["skipped"]["train"]) == 1 and manifest["skipped"]["val"] == []


def test_stream_mode_batches_equal_cache(quirky_imagenet, tmp_path):
    """Raw shards hold exactly the memory cache's pixels, over several shards written by two workers."""
    prepare_imagenet(quirky_imagenet, tmp_path / "memory", _params(), threads=1)
    prepare_imagenet(quirky_imagenet, tmp_path / "stream", _params(cache="stream"), threads=2)
    for split in ("train", "val"):
        cached = torch.load(tmp_path / "memory" / f"{split}.pt", weights_only=True)
        streamed = PreparedSplit(tmp_path / "stream" / f"{split}.pt")
        assert not streamed.in_memory and all(p.startswith("/") for p in streamed.data["paths"])
        total = len(streamed.data["paths"]) + len(streamed.data["skipped"])
        assert len(streamed.data["shards"]["files"]) == -(-total // 3) > 1  # 3 images per shard
        assert torch.equal(streamed.labels, cached["labels"]) and streamed.data["skipped"] == cached["skipped"]
        for workers in (0, 2):
            batches = list(streamed.batches(torch.arange(len(streamed)), 4, workers=workers))
            assert torch.equal(torch.cat([b[0] for b in batches]), cached["images"])
            assert torch.equal(torch.cat([b[1] for b in batches]), cached["labels"])
    assert torch.equal(
        torch.load(tmp_path / "memory" / "mean.pt", weights_only=True),
        torch.load(tmp_path / "stream" / "mean.pt", weights_only=True),
    )
    manifest = json.loads((tmp_path / "stream" / "manifest.json").read_text())
    assert manifest["encoding"] == {"train": "uint8", "val": "uint8"}


def test_bad_fraction_above_threshold_fails(quirky_imagenet, tmp_path):
    # 1 unreadable of 16 = 6.25% > 5%
    with pytest.raises(DataError, match=r"data\.max_bad_fraction") as err:
        prepare_imagenet(quirky_imagenet, tmp_path / "out", _params(max_bad_fraction=0.05), threads=1)
    assert "truncated.JPEG" in str(err.value)
    assert not (tmp_path / "out" / "train.pt").exists()


def test_val_labels_follow_training_classes(tmp_path):
    root = make_imagenet(tmp_path / "im", WNIDS, train_per_class=2, val_per_class=1, val_wnids=WNIDS[1:])
    prepare_imagenet(root, tmp_path / "out", _params(), threads=1)
    val = torch.load(tmp_path / "out" / "val.pt", weights_only=True)
    assert val["classes"] == WNIDS and val["labels"].tolist() == [1, 2]


def test_mean_over_evenly_spaced_subset(tmp_path):
    rng = np.random.default_rng(0)
    paths = [str(write_jpeg(tmp_path / f"{i}.jpg", rng)) for i in range(10)]
    summary = prepare_image_list(
        paths, list(range(10)), [str(i) for i in range(10)], tmp_path / "s.pt", _params(mean_max_images=4),
        threads=1, compute_mean=True,
    )  # fmt: skip
    chosen = np.flatnonzero(mean_selection(10, 4))
    assert chosen.tolist() == [0, 3, 6, 9] and summary.mean_images == 4
    reference = _decoded([paths[i] for i in chosen]).double().mean(0)
    assert torch.allclose(summary.mean.double(), reference, atol=1e-4)


def test_multi_hot_labels_from_voc(tmp_path):
    objects = {"a": [("dog", False)], "b": [("cat", False), ("sofa", True)]}
    root = make_voc(tmp_path, objects, {"train": ["a", "b"]})
    paths, labels, classes = image_list(open_voc(root, "train"))
    prepare_image_list(paths, labels, classes, tmp_path / "voc.pt", _params(cache="stream"), threads=1)
    split = torch.load(tmp_path / "voc.pt", weights_only=True)
    assert split["labels"].shape == (2, 20) and split["labels"].sum().item() == 3
    image = PreparedSplit(tmp_path / "voc.pt").reader.image(1)
    assert image.shape == (3, SIZE, SIZE) and torch.equal(image, resize_center_crop(load_rgb(paths[1]), SIZE))


def test_mode_choice_and_param_errors():
    p = data_params(_params(cache="auto", cache_max_gb=1))
    assert choose_mode(1000, 96, p) == "memory"  # 27.6 MB
    assert choose_mode(1_300_000, 256, p) == "stream"  # 255 GB
    with pytest.raises(ConfigError, match=r"data\.cache"):
        data_params(_params(cache="disk"))
    with pytest.raises(ConfigError, match=r"data\.max_bad_fraction"):
        data_params(_params(max_bad_fraction=2))
    with pytest.raises(ConfigError, match=r"data\.mean_max_images"):
        data_params(_params(mean_max_images=0))
    with pytest.raises(ConfigError, match=r"data\.image_size"):
        data_params(_params(image_size="96"))
    with pytest.raises(ConfigError, match=r"data\.crop_size"):
        data_params(_params(crop_size=SIZE + 1))


def test_empty_and_mismatched_inputs(tmp_path):
    with pytest.raises(DataError, match="no images"):
        prepare_image_list([], [], [], tmp_path / "x.pt", _params(), threads=1)
    with pytest.raises(DataError, match="labels"):
        prepare_image_list(["a.jpg"], [], [], tmp_path / "x.pt", _params(), threads=1)


# --------------------------------------------------------------------------------------------- generated data


def test_loaders_on_generated_data(tmp_path):
    """The real loaders and prepare on zfrepro.data.synthetic's output, at tiny sizes."""
    synthetic = pytest.importorskip("zfrepro.data.synthetic", reason="zfrepro.data.synthetic is not written yet")
    from zfrepro.data.datasets import open_caltech101, open_caltech256, open_imagenet

    generate = synthetic.generate
    generate("imagenet", tmp_path / "imagenet", {"image_size": 24, "classes": 3, "face_classes": 1,
             "train_per_class": 4, "val_per_class": 2, "quirky_images": 3}, seed=0, workers=1)  # fmt: skip
    manifest = prepare_imagenet(tmp_path / "imagenet", tmp_path / "prepared", _params(), threads=2)
    assert manifest["counts"] == {"train": 12, "val": 6} and manifest["skipped"]["train"] == []
    assert len(open_imagenet(tmp_path / "imagenet", "train").classes) == 3

    generate("caltech101", tmp_path / "c101", {"image_size": 24, "classes": 2, "min_per_class": 2,
             "max_per_class": 3, "background_images": 2}, seed=0, workers=1)  # fmt: skip
    paths, labels, classes = image_list(open_caltech101(tmp_path / "c101"))
    paths_bg, labels_bg, classes_bg = image_list(open_caltech101(tmp_path / "c101", include_background=True))
    assert len(classes) == 2 and classes_bg == classes + ["BACKGROUND_Google"]
    assert labels_bg[: len(labels)] == labels and labels_bg[len(labels) :] == [2, 2]
    assert load_rgb(paths_bg[-1]).mode == "RGB"

    generate("caltech256", tmp_path / "c256", {"image_size": 24, "classes": 2, "min_per_class": 2,
             "max_per_class": 2, "clutter_images": 3}, seed=0, workers=1)  # fmt: skip
    _, labels, classes = image_list(open_caltech256(tmp_path / "c256"))
    _, labels_c, classes_c = image_list(open_caltech256(tmp_path / "c256", include_clutter=True))
    assert len(classes) == 2 and classes_c[-1] == "003.clutter" and labels_c == labels + [2, 2, 2]

    voc_params = {"image_size": 24, "train_images": 4, "val_images": 3, "max_objects": 3}
    generate("voc", tmp_path / "voc", voc_params, seed=0, workers=1)
    voc = open_voc(tmp_path / "voc", "val")
    assert len(voc) == 3
    # independent check against the devkit's per-class lists (1 present, 0 difficult only, -1 absent)
    main = tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    for k, name in enumerate(voc.classes):
        flags = [int(line.split()[1]) for line in (main / f"{name}_val.txt").read_text().splitlines()]
        assert voc.labels[:, k].tolist() == [int(f != -1) for f in flags]
        assert voc.difficult_only[:, k].tolist() == [f == 0 for f in flags]

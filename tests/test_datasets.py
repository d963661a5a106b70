"""The torchvision-backed loaders on tiny datasets in the real layouts, and their layout errors."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import Subset
from torchvision.datasets import Caltech101, Caltech256, ImageNet, VOCDetection

from zfrepro.data.datasets import (
    VOC_CLASSES,
    image_list,
    imagenet_class_names,
    open_caltech101,
    open_caltech256,
    open_imagenet,
    open_voc,
)
from zfrepro.errors import DataError

from conftest_data import make_caltech101, make_caltech256, make_imagenet, make_voc, write_jpeg

WNIDS = ["n01440764", "n01443537", "n02102040"]

# ----------------------------------------------------------------------------------------------- ImageNet


@pytest.fixture
def imagenet(tmp_path):
    return make_imagenet(tmp_path / "imagenet", WNIDS, train_per_class=3, val_per_class=2)


def test_open_imagenet_reads_folders_and_meta(imagenet):
    train = open_imagenet(imagenet, "train")
    assert isinstance(train, ImageNet) and len(train) == 9
    paths, labels, classes = image_list(train)
    assert classes == WNIDS and labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(os.path.isfile(p) for p in paths)
    assert [os.path.basename(p).split("_")[0] for p in paths] == [WNIDS[y] for y in labels]
    assert imagenet_class_names(train) == [f"class {w}" for w in WNIDS]
    val = open_imagenet(str(imagenet), "val")
    assert len(val) == 6 and image_list(val)[1] == [0, 0, 1, 1, 2, 2]


def test_open_imagenet_root_errors_name_the_key(tmp_path):
    with pytest.raises(DataError, match=r"data\.imagenet_root is not set"):
        open_imagenet(None, "train")
    with pytest.raises(DataError, match=r"data\.imagenet_root.*nowhere"):
        open_imagenet(tmp_path / "nowhere", "train")


def test_open_imagenet_without_meta_says_which_files(imagenet):
    (imagenet / "meta.bin").unlink()
    with pytest.raises(DataError, match=r"meta\.bin nor ILSVRC2012_devkit_t12\.tar\.gz") as err:
        open_imagenet(imagenet, "train")
    assert "data.imagenet_root" in str(err.value)


def test_open_imagenet_missing_split_describes_layout(imagenet):
    shutil.rmtree(imagenet / "val")
    with pytest.raises(DataError, match=r"no val/ folder and no ILSVRC2012_img_val\.tar") as err:
        open_imagenet(imagenet, "val")
    assert "train/<wnid>/*.JPEG" in str(err.value) and "data.imagenet_root" in str(err.value)


def test_open_imagenet_flat_val_folder(imagenet, tmp_path):
    shutil.rmtree(imagenet / "val")
    write_jpeg(imagenet / "val" / "ILSVRC2012_val_00000001.JPEG", np.random.default_rng(0))
    with pytest.raises(DataError, match=r"no <wnid>/ class folders"):
        open_imagenet(imagenet, "val")


def test_open_imagenet_corrupt_archive_becomes_data_error(imagenet):
    shutil.rmtree(imagenet / "val")
    (imagenet / "ILSVRC2012_img_val.tar").write_bytes(b"not the real archive")
    with pytest.raises(DataError, match=r"data\.imagenet_root.*ILSVRC2012_img_val\.tar"):
        open_imagenet(imagenet, "val")


def test_open_imagenet_class_folder_not_in_meta(imagenet):
    shutil.copytree(imagenet / "train" / WNIDS[0], imagenet / "train" / "n99999999")
    with pytest.raises(DataError, match="n99999999"):
        open_imagenet(imagenet, "train")


def test_image_list_of_subset(imagenet):
    train = open_imagenet(imagenet, "train")
    paths, labels, classes = image_list(Subset(train, [8, 0]))
    assert labels == [2, 0] and classes == WNIDS and paths[1] == train.samples[0][0]
    with pytest.raises(TypeError):
        image_list(torch.utils.data.TensorDataset(torch.zeros(2)))


# ----------------------------------------------------------------------------------------------- Caltech


def test_caltech101_background_excluded_and_included(tmp_path):
    root = make_caltech101(tmp_path, {"accordion": 2, "Faces": 3, "yin_yang": 1}, background=4)
    without = open_caltech101(root)
    assert isinstance(without, Caltech101)
    paths, labels, classes = image_list(without)
    assert classes == ["Faces", "accordion", "yin_yang"] and labels == [0, 0, 0, 1, 1, 2]
    assert all(os.path.isfile(p) for p in paths)
    assert without[5][1] == 2  # torchvision's own __getitem__ still works

    with_bg = open_caltech101(root, include_background=True)
    paths_bg, labels_bg, classes_bg = image_list(with_bg)
    assert classes_bg == classes + ["BACKGROUND_Google"]
    assert labels_bg[:6] == labels and labels_bg[6:] == [3] * 4  # object classes keep their labels
    assert all("BACKGROUND_Google" in p for p in paths_bg[6:]) and all(os.path.isfile(p) for p in paths_bg)
    image, label = with_bg[len(with_bg) - 1]
    assert label == 3 and image.size == (image.width, image.height)


def test_caltech101_layout_errors(tmp_path):
    with pytest.raises(DataError, match=r"data\.caltech101_root.*101_ObjectCategories"):
        open_caltech101(tmp_path)
    assert not (tmp_path / "caltech101").exists()  # torchvision would have created it
    root = make_caltech101(tmp_path, {"ant": 2}, background=1)
    shutil.rmtree(root / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google")
    with pytest.raises(DataError, match="BACKGROUND_Google"):
        open_caltech101(root)
    (root / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google").mkdir()
    os.rename(
        root / "caltech101" / "101_ObjectCategories" / "ant" / "image_0002.jpg",
        root / "caltech101" / "101_ObjectCategories" / "ant" / "image_0009.jpg",
    )
    with pytest.raises(DataError, match=r"numbered 1\.\.n"):
        open_caltech101(root)


def test_caltech256_clutter_excluded_and_included(tmp_path):
    root = make_caltech256(tmp_path, [2, 3], clutter=2)
    without = open_caltech256(root)
    assert isinstance(without, Caltech256)
    paths, labels, classes = image_list(without)
    assert classes == ["001.class1", "002.class2"] and labels == [0, 0, 1, 1, 1]
    assert len(without) == 5 and without[4][1] == 1
    with_clutter = open_caltech256(root, include_clutter=True)
    paths_c, labels_c, classes_c = image_list(with_clutter)
    assert classes_c == classes + ["003.clutter"] and labels_c == labels + [2, 2]
    assert all(os.path.isfile(p) for p in paths_c) and paths_c[-1].endswith("003_0002.jpg")


def test_caltech256_layout_error(tmp_path):
    with pytest.raises(DataError, match=r"data\.caltech256_root.*256_ObjectCategories"):
        open_caltech256(tmp_path)
    with pytest.raises(DataError, match=r"data\.caltech256_root is not set"):
        open_caltech256("")


# ----------------------------------------------------------------------------------------------- VOC


def test_voc_multi_hot_labels(tmp_path):
    objects = {
        "2008_000001": [("dog", False), ("person", False), ("dog", False)],
        "2008_000002": [("aeroplane", False), ("tvmonitor", True)],
        "2008_000003": [("cat", True), ("cat", False)],
    }
    root = make_voc(tmp_path, objects, {"train": ["2008_000001", "2008_000002"], "val": ["2008_000003"]})
    train = open_voc(root, "train")
    assert isinstance(train, VOCDetection) and len(train) == 2
    expected = torch.zeros(2, 20, dtype=torch.int64)
    expected[0, [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]] = 1
    expected[1, [VOC_CLASSES.index("aeroplane"), VOC_CLASSES.index("tvmonitor")]] = 1
    assert torch.equal(train.labels, expected)
    assert train.difficult_only[1].nonzero().flatten().tolist() == [VOC_CLASSES.index("tvmonitor")]
    assert not train.difficult_only[0].any()
    image, label = train[0]
    assert image.mode == "RGB" and torch.equal(label, expected[0])
    paths, labels, classes = image_list(train)
    assert classes == list(VOC_CLASSES) and labels == expected.tolist()
    assert paths[1].endswith("2008_000002.jpg")
    val = open_voc(root, "val")
    assert val.labels[0, VOC_CLASSES.index("cat")] == 1 and not val.difficult_only.any()  # one easy cat


def test_voc_errors(tmp_path):
    with pytest.raises(DataError, match=r"data\.voc_root.*VOCdevkit/VOC2012"):
        open_voc(tmp_path, "train")
    root = make_voc(tmp_path, {"a": [("unicorn", False)]}, {"train": ["a"]})
    with pytest.raises(DataError, match="unicorn"):
        open_voc(root, "train")
    with pytest.raises(DataError, match=r"ImageSets/Main/val\.txt"):
        open_voc(root, "val")

"""The real datasets through torchvision's own classes (ImageNet 2012, Caltech-101/256, PASCAL VOC 2012).

The same loaders read the real data and the generated default data, which is written in the real layouts.
Each `open_*` validates the layout first, so a wrong path gives one clear DataError naming the config key,
then hands over to torchvision. `image_list` gives a uniform (paths, labels, classes) view of all four.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset
from torchvision.datasets import Caltech101, Caltech256, ImageNet, VOCDetection
from torchvision.datasets.imagenet import ARCHIVE_META, META_FILE

from zfrepro.data.generated import generated_data_problem
from zfrepro.errors import DataError

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
CALTECH101_BACKGROUND = "BACKGROUND_Google"
CALTECH256_CLUTTER_SUFFIX = ".clutter"

IMAGENET_LAYOUT = (
    "<root>/train/<wnid>/*.JPEG, <root>/val/<wnid>/*.JPEG and <root>/meta.bin (torchvision's ImageNet meta "
    "file), or the official archives ILSVRC2012_devkit_t12.tar.gz + ILSVRC2012_img_train.tar + "
    "ILSVRC2012_img_val.tar in <root> (torchvision extracts them on first use)"
)
CALTECH101_LAYOUT = "<root>/caltech101/101_ObjectCategories/<class>/image_0001.jpg ... (+ BACKGROUND_Google/)"
CALTECH256_LAYOUT = "<root>/caltech256/256_ObjectCategories/001.ak47/001_0001.jpg ... (257.clutter/ last)"
VOC_LAYOUT = (
    "<root>/VOCdevkit/VOC2012/{Annotations/<id>.xml, JPEGImages/<id>.jpg, ImageSets/Main/<image_set>.txt}"
)


def _check_root(root: str | os.PathLike | None, key: str, layout: str) -> Path:
    """The dataset root as a Path; DataError naming `key` when it is unset or not a folder, or when it is generated
    data that lost (or gained) a file since the generator wrote it."""
    if root is None or str(root).strip() == "":
        raise DataError(f"{key} is not set: point it at the dataset folder ({layout})")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{key} = {str(root)!r}: folder {path} does not exist; expected {layout}")
    if problem := generated_data_problem(path):
        raise DataError(problem)
    return path


def _torchvision_error(key: str, what: str, exc: Exception) -> DataError:
    return DataError(f"{key}: torchvision could not open {what}: {exc}")


# --------------------------------------------------------------------------------------------- ImageNet


def open_imagenet(root: str | os.PathLike | None, split: str) -> ImageNet:
    """ImageNet 2012 `split` ("train" or "val") as torchvision's ImageNet, after checking the layout."""
    key = "data.imagenet_root"
    path = _check_root(root, key, IMAGENET_LAYOUT)
    if split not in ("train", "val"):
        raise DataError(f"ImageNet split must be 'train' or 'val', not {split!r}")
    devkit = ARCHIVE_META["devkit"][0]
    if not (path / META_FILE).is_file() and not (path / devkit).is_file():
        raise DataError(
            f"{key} = {str(root)!r}: neither {META_FILE} nor {devkit} found in {path}; "
            f"expected {IMAGENET_LAYOUT}"
        )
    _check_imagenet_split(path, split, key)
    try:
        return ImageNet(str(path), split=split)
    except KeyError as exc:
        raise DataError(
            f"{key}: class folder {exc} in {path / split} is not listed in {path / META_FILE}; "
            "the meta file and the folders come from different datasets"
        ) from exc
    except (RuntimeError, OSError, ValueError) as exc:
        raise _torchvision_error(key, f"the ImageNet {split} split in {path}", exc) from exc


def _check_imagenet_split(path: Path, split: str, key: str) -> None:
    """DataError unless `path/split` holds <wnid>/ class folders or the split's archive is there."""
    folder = path / split
    archive = ARCHIVE_META[split][0]
    if not folder.is_dir():
        if (path / archive).is_file():
            return  # torchvision extracts it
        raise DataError(
            f"{key} = {str(path)!r}: no {split}/ folder and no {archive} in {path}; "
            f"expected {IMAGENET_LAYOUT}"
        )
    entries = list(os.scandir(folder))
    if not any(e.is_dir() for e in entries):
        flat = sum(1 for e in entries if e.is_file())
        raise DataError(
            f"{key}: {folder} has no <wnid>/ class folders ({flat} files lie directly in it); expected "
            f"{split}/<wnid>/*.JPEG. For val, delete {folder} and put {archive} and "
            f"{ARCHIVE_META['devkit'][0]} in the root so torchvision sorts the images into class folders"
        )


def imagenet_class_names(dataset: ImageNet) -> list[str]:
    """The first human-readable name of each ImageNet class (index = label)."""
    return [names[0] if isinstance(names, tuple | list) else str(names) for names in dataset.classes]


# --------------------------------------------------------------------------------------------- Caltech


def open_caltech101(root: str | os.PathLike | None, include_background: bool = False) -> Caltech101:
    """Caltech-101 as torchvision's Caltech101; `include_background` adds the BACKGROUND_Google class.

    torchvision always drops the background class; adding it back appends it as the last label, so the
    101 object classes keep the same labels either way.
    """
    key = "data.caltech101_root"
    path = _check_root(root, key, CALTECH101_LAYOUT)
    categories = path / "caltech101" / "101_ObjectCategories"
    if not categories.is_dir():
        raise DataError(f"{key} = {str(root)!r}: {categories} does not exist; expected {CALTECH101_LAYOUT}")
    background = categories / CALTECH101_BACKGROUND
    if not background.is_dir():
        # torchvision's Caltech101 removes this folder name from its class list and fails without it.
        raise DataError(
            f"{key}: {background} is missing; torchvision's Caltech101 expects it (create it empty if "
            "your copy has no background images)"
        )
    try:
        dataset = Caltech101(str(path), target_type="category")
    except (RuntimeError, OSError, ValueError) as exc:
        raise _torchvision_error(key, f"Caltech-101 in {path}", exc) from exc
    if include_background:
        count = len(os.listdir(background))  # counted the way torchvision counts the other classes
        dataset.categories.append(CALTECH101_BACKGROUND)
        dataset.annotation_categories.append(CALTECH101_BACKGROUND)
        dataset.index.extend(range(1, count + 1))
        dataset.y.extend([len(dataset.categories) - 1] * count)
    _check_paths_exist(image_list(dataset)[0], key, CALTECH101_LAYOUT)
    return dataset


def open_caltech256(root: str | os.PathLike | None, include_clutter: bool = False) -> Caltech256:
    """Caltech-256 as torchvision's Caltech256; without `include_clutter` the 257.clutter class is dropped.

    torchvision builds each file name from the class index, so the clutter class must be the last folder
    (as in the real dataset); dropping it then leaves the other labels unchanged.
    """
    key = "data.caltech256_root"
    path = _check_root(root, key, CALTECH256_LAYOUT)
    categories = path / "caltech256" / "256_ObjectCategories"
    if not categories.is_dir():
        raise DataError(f"{key} = {str(root)!r}: {categories} does not exist; expected {CALTECH256_LAYOUT}")
    try:
        dataset = Caltech256(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        raise _torchvision_error(key, f"Caltech-256 in {path}", exc) from exc
    clutter = [i for i, c in enumerate(dataset.categories) if c.endswith(CALTECH256_CLUTTER_SUFFIX)]
    if clutter and clutter != [len(dataset.categories) - 1]:
        raise DataError(
            f"{key}: the clutter class must be the last folder of {categories} (e.g. 257.clutter), found "
            f"{[dataset.categories[i] for i in clutter]}"
        )
    if clutter and not include_clutter:
        keep = [i for i, y in enumerate(dataset.y) if y != clutter[0]]
        dataset.index = [dataset.index[i] for i in keep]
        dataset.y = [dataset.y[i] for i in keep]
        dataset.categories = dataset.categories[: clutter[0]]
    _check_paths_exist(image_list(dataset)[0], key, CALTECH256_LAYOUT)
    return dataset


def _check_paths_exist(paths: list[str], key: str, layout: str) -> None:
    """torchvision's Caltech classes derive file names from counts; make sure those files exist."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataError(
            f"{key}: {len(missing)} image files that torchvision expects are missing, e.g. {missing[0]}; "
            f"files must be numbered 1..n without gaps: {layout}"
        )


# --------------------------------------------------------------------------------------------- VOC


class VOCClassification(VOCDetection):
    """torchvision's VOCDetection plus a 20-way multi-hot label per image (`labels`, int64 [N, 20]).

    A class is present when any object of it is annotated. `difficult_only` marks classes whose objects
    are all flagged difficult, which the VOC classification protocol ignores when scoring.
    Items are (RGB PIL image, multi-hot int64 [20]).
    """

    classes: list[str] = list(VOC_CLASSES)

    def __init__(self, root: str, image_set: str = "train", **kwargs: Any):
        super().__init__(root, year="2012", image_set=image_set, **kwargs)
        parsed = [_voc_labels(p) for p in self.annotations]
        labels, difficult = [p[0] for p in parsed], [p[1] for p in parsed]
        self.labels = torch.tensor(labels, dtype=torch.int64).reshape(-1, len(VOC_CLASSES))
        self.difficult_only = torch.tensor(difficult, dtype=torch.bool).reshape(-1, len(VOC_CLASSES))

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        image, _ = super().__getitem__(index)
        return image, self.labels[index]


def _voc_labels(annotation: str) -> tuple[list[int], list[bool]]:
    """(multi-hot presence, difficult-only flags) of one VOC annotation file."""
    try:
        objects = ET.parse(annotation).getroot().findall("object")
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"data.voc_root: cannot read annotation {annotation}: {exc}") from exc
    present = [0] * len(VOC_CLASSES)
    easy = [False] * len(VOC_CLASSES)
    for obj in objects:
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise DataError(f"data.voc_root: annotation {annotation} names unknown class {name!r}")
        index = VOC_CLASSES.index(name)
        present[index] = 1
        easy[index] |= (obj.findtext("difficult") or "0").strip() != "1"
    return present, [bool(p) and not e for p, e in zip(present, easy, strict=True)]


def open_voc(root: str | os.PathLike | None, image_set: str) -> VOCClassification:
    """PASCAL VOC 2012 `image_set` ("train", "val" or "trainval") with multi-hot image labels."""
    key = "data.voc_root"
    path = _check_root(root, key, VOC_LAYOUT)
    if image_set not in ("train", "val", "trainval"):
        raise DataError(f"VOC 2012 image_set must be train, val or trainval, not {image_set!r}")
    base = path / "VOCdevkit" / "VOC2012"
    needed = [base / "Annotations", base / "JPEGImages", base / "ImageSets" / "Main" / f"{image_set}.txt"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise DataError(f"{key} = {str(root)!r}: missing {', '.join(missing)}; expected {VOC_LAYOUT}")
    try:
        dataset = VOCClassification(str(path), image_set=image_set)
    except (RuntimeError, OSError, ValueError) as exc:
        raise _torchvision_error(key, f"VOC 2012 {image_set} in {path}", exc) from exc
    _check_paths_exist(dataset.images + dataset.annotations, key, VOC_LAYOUT)
    return dataset


# --------------------------------------------------------------------------------------------- uniform view


def image_list(dataset: Dataset) -> tuple[list[str], list[Any], list[str]]:
    """(image paths, labels, class names) of any dataset opened here, so callers can decode files themselves.

    Labels are ints (index into classes), or multi-hot lists of 0/1 for VOC. Subsets keep the parent's
    classes.
    """
    if isinstance(dataset, Subset):
        paths, labels, classes = image_list(dataset.dataset)
        return [paths[i] for i in dataset.indices], [labels[i] for i in dataset.indices], classes
    if isinstance(dataset, ImageNet):
        return [p for p, _ in dataset.samples], list(dataset.targets), list(dataset.wnids)
    if isinstance(dataset, Caltech101):
        folder = os.path.join(dataset.root, "101_ObjectCategories")
        paths = [
            os.path.join(folder, dataset.categories[y], f"image_{i:04d}.jpg")
            for y, i in zip(dataset.y, dataset.index, strict=True)
        ]
        return paths, list(dataset.y), list(dataset.categories)
    if isinstance(dataset, Caltech256):
        folder = os.path.join(dataset.root, "256_ObjectCategories")
        paths = [
            os.path.join(folder, dataset.categories[y], f"{y + 1:03d}_{i:04d}.jpg")
            for y, i in zip(dataset.y, dataset.index, strict=True)
        ]
        return paths, list(dataset.y), list(dataset.categories)
    if isinstance(dataset, VOCClassification):
        return list(dataset.images), dataset.labels.tolist(), list(VOC_CLASSES)
    raise TypeError(f"image_list does not know {type(dataset).__name__}")

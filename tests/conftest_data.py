"""Tiny datasets written in the real on-disk layouts (ImageNet, Caltech-101/256, VOC 2012) for data tests.

Plain helpers (not fixtures) so any test module can `from conftest_data import ...` and build what it needs
in tmp_path; they do not depend on zfrepro.data.synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def random_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random RGB image (smooth so JPEG round trips stay close)."""
    small = rng.integers(0, 256, size=(max(2, height // 4), max(2, width // 4), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.BILINEAR)


def write_jpeg(path: Path, rng: np.random.Generator, size: tuple[int, int] | None = None) -> Path:
    """Write a random RGB JPEG of `size` (width, height; random 20..40 if None)."""
    width, height = size or (int(rng.integers(20, 41)), int(rng.integers(20, 41)))
    path.parent.mkdir(parents=True, exist_ok=True)
    random_image(rng, width, height).save(path, format="JPEG", quality=95)
    return path


def write_truncated_jpeg(path: Path, rng: np.random.Generator) -> Path:
    """A JPEG cut to a third of its bytes: PIL opens it but cannot decode it."""
    write_jpeg(path, rng, (64, 48))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def make_imagenet(
    root: Path,
    wnids: list[str],
    train_per_class: int = 3,
    val_per_class: int = 2,
    seed: int = 0,
    val_wnids: list[str] | None = None,
) -> Path:
    """ImageNet 2012 layout: train/<wnid>/<wnid>_<i>.JPEG, val/<wnid>/ILSVRC2012_val_<n>.JPEG, meta.bin.

    meta.bin is what torchvision's parse_devkit_archive writes: torch.save((wnid_to_classes, val_wnids)).
    """
    rng = np.random.default_rng(seed)
    val_wnids = wnids if val_wnids is None else val_wnids
    for wnid in wnids:
        for i in range(train_per_class):
            write_jpeg(root / "train" / wnid / f"{wnid}_{i + 1}.JPEG", rng)
    serial = 0
    val_order = []
    for wnid in val_wnids:
        for _ in range(val_per_class):
            serial += 1
            write_jpeg(root / "val" / wnid / f"ILSVRC2012_val_{serial:08d}.JPEG", rng)
            val_order.append(wnid)
    wnid_to_classes = {w: (f"class {w}", f"alias {w}") for w in wnids}
    torch.save((wnid_to_classes, val_order), root / "meta.bin")
    return root


def make_caltech101(root: Path, counts: dict[str, int], background: int = 3, seed: int = 0) -> Path:
    """<root>/caltech101/101_ObjectCategories/<class>/image_0001.jpg ... plus BACKGROUND_Google/."""
    rng = np.random.default_rng(seed)
    base = root / "caltech101" / "101_ObjectCategories"
    for name, n in {**counts, "BACKGROUND_Google": background}.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_jpeg(base / name / f"image_{i + 1:04d}.jpg", rng)
    return root


def make_caltech256(root: Path, counts: list[int], clutter: int = 3, seed: int = 0) -> Path:
    """<root>/caltech256/256_ObjectCategories/001.class1/001_0001.jpg ... and <n+1>.clutter/ last."""
    rng = np.random.default_rng(seed)
    base = root / "caltech256" / "256_ObjectCategories"
    folders = [(f"{k + 1:03d}.class{k + 1}", n) for k, n in enumerate(counts)]
    folders.append((f"{len(counts) + 1:03d}.clutter", clutter))
    for k, (name, n) in enumerate(folders):
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_jpeg(base / name / f"{k + 1:03d}_{i + 1:04d}.jpg", rng)
    return root


def make_voc(
    root: Path, images: dict[str, list[tuple[str, bool]]], sets: dict[str, list[str]], seed: int = 0
) -> Path:
    """VOCdevkit/VOC2012: JPEGImages/<id>.jpg, Annotations/<id>.xml (objects as (class, difficult)) and
    ImageSets/Main/<set>.txt."""
    rng = np.random.default_rng(seed)
    base = root / "VOCdevkit" / "VOC2012"
    (base / "Annotations").mkdir(parents=True, exist_ok=True)
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for image_id, objects in images.items():
        write_jpeg(base / "JPEGImages" / f"{image_id}.jpg", rng, (40, 30))
        parts = [
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{int(difficult)}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax>"
            "<ymax>20</ymax></bndbox></object>"
            for name, difficult in objects
        ]
        xml = (
            f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>"
            "<size><width>40</width><height>30</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{''.join(parts)}</annotation>"
        )
        (base / "Annotations" / f"{image_id}.xml").write_text(xml)
    for name, ids in sets.items():
        (base / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root

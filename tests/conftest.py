"""Shared fixtures: a tiny generated ImageNet in the real layout, and its prepared tensors."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Small enough for seconds, large enough that ZF and Krizhevsky keep >= 1x1 maps (64 crops -> pool5 1x1).
TINY_SYNTHETIC = {"image_size": 72, "classes": 3, "face_classes": 1, "train_per_class": 16,
                  "val_per_class": 4, "quirky_images": 2}
TINY_DATA = {"image_size": 72, "crop_size": 64, "cache": "auto", "cache_max_gb": 1.0,
             "max_bad_fraction": 0.001, "mean_max_images": None}
TINY_ARCHS = {"zf": {"base": "zf", "width": 0.125}, "krizhevsky": {"base": "krizhevsky", "width": 0.125}}


@pytest.fixture(scope="session")
def tiny_imagenet(tmp_path_factory) -> Path:
    """A generated ImageNet 2012 folder layout (train/, val/, meta.bin) with 3 classes."""
    from zfrepro.data.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic") / "imagenet"
    generate("imagenet", root, dict(TINY_SYNTHETIC), seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_prepared(tiny_imagenet, tmp_path_factory) -> Path:
    """`zfrepro prepare` output (train.pt, val.pt, mean.pt, manifest.json) for the tiny ImageNet."""
    from zfrepro.data.prepare import prepare_imagenet

    out = tmp_path_factory.mktemp("prepared") / "imagenet"
    prepare_imagenet(tiny_imagenet, out, dict(TINY_DATA), threads=1)
    return out

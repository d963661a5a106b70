"""Shared fixtures: a tiny generated ImageNet in the real layout, its prepared tensors and a model trained on them;
and the check every drawn figure gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


@pytest.fixture(scope="session")
def tiny_zf(tiny_prepared, tmp_path_factory) -> Path:
    """final.pt of a tiny ZF trained 2 epochs on `tiny_prepared` (metrics.csv beside it): trained weights, so the
    analyses see maps that fire, in seconds."""
    from zfrepro.model.train import TrainConfig, train

    cfg = TrainConfig.from_dict({"epochs": 2, "batch_size": 16, "checkpoint_epochs": [],
                                 "init": {"scheme": "gaussian", "std": 0.03}})
    return train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path_factory.mktemp("zf"),
                 device="cpu", threads=1)


def drawn_figure(png: Path) -> np.ndarray:
    """Check that `png` is a real drawing (it decodes, and is not one flat colour) with its PDF beside it; return
    its pixels [H, W, C]. A file that merely exists or is large could still be an empty canvas or an error page."""
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", png
    with Image.open(png) as im:
        assert im.format == "PNG", png
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 0, f"{png} is blank"
    return pixels

"""Shared fixtures: a tiny generated ImageNet in the real layout, its prepared tensors and a model trained on them;
the check every drawn figure gets; a scratch copy of the workflow to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# Small enough for seconds, large enough that ZF and Krizhevsky keep >= 1x1 maps (64 crops -> pool5 1x1).
TINY_SYNTHETIC = {"image_size": 72, "classes": 3, "face_classes": 1, "train_per_class": 16,
                  "val_per_class": 4, "quirky_images": 2}
TINY_DATA = {"image_size": 72, "crop_size": 64, "cache": "auto", "cache_max_gb": 1.0,
             "max_bad_fraction": 0.001, "mean_max_images": None,
             "shard_format": "jpeg", "jpeg_quality": 90, "shard_images": 8}
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
    from zfrepro.model.train import train
    from zfrepro.model.train_config import TrainConfig

    cfg = TrainConfig.from_dict({"epochs": 2, "batch_size": 16, "checkpoint_epochs": [],
                                 "init": {"scheme": "gaussian", "std": 0.03}})
    return train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path_factory.mktemp("zf"),
                 device="cpu", threads=1)



# ---------------------------------------------------------------------------------------------- transfer data

TINY_CALTECH = {"image_size": 64, "classes": 3, "min_per_class": 8, "max_per_class": 10}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread avoids thread start-up and contention costs on a loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def transfer_roots(tmp_path_factory) -> dict[str, Path]:
    """Generated Caltech-101, Caltech-256 and VOC 2012 folders in the real layouts (3 classes each for Caltech)."""
    from zfrepro.data.synthetic import generate

    base = tmp_path_factory.mktemp("transfer_synthetic")
    params = {"caltech101": {**TINY_CALTECH, "background_images": 3},
              "caltech256": {**TINY_CALTECH, "clutter_images": 4},
              "voc": {"image_size": 64, "train_images": 6, "val_images": 5, "max_objects": 2}}
    for dataset, p in params.items():
        generate(dataset, base / dataset, p, seed=0, workers=1)
    return {d: base / d for d in params}


@pytest.fixture(scope="session")
def prepared_caltech101(transfer_roots, tmp_path_factory) -> Path:
    """`zfrepro prepare-transfer` output for the generated Caltech-101 (decoded in memory, no background class)."""
    from zfrepro.transfer.prepare import prepare_transfer

    out = tmp_path_factory.mktemp("prepared") / "caltech101"
    prepare_transfer("caltech101", transfer_roots["caltech101"], out, dict(TINY_DATA, cache="memory"), threads=1)
    return out


@pytest.fixture(scope="session")
def prepared_caltech256_stream(transfer_roots, tmp_path_factory) -> Path:
    """`zfrepro prepare-transfer` output for the generated Caltech-256 in stream mode (JPEG shards, no clutter)."""
    from zfrepro.transfer.prepare import prepare_transfer

    out = tmp_path_factory.mktemp("prepared") / "caltech256"
    prepare_transfer("caltech256", transfer_roots["caltech256"], out, dict(TINY_DATA, cache="stream"), threads=1)
    return out


@pytest.fixture(scope="session")
def random_zf_files(tmp_path_factory):
    """(final.pt, mean.pt, model): a tiny random ZF checkpoint in train.snapshot's format (64 px crops, 5 classes)
    and a 72 px mean image, for the transfer steps that read a pretrained model."""
    import torch

    from zfrepro.model.architectures import spec_from_config
    from zfrepro.model.network import ConvNet, init_weights_
    from zfrepro.model.spec import spec_to_dict

    out = tmp_path_factory.mktemp("model")
    spec = spec_from_config("zf", TINY_ARCHS["zf"], num_classes=5, input_size=64)
    model = init_weights_(ConvNet(spec), "gaussian", std=0.05, generator=torch.Generator().manual_seed(0)).eval()
    ckpt = {"arch": "zf", "spec": spec_to_dict(spec), "model": model.state_dict(), "epoch": 1,
            "classes": [f"c{i}" for i in range(5)], "crop_size": 64, "seed": 0, "training": {}}
    torch.save(ckpt, out / "final.pt")
    mean = 100 + 40 * torch.rand((3, 72, 72), generator=torch.Generator().manual_seed(1))
    torch.save(mean, out / "mean.pt")
    return out / "final.pt", out / "mean.pt", model


def run_command(configure, command, argv: list[str]) -> None:
    """Parse `argv` with a command's own parser (plus the --threads every command gets) and run it."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    configure(parser)
    command(parser.parse_args(argv))


def drawn_figure(png: Path) -> np.ndarray:
    """Check that `png` is a real drawing (it decodes, and is not one flat colour) with its PDF beside it; return
    its pixels [H, W, C]. A file that merely exists or is large could still be an empty canvas or an error page."""
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", png
    with Image.open(png) as im:
        assert im.format == "PNG", png
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 0, f"{png} is blank"
    return pixels


# ---------------------------------------------------------------------------------------------- the workflow

# The tiny study (tests/config/tiny.yaml alone, completed by the schema's defaults, not merged over config.yaml).
TINY_CONFIG = ["--configfile", "tests/config/tiny.yaml", "--replace-workflow-config"]


def workflow_copy(tmp: Path, real_config: bool = False) -> Path:
    """A scratch copy of the workflow in `tmp` (links to the repository's files) so results land there;
    `real_config`: config/ copied instead of linked, so a test may break it."""
    for name in ("Snakefile", "workflow", "tests") + (() if real_config else ("config",)):
        (tmp / name).symlink_to(REPO / name)
    if real_config:
        shutil.copytree(REPO / "config", tmp / "config")
    return tmp


def run_python(cwd: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python *args` in `cwd`, with this interpreter's bin/ on PATH so the workflow's rules find `zfrepro`."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def planned_rules(res: subprocess.CompletedProcess) -> set[str]:
    """Names of the rules a Snakemake dry run would run (from its job-stats table)."""
    rules, in_table = set(), False
    for line in (res.stdout + res.stderr).splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if not parts or parts[0] == "total":
                break
            if not set(parts[0]) <= {"-"}:
                rules.add(parts[0])
    return rules

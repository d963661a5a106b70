"""config/published.yaml: its plan imports the published networks and trains nothing (a dry run), and the same DAG at
its shapes (tests/config/published_shape.yaml: generated data at 256 px, 224 crops, imgclsmob's full-width ZFNet
and AlexNet with random weights written in pytorchcv's format) runs every planned rule (slow)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from pytorchcv.models.alexnet import alexnet
from pytorchcv.models.zfnet import zfnet

from zfrepro.model.checkpoint import load_model
from zfrepro.model.published import PUBLISHED

from conftest import REPO, planned_rules, run_python, workflow_copy

SHAPE = ["--configfile", "tests/config/published_shape.yaml", "--replace-workflow-config"]
TIMEOUT = 40 * 60


def _snakemake(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    res = run_python(cwd, "-m", "snakemake", *args, timeout=timeout)
    if res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


def _weights_config(files: dict[str, Path]) -> str:
    archs = {"zf": "zfnet", "krizhevsky": "alexnet"}
    return "architectures={" + ", ".join(f"{arch}: {{published: {{name: {archs[arch]}, file: {files[arch]}}}}}"
                                         for arch in archs) + "}"


@pytest.fixture(scope="module")
def published_plan(tmp_path_factory) -> set[str]:
    """The rules of config/published.yaml's plan (a dry run, with an ImageNet folder and weights files given)."""
    tmp = tmp_path_factory.mktemp("published_plan")
    (tmp / "imagenet").mkdir()
    files = {arch: tmp / f"{arch}.pth" for arch in ("zf", "krizhevsky")}
    for path in files.values():
        path.write_bytes(b"")
    (tmp / "run").mkdir()
    cwd = workflow_copy(tmp / "run")
    res = _snakemake(cwd, "-n", "--cores", "2", "--configfile", "config/published.yaml", "--replace-workflow-config",
                     "--config", f"data={{source: real, imagenet_root: {tmp / 'imagenet'}, image_size: 256, "
                     "crop_size: 224, cache: stream}", _weights_config(files))
    return planned_rules(res)


def test_the_published_plan_trains_nothing(published_plan):
    assert {"import_zf", "import_krizhevsky", "evaluate", "table2", "mine_top9", "atlas", "atlas_compare",
            "occlusion", "invariance", "filters", "unpooling", "top9_projections"} <= published_plan
    assert [rule for rule in published_plan if rule.startswith("train")] == []
    assert not {"evolution", "convergence", "table3", "plot_training_curves"} & published_plan


def test_the_shape_config_is_the_published_config_but_for_volume():
    published = yaml.safe_load((REPO / "config/published.yaml").read_text())
    shape = yaml.safe_load((REPO / "tests/config/published_shape.yaml").read_text())
    assert {a: s["published"]["name"] for a, s in shape["architectures"].items()} == \
        {a: s["published"]["name"] for a, s in published["architectures"].items()}
    for key in ("image_size", "crop_size", "cache"):
        assert shape["data"][key] == published["data"][key]
    assert shape["tables"] == published["tables"]
    for section in ("visualize", "correspondence"):
        assert {k: v for k, v in shape[section].items() if k != "batch_size"} == \
            {k: v for k, v in published[section].items() if k != "batch_size"}
    assert (shape["occlusion"]["size"], shape["occlusion"]["stride"]) == (48, 8)
    assert published["data"]["crop_size"] == PUBLISHED["zfnet"].preprocessing.crop


@pytest.fixture(scope="module")
def shape_run(tmp_path_factory):
    """A workflow folder in which the published-shape study ran, the rules it ran, and the rules it planned."""
    cwd = workflow_copy(tmp_path_factory.mktemp("published_shape"))
    classes = yaml.safe_load((REPO / "tests/config/published_shape.yaml").read_text())["synthetic"]["imagenet"][
        "classes"]
    torch.manual_seed(0)
    files = {"zf": cwd / "zfnet-random.pth", "krizhevsky": cwd / "alexnet-random.pth"}
    torch.save(zfnet(num_classes=classes).state_dict(), files["zf"])
    torch.save(alexnet(num_classes=classes).state_dict(), files["krizhevsky"])
    plan = planned_rules(_snakemake(cwd, "-n", "--cores", "2", *SHAPE))
    res = _snakemake(cwd, "--cores", "2", *SHAPE, timeout=TIMEOUT)
    assert re.search(r"(\d+) of \1 steps \(100%\) done", res.stdout + res.stderr), res.stderr[-3000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):$", res.stdout + res.stderr, re.MULTILINE))
    return cwd, ran, plan


@pytest.mark.slow
def test_every_planned_rule_ran(shape_run, published_plan):
    _, ran, plan = shape_run
    assert sorted(plan - ran) == [] and "import_zf" in ran
    # the published plan's rules, but for the data's (generated here, prepared from ImageNet there) and Table 1's
    # (generated parts CSV here; the published config needs the user's)
    assert sorted(published_plan - ran) == []


@pytest.mark.slow
def test_the_run_used_the_imported_networks(shape_run):
    cwd, _, _ = shape_run
    out = cwd / "results/published_shape"
    model, ckpt = load_model(out / "models/zf/seed0/final.pt")
    assert ckpt["published"]["name"] == "zfnet" and len(ckpt["published"]["sha1"]) == 40
    assert ckpt["preprocessing"]["crop"] == 224 and model.spec.input_std is not None
    assert [c.ops for c in model.spec.convs[:2]] == [("conv", "relu", "norm", "pool")] * 2  # imgclsmob's LRN place
    metrics = json.loads((out / "metrics/zf/seed0.json").read_text())
    assert metrics["published"] == "zfnet" and metrics["parameters"] < PUBLISHED["zfnet"].parameters  # 20 classes
    table2 = pd.read_csv(out / "tables/table2_imagenet.csv")
    assert table2["weights_val_top5"].tolist() == [PUBLISHED["alexnet"].top5_error, PUBLISHED["zfnet"].top5_error]
    for name in ("fig1_deconvnet", "fig2_top9", "fig5_invariance", "fig6_filters", "fig7_occlusion"):
        assert (out / f"figures/{name}.png").stat().st_size > 0
    for atlas in ("zf_seed0", "krizhevsky_seed0", "compare_zf_krizhevsky"):
        assert (out / "atlas" / atlas / "index.html").exists()

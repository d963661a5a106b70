"""Every rule of the paper configuration's plan, run once at the paper's shapes on the CPU (issue 11).

tests/config/paper_shape.yaml is config/paper.yaml with only the data volume cut (classes, images, epochs, seeds,
architecture variants, splits, sizes) on generated data in the real layouts at 256 px: full-width networks on
224-pixel crops with the paper's LRN, ten-crop evaluation, the 48-pixel occluder at stride 8, the Fig 5 ranges and
the 9216-value feature cap. The run (about 12 minutes on 2 cores) is module-scoped, in a scratch copy of the
workflow; the tests check that it ran every rule of the paper's plan and that its outputs have the paper's shapes.
The first test (no run) checks that the configuration is paper.yaml's wherever it is not volume.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config, validate

from zfrepro.model.checkpoint import load_model
from zfrepro.model.spec import LRN

from conftest import REPO, planned_rules, run_python, workflow_copy

PAPER_SHAPE = ["--configfile", "tests/config/paper_shape.yaml", "--replace-workflow-config", "--cores", "2"]
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
TIMEOUT = 40 * 60  # the run takes ~12 min on 2 cores (21-23 on a busy machine); the issue allows 25 in CI


def _load(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def _complete(config: dict) -> dict:
    """The config as the workflow sees it: checked against the schema, its defaults filled in."""
    validate(config, SCHEMA)
    return json.loads(json.dumps(config))  # plain dicts and lists, integer keys as strings (as the rules see them)


def paper_config() -> dict:
    """config/paper.yaml merged over config/config.yaml, completed (what `--configfile config/paper.yaml` runs)."""
    config = _load("config/config.yaml")
    update_config(config, _load("config/paper.yaml"))
    return _complete(config)


def paper_shape_config() -> dict:
    """tests/config/paper_shape.yaml alone, completed (what --replace-workflow-config runs)."""
    return _complete(_load("tests/config/paper_shape.yaml"))


# ---------------------------------------------------------------------------------------------------------
# The configuration: paper.yaml's values except volume (no run)

# Keys whose value is volume (how much, not what shape) or where the run has to differ (CPU, memory): dotted
# prefixes. Architectures and table rows are checked separately: a subset of the paper's, each as the paper defines.
VOLUME = (
    "results_dir",  # each configuration has its own results folder
    "resources",  # what the jobs ask a cluster for (paper.yaml: GPU days)
    "device",  # CI has no GPU
    "threads",  # 2 cores
    "data.source",  # generated data in the real layouts
    "synthetic",  # the generated data's volume
    "training.epochs", "training.checkpoint_epochs",
    "evaluation.train_subset",
    "evaluation.batch_size",  # memory: 256 images x 10 crops at 224 would need ~27 GB on a CPU
    "transfer.splits", "transfer.caltech101.train_sizes", "transfer.caltech101.test_per_class",
    "transfer.caltech256.train_sizes", "transfer.caltech256.test_per_class", "transfer.fig9_sizes",
    "transfer.scratch.training.epochs",
    "visualize.fig4_train_images",
    "atlas.maps_per_layer", "atlas.evolution_maps",  # every map at full width: 25k projections on the CPU
    "invariance.images", "occlusion.images",  # generated classes instead of the paper's ImageNet classes
    "invariance.sample", "occlusion.sample",  # the claims' extra images
)
SUBSETS = ("architectures", "tables.table2", "tables.table3")


def _leaves(value, key: str = "") -> dict[str, object]:
    """Dotted key -> value of every leaf (an empty mapping is a leaf)."""
    if isinstance(value, dict) and value:
        return {k: v for name, item in value.items()
                for k, v in _leaves(item, f"{key}.{name}" if key else name).items()}
    return {key: value}


def _exempt(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _without_volume(spec: dict | None) -> dict | None:
    """An architecture without its seeds and its training.epochs override (volume)."""
    if spec is None:
        return None
    training = {k: v for k, v in spec.get("training", {}).items() if k != "epochs"}
    kept = {k: v for k, v in spec.items() if k not in ("training", "seeds")}
    return {**kept, **({"training": training} if training else {})}


def config_differences(paper: dict, shape: dict) -> list[str]:
    """Where `shape` departs from `paper` other than in volume: one line per key."""
    out = []
    ours, theirs = _leaves(shape), _leaves(paper)
    for key in sorted(set(ours) | set(theirs)):
        if _exempt(key, VOLUME + SUBSETS):
            continue
        if ours.get(key, "(missing)") != theirs.get(key, "(missing)"):
            out.append(f"{key}: paper.yaml {theirs.get(key, '(missing)')!r}, paper_shape.yaml "
                       f"{ours.get(key, '(missing)')!r}")
    for arch, spec in shape["architectures"].items():
        if _without_volume(paper["architectures"].get(arch)) != _without_volume(spec):
            out.append(f"architectures.{arch}: paper.yaml {paper['architectures'].get(arch)!r}, paper_shape.yaml "
                       f"{spec!r}")
    for table in ("table2", "table3"):
        for label, refs in shape["tables"][table].items():
            archs = {ref.split("/")[0] for ref in ([refs] if isinstance(refs, str) else refs)}
            paper_refs = paper["tables"][table].get(label)
            paper_archs = {ref.split("/")[0] for ref in ([paper_refs] if isinstance(paper_refs, str)
                                                         else paper_refs or [])}
            if not archs <= paper_archs:
                out.append(f"tables.{table}[{label!r}]: paper.yaml {paper_refs!r}, paper_shape.yaml {refs!r}")
    return out


def test_paper_shape_config_is_the_paper_config_but_for_volume():
    paper, shape = paper_config(), paper_shape_config()
    assert config_differences(paper, shape) == []
    # The shapes the issue names, stated once more (the comparison above makes them paper.yaml's).
    assert (shape["data"]["image_size"], shape["data"]["crop_size"], shape["data"]["cache"]) == (256, 224, "stream")
    assert {spec["width"] for spec in shape["architectures"].values()} == {1.0}
    assert shape["evaluation"]["table_crops"] == "ten"
    assert (shape["occlusion"]["size"], shape["occlusion"]["stride"], shape["transfer"]["max_feature_dim"]) == (
        48, 8, 9216)
    assert shape["device"] == "cpu" and shape["data"]["source"] == "synthetic"
    assert shape["synthetic"]["image_size"] == 256 and shape["synthetic"]["imagenet"]["classes"] >= 100
    # Checkpoints kept: paper.yaml's epochs within the shortened trainings (the Figs 1-4 network trains 2 epochs, so
    # that it keeps one before its last, as Fig 4 and the convergence rule need; the others 1).
    epochs = {arch: spec.get("training", {}).get("epochs", shape["training"]["epochs"])
              for arch, spec in shape["architectures"].items()}
    assert epochs[shape["visualize"]["arch"]] == 2 and max(epochs.values()) == 2
    assert shape["training"]["checkpoint_epochs"] == [e for e in paper["training"]["checkpoint_epochs"] if e <= 2]
    # The generated wnids the image lists name exist in the generated ImageNet (n90000001.., faces n91000001..).
    imagenet = shape["synthetic"]["imagenet"]
    wnids = {f"n90{i + 1:06d}" for i in range(imagenet["classes"] - imagenet["face_classes"])}
    wnids |= {f"n91{i + 1:06d}" for i in range(imagenet["face_classes"])}
    for section in ("invariance", "occlusion"):
        assert {image["wnid"] for image in shape[section]["images"]} <= wnids, section


def test_the_config_check_sees_a_non_volume_difference():
    paper, shape = paper_config(), paper_shape_config()
    shape["training"]["lr"] = 0.02
    shape["architectures"]["zf"] = {**shape["architectures"]["zf"], "width": 0.5}
    shape["architectures"]["krizhevsky"] = {**shape["architectures"]["krizhevsky"], "training": {"epochs": 3}}
    shape["tables"]["table3"]["our model (Fig 3)"] = "krizhevsky"
    problems = config_differences(paper, shape)
    assert [p.split(":")[0] for p in problems] == ["training.lr", "architectures.zf",
                                                   "tables.table3['our model (Fig 3)']"]


# ---------------------------------------------------------------------------------------------------------
# The run


def _snakemake(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    res = run_python(cwd, "-m", "snakemake", *args, timeout=timeout)
    if res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


def _ran(res: subprocess.CompletedProcess) -> set[str]:
    """Names of the rules whose jobs a run started (Snakemake's `rule <name>:` / `localrule <name>:` lines)."""
    return set(re.findall(r"^(?:local)?rule (\w+):$", res.stdout + res.stderr, re.MULTILINE))


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory) -> set[str]:
    """The rules of config/paper.yaml's plan with every dataset folder and a parts CSV given (a dry run)."""
    tmp = tmp_path_factory.mktemp("paper_plan")
    roots = {}
    for name in ("imagenet", "caltech101", "caltech256", "voc"):
        (tmp / name).mkdir()
        roots[f"{name}_root"] = str(tmp / name)
    (tmp / "parts.csv").write_text("image,part,x0,y0,x1,y1\n")
    (tmp / "run").mkdir()
    cwd = workflow_copy(tmp / "run")
    data = "data={" + ", ".join(f"{k}: {v}" for k, v in roots.items()) + "}"
    res = _snakemake(cwd, "-n", "--cores", "2", "--configfile", "config/paper.yaml", "--config", data,
                     f"correspondence={{parts_csv: {tmp / 'parts.csv'}}}")
    return planned_rules(res)


@pytest.fixture(scope="module")
def paper_shape_run(tmp_path_factory):
    """A workflow folder in which the paper-shape study has run, and the rules it ran. Its full-width networks
    (3 GB of checkpoints) are deleted after the module's tests; the rest stays for inspection."""
    cwd = workflow_copy(tmp_path_factory.mktemp("paper_shape"))
    # Some of the demo's results first (the default config: results/demo), to check that the paper runs keep them
    _snakemake(cwd, "--cores", "2", "--config", "synthetic={voc: {train_images: 8, val_images: 8}}", "--",
               "results/demo/data/voc/manifest.json")
    (cwd / "demo_before.json").write_text(json.dumps(_digests(cwd / "results/demo")))
    res = _snakemake(cwd, *PAPER_SHAPE, timeout=TIMEOUT)
    assert re.search(r"(\d+) of \1 steps \(100%\) done", res.stdout + res.stderr), res.stderr[-3000:]
    yield cwd, _ran(res)
    for folder in ("results/paper_shape/models", "results/paper_shape/transfer/scratch"):
        shutil.rmtree(cwd / folder, ignore_errors=True)


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_the_demos_results_survive_the_paper_shape_run_and_a_paper_dry_run(paper_shape_run, tmp_path):
    """Each configuration writes into its own results_dir: the demo's (results/demo) are untouched by a paper-shape
    run (results/paper_shape) and a paper.yaml dry run (results/paper) in the same checkout."""
    cwd, _ = paper_shape_run
    roots = {}
    for name in ("imagenet", "caltech101", "caltech256", "voc"):
        (tmp_path / name).mkdir()
        roots[name] = tmp_path / name
    data = "data={" + ", ".join(f"{name}_root: {root}" for name, root in roots.items()) + "}"
    plan = _snakemake(cwd, "-n", "--configfile", "config/paper.yaml", "--config", data)
    assert "results/paper/models/zf/seed0/final.pt" in plan.stdout
    before = json.loads((cwd / "demo_before.json").read_text())
    assert "data/voc/manifest.json" in before
    assert _digests(cwd / "results/demo") == before
    assert (cwd / "results/paper_shape/tables/table2_imagenet.csv").exists()


def _arch_kinds(spec: dict) -> set[str]:
    """What a train_<arch> rule exercises: its base network and each option it sets (remove, fc_units,
    conv_maps, a training override)."""
    return {f"base {spec['base']}", *(key for key in ("remove", "fc_units", "conv_maps", "training") if key in spec)}


@pytest.mark.slow
def test_every_rule_of_the_paper_plan_ran(paper_plan, paper_shape_run):
    _, ran = paper_shape_run
    assert "train_zf" in paper_plan and "correspondence" in paper_plan  # the plan is the full paper study
    # train_<arch> is one rule per configured architecture, all made from train.smk's template: the run trains one
    # architecture of each kind the paper plan has (each base network, and each of remove, fc_units, conv_maps and
    # a per-architecture training override); every other rule of the plan ran under its own name.
    per_arch = {rule for rule in paper_plan if rule.startswith("train_") and rule != "train_scratch"}
    assert sorted(paper_plan - per_arch - ran) == []
    paper, shape = paper_config(), paper_shape_config()
    trained = {arch for arch in shape["architectures"] if f"train_{arch}" in ran}
    assert trained == set(shape["architectures"])
    covered = set().union(*(_arch_kinds(shape["architectures"][arch]) for arch in trained))
    needed = set().union(*(_arch_kinds(paper["architectures"][rule.removeprefix("train_")]) for rule in per_arch))
    assert needed == {"base zf", "base krizhevsky", "remove", "fc_units", "conv_maps", "training"}
    assert needed - covered == set()


@pytest.mark.slow
def test_trained_networks_have_the_papers_shapes(paper_shape_run):
    cwd, _ = paper_shape_run
    expected = {  # (conv1 filters, size, stride), maps of conv3-5, fc6/fc7 units
        "zf": ((96, 7, 2), [384, 384, 256], [4096, 4096]),
        "zf_no_renorm": ((96, 7, 2), [384, 384, 256], [4096, 4096]),
        "krizhevsky": ((96, 11, 4), [384, 384, 256], [4096, 4096]),
        "krizhevsky_fc_2048": ((96, 11, 4), [384, 384, 256], [2048, 2048]),
        "krizhevsky_no_3_4_6_7": ((96, 11, 4), [256], []),
        "zf_conv_512_1024_512": ((96, 7, 2), [512, 1024, 512], [4096, 4096]),
    }
    for arch, (conv1, maps, units) in expected.items():
        model, ckpt = load_model(cwd / f"results/paper_shape/models/{arch}/seed0/final.pt")
        spec = model.spec
        assert ckpt["crop_size"] == spec.input_size == 224, arch
        first = spec.convs[0]
        assert (first.out_channels, first.kernel, first.stride) == conv1, arch
        assert tuple(model.conv_layers()["conv1"].weight.shape) == (96, 3, conv1[1], conv1[1]), arch
        assert [c.out_channels for c in spec.convs[2:]] == maps, arch
        assert [f.units for f in spec.fcs] == units, arch
        assert spec.lrn == LRN == (5, 1e-4, 0.75, 2.0), arch  # Krizhevsky's LRN, as the paper
        assert spec.num_classes == 100, arch
        # The last pooled maps are 6x6 at 224 (Fig 3): fc6 (or fc8) reads 256 x 6 x 6 = 9216 values.
        head = getattr(model, spec.fcs[0].name if spec.fcs else "fc8")
        assert head.in_features == spec.convs[-1].out_channels * 36, arch
        assert ckpt["epoch"] == (2 if arch == "zf" else 1), arch  # zf: the Figs 1-4 network
        assert (cwd / f"results/paper_shape/models/{arch}/seed0/epoch1.pt").exists(), arch


@pytest.mark.slow
def test_prepared_data_is_256_pixel_streamed_shards(paper_shape_run):
    cwd, _ = paper_shape_run
    manifest = json.loads((cwd / "results/paper_shape/data/imagenet/manifest.json").read_text())
    assert (manifest["image_size"], manifest["crop_size"]) == (256, 224)
    assert manifest["mode"] == {"train": "stream", "val": "stream"}
    assert len(manifest["classes"]) == 100
    # The overlap study found the planted Caltech copies of ImageNet training images and pretraining left them out.
    assert manifest["excluded"] == 2
    mean = torch.load(cwd / "results/paper_shape/data/imagenet/mean.pt", weights_only=True)
    assert tuple(mean.shape) == (3, 256, 256)


@pytest.mark.slow
def test_evaluation_and_tables_use_ten_crops(paper_shape_run):
    cwd, _ = paper_shape_run
    for arch in ("zf", "krizhevsky", "zf_conv_512_1024_512"):
        metrics = json.loads((cwd / f"results/paper_shape/metrics/{arch}/seed0.json").read_text())
        assert set(metrics["val"]) == {"center", "ten"} and metrics["num_classes"] == 100, arch
        predictions = torch.load(cwd / f"results/paper_shape/predictions/{arch}/seed0.pt", weights_only=True)
        assert predictions["ten"].shape == (metrics["val_images"], 100), arch
    table2 = pd.read_csv(cwd / "results/paper_shape/tables/table2_imagenet.csv")
    zf = json.loads((cwd / "results/paper_shape/metrics/zf/seed0.json").read_text())
    row = table2[table2["model"] == "1 convnet as per Fig 3"].iloc[0]
    assert row["ours_val_top1"] == round(zf["val"]["ten"]["top1_error"], 2)
    assert "ten" in (cwd / "results/paper_shape/tables/table2_imagenet.md").read_text().lower()


@pytest.mark.slow
def test_occlusion_map_is_the_48_by_8_grid_of_a_224_crop(paper_shape_run):
    cwd, _ = paper_shape_run
    data = torch.load(cwd / "results/paper_shape/analysis/fig7/occlusion.pt", weights_only=False)
    assert (data["crop"], data["size"], data["stride"], data["layer"]) == (224, 48, 8, "conv5")
    assert len(data["offsets"]) == 23  # (224 - 48) / 8 + 1 positions per axis
    row = data["rows"][0]
    assert tuple(row["p_true"].shape) == tuple(row["map_total"].shape) == (23, 23)
    assert tuple(row["image"].shape) == (3, 224, 224)


@pytest.mark.slow
def test_transfer_features_are_capped_at_9216(paper_shape_run):
    cwd, _ = paper_shape_run
    features = cwd / "results/paper_shape/features/zf/seed0/caltech256/all"
    conv5 = torch.load(features / "conv5.pt", weights_only=False)
    assert conv5["map_shape"] == [256, 6, 6] and conv5["features"].shape[1] == 9216
    conv1 = torch.load(features / "conv1.pt", weights_only=False)
    assert conv1["map_shape"] == [96, 55, 55]  # 290400 values: average-pooled to the largest square grid
    assert conv1["features"].shape[1] == 96 * 9 * 9 <= 9216 < 96 * 10 * 10
    fc7 = torch.load(features / "fc7.pt", weights_only=False)
    assert fc7["features"].shape[1] == 4096


@pytest.mark.slow
def test_fig5_uses_the_papers_ranges_and_table1_the_generated_parts(paper_shape_run):
    cwd, _ = paper_shape_run
    config = paper_shape_config()["invariance"]
    data = torch.load(cwd / "results/paper_shape/analysis/fig5/invariance.pt", weights_only=False)
    assert data["crop"] == 224 and data["image_size"] == 256
    assert data["kinds"]["translation"]["applied"].tolist() == config["translations"]  # pixels at 224: as given
    assert data["kinds"]["scale"]["configured"].tolist() == pytest.approx(config["scales"])
    assert data["kinds"]["rotation"]["configured"].tolist() == config["rotations"]
    assert len(config["rotations"]) == 36 and len(config["translations"]) == 25 and len(config["scales"]) == 17
    table1 = torch.load(cwd / "results/paper_shape/analysis/table1/correspondence.pt", weights_only=False)
    assert len(table1["images"]) == 5 and table1["group"] == "n91000001"
    assert table1["settings"]["crop_size"] == 224 and table1["settings"]["image_size"] == 256


@pytest.mark.slow
def test_every_figure_and_table_was_written(paper_shape_run):
    cwd, _ = paper_shape_run
    figures = sorted(p.stem for p in (cwd / "results/paper_shape/figures").glob("*.png"))
    assert figures == ["fig1_deconvnet", "fig2_top9", "fig3_architecture", "fig4_evolution", "fig5_invariance",
                       "fig6_filters", "fig7_occlusion", "fig8_correspondence", "fig9_caltech256", "training_curves"]
    tables = {p.stem for p in (cwd / "results/paper_shape/tables").glob("*.csv")}
    assert {"table1_correspondence", "table2_imagenet", "table3_architectures", "table4_caltech101",
            "table5_caltech256", "table6_voc2012", "table7_layers", "overlap"} <= tables

"""The whole DAG on the tiny config, partial reruns, the paper config's plan, lint and config errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _workdir(tmp: Path) -> Path:
    """A scratch copy of the workflow (links to the repository's files) so results land in `tmp`."""
    for name in ("Snakefile", "workflow", "config", "tests"):
        (tmp / name).symlink_to(REPO / name)
    return tmp


def _snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    if check and res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


def _planned(res: subprocess.CompletedProcess) -> set[str]:
    """Names of the rules a dry-run would run (from its job-stats table)."""
    text = res.stdout + res.stderr
    rules = set()
    in_table = False
    for line in text.splitlines():
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


@pytest.mark.slow
def test_tiny_study_runs_end_to_end_and_reruns_only_what_changed(tmp_path):
    cwd = _workdir(tmp_path)
    # --replace-workflow-config: tiny.yaml alone (plus the schema's defaults), not merged over config.yaml.
    tiny = ["--configfile", "tests/config/tiny.yaml", "--replace-workflow-config", "--cores", "2"]
    _snakemake(cwd, *tiny)
    table = pd.read_csv(cwd / "results/tables/table2_imagenet.csv")
    assert list(table["model"]) == ["our replication of Krizhevsky, 1 convnet", "1 convnet as per Fig 3",
                                    "(a) 5 convnets as per Fig 3"]
    assert list(table["paper_val_top1"]) == [40.5, 38.4, 36.7]
    assert table["ours_val_top1"].between(0, 100).all()
    assert list(table["ours_convnets"]) == [1, 1, 2]
    # The tiny ZF learns (a study of networks at chance would exercise nothing): its validation errors are
    # fewer than guessing makes, at the 5% level of a one-sided binomial test (3 classes: 2/3 wrong by chance).
    metrics = json.loads((cwd / "results/metrics/zf/seed0.json").read_text())
    wrong = round(metrics["val"]["ten"]["top1_error"] * metrics["val_images"] / 100)
    chance = 1 - 1 / metrics["num_classes"]
    assert binomtest(wrong, metrics["val_images"], chance, alternative="less").pvalue < 0.05, metrics["val"]
    table3 = pd.read_csv(cwd / "results/tables/table3_architectures.csv")
    assert list(table3["arch"]) == ["krizhevsky", "zf", "zf_fc_2048"]
    assert "zf val top-1" in (cwd / "results/tables/table3_architectures.md").read_text()  # seeds 0, 1 spread
    table4 = pd.read_csv(cwd / "results/tables/table4_caltech101.csv")
    assert list(table4.columns) == ["method", "paper_2", "ours_2"] and table4["ours_2"].notna().sum() == 2
    table5 = pd.read_csv(cwd / "results/tables/table5_caltech256.csv")
    assert {"ours_2", "ours_4"} <= set(table5.columns)
    assert len(pd.read_csv(cwd / "results/tables/table6_voc2012.csv")) == 21  # 20 classes and the mean
    table7 = pd.read_csv(cwd / "results/tables/table7_layers.csv")
    assert set(table7["layer"]) == {1, 2, 3, 4, 5, 7}
    overlap = pd.read_csv(cwd / "results/tables/overlap.csv")
    assert list(overlap["planted_found"]) == list(overlap["planted"]) == [1, 1]
    assert (cwd / "results/transfer/scratch/caltech256/n4_split0/score.json").exists()
    assert not (cwd / "results/transfer/scratch/caltech256/n4_split0/.data").exists()  # the split's images: removed
    md = (cwd / "results/tables/table2_imagenet.md").read_text()
    assert "n/a (no test server)" in md
    for name in ("fig1_deconvnet", "fig2_top9", "fig3_architecture", "fig4_evolution", "fig5_invariance",
                 "fig6_filters", "fig7_occlusion", "fig8_correspondence", "fig9_caltech256"):
        for ext in ("png", "pdf"):
            assert (cwd / f"results/figures/{name}.{ext}").stat().st_size > 1000, name
    sizes = pd.read_csv(cwd / "results/tables/fig3_architecture.csv")
    assert "conv5" in set(sizes["layer"])
    stats = pd.read_csv(cwd / "results/tables/fig6_filter_stats.csv")
    assert len(stats) == 3 and stats["gini"].between(0, 1).all()
    for arch in ("zf", "krizhevsky"):
        assert (cwd / f"results/models/{arch}/seed0/epoch1.pt").exists()
        assert (cwd / f"results/logs/train/{arch}_seed0.log").stat().st_size > 0
        assert (cwd / f"results/benchmarks/train/{arch}_seed0.tsv").exists()

    # Nothing left to do; a table-only setting reruns only the tables; one network's width only its chain.
    assert _planned(_snakemake(cwd, *tiny, "-n")) == set()
    crops = _planned(_snakemake(cwd, *tiny, "-n", "--config", "evaluation={table_crops: center}"))
    assert crops == {"table2", "table3", "all"}
    width = _planned(_snakemake(cwd, *tiny, "-n", "--config", "architectures={zf: {width: 0.25}}"))
    assert width == {"train_zf", "evaluate", "table2", "table3", "mine_top9", "top9_projections", "evolution",
                     "unpooling", "filters", "plot_fig3_architecture", "plot_fig1_deconvnet", "plot_fig2_top9",
                     "plot_fig4_evolution", "plot_fig6_filters", "correspondence", "table1_correspondence",
                     "plot_fig8_correspondence", "invariance", "plot_fig5_invariance", "occlusion",
                     "plot_fig7_occlusion",
                     # zf is transfer.arch: its features and classifiers, and the from-scratch baseline
                     "features", "classify_frozen", "voc_ap", "train_scratch",
                     "table4", "table5", "table6", "table7", "plot_fig9_caltech256", "all"}
    assert "train_krizhevsky" not in width and "generate_synthetic" not in width
    fig2 = _planned(_snakemake(cwd, *tiny, "-n", "--config", "visualize={fig2_maps_per_layer: 3}"))
    assert fig2 == {"top9_projections", "plot_fig2_top9", "all"}
    svm = _planned(_snakemake(cwd, *tiny, "-n", "--config", "transfer={svm: {C: 0.1}}"))
    assert svm == {"classify_frozen", "table7", "all"}

    _snakemake(cwd, *tiny, "--report", "results/report.html")
    report = (cwd / "results/report.html").read_text(errors="ignore")
    assert "table2_imagenet" in report and "fig2_top9" in report and "table7_layers" in report


def test_default_plan_and_lint(tmp_path):
    cwd = _workdir(tmp_path)
    plan = _planned(_snakemake(cwd, "-n", "--cores", "2"))
    assert {"generate_synthetic", "prepare_imagenet", "train_zf", "train_krizhevsky", "evaluate",
            "table2", "table3", "features", "classify_frozen", "train_scratch", "overlap", "all"} <= plan
    without = _planned(_snakemake(cwd, "-n", "--cores", "2", "--config", "transfer={enabled: false}"))
    assert {"train_zf", "table3"} <= without
    assert not without & {"features", "classify_frozen", "train_scratch", "overlap", "table7", "prepare_caltech"}
    lint = _snakemake(cwd, "--lint", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_paper_config_needs_the_dataset_paths_and_plans_every_job(tmp_path):
    cwd = _workdir(tmp_path)
    res = _snakemake(cwd, "-n", "--configfile", "config/paper.yaml", check=False)
    assert res.returncode != 0
    assert "data.imagenet_root" in res.stdout + res.stderr
    roots = {}
    for name in ("imagenet", "caltech101", "caltech256", "voc"):
        (tmp_path / name).mkdir()
        roots[f"{name}_root"] = str(tmp_path / name)
    only_imagenet = _snakemake(cwd, "-n", "--configfile", "config/paper.yaml", "--config",
                               f"data={{imagenet_root: {roots['imagenet_root']}}}", check=False)
    assert only_imagenet.returncode != 0 and "data.caltech101_root" in only_imagenet.stdout + only_imagenet.stderr
    data = "data={" + ", ".join(f"{k}: {v}" for k, v in roots.items()) + "}"
    res = _snakemake(cwd, "-n", "--configfile", "config/paper.yaml", "--config", data)
    plan = _planned(res)
    assert "generate_synthetic" not in plan
    assert {"prepare_imagenet", "train_zf", "train_krizhevsky", "train_zf_fc_8192_conv_512_1024_512", "evaluate",
            "table2", "table3", "overlap", "features", "classify_frozen", "train_scratch", "voc_ap", "table4",
            "table5", "table6", "table7", "plot_fig9_caltech256"} <= plan
    counts = {line.split()[0]: int(line.split()[1]) for line in res.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["train_zf"] == 5  # Table 2's ensemble of 5 seeds
    assert counts["train_scratch"] == 5 * (2 + 11)  # 5 splits x (Caltech-101 sizes + Caltech-256 and Fig 9 sizes)


@pytest.mark.parametrize(
    ("override", "named"),
    [("trainig={epochs: 3}", "trainig"), ("training={lr: fast}", "training.lr"),
     ("data={crop_size: 500}", "data.crop_size")],
)
def test_bad_config_is_rejected_naming_the_key(tmp_path, override, named):
    cwd = _workdir(tmp_path)
    res = _snakemake(cwd, "-n", "--config", override, check=False)
    assert res.returncode != 0
    assert f"config {named}" in res.stdout + res.stderr

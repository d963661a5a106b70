"""The whole DAG on the tiny config, run once and checked result by result against the files it was computed from;
partial reruns; the paper config's plan; lint and config errors."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from scipy.stats import binomtest

from zfrepro.model.checkpoint import load_model
from zfrepro.report.figures.architecture import architecture_table
from zfrepro.report.transfer_tables import ours_cell

from conftest import REPO, TINY_CONFIG, drawn_figure, planned_rules, run_python, workflow_copy

TINY = [*TINY_CONFIG, "--cores", "2"]
CONFIG = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
FIGURES = ("fig1_deconvnet", "fig2_top9", "fig3_architecture", "fig4_evolution", "fig5_invariance", "fig6_filters",
           "fig7_occlusion", "fig8_correspondence", "fig9_caltech256", "training_curves")
TABLES = {"table1_correspondence", "table2_imagenet", "table3_architectures", "table4_caltech101", "table5_caltech256",
          "table6_voc2012", "table7_layers", "overlap", "fig3_architecture", "fig4_convergence", "fig5_invariance",
          "fig6_filter_stats", "claims"}
DPI = 150  # the PNGs' resolution; the PDFs are in points, 72 to the inch


def _snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = run_python(cwd, "-m", "snakemake", *args, timeout=600)
    if check and res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _table(path: Path) -> pd.DataFrame:
    """A table's CSV as the strings it holds ('' for an empty cell): the cells are compared as printed."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# ---------------------------------------------------------------------------------------------------------
# The tiny study, run once: every slow test below reads its results (the run takes 3-4 minutes on 2 cores).


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> Path:
    """A workflow folder in which the whole tiny study has run (tests/config/tiny.yaml, --replace-workflow-config:
    that file alone plus the schema's defaults, not merged over config/config.yaml)."""
    cwd = workflow_copy(tmp_path_factory.mktemp("tiny_study"))
    _snakemake(cwd, *TINY)
    return cwd


@pytest.mark.slow
def test_table2_is_computed_from_the_evaluated_models(tiny_study):
    table = pd.read_csv(tiny_study / "results/tiny/tables/table2_imagenet.csv")
    assert list(table["model"]) == ["our replication of Krizhevsky, 1 convnet", "1 convnet as per Fig 3",
                                    "(a) 5 convnets as per Fig 3"]
    assert list(table["paper_val_top1"]) == [40.5, 38.4, 36.7]
    assert list(table["ours_convnets"]) == [1, 1, 2]
    assert list(table["ours_members"]) == ["krizhevsky/seed0", "zf/seed0, zf/seed1", "zf/seed0, zf/seed1"]
    assert list(table["ours_seeds"]) == [1, 2, 1]
    # A single network's row is the mean of the evaluate step's ten-crop errors over its seeds
    # (evaluation.table_crops defaults to ten), with their sample sd: zf has seeds 0 and 1, krizhevsky one.
    for row, (arch, seeds) in enumerate((("krizhevsky", [0]), ("zf", [0, 1]))):
        vals = [_json(tiny_study / f"results/tiny/metrics/{arch}/seed{s}.json")["val"]["ten"] for s in seeds]
        for key in ("top1", "top5"):
            errors = [v[f"{key}_error"] for v in vals]
            assert table.loc[row, f"ours_val_{key}"] == round(float(np.mean(errors)), 2), arch
            if len(errors) > 1:
                assert table.loc[row, f"ours_val_{key}_sd"] == round(float(np.std(errors, ddof=1)), 2), arch
    # The ensemble averages its members' ten-crop softmax outputs (recomputed here from their predictions).
    members = [torch.load(tiny_study / f"results/tiny/predictions/zf/seed{s}.pt", weights_only=True) for s in (0, 1)]
    assert torch.equal(members[0]["labels"], members[1]["labels"])
    probs, labels = torch.stack([m["ten"] for m in members]).mean(0), members[0]["labels"]
    top1 = 100 * (probs.argmax(1) != labels).double().mean().item()
    top5 = 100 * (probs.topk(min(5, probs.shape[1]), 1).indices != labels[:, None]).all(1).double().mean().item()
    assert (table.loc[2, "ours_val_top1"], table.loc[2, "ours_val_top5"]) == (round(top1, 2), round(top5, 2))
    md = (tiny_study / "results/tiny/tables/table2_imagenet.md").read_text()
    assert "n/a (no test server)" in md and f"({len(labels)} images, 3 classes" in md


@pytest.mark.slow
def test_table3_is_computed_from_each_architectures_metrics(tiny_study):
    table3 = pd.read_csv(tiny_study / "results/tiny/tables/table3_architectures.csv")
    assert list(table3["arch"]) == ["krizhevsky", "zf", "zf_fc_2048"]
    for _, row in table3.iterrows():
        seeds = [0, 1] if row["arch"] == "zf" else [0]  # architectures.zf.seeds in tests/config/tiny.yaml
        runs = [_json(tiny_study / f"results/tiny/metrics/{row['arch']}/seed{s}.json") for s in seeds]
        assert row["ours_seeds"] == len(seeds)
        assert row["ours_train_top1"] == round(float(np.mean([m["train"]["top1_error"] for m in runs])), 2)
        assert row["ours_val_top1"] == round(float(np.mean([m["val"]["ten"]["top1_error"] for m in runs])), 2)
        assert row["ours_val_top5"] == round(float(np.mean([m["val"]["ten"]["top5_error"] for m in runs])), 2)
        model, _ = load_model(tiny_study / f"results/tiny/models/{row['arch']}/seed0/final.pt")
        assert row["ours_parameters"] == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_the_tiny_zf_learns(tiny_study):
    # A study of networks at chance would exercise nothing: the tiny ZF's validation errors are fewer than
    # guessing makes, at the 5% level of a one-sided binomial test (3 classes: 2/3 wrong by chance).
    metrics = _json(tiny_study / "results/tiny/metrics/zf/seed0.json")
    wrong = round(metrics["val"]["ten"]["top1_error"] * metrics["val_images"] / 100)
    chance = 1 - 1 / metrics["num_classes"]
    assert binomtest(wrong, metrics["val_images"], chance, alternative="less").pvalue < 0.05, metrics["val"]


@pytest.mark.slow
def test_transfer_tables_4_and_5_are_our_classifier_and_scratch_results(tiny_study):
    results = tiny_study / "results/tiny/transfer"
    for name, dataset, rows in (("table4_caltech101", "caltech101", ("non-pretrained convnet",
                                                                      "ImageNet-pretrained convnet")),
                                ("table5_caltech256", "caltech256", ("non-pretrained", "ImageNet-pretrained"))):
        sizes = CONFIG["transfer"][dataset]["train_sizes"]
        table = _table(tiny_study / f"results/tiny/tables/{name}.csv").set_index("method")
        assert list(table.columns) == [f"{kind}_{n}" for n in sizes for kind in ("paper", "ours")]
        pretrained = pd.read_csv(results / f"pretrained/{dataset}/softmax_fc7.csv")  # Tables 4, 5: softmax on fc7
        for n in sizes:
            runs = sorted(results.glob(f"scratch/{dataset}/n{n}_split*/score.json"))
            scores = [_json(path)["accuracy"] for path in runs]
            assert len(scores) == CONFIG["transfer"]["splits"]
            assert table.loc[rows[0], f"ours_{n}"] == ours_cell(scores)
            accuracies = pretrained[pretrained["train_per_class"] == n].sort_values("split")["accuracy"]
            assert table.loc[rows[1], f"ours_{n}"] == ours_cell(accuracies)
            # Only our two rows have our numbers; the paper has none at these tiny sizes.
            assert (table[f"ours_{n}"] != "").sum() == 2 and (table[f"paper_{n}"] == "").all()


@pytest.mark.slow
def test_scratch_baseline_scores_its_split_and_removes_its_images(tiny_study):
    run = tiny_study / "results/tiny/transfer/scratch/caltech256/n4_split0"
    score = _json(run / "score.json")
    splits = _json(tiny_study / "results/tiny/transfer/splits/caltech256.json")
    assert (score["dataset"], score["train_per_class"], score["split"]) == ("caltech256", 4, 0)
    assert score["test_images"] == len(splits["splits"][0]["test"])
    assert score["classes"] == len(splits["classes"])
    assert not (run / ".data").exists()  # the split's images: removed


@pytest.mark.slow
def test_table6_is_the_voc_ap_per_class_and_their_mean(tiny_study):
    table = pd.read_csv(tiny_study / "results/tiny/tables/table6_voc2012.csv").set_index("class")
    ap = pd.read_csv(tiny_study / "results/tiny/transfer/voc/softmax_fc7.csv").set_index("class")
    assert len(table) == 21 and list(table.index) == [*ap.index, "mean"]  # 20 classes and the mean
    assert (table["ours"].iloc[:20].isna() == ap["ap"].isna()).all()  # AP is undefined without a positive
    defined = ap["ap"].dropna()
    assert np.allclose(table.loc[defined.index, "ours"], defined, rtol=0, atol=0.05 + 1e-9)  # 1 decimal
    assert table.loc["mean", "ours"] == pytest.approx(defined.mean(), abs=0.05 + 1e-9)
    assert table["val_positives"].iloc[:20].tolist() == ap["positives"].tolist()


@pytest.mark.slow
def test_table7_is_each_layers_classifier_at_the_largest_size(tiny_study):
    table7 = _table(tiny_study / "results/tiny/tables/table7_layers.csv")
    assert set(table7["layer"].astype(int)) == {1, 2, 3, 4, 5, 7}  # the paper's rows
    names = {"1": "conv1", "2": "conv2", "3": "conv3", "4": "conv4", "5": "conv5", "7": "fc7"}
    ours = 0
    for _, row in table7.iterrows():
        for dataset, column in (("caltech101", "ours_cal101"), ("caltech256", "ours_cal256")):
            layer = names[row["layer"]]
            path = tiny_study / f"results/tiny/transfer/pretrained/{dataset}/{row['classifier'].lower()}_{layer}.csv"
            if not path.exists():  # a layer the tiny config leaves out (transfer.table7_layers)
                assert row[column] == "", (row["classifier"], row["layer"])
                continue
            df = pd.read_csv(path)
            size = max(CONFIG["transfer"][dataset]["train_sizes"])  # Table 7 uses each set's largest size
            assert row[column] == ours_cell(df[df["train_per_class"] == size]["accuracy"]), (path, row[column])
            ours += 1
    # transfer.table7_layers: conv1, conv5, fc7 -> SVM on 1, 5, 7 and softmax on 5, 7, for both datasets.
    assert ours == 2 * 5


@pytest.mark.slow
def test_overlap_finds_the_planted_duplicates(tiny_study):
    overlap = pd.read_csv(tiny_study / "results/tiny/tables/overlap.csv")
    assert list(overlap["dataset"]) == ["caltech101", "caltech256"]
    planted = [CONFIG["synthetic"][d]["imagenet_duplicates"] for d in overlap["dataset"]]
    assert list(overlap["planted_found"]) == list(overlap["planted"]) == planted == [1, 1]


@pytest.mark.slow
@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_a_real_image_of_its_pdfs_shape(tiny_study, name):
    png = tiny_study / f"results/tiny/figures/{name}.png"
    for ext in ("png", "pdf"):
        assert png.with_suffix(f".{ext}").stat().st_size > 1000, ext
    drawn_figure(png)  # decodes, not one flat colour, its PDF beside it
    with Image.open(png) as im:
        width, height = im.size
    # The PNG is the PDF's page at 150 dpi: same aspect ratio and size (within 2%: matplotlib's tight bounding
    # box measures text slightly differently in the two backends).
    page = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", png.with_suffix(".pdf").read_bytes())
    points = float(page.group(1)), float(page.group(2))
    assert width / height == pytest.approx(points[0] / points[1], rel=0.02)
    assert (width, height) == pytest.approx((points[0] / 72 * DPI, points[1] / 72 * DPI), rel=0.02)


@pytest.mark.slow
def test_fig3_table_is_the_trained_models_architecture(tiny_study):
    model, _ = load_model(tiny_study / "results/tiny/models/zf/seed0/final.pt")  # visualize.arch defaults to zf
    sizes = tiny_study / "results/tiny/tables/fig3_architecture.csv"
    assert sizes.read_text() == architecture_table(model.spec).to_csv(index=False)
    assert "conv5" in set(pd.read_csv(sizes)["layer"])


@pytest.mark.slow
def test_fig6_filter_stats_are_those_of_each_models_layer1_filters(tiny_study):
    stats = pd.read_csv(tiny_study / "results/tiny/tables/fig6_filter_stats.csv")
    assert list(stats["model"]) == ["(a) zf_no_renorm", "(b) krizhevsky", "(c) zf"]
    for _, row in stats.iterrows():
        model, _ = load_model(tiny_study / f"results/tiny/models/{row['model'].split()[1]}/seed0/final.pt")
        w = model.conv_layers()["conv1"].weight.detach().double().numpy()
        assert (row["filters"], row["kernel"]) == (w.shape[0], w.shape[-1])
        # RMS norm of each filter and their Gini coefficient, by the textbook formula (sorted ascending).
        x = np.sort(np.sqrt((w.reshape(len(w), -1) ** 2).mean(1)))
        n = len(x)
        gini = ((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * x.sum())
        assert row["gini"] == pytest.approx(gini, rel=1e-9)
        assert (row["norm_min"], row["norm_max"]) == pytest.approx((x[0], x[-1]), rel=1e-9)


@pytest.mark.slow
def test_fig6_spectra_and_dominance_over_training_are_those_of_the_checkpoints(tiny_study):
    stats = pd.read_csv(tiny_study / "results/tiny/tables/fig6_filter_stats.csv").set_index("model")
    ratios = {}
    for name in ("final", "epoch1"):  # training.checkpoint_epochs: [1]
        model, _ = load_model(tiny_study / f"results/tiny/models/zf_no_renorm/seed0/{name}.pt")
        norms = model.conv_layers()["conv1"].weight.detach().double().pow(2).mean(dim=(1, 2, 3)).sqrt()
        ratios[name] = float(norms.max() / np.median(norms.numpy()))  # an even count: the mean of the middle two
    assert stats.loc["(a) zf_no_renorm", "max_median_peak"] == pytest.approx(max(ratios.values()), rel=1e-9)
    model, _ = load_model(tiny_study / "results/tiny/models/krizhevsky/seed0/final.pt")
    w = model.conv_layers()["conv1"].weight.detach().double()
    power = torch.fft.fft2(w).abs().pow(2).sum(1)  # [n, 11, 11]: each filter's own DFT
    f = torch.fft.fftfreq(w.shape[-1], dtype=torch.float64)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    mid = ((radius >= 0.125) & (radius < 0.375)).double()  # visualize.fig6_mid_band's default
    assert stats.loc["(b) krizhevsky", "mid_share"] == pytest.approx(float(((power * mid).sum((1, 2)) /
                                                                           power.sum((1, 2))).mean()), rel=1e-9)
    assert list(stats["stride"]) == [2, 4, 2] and pd.isna(stats.loc["(a) zf_no_renorm", "l2_alias_share"])
    assert 0 <= stats.loc["(b) krizhevsky", "l2_alias_share"] <= 1


@pytest.mark.slow
def test_claims_scorecard_has_every_claim_with_a_computed_value(tiny_study):
    claims = _table(tiny_study / "results/tiny/tables/claims.csv")
    assert list(claims["claim"]) == [str(n) for n in range(1, 12)]
    assert set(claims["verdict"]) <= {"holds", "does not hold", "inconclusive", "untestable at this scale", "not run"}
    for _, row in claims.iterrows():
        if row["value"] != "not run":
            float(row["value"])  # a number
        if row["verdict"] != "holds":
            assert row["cause"], row["claim"]
        if row["verdict"] == "untestable at this scale":  # with what a run would need
            assert row["needs"], row["claim"]
        assert row["paper_value"] or row["paper_source"].startswith("no number"), row["claim"]
    # one split: claims 10 and 11 have no noise estimate, so no run of this size can tell them
    assert list(claims.loc[claims["claim"].isin(["10", "11"]), "verdict"]) == ["untestable at this scale"] * 2
    # Claims 4 and 5 compare Table 3 rows the tiny config leaves out: not run, naming the key.
    assert list(claims.loc[claims["claim"].isin(["4", "5"]), "verdict"]) == ["not run", "not run"]
    assert "tables.table3" in claims.loc[3, "cause"]
    # Claim 3 is Krizhevsky's mean error minus ZF's over their seeds (zf: seeds 0 and 1).
    errors = {arch: [_json(path)["val"]["ten"]["top1_error"]
                     for path in sorted((tiny_study / f"results/tiny/metrics/{arch}").glob("seed*.json"))]
              for arch in ("krizhevsky", "zf")}
    assert float(claims.loc[2, "value"]) == pytest.approx(np.mean(errors["krizhevsky"]) - np.mean(errors["zf"]),
                                                          abs=1e-4)
    # Claim 9 reads Fig 4's CKA table: conv1 minus conv5 at the kept epoch, averaged over the two zf seeds.
    convergence = pd.read_csv(tiny_study / "results/tiny/tables/fig4_convergence.csv").set_index("layer")
    assert list(convergence.index) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert float(claims.loc[8, "value"]) == pytest.approx(
        convergence.loc["conv1", "epoch 1"] - convergence.loc["conv5", "epoch 1"], abs=2e-4)
    assert "claims" in (tiny_study / "results/tiny/tables/claims.md").read_text().lower()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["zf", "krizhevsky"])
def test_models_logs_and_benchmarks_of_training(tiny_study, arch):
    models = tiny_study / f"results/tiny/models/{arch}/seed0"
    epochs = CONFIG["training"]["epochs"]
    _, first = load_model(models / "epoch1.pt")  # training.checkpoint_epochs: [1]
    _, final = load_model(models / "final.pt")
    assert (first["arch"], first["epoch"], first["seed"], final["epoch"]) == (arch, 1, 0, epochs)
    history = pd.read_csv(models / "metrics.csv")
    assert list(history["epoch"]) == list(range(1, epochs + 1))
    # The log prints each epoch's line with the loss metrics.csv records.
    log = (tiny_study / f"results/tiny/logs/train/{arch}_seed0.log").read_text()
    logged = [float(loss) for loss in re.findall(r"^epoch \d+/\d+: loss ([\d.]+)", log, re.MULTILINE)]
    assert logged == [float(f"{loss:.4f}") for loss in history["train_loss"]]
    benchmark = pd.read_csv(tiny_study / f"results/tiny/benchmarks/train/{arch}_seed0.tsv", sep="\t")
    assert len(benchmark) == 1 and benchmark.loc[0, "s"] >= history["seconds"].sum()  # the job spans the epochs


@pytest.mark.slow
def test_report_holds_every_figure_and_table(tiny_study):
    _snakemake(tiny_study, *TINY, "--report", "results/tiny/report.html")
    report = (tiny_study / "results/tiny/report.html").read_text(errors="ignore")
    assert "table2_imagenet" in report and "fig2_top9" in report and "table7_layers" in report
    # the front page first: the claims' verdicts, then the paper's sections as the report's categories
    claims = pd.read_csv(tiny_study / "results/tiny/tables/claims.csv")
    holds = int((claims["verdict"] == "holds").sum())
    assert "Of the paper's 11 claims, measured on this run" in report and f"holds: <strong>{holds}</strong>" in report
    assert report.index("Generated demo data at an eighth of the paper") < report.index("Of the paper's 11 claims")
    for category in ("1 Claims: what reproduced", "2 Model and training (section 3)", "6 ImageNet 2012 (section 5.1)",
                     "7 Feature generalization (sections 5.2, 5.3)"):
        assert category in report
    assert "zf_seed0" in report and "compare_zf_krizhevsky" in report  # the atlas folders
    tables = sorted((tiny_study / "results/tiny/tables").glob("*.csv"))
    assert {t.stem for t in tables} == TABLES
    files = [*(tiny_study / f"results/tiny/figures/{name}.png" for name in FIGURES), *tables]
    assert [f.name for f in files if f.name not in report] == []


# The plan after a change: nothing for no change; a table-only setting reruns only the tables; one network's
# width only its chain; a figure's option only that figure; a classifier's option only its results.
ZF_WIDTH_CHAIN = {
    "train_zf", "evaluate", "table2", "table3", "mine_top9", "top9_projections", "evolution", "unpooling", "filters",
    "plot_fig3_architecture", "plot_fig1_deconvnet", "plot_fig2_top9", "plot_fig4_evolution", "plot_fig6_filters",
    "correspondence", "table1_correspondence", "plot_fig8_correspondence", "invariance", "plot_fig5_invariance",
    "occlusion", "plot_fig7_occlusion", "convergence", "claims",
    # zf is transfer.arch: its features and classifiers, and the from-scratch baseline
    "features", "classify_frozen", "voc_ap", "train_scratch", "table4", "table5", "table6", "table7",
    "plot_fig9_caltech256", "all",
    # its atlas and the side-by-side page, its training curves, and the report's front page
    "atlas", "atlas_compare", "plot_training_curves", "front_page",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "planned"),
    [
        (None, set()),
        ("evaluation={table_crops: center}", {"table2", "table3", "claims", "front_page", "all"}),
        ("architectures={zf: {width: 0.25}}", ZF_WIDTH_CHAIN),
        ("visualize={fig2_maps_per_layer: 3}", {"top9_projections", "plot_fig2_top9", "front_page", "all"}),
        ("transfer={svm: {C: 0.1}}", {"classify_frozen", "table7", "claims", "front_page", "all"}),
        ("claims={transfer_margin: 30.0}", {"claims", "front_page", "all"}),
    ],
    ids=["nothing", "table_crops", "zf_width", "fig2_maps", "svm_C", "claims_margin"],
)
def test_a_change_reruns_only_what_depends_on_it(tiny_study, change, planned):
    res = _snakemake(tiny_study, *TINY, "-n", *(["--config", change] if change else []))
    plan = planned_rules(res)
    assert plan == planned
    assert "train_krizhevsky" not in plan and "generate_synthetic" not in plan


# ---------------------------------------------------------------------------------------------------------
# Plans and config errors (dry runs, no results)


def test_default_plan_and_lint(tmp_path):
    cwd = workflow_copy(tmp_path)
    plan = planned_rules(_snakemake(cwd, "-n", "--cores", "2"))
    assert {"generate_synthetic", "prepare_imagenet", "train_zf", "train_krizhevsky", "evaluate",
            "table2", "table3", "features", "classify_frozen", "train_scratch", "overlap", "all"} <= plan
    without = planned_rules(_snakemake(cwd, "-n", "--cores", "2", "--config", "transfer={enabled: false}"))
    assert {"train_zf", "table3", "claims"} <= without
    assert not without & {"features", "classify_frozen", "train_scratch", "overlap", "table7", "prepare_caltech"}
    lint = _snakemake(cwd, "--lint", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_generator_option_reaches_every_generate_command(tmp_path):
    """synthetic.generator is in every dataset's generator params, so changing it regenerates all four."""
    cwd = workflow_copy(tmp_path)
    targets = [f"results/demo/data/synthetic/{name}" for name in ("imagenet", "caltech101", "caltech256", "voc")]
    for config, generator in (([], "parts"), (["--config", "synthetic={generator: arrangements}"], "arrangements")):
        res = _snakemake(cwd, "-n", "-p", *config, "--", *targets)
        commands = [line for line in res.stdout.splitlines() if "zfrepro generate" in line]
        assert len(commands) == 4 and all(f'"generator":"{generator}"' in c for c in commands), commands


def test_paper_config_needs_the_dataset_paths_and_plans_every_job(tmp_path):
    cwd = workflow_copy(tmp_path)
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
    plan = planned_rules(res)
    assert "generate_synthetic" not in plan
    assert {"prepare_imagenet", "train_zf", "train_krizhevsky", "train_zf_fc_8192_conv_512_1024_512", "evaluate",
            "table2", "table3", "overlap", "features", "classify_frozen", "train_scratch", "voc_ap", "table4",
            "table5", "table6", "table7", "plot_fig9_caltech256"} <= plan
    counts = {line.split()[0]: int(line.split()[1]) for line in res.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["train_zf"] == 5  # Table 2's ensemble of 5 seeds
    assert counts["train_scratch"] == 5 * (2 + 11)  # 5 splits x (Caltech-101 sizes + Caltech-256 and Fig 9 sizes)


def _planned_resources(res: subprocess.CompletedProcess) -> dict[str, dict[str, str]]:
    """rule -> the resources a dry run printed for its (last) job."""
    found, rule = {}, None
    for line in res.stdout.splitlines():
        if line.startswith("rule ") or line.startswith("localrule "):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:") and rule:
            found[rule] = dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))
    return found


def test_a_new_architecture_gets_its_cluster_resources_from_the_config(tmp_path):
    """No profile entry: a training job's time limit follows from its epochs, the images per epoch and the expected
    throughput (config resources.train), other jobs take resources.jobs by rule name, GPUs the device's request."""
    cwd = workflow_copy(tmp_path)
    for name in ("imagenet", "caltech101", "caltech256", "voc"):
        (tmp_path / name).mkdir()
    extra = tmp_path / "new_arch.yaml"
    extra.write_text(
        "architectures:\n  zf_new: {base: zf, training: {epochs: 35}}\n"
        "tables: {table3: {'ZF new': zf_new}}\n"
        + "data: {" + ", ".join(f"{n}_root: {tmp_path / n}" for n in ("imagenet", "caltech101", "caltech256", "voc"))
        + "}\n")
    res = _snakemake(cwd, "-n", "--forceall", "--configfile", "config/paper.yaml", str(extra))
    plan = _planned_resources(res)
    # paper.yaml: 70 epochs of ImageNet's 1,281,167 images at 1500 images/s, margin 2, 10 minutes to start
    assert plan["train_zf"]["runtime"] == str(10 + 1993)  # 2 x 70 x 1281167 / 1500 / 60 = 1992.9 minutes
    assert plan["train_zf_new"]["runtime"] == str(10 + 997)  # half the epochs: 996.5 minutes
    assert plan["train_zf_new"]["mem_mb"] == "64000" and plan["train_zf_new"]["gpu"] == "1"
    assert plan["evaluate"]["runtime"] == "240" and plan["evaluate"]["gpu"] == "1"
    assert plan["table2"]["runtime"] == "120" and "gpu" not in plan["table2"]  # resources.jobs.default
    gres = _snakemake(cwd, "-n", "--forceall", "--configfile", "config/paper.yaml", str(extra), "--config",
                      "resources={gpu_request: gres, gpu_model: a100}", "gpus_per_training=2")
    plan = _planned_resources(gres)
    assert plan["train_zf_new"]["gres"] == "gpu:a100:2" and "gpu" not in plan["train_zf_new"]
    assert plan["train_zf_new"]["runtime"] == str(10 + 499)  # two GPUs: 498.3 minutes
    assert plan["evaluate"]["gres"] == "gpu:a100:1"
    cpu = _planned_resources(_snakemake(cwd, "-n", "--forceall", "--cores", "2"))
    assert not any("gpu" in r or "gres" in r for r in cpu.values())  # device auto: no GPU request
    # the default: 8 epochs of 20 classes x 160 images at 400 images/s, margin 3: 10 + 3.2 minutes
    assert cpu["train_zf"]["runtime"] == str(10 + 4) and cpu["train_zf"]["mem_mb"] == "8000"


def test_a_misspelt_rule_in_the_resources_is_named(tmp_path):
    cwd = workflow_copy(tmp_path)
    res = _snakemake(cwd, "-n", "--config", "resources={jobs: {evalute: {runtime: 5}}}", check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "config resources.jobs.evalute: no rule of the workflow is called 'evalute'; did you mean evaluate?" in out


@pytest.mark.parametrize(
    ("override", "named"),
    [("trainig={epochs: 3}", "trainig"), ("training={lr: fast}", "training.lr"),
     ("data={crop_size: 500}", "data.crop_size"), ("synthetic={generator: shapes}", "synthetic.generator")],
)
def test_bad_config_is_rejected_naming_the_key(tmp_path, override, named):
    cwd = workflow_copy(tmp_path)
    res = _snakemake(cwd, "-n", "--config", override, check=False)
    assert res.returncode != 0
    assert f"config {named}" in res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------------------
# The report and the feature atlas in a real browser (headless Chromium: tests/browser/install_chromium.sh)


def _chromium_or_skip():
    from test_atlas_browser import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (run tests/browser/install_chromium.sh)")


@pytest.mark.slow
def test_report_in_a_browser_opens_on_the_front_page_and_shows_the_training_curves(tiny_study):
    _chromium_or_skip()
    from test_atlas_browser import chromium, screenshot

    report = tiny_study / "results/tiny/report.html"
    _snakemake(tiny_study, *TINY, "--report", str(report.relative_to(tiny_study)),
               "--report-stylesheet", "workflow/report/style.css")
    work = tiny_study / "results/tiny/browser"
    work.mkdir(parents=True, exist_ok=True)
    harness = work / "report_check.html"
    harness.write_text((REPO / "tests/browser/report_harness.html").read_text() % {
        "report": json.dumps(report.as_uri()), "figure": json.dumps("training_curves.png"),
        "front": json.dumps("What this run reproduced")})
    res = chromium(["--allow-file-access-from-files", "--virtual-time-budget=120000", "--dump-dom", harness.as_uri()],
                   work / "profile")
    found = re.search(r'<pre id="out" class="done">(.*?)</pre>', res.stdout, re.DOTALL)
    assert found, res.stderr[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    assert "error" not in seen, seen
    assert seen["front"]  # the report opens on the front page ...
    assert seen["headings"][1:6] == ["Zeiler & Fergus (2014), reproduced", "What this run was",
                                     "What this run reproduced", "About this run",
                                     "Section by section: the paper beside this run"]
    assert {"atlas/zf_seed0/index.html", "atlas/compare_zf_krizhevsky/index.html"} <= set(seen["links"])
    # At 1400 px the claims table gets the page's width (not a 32rem column beside the rule graph, where each row
    # wrapped onto 6-10 lines) and the page starts at the frame's left edge.
    assert seen["title_left"] >= 0
    assert seen["table"]["width"] > 800 and seen["table"]["tallest_row_lines"] < 6, seen["table"]
    with Image.open(tiny_study / "results/tiny/figures/training_curves.png") as png:
        assert seen["figure_link"]
        assert seen["figure"] == [{"width": png.width, "height": png.height}]  # ... and shows the figure
    pixels = screenshot(report, work / "report_front.png", work / "profile", size="1400,1800")
    assert pixels.std() > 5


@pytest.mark.slow
def test_atlas_of_the_study_in_a_browser_shows_every_map_of_every_layer(tiny_study):
    _chromium_or_skip()
    from test_atlas_browser import browse, screenshot

    atlas = tiny_study / "results/tiny/atlas"
    pages = sorted(atlas.rglob("*.html"))
    results = browse(pages, tiny_study / "results/tiny/browser/atlas_check")
    assert [r["url"] for r in results if r["broken"]] == []  # every image of every page loads
    by_page = {(tiny_study / "results/tiny/browser/atlas_check" / r["url"]).resolve(): r for r in results}
    for arch in ("zf", "krizhevsky"):
        model, _ = load_model(tiny_study / f"results/tiny/models/{arch}/seed0/final.pt")
        for conv in model.spec.convs:
            grids = by_page[(atlas / f"{arch}_seed0/layer_{conv.name}.html").resolve()]["grids"]
            assert [(g["maps"], g["cards"]) for g in grids] == [(conv.out_channels, conv.out_channels)], (arch, conv)
    pixels = screenshot(atlas / "zf_seed0/layer_conv1.html", tiny_study / "results/tiny/browser/atlas_zf_conv1.png",
                        tiny_study / "results/tiny/browser/profile")
    assert pixels.std() > 5

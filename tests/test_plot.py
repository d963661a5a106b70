"""zfrepro.report.plot: the registry of figures is the workflow's (same names, a caption each), and the `plot`
command draws a registered figure from its named inputs."""

from __future__ import annotations

import json
import re

import pandas as pd

from zfrepro.cli import main as cli_main
from zfrepro.model.checkpoint import load_model
from zfrepro.report.figures.architecture import architecture_table
from zfrepro.report.plot import FIGURES

from conftest import REPO, drawn_figure

# A study file registers a figure as `figure("<name>", {inputs}, ...)` (workflow/rules/common.smk).
REGISTERED = re.compile(r"^\s*figure\(\s*\"([^\"]+)\"", re.MULTILINE)


def _workflow_figures() -> list[str]:
    rules = sorted((REPO / "workflow" / "rules").rglob("*.smk"))
    return [name for path in rules for name in REGISTERED.findall(path.read_text())]


def test_figures_are_the_ones_the_workflow_registers():
    registered = _workflow_figures()
    assert len(registered) == len(set(registered)), registered  # one plot rule per name
    assert set(FIGURES) == set(registered)
    assert set(FIGURES) == {"fig1_deconvnet", "fig2_top9", "fig3_architecture", "fig4_evolution", "fig5_invariance",
                            "fig6_filters", "fig7_occlusion", "fig8_correspondence", "fig9_caltech256",
                            "training_curves"}


def test_every_figure_has_a_report_caption():
    # figures.smk gives each plot rule's PNG the caption workflow/report/<name>.rst; a missing one fails --report.
    for name in FIGURES:
        caption = REPO / "workflow" / "report" / f"{name}.rst"
        assert caption.is_file() and caption.read_text().strip(), caption


def test_each_figure_is_drawn_by_the_function_of_its_name():
    assert all(draw.__name__ == name for name, draw in FIGURES.items())


def test_plot_command_draws_fig3_and_its_table_from_a_checkpoint(tiny_zf, tmp_path):
    png, table = tmp_path / "fig3_architecture.png", tmp_path / "fig3_architecture.csv"
    assert cli_main(["plot", "fig3_architecture", "--inputs", json.dumps({"model": str(tiny_zf)}),
                     "--options", json.dumps({"table": str(table)}), "--out", str(png)]) == 0
    drawn_figure(png)
    model, _ = load_model(tiny_zf)
    # The trained model's own architecture, as a table.
    assert table.read_text() == architecture_table(model.spec).to_csv(index=False)
    assert list(pd.read_csv(table).query("operation == 'conv'").layer) == [c.name for c in model.spec.convs]


def test_plot_command_refuses_an_unregistered_figure(capsys, tmp_path):
    try:
        cli_main(["plot", "fig10_nothing", "--inputs", "{}", "--out", str(tmp_path / "x.png")])
    except SystemExit as exit_:
        assert exit_.code == 2
    else:
        raise AssertionError("an unknown figure was accepted")
    assert "argument figure: invalid choice: 'fig10_nothing'" in capsys.readouterr().err


def test_plot_command_draws_the_training_curves(tmp_path):
    runs = {}
    for net, seeds in {"zf": (0, 1), "krizhevsky": (0,)}.items():
        for seed in seeds:
            path = tmp_path / "models" / net / f"seed{seed}" / "metrics.csv"
            path.parent.mkdir(parents=True)
            pd.DataFrame({"epoch": [1, 2, 3], "lr": [0.01, 0.01, 0.001], "train_loss": [3.0, 2.5, 2.0 + seed],
                          "train_top1_error": [90.0, 80.0, 70.0], "val_top1_error_center": [91.0, 85.0, 80.0],
                          "seconds": [1.0] * 3, "images_per_second": [10.0] * 3}).to_csv(path, index=False)
            runs.setdefault(net, []).append(str(path))
    runs["krizhevsky"] = runs["krizhevsky"][0]  # a single path is accepted too
    png = tmp_path / "training_curves.png"
    assert cli_main(["plot", "training_curves", "--inputs", json.dumps(runs),
                     "--options", json.dumps({"data_note": "generated data"}), "--out", str(png)]) == 0
    drawn_figure(png)

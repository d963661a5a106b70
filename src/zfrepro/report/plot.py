"""Every figure of the paper, drawn from the data its analysis computed: one registry, one command.

`FIGURES` maps a figure's name (its file, `results/figures/<name>.png`) to the function that draws it from
named inputs (paths) and options. The `plot` command's choices are its keys, and the workflow's plot rules
are generated from the figures each study registers under the same names (workflow/rules/figures.smk);
a new figure is one function here beside its plotting code. Each drawing module is imported only when its
figure is drawn: every workflow job is one command, and matplotlib's start-up is paid once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zfrepro.io import load_result

Inputs = Mapping[str, Any]  # input name -> path (or a list of paths)
Options = Mapping[str, Any]


def fig1_deconvnet(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.deconvnet import fig1_deconvnet as draw

    data = load_result(inputs["data"])
    draw(data["pooled"], data["switches"], data["unpooled"], data["pool_input"], data["ops"], out,
         window=data["window"])


def fig2_top9(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.deconvnet import fig2_top9 as draw

    draw(load_result(inputs["data"])["layers"], out)


def fig3_architecture(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.model.checkpoint import load_model
    from zfrepro.report.figures.architecture import fig3_architecture as draw

    model, _ = load_model(inputs["model"])
    draw(model.spec, out, options["table"])  # the architecture as a table too: results/tables/


def fig4_evolution(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.deconvnet import fig4_evolution as draw

    data = load_result(inputs["data"])
    draw(data["projections"], data["epochs"], data["labels"], out)


def fig5_invariance(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.invariance import fig5_invariance as draw

    draw(load_result(inputs["data"]), out)


def fig6_filters(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.analysis.filters import FilterStudy
    from zfrepro.report.figures.filters import fig6_filters as draw

    study = FilterStudy.from_saved(load_result(inputs["data"]))
    draw(study.layer1_panels(), study.layer2_panels(), out)


def fig7_occlusion(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.occlusion import fig7_occlusion as draw

    draw(load_result(inputs["data"]), out)


def fig8_correspondence(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.correspondence import fig8_correspondence as draw

    data = load_result(inputs["data"])
    draw(data["display"], data["columns"], out, title=data["class_name"])


def fig9_caltech256(inputs: Inputs, options: Options, out: Path) -> None:
    from zfrepro.report.figures.transfer import fig9 as draw

    draw(inputs["pretrained"], inputs["scratch"], out, options.get("data_note", ""))


def training_curves(inputs: Inputs, options: Options, out: Path) -> None:
    """Every input is one network: its label -> the metrics.csv of each of its seeds (a path or a list)."""
    from zfrepro.report.figures.training import training_curves as draw

    draw(inputs, out, options.get("data_note", ""), cells_per_row=options.get("cells_per_row"))


FIGURES: dict[str, Callable[[Inputs, Options, Path], None]] = {
    draw.__name__: draw
    for draw in (fig1_deconvnet, fig2_top9, fig3_architecture, fig4_evolution, fig5_invariance, fig6_filters,
                 fig7_occlusion, fig8_correspondence, fig9_caltech256, training_curves)
}



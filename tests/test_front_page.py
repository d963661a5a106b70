"""The report's front page (zfrepro.report.front_page) and the report's sections (zfrepro.report.sections): the
claims' counts and every table's paper values beside ours, checked on hand-made tables; the page is valid RST whose
links name the report's files."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from docutils.core import publish_parts

from zfrepro.report import front_page as fp
from zfrepro.report import sections
from zfrepro.report.plot import FIGURES


def _claims(path):
    pd.DataFrame({
        "claim": [1, 2, 3, 4],
        "statement": ["s1", "s2", "s3", "s4"],
        "quantity": ["ratio", "share", "error difference", "error difference"],
        "threshold": [2, 0, 0, 0],
        "value": [2.5, 0.1, -1.0, float("nan")],
        "low": [2.2, -0.3, -2.0, float("nan")],
        "high": [2.9, 0.4, -0.5, float("nan")],
        "verdict": ["holds", "inconclusive", "does not hold", "not run"],
    }).to_csv(path, index=False)
    return path


def _rendered(text: str) -> str:
    """The page as Snakemake renders it: Jinja's raw markers dropped, a link target per referenced file."""
    names = set(re.findall(r"`([^`]+)`_", text))
    text += "\n" + "\n".join(f".. _{name}: javascript:show('{name}')" for name in sorted(names))
    return publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})["html_body"]


def test_paper_values_beside_ours_with_the_seed_sd():
    table = pd.DataFrame({"model": ["a", "b"], "paper_val_top1": [40.5, 38.4], "ours_val_top1": [10.0, 8.0],
                          "ours_val_top1_sd": [float("nan"), 1.5], "paper_test_top5": [16.0, None],
                          "ours_seeds": [1, 3]})
    got = fp.paper_beside_ours(table)
    assert list(got.columns) == ["model", "paper val top1", "ours val top1", "paper test top5"]
    assert list(got["ours val top1"]) == ["10", "8 ± 1.5"]  # one seed: no sd
    assert fp.paper_beside_ours(pd.DataFrame({"layer": ["conv1"], "epoch 1": [0.5]})) is None


def test_table6_keeps_the_bare_ours_column():
    table = pd.DataFrame({"class": ["cat"], "paper_sande2012": [1.0], "paper_zf2014": [2.0], "ours": [3.0],
                          "val_positives": [4]})
    assert list(fp.paper_beside_ours(table).columns) == ["class", "paper sande2012", "paper zf2014", "ours"]


def test_front_page_counts_the_verdicts_and_shows_every_table(tmp_path):
    claims = _claims(tmp_path / "claims.csv")
    pd.DataFrame({"model": ["ZF"], "paper_val_top1": [38.4], "ours_val_top1": [7.25],
                  "ours_val_top1_sd": [0.5]}).to_csv(tmp_path / "table2_imagenet.csv", index=False)
    pd.DataFrame({"layer": ["conv1"], "epoch 1": [0.79]}).to_csv(tmp_path / "fig4_convergence.csv", index=False)
    text = fp.front_page(claims, {"table2_imagenet": tmp_path / "table2_imagenet.csv",
                                  "fig4_convergence": tmp_path / "fig4_convergence.csv"},
                         {"fig2_top9": tmp_path / "fig2_top9.png"}, "Title", "An intro.",
                         {"atlas": [tmp_path / "atlas" / "zf_seed0", tmp_path / "atlas" / "compare_zf_krizhevsky"]},
                         tmp_path)
    assert "Of the paper's 4 claims" in text
    assert ("holds: **1**, does not hold: **1**, inconclusive: **1**, untestable at this scale: **0**, not run: **1**"
            in text)
    assert text.index("What this run reproduced") < text.index("About this run") < text.index("An intro.")
    assert "2.5 [2.2, 2.9]" in text
    html = _rendered(text)
    assert "7.25 ± 0.5" in html and "38.4" in html  # Table 2: paper beside ours
    for name in ("claims.csv", "table2_imagenet.csv", "fig4_convergence.csv", "fig2_top9.png"):
        assert f"javascript:show('{name}')" in html  # a link to each file
    for name in ("zf_seed0", "compare_zf_krizhevsky"):  # folders: linked beside the report
        assert f'href="atlas/{name}/index.html"' in html
    assert "no published values to compare" in html  # fig4_convergence has none
    # the paper's section order: the ImageNet section (Table 2) after Visualization (Figs 2, 4)
    assert html.index("Visualization (sections 2, 4)") < html.index("ImageNet 2012 (section 5.1)")


def test_command_writes_the_page_for_jinja_literal(tmp_path):
    claims = _claims(tmp_path / "claims.csv")
    out = tmp_path / "front_page.rst"
    from zfrepro.cli import main

    assert main(["front-page", "--claims", str(claims), "--tables", "{}", "--figures", "{}", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("{% raw %}\n") and text.rstrip().endswith("{% endraw %}")


def test_every_figure_and_table_has_a_report_section():
    names = set(FIGURES) | {"claims", "table1_correspondence", "table2_imagenet", "table3_architectures",
                            "table4_caltech101", "table5_caltech256", "table6_voc2012", "table7_layers", "overlap",
                            "fig4_convergence", "fig5_invariance", "fig6_filter_stats"}
    for name in names:
        assert sections.item(name).category in sections.CATEGORIES, name
    assert sorted(sections.CATEGORIES) == list(sections.CATEGORIES)  # Snakemake sorts categories by name
    with pytest.raises(KeyError, match="add it to zfrepro.report.sections.ITEMS"):
        sections.item("fig10_new")


def test_a_cell_that_looks_like_a_list_item_stays_text(tmp_path):
    table = pd.DataFrame({"model": ["(a) 5 convnets as per Fig 3", "1. first"], "paper_val_top1": [36.7, 1.0],
                          "ours_val_top1": [30.0, 2.0]})
    table.to_csv(tmp_path / "table2_imagenet.csv", index=False)
    html = _rendered(fp.front_page(None, {"table2_imagenet": tmp_path / "table2_imagenet.csv"}, {}, "T"))
    assert "(a) 5 convnets as per Fig 3" in html and "1. first" in html and "<ol" not in html


def test_a_figure_with_a_table_is_listed_once(tmp_path):
    pd.DataFrame({"transformation": ["scale"], "p(true) mean": [0.7]}).to_csv(tmp_path / "fig5.csv", index=False)
    text = fp.front_page(None, {"fig5_invariance": tmp_path / "fig5.csv"}, {"fig5_invariance": tmp_path / "f.png"}, "T")
    assert text.count("**Fig 5**") == 2  # the figure's line and its table's line, once each


def _scorecard(path):
    pd.DataFrame({
        "claim": [1, 3, 6], "quantity": ["ratio", "error difference", "change"], "threshold": [2, 0, 0],
        "value": ["not run", 1.0, 0.2], "low": ["", -3.0, 0.1], "high": ["", 5.0, 0.3],
        "mde": ["", 15.17, 0.05], "paper_value": ["", 2.1, ""],
        "verdict": ["not run", "untestable at this scale", "holds"],
        "needs": ["", "about 105 seeds of each network (it has 2)", ""],
        "cause": ["needs published weights' training", "the paper's effect is below", ""],
    }).to_csv(path, index=False)
    return path


def test_front_page_says_what_the_run_was_then_the_counts(tmp_path):
    run = {"source": "synthetic", "published": {}, "widths": {"zf": 0.25, "krizhevsky": 0.25}, "crop_size": 84}
    text = fp.front_page(_scorecard(tmp_path / "claims.csv"), {}, {}, "T", run=run)
    assert "**Generated demo data at quarter width**" in text and "84-pixel crops" in text
    assert text.index("What this run was") < text.index("Of the paper's 3 claims")
    assert ("holds: **1**, does not hold: **0**, inconclusive: **0**, untestable at this scale: **1**, "
            "not run: **1**") in text
    assert "Claim 3 needs: about 105 seeds of each network (it has 2)" in text
    assert "Claim 1 not run: needs published weights' training" in text
    html = _rendered(text)
    assert "detectable (80% power)" in html and "15.17" in html and "2.1" in html


def test_describe_run_from_the_configuration():
    published = fp.describe_run({"source": "real", "published": {"zf": "zfnet", "krizhevsky": "alexnet"},
                                 "widths": {}, "crop_size": 224})
    assert published.startswith("**Published networks on real images**: zf (zfnet), krizhevsky (alexnet)")
    assert "cannot run on published weights" in published
    assert fp.describe_run({"source": "real", "published": {}, "widths": {"zf": 1.0, "k": 1}}).startswith(
        "**The full protocol**")
    assert "an eighth of the paper's width" in fp.describe_run({"source": "synthetic", "widths": {"zf": 0.125}})
    assert "widths 0.25-0.5" in fp.describe_run({"source": "synthetic", "widths": {"a": 0.25, "b": 0.5}})
    assert "not of the paper" in fp.describe_run({"source": "synthetic", "published": {"zf": "zfnet"}})

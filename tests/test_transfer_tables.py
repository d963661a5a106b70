"""zfrepro.report.transfer_tables: Tables 4-7 from hand-made result files, paper numbers and our mean ± sd checked
by hand, and the claim sentences."""

from __future__ import annotations

import argparse
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from zfrepro.commands import transfer as transfer_commands
from zfrepro.data.datasets import VOC_CLASSES
from zfrepro.errors import ConfigError, DataError
from zfrepro.report import paper, transfer_tables
from zfrepro.report.transfer_tables import ours_cell, paper_cell, table4, table5, table6, table7

PM = "\u00b1"


def _csv(path, dataset, classifier, layer, accuracies):
    """accuracies: {train_per_class: [accuracy of split 0, split 1, ...]}."""
    rows = [{"dataset": dataset, "classifier": classifier, "layer": layer, "train_per_class": n, "split": s,
             "accuracy": a} for n, accs in accuracies.items() for s, a in enumerate(accs)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _scratch(tmp_path, dataset, scores):
    """scores: {train_per_class: [accuracy per split]} -> score.json paths."""
    paths = []
    for n, accs in scores.items():
        for s, a in enumerate(accs):
            path = tmp_path / f"{dataset}_n{n}_split{s}.json"
            path.write_text(json.dumps({"dataset": dataset, "train_per_class": n, "split": s, "accuracy": a,
                                        "test_images": 100, "classes": 4}))
            paths.append(path)
    return paths


def _splits(path, dataset, classes, test_per_class):
    path.write_text(json.dumps({"dataset": dataset, "seed": 7, "sizes": [15, 30], "test_per_class": test_per_class,
                                "classes": classes, "splits": []}))
    return path


def test_cells_are_formatted_like_the_paper():
    assert paper_cell(81.4, 0.33) == f"81.4 {PM} 0.33"
    assert paper_cell(73.2, None) == "73.2" and paper_cell(float("nan"), 1.0) is None
    assert paper_cell(48.0, 0.2) == f"48.0 {PM} 0.2" and paper_cell(9.0, 1.4) == f"9.0 {PM} 1.4"
    assert ours_cell([80.0, 82.0, 84.0]) == f"82.0 {PM} 2.0"
    assert ours_cell([40.04]) == "40.0" and ours_cell([]) is None


def test_table4_puts_our_mean_and_sd_beside_the_paper(tmp_path):
    pretrained = _csv(tmp_path / "p.csv", "caltech101", "softmax", "fc7", {15: [80, 82, 84], 30: [90, 91, 95]})
    scratch = _scratch(tmp_path, "caltech101", {15: [20.0, 30.0], 30: [40.0]})
    classes = [f"c{i}" for i in range(101)] + ["BACKGROUND_Google"]
    splits = _splits(tmp_path / "s.json", "caltech101", classes, 50)
    df, footnote = table4(pretrained, scratch, "generated data (not the real images)", splits)
    t = df.set_index("method")
    assert list(t.index) == list(paper.TABLE4["method"])
    assert list(df.columns) == ["method", "paper_15", "ours_15", "paper_30", "ours_30"]
    assert t.loc["Bo et al. 2013", "paper_30"] == f"81.4 {PM} 0.33" and pd.isna(t.loc["Bo et al. 2013", "paper_15"])
    assert t.loc["Jianchao et al. 2009", "paper_15"] == "73.2" and pd.isna(t.loc["Jianchao et al. 2009", "ours_15"])
    assert t.loc["ImageNet-pretrained convnet", "paper_15"] == f"83.8 {PM} 0.5"
    assert t.loc["ImageNet-pretrained convnet", "ours_15"] == f"82.0 {PM} 2.0"
    # 90, 91, 95: mean 92, sample sd sqrt((4 + 1 + 9) / 2) = sqrt(7) = 2.65
    assert t.loc["ImageNet-pretrained convnet", "ours_30"] == f"92.0 {PM} {math.sqrt(7):.1f}"
    assert t.loc["non-pretrained convnet", "ours_15"] == f"25.0 {PM} {math.sqrt(50):.1f}"
    assert t.loc["non-pretrained convnet", "ours_30"] == "40.0"
    for words in ("generated data", "102 classes", "background class included", "up to 50 test images",
                  "chance level 0.98%", "layer 7 (fc7)", "centre crop", "3 splits", "1/2 splits"):
        assert words in footnote, words

    from zfrepro.report.write import write_table

    write_table(df, tmp_path / "t.csv", tmp_path / "t.md", "Table 4", footnote)
    md = (tmp_path / "t.md").read_text()
    assert re.search(rf"\| Bo et al. 2013 +\| - +\| - +\| 81.4 {PM} 0.33 +\| - +\|", md), md
    assert pd.read_csv(tmp_path / "t.csv")["ours_15"].iloc[3] == f"82.0 {PM} 2.0"


def test_table4_adds_columns_for_our_extra_sizes_and_rejects_other_datasets(tmp_path):
    pretrained = _csv(tmp_path / "p.csv", "caltech101", "softmax", "fc7", {5: [50.0], 15: [60.0]})
    df, footnote = table4(pretrained, [], "real data")
    assert list(df.columns) == ["method", "paper_5", "ours_5", "paper_15", "ours_15", "paper_30", "ours_30"]
    assert df["paper_5"].isna().all() and df["ours_30"].isna().all()
    assert pd.isna(df.set_index("method").loc["non-pretrained convnet", "ours_15"])
    assert "no splits file" in footnote
    with pytest.raises(DataError, match="caltech256"):
        table4(_csv(tmp_path / "q.csv", "caltech256", "softmax", "fc7", {15: [1.0]}), [], "x")


def test_table5_has_the_four_sizes_and_the_clutter_choice(tmp_path):
    accs = {n: [10.0 + n, 12.0 + n] for n in (15, 30, 45, 60)}
    accs[4] = [1.0, 2.0, 3.0]  # a Figure 9 size with more splits: left out when the sizes are given
    pretrained = _csv(tmp_path / "p.csv", "caltech256", "softmax", "fc7", accs)
    splits = _splits(tmp_path / "s.json", "caltech256", [f"{i:03d}.x" for i in range(1, 257)], 25)
    df, footnote = table5(pretrained, _scratch(tmp_path, "caltech256", {60: [5.0, 7.0]}), "generated data", splits,
                          sizes=[60, 15, 30, 45])
    assert list(df.columns) == ["method", *(f"{w}_{n}" for n in (15, 30, 45, 60) for w in ("paper", "ours"))]
    assert "3 splits" not in footnote
    t = df.set_index("method")
    assert t.loc["Sohn et al. 2011", "paper_45"] == "45.7" and t.loc["Bo et al. 2013", "paper_60"] == f"55.2 {PM} 0.3"
    assert t.loc["Bo et al. 2013", "paper_30"] == f"48.0 {PM} 0.2"
    assert t.loc["ImageNet-pretrained", "ours_45"] == f"56.0 {PM} {math.sqrt(2):.1f}"
    assert t.loc["non-pretrained", "ours_60"] == f"6.0 {PM} 1.4" and pd.isna(t.loc["non-pretrained", "ours_15"])
    assert "clutter class excluded" in footnote and "256 classes" in footnote and "up to 25 test" in footnote


def test_table6_lists_our_ap_per_class_and_the_mean(tmp_path):
    ap = np.linspace(40, 90, 20)
    ap[5] = np.nan  # bus: no positive val image
    pd.DataFrame({"class": VOC_CLASSES, "ap": ap, "positives": [3] * 20, "images": [30] * 20,
                  "note": [""] * 20}).to_csv(tmp_path / "voc.csv", index=False)
    df, footnote = table6(tmp_path / "voc.csv", "generated data")
    assert list(df["class"]) == [*VOC_CLASSES, "mean"]
    t = df.set_index("class")
    assert t.loc["aeroplane", "paper_zf2014"] == 96.0 and t.loc["aeroplane", "paper_sande2012"] == 92.0
    assert t.loc["aeroplane", "ours"] == 40.0 and t.loc["tvmonitor", "ours"] == 90.0
    assert pd.isna(t.loc["bus", "ours"]) and t.loc["bus", "val_positives"] == 3
    assert t.loc["mean", "paper_zf2014"] == 79.0 and t.loc["mean", "paper_yan2012"] == 82.2
    assert t.loc["mean", "ours"] == pytest.approx(round(np.nanmean(ap), 1))
    assert "val split" in footnote and "not the test server" in footnote and "19 classes" in footnote


def test_table7_maps_layers_to_numbers_and_keeps_the_paper_rows(tmp_path):
    csvs = [
        _csv(tmp_path / "a.csv", "caltech101", "svm", "conv1", {15: [10.0, 12.0], 30: [40.0, 44.0]}),
        _csv(tmp_path / "b.csv", "caltech101", "softmax", "fc7", {30: [85.0, 87.0]}),
        _csv(tmp_path / "c.csv", "caltech256", "svm", "fc6", {60: [70.0, 72.0]}),
        _csv(tmp_path / "d.csv", "caltech256", "softmax", "fc7", {60: [73.0, 73.0]}),
    ]
    df, footnote = table7(csvs, "generated data")
    keys = list(zip(df["classifier"], df["layer"], strict=True))
    assert keys[:8] == list(zip(paper.TABLE7["classifier"], paper.TABLE7["layer"], strict=True))
    assert keys[8:] == [("SVM", 6)]  # ours only: after the paper's rows
    t = df.set_index(["classifier", "layer"])
    assert t.loc[("SVM", 1), "paper_cal101"] == f"44.8 {PM} 0.7"
    assert t.loc[("SVM", 1), "paper_cal256"] == f"24.6 {PM} 0.4"
    assert t.loc[("SVM", 1), "ours_cal101"] == f"42.0 {PM} {math.sqrt(8):.1f}"  # the largest size, 30
    assert t.loc[("softmax", 7), "ours_cal256"] == f"73.0 {PM} 0.0"
    assert t.loc[("SVM", 6), "ours_cal256"] == f"71.0 {PM} 1.4" and pd.isna(t.loc[("SVM", 6), "paper_cal256"])
    assert pd.isna(t.loc[("SVM", 5), "ours_cal101"])
    assert "Caltech-101 30 training images per class, 2 splits" in footnote
    at15 = table7(csvs[:1], "x", {"caltech101": 15})[0].set_index(["classifier", "layer"])
    assert at15.loc[("SVM", 1), "ours_cal101"] == f"11.0 {PM} 1.4"
    with pytest.raises(ConfigError, match="no result at that size"):
        table7(csvs, "x", {"caltech256": 30})
    bad = _csv(tmp_path / "e.csv", "caltech101", "svm", "pool9", {30: [1.0]})
    with pytest.raises(DataError, match="pool9"):
        table7([bad], "x")


def test_table_commands_write_csv_and_markdown(tmp_path):
    pretrained = _csv(tmp_path / "p.csv", "caltech101", "softmax", "fc7", {15: [80.0, 82.0]})
    parser = argparse.ArgumentParser()
    transfer_commands.configure_table4_parser(parser)
    args = parser.parse_args(["--pretrained", str(pretrained), "--data-note", "generated data",
                              "--out-csv", str(tmp_path / "t4.csv"), "--out-md", str(tmp_path / "t4.md")])
    transfer_commands.table4_command(args)
    # The files hold the table and footnote that table4() computes from the same results file.
    expected, footnote = table4(pretrained, [], "generated data")
    assert (tmp_path / "t4.csv").read_text() == expected.to_csv(index=False)
    md = (tmp_path / "t4.md").read_text()
    assert md.startswith("# Table 4: Caltech-101 mean per-class accuracy (%)\n") and md.endswith(f"\n{footnote}\n")
    assert pd.read_csv(tmp_path / "t4.csv").set_index("method").loc["ImageNet-pretrained convnet", "ours_15"] \
        == f"81.0 {PM} 1.4"
    parser = argparse.ArgumentParser()
    transfer_commands.configure_table7_parser(parser)
    args = parser.parse_args(["--inputs", json.dumps([str(pretrained)]), "--sizes", '{"caltech101": 15}',
                              "--data-note", "x", "--out-csv", str(tmp_path / "t7.csv"),
                              "--out-md", str(tmp_path / "t7.md")])
    transfer_commands.table7_command(args)
    assert pd.read_csv(tmp_path / "t7.csv").set_index(["classifier", "layer"]).loc[("softmax", 7), "ours_cal101"] \
        == f"81.0 {PM} 1.4"


def test_claim_sentences_are_computed_from_the_results():
    pretrained = pd.DataFrame({"train_per_class": [15, 15, 30], "accuracy": [80.0, 70.0, 90.0]})
    scratch = pd.DataFrame({"train_per_class": [15, 30, 30], "accuracy": [10.0, 40.0, 20.0]})
    assert transfer_tables.claim10(pretrained, scratch).endswith("+65.0 at 15, +60.0 at 30.")
    rising = pd.DataFrame({"dataset": ["caltech101"] * 3, "row_classifier": ["SVM"] * 3, "row_layer": [1, 5, 7],
                           "accuracy": [40.0, 60.0, 70.0]})
    assert "Caltech-101: grows with every layer (best layer 7, 70.0%)" in transfer_tables.claim11(rising)
    falling = rising.assign(accuracy=[90.0, 60.0, 70.0])
    assert "Caltech-101: does not (best layer 1, 90.0%)" in transfer_tables.claim11(falling)

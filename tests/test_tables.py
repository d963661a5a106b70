"""Table 2 from metrics files, and the stored paper numbers checked against the paper text."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from zfrepro import paper
from zfrepro.errors import ConfigError, DataError
from zfrepro.tables import table2, table2_footnote, write_table


def _metrics(tmp_path, name, top1_center, top1_ten):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "arch": name, "seed": 0, "epochs": 12, "num_classes": 20, "chance_top1_error": 95.0,
        "train_subset_images": 1000, "val_images": 800, "train": {"top1_error": 10.0, "top5_error": 1.0},
        "val": {"center": {"top1_error": top1_center, "top5_error": 5.0},
                "ten": {"top1_error": top1_ten, "top5_error": 4.0}},
    }))
    return path


def test_table2_puts_paper_values_beside_ours(tmp_path):
    rows = {"our replication of Krizhevsky, 1 convnet": _metrics(tmp_path, "krizhevsky", 30.0, 28.123),
            "1 convnet as per Fig 3": _metrics(tmp_path, "zf", 25.0, 24.0)}
    df = table2(rows, crops="ten")
    assert list(df["model"]) == list(rows)
    assert list(df["paper_val_top1"]) == [40.5, 38.4]
    assert list(df["paper_val_top5"]) == [18.1, 16.5]
    assert list(df["ours_val_top1"]) == [28.12, 24.0]
    assert df["paper_test_top5"].isna().all()
    center = table2(rows, crops="center")
    assert list(center["ours_val_top1"]) == [30.0, 25.0]

    write_table(df, tmp_path / "t.csv", tmp_path / "t.md", "Table 2", table2_footnote(rows, "ten"))
    assert pd.read_csv(tmp_path / "t.csv")["ours_val_top1"].tolist() == [28.12, 24.0]
    md = (tmp_path / "t.md").read_text()
    assert "| our replication of Krizhevsky, 1 convnet |" in md and "ten crops" in md and "800 images" in md


def test_table2_rejects_unknown_rows_and_missing_metrics(tmp_path):
    with pytest.raises(ConfigError, match="tables.table2"):
        table2({"my model": _metrics(tmp_path, "zf", 1, 1)})
    with pytest.raises(DataError, match="run the evaluate step"):
        table2({"1 convnet as per Fig 3": tmp_path / "absent.json"})


def test_paper_tables_hold_the_published_values():
    t2 = paper.TABLE2.set_index("model")
    assert t2.loc["1 convnet as per Fig 3", "val_top1"] == 38.4
    assert t2.loc["6 convnets, (a) and (b) combined", "test_top5"] == 14.8
    assert len(paper.TABLE3) == 12 and paper.TABLE3["val_top5"].iloc[-1] == 16.9
    assert paper.TABLE6["zf2014"].mean() == pytest.approx(paper.TABLE6_MEAN["zf2014"], abs=0.05)
    assert paper.TABLE1.set_index("occlusion").loc["random", "layer5_mean"] == 0.107


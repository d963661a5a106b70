"""zfrepro.report.write: every table as a CSV that reads back to the same frame and a Markdown file with its title,
the table (missing values shown as "-") and its footnote."""

from __future__ import annotations

import math

import pandas as pd

from zfrepro.report.write import write_table

TABLE = pd.DataFrame({
    "model": ["1 convnet as per Fig 3", "(a) 5 convnets as per Fig 3"],
    "paper_val_top1": [38.4, 36.7],
    "ours_val_top1": [41.25, math.nan],  # a value we have no result for
    "ours_convnets": [1, 5],
    "ours_members": ["zf/seed0", None],
})


def test_csv_reads_back_equal(tmp_path):
    write_table(TABLE, tmp_path / "t.csv", tmp_path / "t.md", "Table 2", "note")
    back = pd.read_csv(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(back, TABLE.fillna({"ours_members": math.nan}))
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "model,paper_val_top1,ours_val_top1,ours_convnets," \
                                                                "ours_members"  # no index column


def test_markdown_has_the_title_the_table_and_the_footnote(tmp_path):
    write_table(TABLE, tmp_path / "t.csv", tmp_path / "t.md", "Table 2: ImageNet classification error (%)",
                "Ten crops; 4 images.")
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[0] == "# Table 2: ImageNet classification error (%)"
    assert lines[1] == "" and lines[-2] == "" and lines[-1] == "Ten crops; 4 images."
    header, rule, *rows = lines[2:-2]
    assert [cell.strip() for cell in header.strip("|").split("|")] == list(TABLE.columns)
    assert set(rule) <= set("|-: ")
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert cells == [["1 convnet as per Fig 3", "38.4", "41.25", "1", "zf/seed0"],
                     ["(a) 5 convnets as per Fig 3", "36.7", "-", "5", "-"]]  # missing values: "-", not "nan"


def test_write_table_replaces_an_older_table_and_leaves_no_temporary_files(tmp_path):
    (tmp_path / "t.csv").write_text("stale\n")
    write_table(TABLE.head(1), tmp_path / "t.csv", tmp_path / "t.md", "T", "f")
    assert len(pd.read_csv(tmp_path / "t.csv")) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["t.csv", "t.md"]

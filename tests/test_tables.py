"""zfrepro.report.tables: Table 2 from prediction files (ensembles averaged by hand), Table 3 from metrics files,
beside the paper's numbers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from zfrepro.errors import ConfigError, DataError
from zfrepro.report.tables import (
    ensemble_errors,
    table2,
    table2_footnote,
    table3,
    table3_footnote,
)
from zfrepro.report.write import write_table


def _predictions(tmp_path, name, seed, probs, labels):
    path = tmp_path / f"{name}_seed{seed}.pt"
    probs = torch.tensor(probs, dtype=torch.float32)
    torch.save({"arch": name, "seed": seed, "epochs": 12, "labels": torch.tensor(labels),
                "classes": [f"c{i}" for i in range(probs.shape[1])], "center": probs, "ten": probs}, path)
    return path


def test_table2_puts_paper_values_beside_ours_and_averages_ensembles(tmp_path):
    labels = [0, 1, 2, 0]
    # Model A is right on images 0, 1; model B on 0, 2, 3; their average (hand-computed) on all four.
    a = _predictions(tmp_path, "zf", 0, [[.6, .3, .1], [.2, .7, .1], [.5, .1, .4], [.2, .7, .1]], labels)
    b = _predictions(tmp_path, "zf", 1, [[.8, .1, .1], [.5, .1, .4], [.1, .1, .8], [.9, .05, .05]], labels)
    k = _predictions(tmp_path, "krizhevsky", 0, [[.1, .2, .7], [.2, .7, .1], [.1, .1, .8], [.1, .8, .1]], labels)
    rows = {"our replication of Krizhevsky, 1 convnet": {"seeds": [k]}, "1 convnet as per Fig 3": {"seeds": [a, b]},
            "(a) 5 convnets as per Fig 3": {"ensemble": [a, b]}}
    df = table2(rows, crops="ten")
    assert list(df["model"]) == list(rows)
    assert list(df["paper_val_top1"]) == [40.5, 38.4, 36.7]
    assert list(df["paper_val_top5"]) == [18.1, 16.5, 15.3]
    # A alone: 50% wrong, B alone: 25%, so the ZF row is their mean 37.5 with sd |50-25|/sqrt(2) = 17.68.
    # Averages of A and B: [.7,.2,.1] [.35,.4,.25] [.3,.1,.6] [.55,.375,.075]; Krizhevsky right on 1 and 2.
    assert list(df["ours_val_top1"]) == [50.0, 37.5, 0.0]
    assert df["ours_val_top1_sd"].iloc[1] == 17.68
    assert df["ours_val_top1_sd"].iloc[[0, 2]].isna().all()  # one seed / an ensemble: no seed spread
    assert list(df["ours_val_top5"]) == [0.0, 0.0, 0.0]
    assert list(df["ours_convnets"]) == [1, 1, 2]
    assert list(df["ours_seeds"]) == [1, 2, 1]
    assert df["ours_members"].iloc[2] == "zf/seed0, zf/seed1"
    assert df["paper_test_top5"].iloc[:2].isna().all()

    write_table(df, tmp_path / "t.csv", tmp_path / "t.md", "Table 2", table2_footnote(rows, "ten"))
    assert pd.read_csv(tmp_path / "t.csv")["ours_val_top1"].tolist() == [50.0, 37.5, 0.0]
    md = (tmp_path / "t.md").read_text()
    assert "| our replication of Krizhevsky, 1 convnet |" in md and "ten crops" in md and "4 images" in md


def test_ensemble_equals_a_hand_average_on_random_outputs(tmp_path):
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (50,), generator=gen)
    outs = [torch.rand(50, 10, generator=gen).softmax(1) for _ in range(3)]
    files = [_predictions(tmp_path, "zf", s, o.tolist(), labels.tolist()) for s, o in enumerate(outs)]
    mean = torch.stack(outs).mean(0)
    expected = 100 * (mean.argmax(1) != labels).float().mean().item()
    assert ensemble_errors(files, "ten")["top1_error"] == pytest.approx(expected)


def test_ensemble_refuses_members_evaluated_on_other_data(tmp_path):
    a = _predictions(tmp_path, "zf", 0, [[.6, .4], [.3, .7]], [0, 1])
    b = _predictions(tmp_path, "zf", 1, [[.6, .4], [.3, .7]], [1, 1])
    with pytest.raises(DataError, match="other validation data"):
        ensemble_errors([a, b], "ten")


def test_table2_rejects_unknown_rows_and_missing_predictions(tmp_path):
    a = _predictions(tmp_path, "zf", 0, [[.6, .4]], [0])
    with pytest.raises(ConfigError, match="tables.table2"):
        table2({"my model": {"seeds": [a]}})
    with pytest.raises(ConfigError, match="'seeds'"):
        table2({"1 convnet as per Fig 3": [a]})
    with pytest.raises(DataError, match="absent.pt is missing: run the step that writes it"):
        table2({"1 convnet as per Fig 3": {"seeds": [tmp_path / "absent.pt"]}})


def _metrics(tmp_path, name, train_top1, val_top1, seed=0):
    path = tmp_path / f"{name}_seed{seed}.json"
    path.write_text(json.dumps({
        "arch": name, "seed": seed, "epochs": 12, "num_classes": 20, "chance_top1_error": 95.0,
        "train_subset_images": 1000, "val_images": 800, "parameters": 1234,
        "train": {"top1_error": train_top1, "top5_error": 1.0},
        "val": {"center": {"top1_error": val_top1 + 1, "top5_error": 5.0},
                "ten": {"top1_error": val_top1, "top5_error": 4.0}},
    }))
    return path


def test_table3_rows_and_columns(tmp_path):
    rows = {"our model (Fig 3)": [_metrics(tmp_path, "zf", 10.0, 12.345)],
            "Krizhevsky: removed layers 3,4,6,7": [_metrics(tmp_path, "k3467", 60.0, 61.0)]}
    df = table3(rows, crops="ten")
    assert list(df["paper_train_top1"]) == [33.1, 71.1]
    assert list(df["ours_train_top1"]) == [10.0, 60.0]
    assert list(df["ours_val_top1"]) == [12.35, 61.0]
    assert df["ours_val_top1_sd"].isna().all() and list(df["ours_seeds"]) == [1, 1]
    assert list(table3(rows, crops="center")["ours_val_top1"]) == [13.35, 62.0]
    assert list(df["paper_val_top5"]) == [16.5, 50.1]
    assert "1000 training images" in table3_footnote(rows, "ten")
    with pytest.raises(ConfigError, match="tables.table3"):
        table3({"adjust layers 6,7: 2048 units": rows["our model (Fig 3)"]})


def test_table3_gives_mean_and_sd_over_seeds(tmp_path):
    # val top-1 10, 14, 18 -> mean 14, sd 4 (hand-computed); train 5, 6, 10 -> mean 7.
    runs = [_metrics(tmp_path, "zf", t, v, seed=s) for s, (t, v) in enumerate([(5, 10), (6, 14), (10, 18)])]
    df = table3({"our model (Fig 3)": runs}, crops="ten")
    assert df.loc[0, "ours_val_top1"] == 14.0 and df.loc[0, "ours_val_top1_sd"] == 4.0
    assert df.loc[0, "ours_train_top1"] == 7.0 and df.loc[0, "ours_seeds"] == 3
    assert df.loc[0, "ours_val_top5_sd"] == 0.0

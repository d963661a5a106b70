"""zfrepro.transfer.splits: random nested train/test splits against their rule (by hand and on random labels),
errors that name the key, and the `transfer-splits` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zfrepro.commands.transfer import configure_transfer_splits_parser, transfer_splits_command
from zfrepro.errors import ConfigError
from zfrepro.transfer.splits import make_splits

from conftest import run_command


def test_make_splits_on_a_tiny_label_vector_follows_the_rule():
    labels = [1, 0, 1, 0, 0, 1, 1, 0]  # class 0 at 1, 3, 4, 7; class 1 at 0, 2, 5, 6
    out = make_splits(labels, ["a", "b"], [2, 1], 2, 1, seed=7, key="transfer.caltech101.train_sizes")
    assert out["sizes"] == [1, 2] and out["classes"] == ["a", "b"] and out["test_per_class"] == 1
    members = {0: np.array([1, 3, 4, 7]), 1: np.array([0, 2, 5, 6])}
    for s, split in enumerate(out["splits"]):
        perm = {c: m[np.random.default_rng([7, s, c]).permutation(4)] for c, m in members.items()}
        assert split["train"]["1"] == sorted([perm[0][0], perm[1][0]])
        assert split["train"]["2"] == sorted([*perm[0][:2], *perm[1][:2]])
        assert split["test"] == sorted([perm[0][2], perm[1][2]])
    assert json.loads(json.dumps(out)) == out


def test_make_splits_are_nested_disjoint_balanced_and_deterministic():
    rng = np.random.default_rng(3)
    counts = [12, 20, 15, 30, 11]
    labels = rng.permutation(np.repeat(np.arange(5), counts))
    sizes, test = [2, 5, 10], 8
    out = make_splits(torch.as_tensor(labels), list("abcde"), sizes, 3, test, seed=1, key="k")
    assert out == make_splits(labels.tolist(), list("abcde"), sizes, 3, test, seed=1, key="k")
    assert out != make_splits(labels, list("abcde"), sizes, 3, test, seed=2, key="k")
    for split in out["splits"]:
        trains = [set(split["train"][str(n)]) for n in sizes]
        assert trains[0] < trains[1] < trains[2]
        assert not trains[2] & set(split["test"])
        for n, t in zip(sizes, trains, strict=True):
            assert np.bincount(labels[sorted(t)], minlength=5).tolist() == [n] * 5
        assert np.bincount(labels[split["test"]], minlength=5).tolist() == [min(test, c - 10) for c in counts]
    assert out["splits"][0]["test"] != out["splits"][1]["test"]


def test_make_splits_errors_name_the_key_and_the_short_class():
    labels = [0] * 5 + [1] * 3
    with pytest.raises(ConfigError, match=r"transfer\.fig9_sizes: class 'b' has 3 images"):
        make_splits(labels, ["a", "b"], [1, 3], 1, 1, seed=0, key="transfer.fig9_sizes")
    make_splits(labels, ["a", "b"], [1, 2], 1, 1, seed=0, key="transfer.fig9_sizes")  # 3 > 2: fine
    with pytest.raises(ConfigError, match=r"transfer\.caltech101\.train_sizes"):
        make_splits(labels, ["a", "b"], [0], 1, 1, seed=0, key="transfer.caltech101.train_sizes")
    with pytest.raises(ConfigError, match=r"transfer\.caltech101\.test_per_class"):
        make_splits(labels, ["a", "b"], [1], 1, 0, seed=0, key="transfer.caltech101.train_sizes")


def test_transfer_splits_command_splits_the_prepared_labels(prepared_caltech256_stream, tmp_path, capsys):
    run_command(configure_transfer_splits_parser, transfer_splits_command,
                ["--data-dir", str(prepared_caltech256_stream), "--sizes", "[3, 1]", "--splits", "2",
                 "--test-per-class", "2", "--seed", "5", "--key", "transfer.fig9_sizes",
                 "--out", str(tmp_path / "splits.json")])
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert (splits["dataset"], splits["sizes"], splits["seed"], len(splits["splits"])) == ("caltech256", [1, 3], 5, 2)
    data = torch.load(prepared_caltech256_stream / "all.pt", weights_only=True)
    assert splits == make_splits(data["labels"], data["classes"], [3, 1], 2, 2, 5, "transfer.fig9_sizes",
                                 dataset="caltech256")
    assert capsys.readouterr().out.startswith("caltech256: 2 splits of 3 classes, train {'1': 3, '3': 9} test 6")

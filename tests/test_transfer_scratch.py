"""zfrepro.transfer.scratch: the from-scratch baseline's data is its parent split indexed by the split's rows (memory
and stream alike), with the mean of its training images; the `scratch` command trains, scores and cleans up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zfrepro.commands.transfer import configure_scratch_parser, scratch_command
from zfrepro.data.preprocess import load_rgb, resize_center_crop_array
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError
from zfrepro.model.checkpoint import load_model
from zfrepro.model.train import train
from zfrepro.model.train_config import TrainConfig
from zfrepro.transfer.classifiers import score_scratch
from zfrepro.transfer.scratch import write_scratch_data
from zfrepro.transfer.splits import make_splits

from conftest import TINY_ARCHS, run_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stream_splits(prepared_caltech256_stream, tmp_path_factory) -> Path:
    """Two random splits (1 and 3 training images per class, 2 test) of the stream-mode Caltech-256, as JSON."""
    data = torch.load(prepared_caltech256_stream / "all.pt", weights_only=True)
    path = tmp_path_factory.mktemp("splits") / "splits.json"
    path.write_text(json.dumps(make_splits(data["labels"], data["classes"], [1, 3], 2, 2, seed=5, key="k",
                                           dataset="caltech256")))
    return path


def test_scratch_data_is_the_parent_indexed_and_the_trainer_runs_on_it(prepared_caltech101, tmp_path):
    parent = torch.load(prepared_caltech101 / "all.pt", weights_only=True)
    splits = make_splits(parent["labels"], parent["classes"], [2, 4], 2, 3, seed=0, key="k", dataset="caltech101")
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    out = tmp_path / "data"
    manifest = write_scratch_data(prepared_caltech101 / "all.pt", tmp_path / "splits.json", 1, 4, out)
    rows, test = splits["splits"][1]["train"]["4"], splits["splits"][1]["test"]
    train_pt, val_pt = (torch.load(out / f"{s}.pt", weights_only=True) for s in ("train", "val"))
    assert torch.equal(train_pt["images"], parent["images"][rows])
    assert torch.equal(train_pt["labels"], parent["labels"][rows])
    assert torch.equal(val_pt["images"], parent["images"][test]) and val_pt["classes"] == parent["classes"]
    mean = torch.load(out / "mean.pt", weights_only=True)
    np.testing.assert_allclose(mean.numpy(), parent["images"][rows].numpy().astype(np.float64).mean(0), rtol=1e-6)
    assert mean.dtype == torch.float32
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 12, "val": 9} and manifest["crop_size"] == 64
    assert (manifest["dataset"], manifest["train_per_class"], manifest["split"]) == ("caltech101", 4, 1)
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 4, "checkpoint_epochs": [], "amp": False})
    final = train(out, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=tmp_path / "run", device="cpu", threads=1)
    assert torch.load(final, weights_only=True)["classes"] == parent["classes"]
    with pytest.raises(ConfigError, match="train size 3"):
        write_scratch_data(prepared_caltech101 / "all.pt", splits, 0, 3, tmp_path / "bad")
    with pytest.raises(ConfigError, match="split 2"):
        write_scratch_data(prepared_caltech101 / "all.pt", splits, 2, 4, tmp_path / "bad")


def test_scratch_data_of_a_stream_split_stays_stream(prepared_caltech256_stream, stream_splits, tmp_path):
    write_scratch_data(prepared_caltech256_stream / "all.pt", stream_splits, 0, 3, tmp_path / "scratch")
    scratch = torch.load(tmp_path / "scratch" / "train.pt", weights_only=True)
    parent = torch.load(prepared_caltech256_stream / "all.pt", weights_only=True)
    rows = json.loads(stream_splits.read_text())["splits"][0]["train"]["3"]
    assert scratch["paths"] == [parent["paths"][i] for i in rows] and "images" not in scratch
    # the subset indexes the parent's shards (from its own folder), nothing copied
    subset = PreparedSplit(tmp_path / "scratch" / "train.pt")
    whole = PreparedSplit(prepared_caltech256_stream / "all.pt")
    stored = torch.stack([whole.reader.image(i) for i in rows])
    assert torch.equal(torch.cat([b for b, _ in subset.batches(torch.arange(len(rows)), 2)]), stored)
    # its mean is over the stored images; JPEG keeps them within a few levels of the decoded sources
    mean = torch.load(tmp_path / "scratch" / "mean.pt", weights_only=True)
    np.testing.assert_allclose(mean.numpy(), stored.numpy().astype(np.float64).mean(0), rtol=1e-6)
    by_hand = np.mean([resize_center_crop_array(load_rgb(parent["paths"][i]), 72).astype(np.float64) for i in rows],
                      axis=0)
    assert np.abs(mean.numpy() - by_hand).mean() < 3


def test_scratch_command_trains_scores_and_removes_its_data(prepared_caltech256_stream, stream_splits, tmp_path,
                                                            capsys):
    # The non-pretrained baseline in one command: data, training from scratch, score; the data is removed.
    train_params = {"epochs": 1, "batch_size": 4, "amp": False, "init": {"scheme": "gaussian", "std": 0.03}}
    run_command(configure_scratch_parser, scratch_command,
                ["--data-dir", str(prepared_caltech256_stream), "--splits-file", str(stream_splits), "--split", "1",
                 "--n", "1", "--arch", "zf", "--arch-params", json.dumps(TINY_ARCHS["zf"]),
                 "--train-params", json.dumps(train_params), "--device", "cpu", "--out-dir", str(tmp_path / "run")])
    score = json.loads((tmp_path / "run" / "score.json").read_text())
    splits = json.loads(stream_splits.read_text())
    assert (score["dataset"], score["train_per_class"], score["split"]) == ("caltech256", 1, 1)
    assert score["test_images"] == len(splits["splits"][1]["test"])
    assert not (tmp_path / "run" / ".data").exists()
    # The score is the trained model's: scoring final.pt again on the same split's data (rewritten) gives it.
    _, ckpt = load_model(tmp_path / "run" / "final.pt")
    assert ckpt["classes"] == splits["classes"] and ckpt["epoch"] == 1
    write_scratch_data(prepared_caltech256_stream / "all.pt", stream_splits, 1, 1, tmp_path / "again")
    again = score_scratch(tmp_path / "run" / "final.pt", tmp_path / "again", device="cpu")
    assert again["accuracy"] == score["accuracy"] and again["test_images"] == score["test_images"]
    assert "caltech256 n=1 split 1" in capsys.readouterr().out

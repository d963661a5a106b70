"""Frozen-feature classifiers, the from-scratch score and VOC AP, checked against sklearn and hand counts."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision.transforms.functional as TF
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.pipeline import Pipeline

from zfrepro.commands import transfer as transfer_commands
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.architectures import zf_spec
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import spec_to_dict
from zfrepro.transfer import classifiers
from zfrepro.transfer.classifiers import (
    make_classifier,
    mean_per_class_accuracy,
    score_frozen,
    score_scratch,
    voc_ap,
    voc_average_precision,
)

FAST = {"softmax": {"C": 1.0, "max_iter": 200}, "svm": {"C": 1.0}}


def _features(path, x, labels, layer="fc7"):
    torch.save({"features": torch.as_tensor(x, dtype=torch.float16), "labels": torch.as_tensor(labels),
                "layer": layer, "map_shape": [x.shape[1]], "grid": None, "model": "m.pt", "split": "all"}, path)
    return path


def _splits(path, labels, sizes, test_per_class, n_splits, seed=0):
    """The contract's rule: per split and class a seeded permutation; train[n] = its first n, test after max."""
    labels = np.asarray(labels)
    out = []
    for s in range(n_splits):
        train = {str(n): [] for n in sizes}
        test = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            perm = members[np.random.default_rng([seed, s, int(c)]).permutation(len(members))]
            for n in sizes:
                train[str(n)] += perm[:n].tolist()
            test += perm[max(sizes):max(sizes) + test_per_class].tolist()
        out.append({"train": train, "test": test})
    path.write_text(json.dumps({"dataset": "caltech101", "seed": seed, "sizes": sorted(sizes),
                                "test_per_class": test_per_class, "classes": [f"c{c}" for c in np.unique(labels)],
                                "splits": out}))
    return path


def _clusters(k, per_class, dim, spread, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), per_class)
    centres = rng.normal(0, 1, (k, dim)) * spread
    return centres[labels] + rng.normal(0, 1, (len(labels), dim)), labels


# ---------------------------------------------------------------------------------------------- accuracy


def test_mean_per_class_accuracy_by_hand_and_against_sklearn():
    # recalls 2/3, 1/1, 1/2 -> 72.22%, while plain accuracy would be 4/6
    assert mean_per_class_accuracy([0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 0, 2]) == pytest.approx(100 * (2 / 3 + 1 + 0.5) / 3)
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 7, 300), rng.integers(0, 7, 300)
    assert mean_per_class_accuracy(y, p) == pytest.approx(100 * balanced_accuracy_score(y, p))
    with pytest.raises(DataError):
        mean_per_class_accuracy([0, 1], [0])


def test_make_classifier_builds_standardised_pipelines_and_rejects_bad_settings():
    soft = make_classifier("softmax", {"C": 0.5, "max_iter": 50})
    assert isinstance(soft, Pipeline) and soft[-1].C == 0.5 and soft[-1].max_iter == 50
    assert type(soft[0]).__name__ == "StandardScaler" and type(soft[-1]).__name__ == "LogisticRegression"
    svm = make_classifier("svm", {"C": 0.01})[-1]
    assert type(svm).__name__ == "SVC" and svm.kernel == "linear" and svm.C == 0.01
    with pytest.raises(ConfigError, match="'softmax' or 'svm'"):
        make_classifier("knn", {})
    with pytest.raises(ConfigError, match="transfer.svm"):
        make_classifier("svm", {"gamma": 1})
    with pytest.raises(ConfigError, match="transfer.softmax.C"):
        make_classifier("softmax", {"C": -1})


# ---------------------------------------------------------------------------------------------- frozen features


@pytest.mark.parametrize("kind", ["softmax", "svm"])
def test_separable_clusters_score_100_and_shuffled_labels_score_chance(tmp_path, kind):
    x, labels = _clusters(k=5, per_class=60, dim=12, spread=8.0)
    splits = _splits(tmp_path / "splits.json", labels, [2, 5], test_per_class=40, n_splits=2)
    df = score_frozen(_features(tmp_path / "f.pt", x, labels), splits, kind, FAST[kind], None)
    assert list(df.columns) == ["dataset", "classifier", "layer", "train_per_class", "split", "accuracy"]
    assert sorted(zip(df["train_per_class"], df["split"], strict=True)) == [(2, 0), (2, 1), (5, 0), (5, 1)]
    assert (df["accuracy"] == 100.0).all() and set(df["layer"]) == {"fc7"} and set(df["classifier"]) == {kind}
    assert set(df["dataset"]) == {"caltech101"}

    shuffled = np.random.default_rng(3).permutation(labels)  # features no longer tell the class
    splits = _splits(tmp_path / "s2.json", shuffled, [5], test_per_class=40, n_splits=2)
    chance = score_frozen(_features(tmp_path / "g.pt", x, shuffled), splits, kind, FAST[kind], [5])
    assert chance["accuracy"].mean() < 40  # chance is 20%; separable would be 100%


def test_only_the_listed_training_and_test_rows_are_used(tmp_path, monkeypatch):
    """Listed rows carry the class in one feature; every other row is a decoy pointing at the next class.

    A classifier fitted on the decoys (the majority) or scored on them would be wrong on almost everything.
    """
    k, per_class = 4, 40
    labels = np.repeat(np.arange(k), per_class)
    splits_path = _splits(tmp_path / "splits.json", labels, [3, 6], test_per_class=5, n_splits=2)
    splits = json.loads(splits_path.read_text())
    listed = {i for s in splits["splits"] for rows in [*s["train"].values(), s["test"]] for i in rows}
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, (len(labels), k + 1))
    for i, c in enumerate(labels):
        x[i, c if i in listed else (c + 1) % k] += 3.0
    x[:, k] = np.arange(len(labels))  # row ids ride along (float16 is exact below 2048) to spy on the fits
    fitted = []
    real_fit = classifiers._fit
    monkeypatch.setattr(classifiers, "_fit", lambda m, xs, ys: (fitted.append(xs[:, k].astype(int)),
                                                                real_fit(m, xs[:, :k], ys))[1])
    real_predict = Pipeline.predict
    monkeypatch.setattr(Pipeline, "predict", lambda self, xs: real_predict(self, xs[:, :k]))
    df = score_frozen(_features(tmp_path / "f.pt", x, labels), splits_path, "softmax", FAST["softmax"], [6, 3])
    expected = [sorted(s["train"][str(n)]) for s in splits["splits"] for n in (6, 3)]
    assert [sorted(rows.tolist()) for rows in fitted] == expected
    assert (df["accuracy"] == 100.0).all()
    assert list(df["train_per_class"]) == [6, 3, 6, 3]


def test_score_frozen_rejects_sizes_absent_from_the_splits_and_foreign_indices(tmp_path):
    x, labels = _clusters(k=3, per_class=20, dim=4, spread=5.0)
    features = _features(tmp_path / "f.pt", x, labels)
    splits = _splits(tmp_path / "s.json", labels, [2, 4], test_per_class=5, n_splits=1)
    with pytest.raises(ConfigError, match=r"\[8\]"):
        score_frozen(features, splits, "softmax", FAST["softmax"], [2, 8])
    small = _features(tmp_path / "small.pt", x[:30], labels[:30])  # rows the splits point past
    with pytest.raises(DataError, match="different data"):
        score_frozen(small, splits, "softmax", FAST["softmax"], None)


def test_classify_command_writes_the_csv(tmp_path):
    x, labels = _clusters(k=3, per_class=20, dim=4, spread=8.0)
    features = _features(tmp_path / "f.pt", x, labels)
    splits = _splits(tmp_path / "s.json", labels, [2, 4], test_per_class=5, n_splits=2)
    parser = argparse.ArgumentParser()
    transfer_commands.configure_classify_parser(parser)
    args = parser.parse_args(["--features", str(features), "--splits", str(splits), "--kind", "svm",
                              "--params", json.dumps({"C": 0.1}), "--sizes", "[4]", "--out", str(tmp_path / "o.csv")])
    transfer_commands.classify_command(args)
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out["train_per_class"]) == [4, 4] and (out["accuracy"] == 100).all()


# ---------------------------------------------------------------------------------------------- from scratch


def test_score_scratch_matches_a_per_image_pipeline(tmp_path):
    """A small random ZF net on 72 px images: the score equals sklearn's balanced accuracy of predictions made
    one image at a time on torchvision's centre crop minus the mean's centre crop."""
    torch.manual_seed(0)
    spec = zf_spec(num_classes=3, input_size=64, width=0.125)
    model = ConvNet(spec)
    init_weights_(model, "gaussian", std=0.05)  # varied predictions at this seed
    classes = ["a", "b", "c"]
    data = tmp_path / "caltech256" / "n15_split1" / "data"
    data.mkdir(parents=True)
    images = torch.randint(0, 256, (10, 3, 72, 72), dtype=torch.uint8)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    mean = images.float().mean(0)
    torch.save({"classes": classes, "labels": labels, "image_size": 72, "images": images, "skipped": [],
                "root": "x"}, data / "val.pt")
    torch.save(mean, data / "mean.pt")
    ckpt = tmp_path / "final.pt"
    torch.save({"arch": "zf", "spec": spec_to_dict(spec), "model": model.state_dict(), "epoch": 1,
                "classes": classes, "crop_size": 64, "seed": 0}, ckpt)

    result = score_scratch(ckpt, data, device="cpu", batch_size=4)
    model.eval()
    with torch.no_grad():
        preds = [int(model(TF.center_crop(img.float() - mean, [64, 64])[None]).argmax()) for img in images]
    assert len(set(preds)) > 1  # the check means something only if the predictions differ
    assert result["accuracy"] == pytest.approx(100 * balanced_accuracy_score(labels.numpy(), preds))
    assert {k: result[k] for k in ("dataset", "train_per_class", "split", "test_images", "classes")} == {
        "dataset": "caltech256", "train_per_class": 15, "split": 1, "test_images": 10, "classes": 3}


# ---------------------------------------------------------------------------------------------- VOC


def test_voc_pairs_repeat_multi_label_images_and_skip_unlabelled_ones():
    rows, classes = classifiers._voc_pairs(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]]))
    assert rows.tolist() == [0, 0, 2] and classes.tolist() == [0, 2, 1]


def test_voc_ap_is_the_devkits_interpolated_ap():
    # Ranked truth 0, 1, 1: precision 1/2 at recall 1/2, 2/3 at recall 1. The devkit's envelope takes 2/3 for
    # both recall steps: (2/3 + 2/3) / 2; scikit-learn's uninterpolated AP is (1/2 + 2/3) / 2.
    truth, score = np.array([0, 1, 1]), np.array([0.9, 0.8, 0.7])
    assert voc_ap(truth, score) == pytest.approx(2 / 3)
    assert average_precision_score(truth, score) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert voc_ap(np.array([1, 1, 0]), score) == pytest.approx(1.0)
    # Never below the uninterpolated AP; equal when precision only falls with recall.
    rng = np.random.default_rng(0)
    for _ in range(50):
        truth, score = rng.integers(0, 2, 30), rng.random(30)
        if truth.any():
            assert voc_ap(truth, score) >= average_precision_score(truth, score) - 1e-12
    falling = np.array([1, 1, 1, 0, 0])  # precision 1, 1, 1, 3/4, 3/5: already monotone
    assert voc_ap(falling, -np.arange(5.0)) == pytest.approx(average_precision_score(falling, -np.arange(5.0)))


def test_voc_ap_by_hand_with_difficult_images_ignored(tmp_path):
    """Val images lie along the aeroplane feature at strengths 5, 4, 3, 2, 1, so p(aeroplane) ranks them in
    that order. Aeroplane truth in that order: 1, D, 1, 0, 1 where D (strength 4) holds only difficult
    aeroplanes. Ignoring D: ranks 1, 1, 0, 1 -> AP = (1/1 + 2/2 + 3/4) / 3. Counting D as a positive:
    1, 1, 1, 0, 1 -> (1 + 1 + 1 + 4/5) / 4."""
    k, dim = 4, 20
    rng = np.random.default_rng(0)
    train_labels = np.zeros((40, 20), dtype=np.int64)
    train_labels[np.arange(40), np.arange(40) % k] = 1
    train_labels[0, 1] = 1  # a two-label image: trains both classes
    x_train = rng.normal(0, 0.05, (40, dim))
    x_train[np.arange(40), np.arange(40) % k] += 1.0
    strengths = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    x_val = np.zeros((5, dim))
    x_val[:, 0] = strengths
    val_labels = np.zeros((5, 20), dtype=np.int64)
    val_labels[[0, 1, 2, 4], 0] = 1  # aeroplane present (row 1 only as difficult objects)
    val_labels[3, 2] = 1  # a bird image
    difficult = np.zeros((5, 20), dtype=bool)
    difficult[1, 0] = True
    train = _features(tmp_path / "train.pt", x_train, train_labels)
    val = _features(tmp_path / "val.pt", x_val, val_labels)
    split = tmp_path / "val_split.pt"
    torch.save({"labels": torch.as_tensor(val_labels), "difficult_only": torch.as_tensor(difficult),
                "classes": ["x"] * 20}, split)

    df = voc_average_precision(train, val, FAST["softmax"], split)
    assert list(df.columns) == ["class", "ap", "ap_sklearn", "positives", "images", "note"] and len(df) == 20
    aero = df.set_index("class").loc["aeroplane"]
    assert aero["ap"] == pytest.approx(100 * (1 + 1 + 3 / 4) / 3)
    assert (aero["positives"], aero["images"]) == (3, 4)
    counted = voc_average_precision(train, val, FAST["softmax"], None).set_index("class").loc["aeroplane"]
    assert counted["ap"] == pytest.approx(100 * (1 + 1 + 1 + 4 / 5) / 4)
    assert (counted["positives"], counted["images"]) == (4, 5)
    flagged = _features(tmp_path / "val_flags.pt", x_val, val_labels)  # the flags carried by the feature file
    torch.save({**torch.load(flagged), "difficult_only": torch.as_tensor(difficult)}, flagged)
    assert voc_average_precision(train, flagged, FAST["softmax"], None)["ap"].iloc[0] == pytest.approx(aero["ap"])
    cow = df.set_index("class").loc["cow"]  # no val positive, no training image
    assert np.isnan(cow["ap"]) and "undefined" in cow["note"]

    torch.save({"labels": torch.zeros(5, 20, dtype=torch.int64), "difficult_only": torch.as_tensor(difficult)},
               tmp_path / "other.pt")
    with pytest.raises(DataError, match="does not match"):
        voc_average_precision(train, val, FAST["softmax"], tmp_path / "other.pt")

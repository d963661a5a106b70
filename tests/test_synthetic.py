"""Tests of the synthetic data generator: determinism, the real layouts as torchvision reads them, the quirky
ImageNet files and the face part boxes (for both generators, synthetic.generator parts and arrangements), the
default (parts) generator's class structure, and parameter errors. Tiny sizes keep it fast. The design of the
arrangements generator's classes (families, flip safety, layer-1 statistics) is tested in
test_synthetic_arrangements.py."""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image

from zfrepro.data import synthetic
from zfrepro.data.synthetic import pool, vocabulary
from zfrepro.errors import ConfigError

SIZE = 48
TINY = {
    # 5 quirky files: one of each kind
    "imagenet": {"classes": 3, "face_classes": 1, "train_per_class": 6, "val_per_class": 2,
                 "quirky_images": 5},
    "caltech101": {"classes": 3, "min_per_class": 4, "max_per_class": 7, "background_images": 3},
    "caltech256": {"classes": 4, "min_per_class": 3, "max_per_class": 5, "clutter_images": 2},
    "voc": {"train_images": 8, "val_images": 6, "max_objects": 3},
}


def _params(dataset: str, **over: Any) -> dict:
    return {"image_size": SIZE, **TINY[dataset], **over}


def _digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=list(synthetic.GENERATORS))
def generator(request: pytest.FixtureRequest) -> str:
    """Each generator in turn (synthetic.generator): the layouts and the face boxes are the same contract."""
    return request.param


@pytest.fixture(scope="module")
def generated(generator: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each dataset generated once at tiny size (seed 0) by `generator`."""
    base = tmp_path_factory.mktemp(f"synthetic_{generator}")
    out = {}
    for dataset in synthetic.DATASETS:
        out[dataset] = base / dataset
        synthetic.generate(dataset, out[dataset], _params(dataset, generator=generator), seed=0, workers=1)
    return out


# --- determinism and atomicity ------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", synthetic.DATASETS)
def test_same_seed_same_bytes_other_seed_differs(dataset: str, generator: str, generated: dict[str, Path],
                                                 tmp_path: Path) -> None:
    params = _params(dataset, generator=generator)
    synthetic.generate(dataset, tmp_path / "again" / dataset, params, seed=0, workers=1)
    synthetic.generate(dataset, tmp_path / "other" / dataset, params, seed=1, workers=1)
    first, again, other = (_digest(p) for p in (generated[dataset], tmp_path / "again" / dataset,
                                                 tmp_path / "other" / dataset))
    assert first == again
    images = [k for k in first if k.lower().endswith((".jpeg", ".jpg"))]
    assert images and all(first[k] != other.get(k) for k in images)


def test_worker_pool_gives_the_same_bytes(tmp_path: Path) -> None:
    # 4 classes x 20 = 80 jobs: above the threshold where a process pool is used.
    params = _params("caltech256", min_per_class=20, max_per_class=20)
    synthetic.generate("caltech256", tmp_path / "serial", params, seed=3, workers=1)
    synthetic.generate("caltech256", tmp_path / "pool", params, seed=3, workers=2)
    assert _digest(tmp_path / "serial") == _digest(tmp_path / "pool")


def test_failed_run_leaves_nothing_and_success_replaces(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "voc"
    calls = {"n": 0}
    real = pool._make

    def flaky(job: synthetic.Job) -> dict:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("killed")
        return real(job)

    monkeypatch.setattr(pool, "_make", flaky)
    with pytest.raises(RuntimeError):
        synthetic.generate("voc", out, _params("voc"), seed=0, workers=1)
    assert list(tmp_path.iterdir()) == []  # no half dataset, no temp folder
    monkeypatch.setattr(pool, "_make", real)
    out.mkdir()
    (out / "stale.txt").write_text("old")
    (tmp_path / ".voc.tmp-999999999").mkdir()  # left by a killed run whose process is gone
    synthetic.generate("voc", out, _params("voc"), seed=0, workers=1)
    assert not (out / "stale.txt").exists() and (out / "VOCdevkit").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voc"]


# --- the layouts, read by torchvision's own classes ---------------------------------------------------------


def test_imagenet_layout(generated: dict[str, Path]) -> None:
    root = generated["imagenet"]
    p = TINY["imagenet"]
    train, val = tvd.ImageNet(str(root), split="train"), tvd.ImageNet(str(root), split="val")
    assert len(train.wnids) == len(val.wnids) == p["classes"]
    assert len(train) == p["classes"] * p["train_per_class"] and len(val) == p["classes"] * p["val_per_class"]
    assert all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in train.wnids)
    assert sum(c[0].startswith("face:") for c in train.classes) == p["face_classes"]
    # meta.bin's val_wnids gives each val image's class in val-number order, as in the real devkit.
    _, val_wnids = tvd.imagenet.load_meta_file(str(root))
    by_number = sorted(val.samples, key=lambda s: os.path.basename(s[0]))
    assert [os.path.basename(s[0]) for s in by_number] == [f"ILSVRC2012_val_{i:08d}.JPEG"
                                                         for i in range(1, len(val) + 1)]
    assert [val.wnids[t] for _, t in by_number] == val_wnids
    assert len(set(val_wnids[:p["classes"]])) > 1 or p["classes"] == 1  # numbering interleaves classes
    # shorter side = image_size, longer side at most 4/3 of it
    for path, _ in train.samples[:10] + val.samples:
        w, h = Image.open(path).size
        assert min(w, h) == SIZE and max(w, h) <= SIZE * 4 / 3


def test_quirky_files_have_the_real_oddities(generated: dict[str, Path]) -> None:
    kinds = {}
    for path in sorted((generated["imagenet"] / "train").rglob("*")):
        if path.is_file():
            assert path.suffix == ".JPEG"
            with Image.open(path) as im:
                kinds[path] = (im.format, im.mode)
    odd = sorted(v for v in kinds.values() if v != ("JPEG", "RGB"))
    assert odd == sorted([("JPEG", "L"), ("JPEG", "CMYK"), ("PNG", "RGBA"), ("PNG", "P"), ("PNG", "RGB")])
    for path in kinds:  # every file decodes to RGB through the usual conversion
        assert Image.open(path).convert("RGB").size[0] > 0


def test_caltech101_layout(generated: dict[str, Path]) -> None:
    p = TINY["caltech101"]
    ds = tvd.Caltech101(str(generated["caltech101"]), target_type="category")
    assert len(ds.categories) == p["classes"]
    counts = np.bincount(ds.y)
    assert counts.min() >= p["min_per_class"] and counts.max() <= p["max_per_class"]
    img, label = ds[len(ds) - 1]
    assert label == p["classes"] - 1 and min(img.size) == SIZE
    background = generated["caltech101"] / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google"
    assert len(list(background.glob("image_*.jpg"))) == p["background_images"]


def test_caltech256_layout(generated: dict[str, Path]) -> None:
    p = TINY["caltech256"]
    ds = tvd.Caltech256(str(generated["caltech256"]))
    assert len(ds.categories) == p["classes"] + 1
    assert ds.categories[-1] == f"{p['classes'] + 1:03d}.clutter"
    counts = np.bincount(ds.y)
    assert counts[:-1].min() >= p["min_per_class"] and counts[:-1].max() <= p["max_per_class"]
    assert counts[-1] == p["clutter_images"]
    img, label = ds[len(ds) - 1]  # torchvision builds the file name from the folder number: it must exist
    assert label == p["classes"] and min(img.size) == SIZE


def test_voc_layout(generated: dict[str, Path]) -> None:
    p = TINY["voc"]
    root = str(generated["voc"])
    train, val = (tvd.VOCDetection(root, year="2012", image_set=s) for s in ("train", "val"))
    trainval = tvd.VOCDetection(root, year="2012", image_set="trainval")
    assert (len(train), len(val), len(trainval)) == (p["train_images"], p["val_images"],
                                                     p["train_images"] + p["val_images"])
    assert not set(train.images) & set(val.images)
    main = generated["voc"] / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    seen = set()
    for ds, split in ((train, "train"), (val, "val")):
        labels = {c: dict(line.split() for line in (main / f"{c}_{split}.txt").read_text().splitlines())
                  for c in synthetic.VOC_CLASSES}
        for i in range(len(ds)):
            img, target = ds[i]
            ann = target["annotation"]
            image_id = ann["filename"][:-4]
            assert (int(ann["size"]["width"]), int(ann["size"]["height"])) == img.size
            objects = ann["object"]
            assert 1 <= len(objects) <= p["max_objects"]
            for o in objects:
                seen.add(o["name"])
                b = {k: int(v) for k, v in o["bndbox"].items()}
                assert 1 <= b["xmin"] <= b["xmax"] <= img.size[0]
                assert 1 <= b["ymin"] <= b["ymax"] <= img.size[1]
                assert o["pose"] in ("Frontal", "Left", "Right") and o["difficult"] in ("0", "1")
            for c in synthetic.VOC_CLASSES:
                present = [o for o in objects if o["name"] == c]
                want = 1 if any(o["difficult"] == "0" for o in present) else 0 if present else -1
                assert int(labels[c][image_id]) == want
    assert seen <= set(synthetic.VOC_CLASSES) and len(seen) > 3


# --- face parts ---------------------------------------------------------------------------------------------


def _parts_csv(root: Path) -> dict[str, dict[str, tuple[int, ...]]]:
    rows: dict[str, dict[str, tuple[int, ...]]] = {}
    with open(root / "parts.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["image", "part", "x0", "y0", "x1", "y1"]
        for r in reader:
            rows.setdefault(r["image"], {})[r["part"]] = tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1"))
    return rows


def test_parts_csv_lists_every_face_val_image_inside_the_image(generated: dict[str, Path]) -> None:
    root = generated["imagenet"]
    rows = _parts_csv(root)
    face_wnids = {p.parent.name for p in (root / "val").glob("n91*/*")}
    face_images = {str(p.relative_to(root)) for p in (root / "val").rglob("*.JPEG")
                   if p.parent.name in face_wnids}
    assert set(rows) == face_images and len(face_images) == TINY["imagenet"]["val_per_class"]
    for image, parts in rows.items():
        assert set(parts) == set(synthetic.FACE_PARTS)
        w, h = Image.open(root / image).size
        for x0, y0, x1, y1 in parts.values():
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert parts["left_eye"][0] < parts["right_eye"][0]  # tilt is at most 20 degrees


def test_face_val_per_class_sets_the_face_classes_validation_images_only(generator: str,
                                                                      generated: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    # null (as the workflow passes it when unset) changes nothing: same bytes, same synthetic.json.
    synthetic.generate("imagenet", tmp_path / "null",
                       _params("imagenet", face_val_per_class=None, generator=generator), seed=0, workers=1)
    assert _digest(tmp_path / "null") == _digest(generated["imagenet"])
    root = tmp_path / "five"
    synthetic.generate("imagenet", root, _params("imagenet", face_val_per_class=5, generator=generator), seed=0,
                       workers=1)
    counts = {d.name: len(list(d.iterdir())) for d in (root / "val").iterdir()}
    assert counts == {"n90000001": 2, "n90000002": 2, "n91000001": 5}
    assert {str(Path(image).parent.name) for image in _parts_csv(root)} == {"n91000001"}
    assert len(_parts_csv(root)) == 5
    with pytest.raises(ConfigError, match=r"synthetic\.imagenet\.face_val_per_class"):
        synthetic.generate("imagenet", tmp_path / "x", _params("imagenet", face_val_per_class=0), seed=0)


def test_part_boxes_mark_exactly_the_drawn_eyes_and_nose(generator: str, generated: dict[str, Path]) -> None:
    root = generated["imagenet"]
    rows = _parts_csv(root)
    plan = synthetic.imagenet_plan(synthetic.check_params("imagenet", _params("imagenet", generator=generator)),
                                   seed=0)
    face_jobs = [j for j in plan.val if j.scene == "face"]
    assert {j.path for j in face_jobs} == set(rows)
    for job in face_jobs:
        with_parts, meta = synthetic.render(job)
        without, _ = synthetic.render(job, features=False)
        boxes = rows[job.path]
        assert {k: tuple(v) for k, v in meta["parts"].items()} == boxes
        changed = np.abs(with_parts.astype(int) - without.astype(int)).max(axis=2) > 0
        inside = np.zeros_like(changed)
        for x0, y0, x1, y1 in boxes.values():
            inside[y0:y1, x0:x1] = True
            assert changed[y0:y1, x0:x1].mean() > 0.3  # the part fills much of its box
            # ...and each box's border rows/columns touch the drawn part (the box is tight)
            assert changed[y0, x0:x1].any() and changed[y1 - 1, x0:x1].any()
            assert changed[y0:y1, x0].any() and changed[y0:y1, x1 - 1].any()
        assert not changed[~inside].any()  # nothing outside the boxes depends on the parts
        # The saved JPEG matches the render: the boxes differ from the part-less image, the rest does not.
        saved = np.asarray(Image.open(root / job.path).convert("RGB"), dtype=float)
        err = np.abs(saved - without).mean(axis=2)
        assert err[inside].mean() > 4 * err[~inside].mean()


# --- classes ------------------------------------------------------------------------------------------------


def test_class_sets_are_disjoint_combinations_of_one_vocabulary() -> None:
    sets = {d: synthetic.object_classes(d, 24) for d in synthetic.DATASETS}
    for a, b in itertools.combinations(synthetic.DATASETS, 2):
        assert not set(sets[a]) & set(sets[b])
    everything = [c for cs in sets.values() for c in cs]
    assert len({c.name for c in everything}) == len(everything)
    for c in everything:
        for p in c.parts:
            assert p.shape in synthetic.SHAPES and p.texture in synthetic.TEXTURES
            assert p.colour in synthetic.COLOURS
        assert len(c.parts) == 1 + len(synthetic.LAYOUTS[c.layout]) and 2 <= len(c.parts) <= 3
    # the transfer sets reuse the ImageNet classes' parts in new combinations
    imagenet_parts = {p for c in sets["imagenet"] for p in c.parts}
    transfer_parts = {p for d in ("caltech101", "caltech256", "voc") for c in sets[d] for p in c.parts}
    assert {p.shape for p in transfer_parts} <= {p.shape for p in imagenet_parts}
    for cs in sets.values():  # within a set, classes differ in several attributes
        codes = np.stack([vocabulary._codes(c) for c in cs])
        for i in range(1, len(cs)):
            assert vocabulary._distances(codes[:i], codes[i]).min() >= 4
    # asking for more classes never changes the earlier ones
    assert synthetic.catalogue(40) == synthetic.catalogue(80)[:40]


def test_classes_are_separable_by_simple_colour_statistics(tmp_path: Path) -> None:
    """Nearest class mean on hue histograms of saturated pixels (leave one out) beats chance by far."""
    params = _params("imagenet", classes=4, face_classes=1, train_per_class=20, quirky_images=0)
    synthetic.generate("imagenet", tmp_path / "in", params, seed=5, workers=1)
    ds = tvd.ImageNet(str(tmp_path / "in"), split="train")
    feats = []
    for path, _ in ds.samples:
        hsv = np.asarray(Image.open(path).convert("RGB").convert("HSV")).astype(int)
        vivid = (hsv[..., 1] > 110) & (hsv[..., 2] > 70)  # the parts' palette, not the softened background
        hist = np.bincount(hsv[..., 0][vivid] // 16, minlength=16).astype(float)
        feats.append(hist / max(hist.sum(), 1.0))
    x, y = np.stack(feats), np.array(ds.targets)
    correct = 0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        means = np.stack([x[keep & (y == c)].mean(0) for c in range(4)])
        correct += int(np.argmin(((means - x[i]) ** 2).sum(1)) == y[i])
    assert correct / len(y) > 0.6  # chance is 0.25


# --- parameter errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "params", "key"), [
    ("imagenet", _params("imagenet", bogus=1), "synthetic.imagenet.bogus"),
    ("imagenet", {k: v for k, v in _params("imagenet").items() if k != "val_per_class"},
     "synthetic.imagenet.val_per_class"),
    ("caltech101", _params("caltech101", classes=0), "synthetic.caltech101.classes"),
    ("caltech256", _params("caltech256", clutter_images=True), "synthetic.caltech256.clutter_images"),
    ("voc", {**_params("voc"), "image_size": "big"}, "synthetic.image_size"),
    ("imagenet", _params("imagenet", face_classes=4), "synthetic.imagenet.face_classes"),
    ("caltech101", _params("caltech101", max_per_class=2), "synthetic.caltech101.max_per_class"),
    ("caltech256", _params("caltech256", classes=999), "synthetic.caltech256.classes"),
    ("imagenet", _params("imagenet", classes=1001), "synthetic.imagenet.classes"),
    ("voc", _params("voc", generator="shapes"), "synthetic.generator"),
])
def test_bad_params_name_the_key(dataset: str, params: dict, key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        synthetic.generate(dataset, tmp_path / "x", params, seed=0)
    assert not (tmp_path / "x").exists()


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="imagenet"):
        synthetic.generate("cifar", tmp_path / "x", {"image_size": 32}, seed=0)

"""The design of the `arrangements` generator's classes (synthetic.generator: arrangements): a class is an
arrangement of shared parts, classes come in families (one shape set, several arrangements), no two classes are
the same up to a flip and a small rotation, the transfer sets get new arrangements of ImageNet's shape sets,
colour and texture are random per image, and so the global statistics a first conv layer sees cannot tell the
classes of a family apart. And the option: it reaches the generator, and `parts` stays the default."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from zfrepro.data import synthetic
from zfrepro.data.synthetic import arrangement_scenes, arrangements, scenes
from zfrepro.errors import ConfigError

TRANSFER = ("caltech101", "caltech256", "voc")
FAMILY = 4  # classes of one family in one dataset
# Known defect of the generator as it came from branch arrangement-data (6775fc4), kept so that its files stay
# byte for byte the same: beyond 138 classes per dataset (catalogue(553) on) a family shares its shape set with
# an earlier one of another main shape, the flip check calls their "inside" arrangements the same (the two
# shapes swap sizes 1 and 0.65 at one spot: 0.46 < its tolerance 0.5), and catalogue() raises ConfigError.
MAX_WORKING = 138
NOT_FLIP_SAFE = pytest.mark.xfail(raises=ConfigError, strict=True,
                                  reason=f"the catalogue is flip safe only up to {MAX_WORKING} classes per dataset")


def _geometry(layout: str) -> np.ndarray:
    """(x, y, scale) of every part (main first) from LAYOUTS, about the parts' area-weighted centre."""
    rows = np.array([(0.0, 0.0, 1.0), *arrangements.LAYOUTS[layout]], dtype=float)
    w = rows[:, 2] ** 2
    rows[:, :2] -= (rows[:, :2] * w[:, None]).sum(0) / w.sum()
    return rows


def _look_alike(a: arrangements.ObjectClass, b: arrangements.ObjectClass, degrees: float = 60.0,
                tol: float = 0.3) -> bool:
    """Independent of the generator's own check: some mirror, rotation within +-degrees and matching of parts
    by shape bring every part of a within tol (main-part radii, position and scale) of one of b."""
    if sorted(a.shapes) != sorted(b.shapes):
        return False
    ga, gb = _geometry(a.layout), _geometry(b.layout)
    t = np.deg2rad(np.arange(-degrees, degrees + 0.1, 2.0))
    c, s = np.cos(t)[:, None], np.sin(t)[:, None]
    for perm in itertools.permutations(range(len(b.shapes))):
        if [b.shapes[i] for i in perm] != list(a.shapes):
            continue
        q = gb[list(perm)]
        for mirror in (1.0, -1.0):
            x, y = ga[:, 0] * mirror, ga[:, 1]
            dx, dy = c * x - s * y - q[:, 0], s * x + c * y - q[:, 1]  # (angles, parts)
            err = np.hypot(dx, dy) + np.abs(ga[:, 2] - q[:, 2])
            if (err.max(axis=1) < tol).any():
                return True
    return False


# --- the catalogue -------------------------------------------------------------------------------------------


def test_classes_are_arrangements_of_two_or_three_shapes_in_families() -> None:
    classes = {d: arrangements.object_classes(d, 6 * FAMILY + 2) for d in synthetic.DATASETS}
    for cs in classes.values():
        for c in cs:
            assert 2 <= len(c.shapes) <= 3 and len(c.shapes) == 1 + len(arrangements.LAYOUTS[c.layout])
            assert set(c.shapes) <= set(synthetic.SHAPES)
        # whole families first: classes [4j, 4j + 4) are family j, and one family shares one shape set
        assert [c.family for c in cs] == [i // FAMILY for i in range(len(cs))]
        for j in range(len(cs) // FAMILY):
            family = cs[FAMILY * j:FAMILY * (j + 1)]
            assert len({(c.shapes[0], frozenset(c.shapes[1:])) for c in family}) == 1  # same main, same others
            assert len({(c.layout, c.shapes) for c in family}) == FAMILY  # but arranged differently
    # different families: different shape sets; one family: the same shape set in every dataset
    imagenet = classes["imagenet"]
    shape_sets = [(c.shapes[0], frozenset(c.shapes[1:])) for c in imagenet[::FAMILY]]
    assert len(set(shape_sets)) == len(shape_sets)
    for d in TRANSFER:
        assert [(c.shapes[0], frozenset(c.shapes[1:])) for c in classes[d][::FAMILY]] == shape_sets
    # the first families use every shape of the vocabulary, each as the main part of at most one family
    assert {s for c in imagenet[:4 * FAMILY] for s in c.shapes} == set(synthetic.SHAPES)
    assert len({c.shapes[0] for c in imagenet[:4 * FAMILY]}) == 4


def test_class_sets_are_disjoint_arrangements_of_one_vocabulary() -> None:
    sets = {d: arrangements.object_classes(d, 24) for d in synthetic.DATASETS}
    for a, b in itertools.combinations(synthetic.DATASETS, 2):
        assert not set(sets[a]) & set(sets[b])
        assert not {(c.layout, c.shapes) for c in sets[a]} & {(c.layout, c.shapes) for c in sets[b]}
    everything = [c for cs in sets.values() for c in cs]
    assert len({c.name for c in everything}) == len(everything)
    for c in everything:
        assert set(c.shapes) <= set(synthetic.SHAPES) and c.layout in arrangements.LAYOUTS
        assert all(shape in c.name for shape in c.shapes)  # the name describes the arrangement
        # colour and texture are no class attributes: nothing in the spec names one
        assert not any(word in c.name for word in [*synthetic.COLOURS, *synthetic.TEXTURES.values()])
    # the transfer sets reuse the ImageNet classes' shapes in new arrangements
    imagenet_shapes = {s for c in sets["imagenet"] for s in c.shapes}
    assert imagenet_shapes == set(synthetic.SHAPES)
    assert {s for d in TRANSFER for c in sets[d] for s in c.shapes} <= imagenet_shapes
    # asking for more classes never changes the earlier ones
    assert arrangements.catalogue(40) == arrangements.catalogue(80)[:40]
    assert arrangements.object_classes("voc", 8) == arrangements.object_classes("voc", 20)[:8]


def test_face_classes_differ_in_head_shape_aspect_or_ears() -> None:
    faces = arrangements.face_classes(arrangements.MAX_FACE_CLASSES)
    assert len({(f.head, f.aspect, f.ears) for f in faces}) == len({f.name for f in faces}) == len(faces)
    assert all(f.name.startswith("face:") for f in faces)
    first = faces[:3]  # the first three differ in all three attributes
    for attr in ("head", "aspect", "ears"):
        assert len({getattr(f, attr) for f in first}) == 3
    assert arrangements.face_classes(4) == faces[:4]
    with pytest.raises(ConfigError, match="face_classes"):
        arrangements.face_classes(arrangements.MAX_FACE_CLASSES + 1)


def test_the_flip_safety_check_catches_mirrors_and_small_rotations(monkeypatch: pytest.MonkeyPatch) -> None:
    c = arrangements.ObjectClass
    row, row_swapped = c(("disc", "star", "bar"), "row"), c(("disc", "bar", "star"), "row")
    ears, ears_swapped = c(("disc", "star", "bar"), "ears"), c(("disc", "bar", "star"), "ears")
    stack, stack_swapped = c(("disc", "star", "bar"), "stack"), c(("disc", "bar", "star"), "stack")
    # "star left of disc left of bar" is "bar left of disc left of star" flipped: one class at most
    assert _look_alike(row, row_swapped) and _look_alike(ears, ears_swapped)
    assert not _look_alike(row, stack) and not _look_alike(stack, stack_swapped)  # 90 and 180 degrees apart
    for pair in ((row, row_swapped), (ears, ears_swapped)):
        with pytest.raises(ConfigError, match="flip"):
            arrangements._check_flip_safe(list(pair))
    arrangements._check_flip_safe([row, stack, stack_swapped, ears])
    # "stack" turned by 40 degrees is within the pose range: the same class; turned by 90 it is "row"-like
    for degrees, same in ((40, True), (90, False)):
        t = math.radians(degrees)
        tilted = tuple((dx * math.cos(t) - dy * math.sin(t), dx * math.sin(t) + dy * math.cos(t), s)
                       for dx, dy, s in arrangements.LAYOUTS["stack"])
        monkeypatch.setitem(arrangements.LAYOUTS, "tilted", tilted)
        monkeypatch.setitem(arrangements.LAYOUT_PHRASES, "tilted", "{0} tilted {1} {2}")
        other = c(stack.shapes, "tilted")
        assert _look_alike(stack, other) == same
        if same:
            with pytest.raises(ConfigError, match="flip"):
                arrangements._check_flip_safe([stack, other])
        else:
            arrangements._check_flip_safe([stack, other])


@pytest.mark.parametrize("per_dataset", [128, pytest.param(256, marks=NOT_FLIP_SAFE)])
def test_no_two_classes_are_the_same_up_to_a_flip_and_a_rotation(per_dataset: int) -> None:
    everything = arrangements.catalogue(4 * per_dataset)  # per_dataset // 4 families
    groups = defaultdict(list)
    for c in everything:
        groups[tuple(sorted(c.shapes))].append(c)
    pairs = 0
    for group in groups.values():
        for a, b in itertools.combinations(group, 2):
            assert not _look_alike(a, b), (a.name, b.name)
            pairs += 1
    assert pairs >= per_dataset // FAMILY * 120  # every pair within a family was compared


@pytest.mark.parametrize("n", [MAX_WORKING, pytest.param(1000, marks=NOT_FLIP_SAFE)])
def test_datasets_are_disjoint_and_transfer_classes_are_new_arrangements(n: int) -> None:
    imagenet = arrangements.object_classes("imagenet", n)
    used = {(c.layout, c.shapes) for c in imagenet}
    imagenet_sets = {frozenset(c.shapes) for c in imagenet}
    for d in TRANSFER:
        transfer = arrangements.object_classes(d, n)
        assert not used & {(c.layout, c.shapes) for c in transfer}
        assert {frozenset(c.shapes) for c in transfer} <= imagenet_sets  # the same shape sets, rearranged
    for a, b in itertools.combinations(synthetic.DATASETS, 2):
        assert not set(arrangements.object_classes(a, n)) & set(arrangements.object_classes(b, n))
    # at the default sizes: the transfer classes of family j use ImageNet family j's shapes, never its layout
    small = arrangements.object_classes("imagenet", 16)
    for d, n in (("caltech101", 20), ("caltech256", 24), ("voc", 20)):
        for c in arrangements.object_classes(d, n)[:16]:
            family = small[FAMILY * c.family:FAMILY * (c.family + 1)]
            assert sorted(c.shapes) == sorted(family[0].shapes)
            assert all(not _look_alike(c, i) for i in family)


def test_the_catalogue_stops_after_138_classes_per_dataset() -> None:
    """The known defect (NOT_FLIP_SAFE) as it stands: a clear ConfigError, not a wrong catalogue."""
    arrangements.catalogue(4 * MAX_WORKING)
    with pytest.raises(ConfigError, match="same arrangement up to a horizontal flip"):
        arrangements.catalogue(4 * (MAX_WORKING + 1))


@pytest.mark.parametrize("dataset", ["caltech101", "caltech256"])
def test_the_config_check_names_the_class_limit(dataset: str) -> None:
    """Asking for more classes than the catalogue holds stops at the config check, naming the key to change."""
    params = {"image_size": 16, "min_per_class": 1, "max_per_class": 1, "imagenet_duplicates": 0,
              "generator": "arrangements", "background_images" if dataset == "caltech101" else "clutter_images": 0}
    synthetic.check_params(dataset, {**params, "classes": MAX_WORKING})
    with pytest.raises(ConfigError, match=rf"synthetic\.{dataset}\.classes = 139: .*at most 138"):
        synthetic.check_params(dataset, {**params, "classes": MAX_WORKING + 1})
    synthetic.check_params(dataset, {**params, "classes": MAX_WORKING + 1, "generator": "parts"})


@NOT_FLIP_SAFE
def test_1000_classes_per_dataset() -> None:
    assert arrangements.max_classes() >= 1000
    for d in synthetic.DATASETS:
        classes = arrangements.object_classes(d, 1000)
        assert len(classes) == len(set(classes)) == len({c.name for c in classes}) == 1000
    synthetic.check_params("imagenet", {"image_size": 16, "classes": 1000, "face_classes": 4, "train_per_class": 1,
                                        "val_per_class": 1, "quirky_images": 0, "generator": "arrangements"})
    with pytest.raises(ConfigError, match="classes"):
        arrangements.catalogue(4 * arrangements.max_classes() + 1)


# --- rendering -----------------------------------------------------------------------------------------------


def _job(cls: arrangements.ObjectClass | arrangements.FaceClass, c: int, k: int, size: int = 64, seed: int = 11,
         scene: str = "object") -> synthetic.Job:
    return synthetic.Job("x.jpg", (seed, 5, 0, c, k), size, scene, (cls,), generator="arrangements")


def test_colour_and_texture_are_drawn_per_image_and_part(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[str, str, str]] = []
    real = arrangement_scenes.paint
    palette = {name: np.array(rgb, dtype=float) for name, rgb in synthetic.COLOURS.items()}

    def spy(img, shape, pose, colour, texture="plain", *args, **kwargs):
        name = min(palette, key=lambda n: np.abs(palette[n] - colour).sum())  # jitter is small
        drawn.append((shape, name, texture))
        return real(img, shape, pose, colour, texture, *args, **kwargs)

    monkeypatch.setattr(arrangement_scenes, "paint", spy)  # draw_object's parts, not the loose parts of scenes
    classes = arrangements.object_classes("imagenet", 2)
    per_class = []
    for c, cls in enumerate(classes):
        looks: dict[int, Counter] = defaultdict(Counter)
        for k in range(48):
            drawn.clear()
            synthetic.render(_job(cls, c, k, size=32))
            assert [d[0] for d in drawn] == list(cls.shapes)
            assert len({d[1] for d in drawn}) == len(drawn)  # parts of one object differ in colour
            for slot, (_, colour, texture) in enumerate(drawn):
                looks[slot][colour] += 1
                looks[slot + 10][texture] += 1
        for slot in range(len(cls.shapes)):
            colours, textures = looks[slot], looks[slot + 10]
            assert len(colours) >= 6 and max(colours.values()) <= 48 * 0.3  # no colour stands for a part
            assert len(textures) >= 4
        per_class.append(looks[0])
    assert set(per_class[0]) == set(per_class[1])


def test_within_class_variation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale, rotation and occlusion vary; loose parts of the clutter never touch the object."""
    from scipy.ndimage import distance_transform_edt

    record: dict[str, list] = {"object": [], "loose": []}
    real_object, real_paint = arrangement_scenes.draw_object, scenes.paint

    def object_spy(img, cls, pose, rng, coverage=None):
        mask = np.zeros(img.shape[:2], dtype=np.float32) if coverage is None else coverage
        box = real_object(img, cls, pose, rng, mask)  # the coverage is bookkeeping only: same pixels
        record["object"].append((box, pose.angle, mask > 0.02))
        return box

    def loose_spy(img, shape, pose, *args, **kwargs):
        mask = np.zeros(img.shape[:2], dtype=np.float32)
        box = real_paint(img, shape, pose, *args, coverage=mask, **kwargs)
        record["loose"].append((box, mask > 0.02))
        return box

    monkeypatch.setattr(arrangement_scenes, "draw_object", object_spy)
    monkeypatch.setattr(scenes, "paint", loose_spy)  # the loose parts of the clutter
    classes = arrangements.object_classes("imagenet", 8)
    spans, angles, hidden, loose = [], [], [], 0
    for k in range(200):
        c = k % len(classes)
        record["object"].clear()
        record["loose"].clear()
        img, meta = synthetic.render(_job(classes[c], c, k, size=96))
        (box, angle, on_object), = record["object"]
        spans.append(max(box[2] - box[0], box[3] - box[1]) / min(img.shape[:2]))
        angles.append(math.degrees(angle))
        hidden.append(meta["occluded"])
        to_object = distance_transform_edt(~on_object)
        for part, on_part in record["loose"]:
            if part is not None:
                loose += 1
                size = max(part[2] - part[0], part[3] - part[1])
                gap = to_object[on_part].min()
                assert gap >= 0.5 * size, (k, gap, size)  # apart from the object, not another slot of it
    spans_a = np.array(spans)
    assert spans_a.min() < 0.45 and spans_a.max() > 0.85 and spans_a.max() <= 1.0 + 1e-9
    assert max(abs(a) for a in angles) <= 25.0 + 1e-9 and np.mean(np.abs(angles) > 15) > 0.25
    occluded = np.array(hidden) > 0.01
    assert 0.15 < occluded.mean() < 0.4 and max(hidden) <= 0.25
    assert loose > 50  # there is clutter to check


# --- what layer 1 sees ---------------------------------------------------------------------------------------


def _global_stats(img: np.ndarray) -> np.ndarray:
    """Statistics pooled over the whole image, of the kind a first conv layer computes: a colour histogram
    (4 levels per channel), a magnitude-weighted gradient-orientation histogram and a gradient-magnitude
    histogram."""
    q = (img // 64).reshape(-1, 3).astype(int)
    colour = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64) / len(q)
    gy, gx = np.gradient(img.astype(np.float32).mean(axis=2))
    mag, ang = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    orient = np.bincount(np.minimum((ang / np.pi * 12).astype(int), 11).ravel(), weights=mag.ravel(), minlength=12)
    strength = np.histogram(mag, bins=[0, 2, 5, 10, 20, 40, 80, np.inf])[0] / mag.size
    return np.concatenate([colour, orient / max(orient.sum(), 1e-9), strength])


def _stats(classes: list, n: int, scene: str = "object", offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = [_global_stats(synthetic.render(_job(cls, offset + c, k, scene=scene))[0])
         for c, cls in enumerate(classes) for k in range(n)]
    return np.stack(x), np.repeat(np.arange(len(classes)), n)


def _cv_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean())


def test_layer1_statistics_cannot_separate_the_classes_of_a_family(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 40
    classes = arrangements.object_classes("imagenet", 2 * FAMILY)
    stats = [_stats(classes[FAMILY * j:FAMILY * (j + 1)], n, offset=FAMILY * j) for j in range(2)]
    for x, y in stats:
        assert _cv_accuracy(x, y) < 1 / FAMILY + 0.15  # chance is 0.25
    # The same features and classifier do find low-level differences where there are some: the old design,
    # a fixed colour and texture per part of each class, on the same classes and images.
    family = classes[:FAMILY]
    real = arrangement_scenes._part_looks
    names, textures = list(synthetic.COLOURS), list(synthetic.TEXTURES)

    def fixed(rng, cls):
        i = family.index(cls)
        return [(np.array(synthetic.COLOURS[names[(2 * i + j) % len(names)]], dtype=np.float32),
                 textures[i % len(textures)], phase) for j, (_, _, phase) in enumerate(real(rng, cls))]

    monkeypatch.setattr(arrangement_scenes, "_part_looks", fixed)
    x, y = _stats(family, n)
    assert _cv_accuracy(x, y) > 1 / FAMILY + 0.3


# --- the option ----------------------------------------------------------------------------------------------

TINY_IMAGENET = {"image_size": 32, "classes": 9, "face_classes": 1, "train_per_class": 2, "val_per_class": 1,
                 "quirky_images": 0}


def test_the_option_reaches_the_generator(tmp_path: Path) -> None:
    """synthetic.generator picks the catalogue and the scenes; left out, it is parts (main's generator)."""
    specs, images = {}, {}
    for generator in (None, "parts", "arrangements"):
        params = TINY_IMAGENET if generator is None else {**TINY_IMAGENET, "generator": generator}
        root = tmp_path / str(generator)
        synthetic.generate("imagenet", root, params, seed=0, workers=1)
        manifest = json.loads((root / "synthetic.json").read_text())
        assert manifest["params"] == {**params, "generator": generator or "parts"}  # provenance: always recorded
        specs[generator] = manifest["classes"]
        images[generator] = {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.JPEG"))}
    assert specs[None] == specs["parts"] and images[None] == images["parts"]
    parts, arranged = specs["parts"], specs["arrangements"]
    assert [c["wnid"] for c in parts] == [c["wnid"] for c in arranged]
    assert [c["face"] for c in parts] == [c["face"] for c in arranged] == [False] * 8 + [True]
    # parts: each part has its own shape, texture and colour; arrangements: shapes in a layout, in families
    assert all(set(c["spec"]) == {"parts", "layout"} for c in parts if not c["face"])
    assert all(set(c["spec"]) == {"shapes", "layout", "family"} for c in arranged if not c["face"])
    assert [c["spec"]["family"] for c in arranged if not c["face"]] == [0, 0, 0, 0, 1, 1, 1, 1]
    for got, catalogue in ((arranged, arrangements), (parts, synthetic.vocabulary)):
        assert [c["name"] for c in got if not c["face"]] == [c.name for c in catalogue.object_classes("imagenet", 8)]
    assert arranged[-1]["spec"] == dataclasses.asdict(arrangements.face_classes(1)[0])
    assert not {c["name"] for c in parts} & {c["name"] for c in arranged}
    assert images["parts"].keys() == images["arrangements"].keys()
    assert all(images["parts"][k] != images["arrangements"][k] for k in images["parts"])
    # every job of the plan carries the generator that draws its classes
    plan = synthetic.imagenet_plan(synthetic.check_params("imagenet", {**TINY_IMAGENET, "generator": "arrangements"}),
                                   seed=0)
    assert {j.generator for j in plan.train + plan.val} == {"arrangements"}
    assert all(isinstance(c, arrangements.ObjectClass | arrangements.FaceClass) for c in plan.classes)


def test_the_option_is_checked() -> None:
    many_faces = {**TINY_IMAGENET, "classes": 50, "face_classes": arrangements.MAX_FACE_CLASSES + 1}
    assert synthetic.check_params("imagenet", many_faces)["generator"] == "parts"  # no such limit there
    with pytest.raises(ConfigError, match=r"synthetic\.imagenet\.face_classes"):
        synthetic.check_params("imagenet", {**many_faces, "generator": "arrangements"})
    for bad in ("Arrangements", 1, True):
        with pytest.raises(ConfigError, match=r"synthetic\.generator"):
            synthetic.check_params("voc", {"image_size": 16, "train_images": 1, "val_images": 1, "max_objects": 1,
                                           "generator": bad})
    assert synthetic.check_params("imagenet", {**TINY_IMAGENET, "generator": None})["generator"] == "parts"
    assert list(synthetic.GENERATORS) == ["parts", "arrangements"] and synthetic.DEFAULT_GENERATOR == "parts"

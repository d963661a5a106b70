"""The four datasets in their real layouts, and generate(), which writes one of them atomically.

- ImageNet 2012: train/<wnid>/, val/<wnid>/, meta.bin (as torchvision reads it) and parts.csv (face parts);
- Caltech-101 and Caltech-256: their category folders, background/clutter class, optional planted copies of
  ImageNet training images;
- PASCAL VOC 2012: JPEGImages, Annotations (XML) and ImageSets/Main lists.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from zfrepro.data.generated import MANIFEST, file_sizes
from zfrepro.data.synthetic.generators import GENERATORS
from zfrepro.data.synthetic.params import check_params
from zfrepro.data.synthetic.pool import run_jobs
from zfrepro.data.synthetic.scenes import Job
from zfrepro.data.synthetic.vocabulary import FACE_PARTS, VOC_CLASSES
from zfrepro.errors import ConfigError

# The order in which quirky ImageNet train files cycle through the oddities of the real set.
QUIRKY_KINDS = ("grey", "cmyk", "png_rgba", "png_palette", "png_rgb")


# ------------------------------------------------------------------------------------------------------------
# The four layouts.


def _code(dataset: str) -> int:
    return zlib.crc32(dataset.encode())


class ImagenetPlan(NamedTuple):
    """What the ImageNet stand-in holds: its classes (index = wnid order) and one Job per file."""

    wnids: list[str]
    classes: list[Any]  # ObjectClass then FaceClass entries
    train: list[Job]
    val: list[Job]  # in val-number order
    val_labels: list[int]


def imagenet_plan(p: dict[str, Any], seed: int) -> ImagenetPlan:
    """Plan the ImageNet stand-in from checked params: classes, wnids and every train/val job."""
    n_obj = p["classes"] - p["face_classes"]
    gen = GENERATORS[p["generator"]]
    classes: list[Any] = gen.object_classes("imagenet", n_obj) + list(gen.face_classes(p["face_classes"]))
    # WordNet-like ids outside the real range: n90000001... for objects, n91000001... for faces.
    wnids = [f"n90{i + 1:06d}" for i in range(n_obj)] + [f"n91{i + 1:06d}" for i in range(p["face_classes"])]
    code, short, n_train = _code("imagenet"), p["image_size"], p["train_per_class"]
    rng = np.random.default_rng([seed, code, 99])
    quirky = sorted(rng.choice(len(classes) * n_train, size=p["quirky_images"], replace=False).tolist())
    fmt = {int(q): QUIRKY_KINDS[i % len(QUIRKY_KINDS)] for i, q in enumerate(quirky)}
    scene = ["object" if i < n_obj else "face" for i in range(len(classes))]
    train = [Job(f"train/{wn}/{wn}_{k + 1}.JPEG", (seed, code, 0, c, k), short, scene[c], (classes[c],),
                 fmt.get(c * n_train + k, "jpeg"), generator=p["generator"])
             for c, wn in enumerate(wnids) for k in range(n_train)]
    per_class = [p["val_per_class"]] * n_obj + [p.get("face_val_per_class", p["val_per_class"])] * p["face_classes"]
    labels = np.repeat(np.arange(len(classes)), per_class)
    labels = labels[rng.permutation(len(labels))]  # the numbering interleaves the classes, as in ILSVRC 2012
    val = [Job(f"val/{wnids[c]}/ILSVRC2012_val_{i + 1:08d}.JPEG", (seed, code, 1, int(c), i), short, scene[c],
               (classes[c],), generator=p["generator"]) for i, c in enumerate(labels)]
    return ImagenetPlan(wnids, classes, train, val, [int(c) for c in labels])


def _imagenet(root: Path, p: dict[str, Any], seed: int, workers: int) -> dict:
    plan = imagenet_plan(p, seed)
    run_jobs(plan.train, root, workers, "imagenet train")
    val_meta = run_jobs(plan.val, root, workers, "imagenet val")
    import torch

    # Exactly what torchvision's ImageNet reads from meta.bin: (wnid -> class names, wnid of each val image).
    torch.save(({wn: (cls.name,) for wn, cls in zip(plan.wnids, plan.classes, strict=True)},
                [plan.wnids[c] for c in plan.val_labels]), root / "meta.bin")
    with open(root / "parts.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "part", "x0", "y0", "x1", "y1"])
        for job, meta in zip(plan.val, val_meta, strict=True):
            for part in FACE_PARTS:
                if part in meta.get("parts", {}):
                    out.writerow([job.path, part, *meta["parts"][part]])
    n_obj = p["classes"] - p["face_classes"]
    return {"classes": [{"wnid": wn, "name": c.name, "face": i >= n_obj, "spec": asdict(c)}
                        for i, (wn, c) in enumerate(zip(plan.wnids, plan.classes, strict=True))],
            "quirky": {j.path: j.fmt for j in plan.train if j.fmt != "jpeg"}}


def _counts(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    return [int(x) for x in rng.integers(low, high + 1, size=n)]


def _folder_name(cls: Any) -> str:
    return cls.name.replace(" ", "_")


def _caltech_file(which: str, c: int, cls: Any, k: int) -> str:
    """Relative path of the k-th (1-based) image of object class c, numbered the way torchvision reads it."""
    if which == "caltech101":
        return f"caltech101/101_ObjectCategories/{_folder_name(cls)}/image_{k:04d}.jpg"
    return f"caltech256/256_ObjectCategories/{c + 1:03d}.{_folder_name(cls)}/{c + 1:03d}_{k:04d}.jpg"


def _caltech(root: Path, p: dict[str, Any], seed: int, workers: int, which: str,
             imagenet_root: Path | None = None) -> dict:
    classes = GENERATORS[p["generator"]].object_classes(which, p["classes"])
    code, short = _code(which), p["image_size"]
    rng = np.random.default_rng([seed, code, 99])
    counts = _counts(rng, len(classes), p["min_per_class"], p["max_per_class"])
    jobs = []
    for c, (cls, n) in enumerate(zip(classes, counts, strict=True)):
        jobs += [Job(_caltech_file(which, c, cls, k + 1), (seed, code, 0, c, k), short, "caltech", (cls,),
                     generator=p["generator"]) for k in range(n)]
    if which == "caltech101":
        base = "caltech101/101_ObjectCategories"
        jobs += [Job(f"{base}/BACKGROUND_Google/image_{k + 1:04d}.jpg", (seed, code, 2, 0, k), short,
                     "clutter", (), generator=p["generator"]) for k in range(p["background_images"])]
        (root / base / "BACKGROUND_Google").mkdir(parents=True, exist_ok=True)  # torchvision expects it
    else:
        base = "caltech256/256_ObjectCategories"
        c = len(classes) + 1
        jobs += [Job(f"{base}/{c:03d}.clutter/{c:03d}_{k + 1:04d}.jpg", (seed, code, 2, 0, k), short,
                     "clutter", (), generator=p["generator"]) for k in range(p["clutter_images"])]
    run_jobs(jobs, root, workers, which)
    info: dict[str, Any] = {"classes": [{"folder": _folder_name(c), "name": c.name, "spec": asdict(c)}
                                        for c in classes], "counts": counts}
    if p.get("imagenet_duplicates", 0):
        assert imagenet_root is not None  # generate() checked
        info["imagenet_duplicates"] = _plant_duplicates(root, p, seed, which, classes, counts, Path(imagenet_root))
    return info


def _imagenet_train_files(imagenet_root: Path, key: str) -> list[Path]:
    """Every file under <imagenet_root>/train/<wnid>/, in a fixed (sorted) order."""
    train = imagenet_root / "train"
    files = sorted(f for f in train.glob("*/*") if f.is_file()) if train.is_dir() else []
    if not files:
        raise ConfigError(f"{key} > 0 copies ImageNet training images, but {train} holds none; generate the "
                          "ImageNet stand-in first and pass its folder (zfrepro generate --imagenet-root)")
    return files


def _plant_duplicates(root: Path, p: dict[str, Any], seed: int, which: str, classes: list[Any],
                      counts: list[int], imagenet_root: Path) -> list[dict[str, str]]:
    """Copy p["imagenet_duplicates"] ImageNet training images into random classes, as a web crawl would.

    Each copy is resized to the Caltech image size and re-encoded as JPEG, so it is a near duplicate, not
    the same bytes (the overlap analysis must find it by content). Files continue each class's numbering.
    """
    from zfrepro.data.preprocess import load_rgb  # torchvision-backed: imported only when duplicates are asked for

    key = f"synthetic.{which}.imagenet_duplicates"
    files = _imagenet_train_files(imagenet_root, key)
    n = p["imagenet_duplicates"]
    if n > len(files):
        raise ConfigError(f"{key} = {n} exceeds the {len(files)} ImageNet training images in {imagenet_root}")
    rng = np.random.default_rng([seed, _code(which), 98])
    picks = rng.choice(len(files), size=n, replace=False)
    targets = rng.integers(len(classes), size=n)
    added = [0] * len(classes)
    planted = []
    for f, c in zip(picks.tolist(), targets.tolist(), strict=True):
        added[c] += 1
        rel = _caltech_file(which, c, classes[c], counts[c] + added[c])
        img = load_rgb(files[f])
        scale = p["image_size"] / min(img.size)
        size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
        img.resize(size, Image.Resampling.BICUBIC).save(root / rel, "JPEG", quality=85)
        planted.append({"caltech": rel, "imagenet": files[f].relative_to(imagenet_root).as_posix()})
    return planted


def _voc_xml(image_id: str, size: tuple[int, int], objects: list[dict]) -> bytes:
    """A VOC 2012 annotation file: boxes are 1-based and inclusive, as in the real set."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC2012"
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    src = ET.SubElement(ann, "source")
    for tag, text in (("database", "The VOC2008 Database"), ("annotation", "PASCAL VOC2008"),
                      ("image", "zfrepro synthetic")):
        ET.SubElement(src, tag).text = text
    sz = ET.SubElement(ann, "size")
    for tag, val in (("width", size[1]), ("height", size[0]), ("depth", 3)):
        ET.SubElement(sz, tag).text = str(val)
    ET.SubElement(ann, "segmented").text = "0"
    for o in objects:
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = o["name"]
        ET.SubElement(obj, "pose").text = o["pose"]
        for tag in ("truncated", "occluded"):
            ET.SubElement(obj, tag).text = str(o[tag])
        bb = ET.SubElement(obj, "bndbox")
        x0, y0, x1, y1 = o["box"]
        for tag, val in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(bb, tag).text = str(val)
        ET.SubElement(obj, "difficult").text = str(o["difficult"])
    ET.indent(ann, space="\t")
    return ET.tostring(ann, encoding="utf-8") + b"\n"


def _voc(root: Path, p: dict[str, Any], seed: int, workers: int) -> dict:
    classes = GENERATORS[p["generator"]].object_classes("voc", len(VOC_CLASSES))
    code, short = _code("voc"), p["image_size"]
    n = p["train_images"] + p["val_images"]
    rng = np.random.default_rng([seed, code, 99])
    ids = [f"2008_{i + 1:06d}" for i in range(n)]
    in_train = np.zeros(n, dtype=bool)
    in_train[rng.permutation(n)[:p["train_images"]]] = True
    jobs = []
    for i, image_id in enumerate(ids):
        k = int(rng.integers(1, p["max_objects"] + 1))
        picks = [int(c) for c in rng.integers(len(VOC_CLASSES), size=k)]
        jobs.append(Job(f"VOCdevkit/VOC2012/JPEGImages/{image_id}.jpg", (seed, code, 0, 0, i), short, "voc",
                        tuple(classes[c] for c in picks), names=tuple(VOC_CLASSES[c] for c in picks),
                        generator=p["generator"]))
    metas = run_jobs(jobs, root, workers, "voc")
    base = root / "VOCdevkit" / "VOC2012"
    (base / "Annotations").mkdir(parents=True, exist_ok=True)
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for image_id, meta in zip(ids, metas, strict=True):
        xml = _voc_xml(image_id, meta["size"], meta["objects"])
        (base / "Annotations" / f"{image_id}.xml").write_bytes(xml)
    splits = {"train": [i for i in range(n) if in_train[i]], "val": [i for i in range(n) if not in_train[i]]}
    splits["trainval"] = list(range(n))
    for split, idx in splits.items():
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{ids[i]}\n" for i in idx))
        for name in VOC_CLASSES:
            lines = []
            for i in idx:
                objs = [o for o in metas[i]["objects"] if o["name"] == name]
                label = 1 if any(not o["difficult"] for o in objs) else 0 if objs else -1
                lines.append(f"{ids[i]} {label:2d}\n")
            (base / "ImageSets" / "Main" / f"{name}_{split}.txt").write_text("".join(lines))
    return {"classes": [{"name": v, "description": c.name, "spec": asdict(c)}
                        for v, c in zip(VOC_CLASSES, classes, strict=True)]}


_BUILDERS: dict[str, Callable[..., dict]] = {
    "imagenet": _imagenet,
    "caltech101": functools.partial(_caltech, which="caltech101"),
    "caltech256": functools.partial(_caltech, which="caltech256"),
    "voc": _voc,
}


def default_workers() -> int:
    """Worker processes for generation: the CPUs this process may use (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _remove_stale(out: Path) -> None:
    """Delete temp folders that killed runs left beside `out` (their process no longer exists)."""
    prefixes = (f".{out.name}.tmp-", f".{out.name}.old-")
    for tmp in out.parent.iterdir():
        owner = tmp.name.rsplit("-", 1)[-1]
        if not (tmp.is_dir() and tmp.name.startswith(prefixes) and owner.isdigit()):
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


def generate(dataset: str, out: Path, params: dict, seed: int, workers: int | None = None,
             imagenet_root: Path | None = None) -> None:
    """Write one synthetic dataset to `out` in the real dataset's layout, deterministically from `seed`.

    params = {"image_size": int, "generator": str, **config["synthetic"][dataset]} (generator left out: parts).
    The data is built in a temporary folder beside `out` and renamed into place at the end, so an interrupted
    run never leaves a complete-looking one.
    `imagenet_root` (the generated ImageNet) is needed by Caltech sets with imagenet_duplicates > 0: that
    many of its training images are copied in, and synthetic.json lists them under "imagenet_duplicates".
    synthetic.json also lists every file written, with its size ("files").
    """
    p = check_params(dataset, params)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"synthetic.seed = {seed!r}; it must be an integer >= 0")
    extra: dict[str, Any] = {}
    if p.get("imagenet_duplicates", 0):
        if imagenet_root is None:
            raise ConfigError(f"synthetic.{dataset}.imagenet_duplicates = {p['imagenet_duplicates']} needs the "
                              "generated ImageNet folder (generate(..., imagenet_root=...), or --imagenet-root)")
        extra["imagenet_root"] = Path(imagenet_root)
        _imagenet_train_files(Path(imagenet_root), f"synthetic.{dataset}.imagenet_duplicates")  # fail early
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        info = _BUILDERS[dataset](tmp, p, seed, workers or default_workers(), **extra)
        # What was written, file by file, so that readers notice a file lost later (zfrepro.data.generated).
        manifest = {"dataset": dataset, "seed": seed, "params": p, **info, "files": file_sizes(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise



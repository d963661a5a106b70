"""Deterministic synthetic stand-ins for ImageNet 2012, Caltech-101/256 and PASCAL VOC 2012.

Images show objects composed of parts from one shared vocabulary (shape x fill texture x colour); each class
is a fixed combination and arrangement of 2-3 parts, drawn with random position, scale, rotation and lighting
over crops of the photographs and textures shipped with scikit-image and scikit-learn. A family of ImageNet
"face" classes has two eyes and a nose whose boxes go to `parts.csv` (the correspondence study, Table 1). The
transfer sets use other combinations of the same parts, so ImageNet-trained features transfer. Files are
written in the real datasets' layouts, so torchvision's dataset classes (and the real-data code) read them.

`parts.csv` boxes are 0-based pixel boxes, half-open: the part covers `image[y0:y1, x0:x1]`; `left_eye` is the
eye on the viewer's left when the head is upright. The same image bytes follow from the same seed and params,
whatever the number of worker processes.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import shutil
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from zfrepro.errors import ConfigError

DATASETS = ("imagenet", "caltech101", "caltech256", "voc")
PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "imagenet": ("classes", "face_classes", "train_per_class", "val_per_class", "quirky_images"),
    "caltech101": ("classes", "min_per_class", "max_per_class", "background_images"),
    "caltech256": ("classes", "min_per_class", "max_per_class", "clutter_images"),
    "voc": ("train_images", "val_images", "max_objects"),
}
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
MAX_CLASSES = 256
FACE_PARTS = ("left_eye", "right_eye", "nose")
# The order in which quirky ImageNet train files cycle through the oddities of the real set.
QUIRKY_KINDS = ("grey", "cmyk", "png_rgba", "png_palette", "png_rgb")

SHAPES = ("disc", "square", "triangle", "star", "ring", "cross", "bar", "diamond", "hexagon", "crescent")
TEXTURES = {"plain": "plain", "stripes": "striped", "checker": "checked", "dots": "dotted", "rings": "ringed"}
COLOURS = {
    "red": (215, 35, 35), "orange": (245, 135, 20), "yellow": (240, 215, 40), "green": (40, 165, 55),
    "cyan": (40, 200, 215), "blue": (35, 70, 215), "purple": (140, 45, 175), "white": (238, 238, 235),
}
# Placements (dx, dy, scale) of the secondary parts in units of the main part's radius; y points down.
LAYOUTS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "above": ((0.0, -1.05, 0.6),),
    "below": ((0.0, 1.05, 0.6),),
    "beside": ((1.1, 0.0, 0.6),),
    "inside": ((0.0, 0.0, 0.48),),
    "corner": ((0.8, -0.8, 0.5),),
    "row": ((-1.15, 0.0, 0.6), (1.15, 0.0, 0.6)),
    "stack": ((0.0, -1.05, 0.6), (0.0, 1.05, 0.6)),
    "ears": ((-0.75, -0.9, 0.5), (0.75, -0.9, 0.5)),
    "inside_above": ((0.0, 0.0, 0.48), (0.0, -1.05, 0.55)),
}
LAYOUT_PHRASES = {
    "above": "{0} with {1} above", "below": "{0} with {1} below", "beside": "{0} with {1} beside",
    "inside": "{0} with {1} inside", "corner": "{0} with {1} at the corner", "row": "{0} between {1} and {2}",
    "stack": "{0} with {1} above and {2} below", "ears": "{0} with two {1} ears",
    "inside_above": "{0} with {1} inside and {2} above",
}
# Fixed: the class definitions do not move with the data seed, so the four sets always stay disjoint.
_CATALOGUE_SEED = 20140101
_EYE_WHITE = (245, 245, 240)
_DARK = (25, 20, 20)
_NOSE = (60, 30, 25)


@dataclass(frozen=True)
class Part:
    """One element of the shared vocabulary: a shape filled with a texture in a colour."""

    shape: str
    texture: str
    colour: str

    def phrase(self) -> str:
        return f"{self.colour} {TEXTURES[self.texture]} {self.shape}"


@dataclass(frozen=True)
class ObjectClass:
    """A class: parts[0] is the main part, parts[1:] sit where LAYOUTS[layout] says."""

    parts: tuple[Part, ...]
    layout: str

    @property
    def name(self) -> str:
        p = [part.phrase() for part in self.parts] + [""]
        return LAYOUT_PHRASES[self.layout].format(*p)


@dataclass(frozen=True)
class FaceClass:
    """A face class: a head (shape/texture/colour, aspect) with optional ears; eyes and nose are shared."""

    head: Part
    aspect: float
    ears: Part | None

    @property
    def name(self) -> str:
        ears = f" with {self.ears.colour} {self.ears.shape} ears" if self.ears else ""
        return f"face: {self.head.phrase()} head{ears}"


# ------------------------------------------------------------------------------------------------------------
# The class catalogue: one fixed stream of object classes; dataset k of DATASETS takes every 4th entry from k,
# so the ImageNet classes and each transfer set's classes are always disjoint combinations of the same parts.


def _draw_part_spec(rng: np.random.Generator, exclude_colours: Iterable[str] = ()) -> Part:
    colours = [c for c in COLOURS if c not in set(exclude_colours)]
    return Part(SHAPES[rng.integers(len(SHAPES))], list(TEXTURES)[rng.integers(len(TEXTURES))],
                colours[rng.integers(len(colours))])


def _draw_object_class(rng: np.random.Generator) -> ObjectClass:
    layout = list(LAYOUTS)[rng.integers(len(LAYOUTS))]
    main = _draw_part_spec(rng)
    second = _draw_part_spec(rng, [main.colour])
    if layout == "ears":
        return ObjectClass((main, second, second), layout)
    if len(LAYOUTS[layout]) == 1:
        return ObjectClass((main, second), layout)
    return ObjectClass((main, second, _draw_part_spec(rng, [main.colour, second.colour])), layout)


def _codes(cls: ObjectClass) -> np.ndarray:
    """Integer code [layout, (shape, texture, colour) x 3] of a class, -1 for a missing part."""
    code = np.full(10, -1, dtype=np.int64)
    code[0] = list(LAYOUTS).index(cls.layout)
    for i, part in enumerate(cls.parts):
        code[1 + 3 * i:4 + 3 * i] = (SHAPES.index(part.shape), list(TEXTURES).index(part.texture),
                                     list(COLOURS).index(part.colour))
    return code


def _distances(codes: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Attribute mismatches of cand to every row of codes (layout counts 2, a part only one side has 3)."""
    a, x = codes[:, 1:].reshape(-1, 3, 3), cand[1:].reshape(3, 3)
    pa, px = a[:, :, 0] >= 0, x[:, 0] >= 0
    per_slot = np.where(pa & px, (a != x).sum(-1), np.where(pa ^ px, 3, 0))
    return 2 * (codes[:, 0] != cand[0]) + per_slot.sum(1)


@functools.lru_cache(maxsize=8)
def catalogue(n: int) -> tuple[ObjectClass, ...]:
    """The first n entries of the fixed class stream (a prefix of any longer one).

    Every entry differs from all earlier ones in at least 4 attributes, and (while possible) no two entries of
    one dataset share the main part's shape and colour, so classes are told apart by more than one cue.
    """
    rng = np.random.default_rng(_CATALOGUE_SEED)
    out: list[ObjectClass] = []
    codes = np.zeros((0, 10), dtype=np.int64)
    while len(out) < n:
        same_set = codes[len(out) % len(DATASETS)::len(DATASETS)]
        # Once a dataset has used every main (shape, colour) pair, the second rule cannot hold any more.
        strict = 300 if len(same_set) < len(SHAPES) * len(COLOURS) else 0
        for attempt in range(1000):
            cand = _draw_object_class(rng)
            code = _codes(cand)
            if len(codes) and _distances(codes, cand=code).min() < 4:
                continue
            if attempt < strict and np.any((same_set[:, 1] == code[1]) & (same_set[:, 3] == code[3])):
                continue
            break
        else:
            raise ConfigError(f"synthetic: cannot make {n} distinct part combinations; ask for fewer classes")
        out.append(cand)
        codes = np.vstack([codes, code])
    return tuple(out)


def object_classes(dataset: str, n: int) -> list[ObjectClass]:
    """The n object classes of one dataset: its own slice of the catalogue."""
    k = DATASETS.index(dataset)
    return list(catalogue(len(DATASETS) * n)[k::len(DATASETS)][:n])


@functools.lru_cache(maxsize=8)
def face_classes(n: int) -> tuple[FaceClass, ...]:
    """n face classes with distinct names and (up to 21) head shape/colour pairs; eyes and nose are shared."""
    rng = np.random.default_rng(_CATALOGUE_SEED + 1)
    heads = ("disc", "hexagon", "square")
    colours = [c for c in COLOURS if c != "white"]  # white heads would hide the white eyes
    out: list[FaceClass] = []
    while len(out) < n:
        head = Part(heads[rng.integers(len(heads))], ("plain", "dots", "stripes")[rng.integers(3)],
                    colours[rng.integers(len(colours))])
        if any((f.head.shape, f.head.colour) == (head.shape, head.colour) for f in out) and len(out) < 21:
            continue
        ears = None if rng.random() < 0.3 else Part(("triangle", "disc", "square")[rng.integers(3)], "plain",
                                                    [c for c in COLOURS if c != head.colour][rng.integers(7)])
        face = FaceClass(head, float((0.8, 0.9, 1.0)[rng.integers(3)]), ears)
        if face.name not in {f.name for f in out}:
            out.append(face)
    return tuple(out)


# ------------------------------------------------------------------------------------------------------------
# Drawing primitives. Shapes are polygons in unit coordinates (radius 1, y down), rasterised at 2x and
# reduced, so edges are anti-aliased; every pixel operation is local, so each part's box is exact.


def _circle(r: float = 1.0, cx: float = 0.0, cy: float = 0.0, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _regular(n: int, r: float = 1.0, start: float = -90.0) -> np.ndarray:
    t = np.deg2rad(start + 360.0 * np.arange(n) / n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _star() -> np.ndarray:
    t = np.deg2rad(-90.0 + 36.0 * np.arange(10))
    r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _box(w: float, h: float) -> np.ndarray:
    return np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=float)


_CROSS = np.array([[-0.3, -1], [0.3, -1], [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3], [0.3, 1], [-0.3, 1],
                   [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3]], dtype=float)
# Each shape: polygons drawn in order with fill 255 (add) or 0 (cut out).
SHAPE_POLYGONS: dict[str, tuple[tuple[np.ndarray, int], ...]] = {
    "disc": ((_circle(), 255),),
    "square": ((_box(0.85, 0.85), 255),),
    "triangle": ((_regular(3), 255),),
    "star": ((_star(), 255),),
    "ring": ((_circle(), 255), (_circle(0.55), 0)),
    "cross": ((_CROSS, 255),),
    "bar": ((_box(1.0, 0.32), 255),),
    "diamond": ((np.array([[0, -1], [0.65, 0], [0, 1], [-0.65, 0]], dtype=float), 255),),
    "hexagon": ((_regular(6, start=0.0), 255),),
    "crescent": ((_circle(), 255), (_circle(0.85, 0.45, -0.2), 0)),
    "nose": ((_regular(3, start=90.0), 255),),  # a downward triangle; only used for faces
}
Box = tuple[int, int, int, int]


@dataclass
class Pose:
    """Where a shape goes: centre (px), radius (px), rotation (rad) and horizontal aspect."""

    cx: float
    cy: float
    radius: float
    angle: float = 0.0
    aspect: float = 1.0

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        x, y = pts[:, 0] * self.radius * self.aspect, pts[:, 1] * self.radius
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.stack([self.cx + c * x - s * y, self.cy + s * x + c * y], 1)

    def to_local(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = xs - self.cx, ys - self.cy
        return (c * dx + s * dy) / (self.radius * self.aspect), (-s * dx + c * dy) / self.radius

    def child(self, dx: float, dy: float, scale: float, aspect: float = 1.0) -> Pose:
        """The pose of a part placed at (dx, dy) in this pose's unit frame."""
        (cx, cy), = self.to_pixels(np.array([[dx, dy]]))
        return Pose(float(cx), float(cy), self.radius * scale, self.angle, aspect)


def _shape_alpha(shape: str, pose: Pose, h: int, w: int) -> tuple[np.ndarray, Box] | None:
    """Anti-aliased coverage of a shape in its clipped pixel box, or None when it misses the image."""
    polys = [(pose.to_pixels(p), fill) for p, fill in SHAPE_POLYGONS[shape]]
    pts = np.concatenate([p for p, _ in polys])
    x0, y0 = max(0, math.floor(pts[:, 0].min()) - 1), max(0, math.floor(pts[:, 1].min()) - 1)
    x1, y1 = min(w, math.ceil(pts[:, 0].max()) + 1), min(h, math.ceil(pts[:, 1].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = Image.new("L", (2 * (x1 - x0), 2 * (y1 - y0)), 0)
    draw = ImageDraw.Draw(mask)
    for p, fill in polys:
        draw.polygon([(2 * (x - x0), 2 * (y - y0)) for x, y in p], fill=fill)
    alpha = np.asarray(mask.reduce(2), dtype=np.float32) / 255.0
    return alpha, (x0, y0, x1, y1)


def _texture(texture: str, u: np.ndarray, v: np.ndarray, phase: tuple[float, float]) -> np.ndarray:
    """Boolean 'ink' pattern of a fill texture in the part's unit frame (so it rotates and scales with it)."""
    a, b = phase
    if texture == "stripes":
        return (u * 2.2 + a) % 1.0 < 0.5
    if texture == "checker":
        return (np.floor(u * 2.2 + a) + np.floor(v * 2.2 + b)) % 2 == 1
    if texture == "dots":
        return ((u * 2.5 + a) % 1.0 - 0.5) ** 2 + ((v * 2.5 + b) % 1.0 - 0.5) ** 2 < 0.09
    if texture == "rings":
        return np.floor(np.hypot(u, v) * 3.5) % 2 == 1
    return np.zeros(u.shape, dtype=bool)


def _paint(img: np.ndarray, shape: str, pose: Pose, colour: np.ndarray, texture: str = "plain",
           phase: tuple[float, float] = (0.0, 0.0), coverage: np.ndarray | None = None) -> Box | None:
    """Composite one textured, shaded shape onto img (float HxWx3) in place; return its pixel box.

    `coverage` (HxW), when given, accumulates the shape's alpha (VOC occlusion bookkeeping).
    """
    h, w = img.shape[:2]
    got = _shape_alpha(shape, pose, h, w)
    if got is None:
        return None
    alpha, (x0, y0, x1, y1) = got
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    u, v = pose.to_local(xs, ys)
    ink = _texture(texture, u, v, phase)
    fill = np.where(ink[..., None], colour * 0.3 + 10.0, colour)
    fill = fill * (1.0 - 0.12 * np.clip(v, -1.5, 1.5))[..., None]  # lit from above, so parts look solid
    a = alpha[..., None]
    region = img[y0:y1, x0:x1]
    region *= 1.0 - a
    region += a * fill
    if coverage is not None:
        coverage[y0:y1, x0:x1] = coverage[y0:y1, x0:x1] * (1.0 - alpha) + alpha
    ys_on, xs_on = np.nonzero(alpha > 0.02)
    if len(ys_on) == 0:
        return None
    return x0 + int(xs_on.min()), y0 + int(ys_on.min()), x0 + int(xs_on.max()) + 1, y0 + int(ys_on.max()) + 1


def _union(boxes: Iterable[Box | None]) -> Box | None:
    bs = [b for b in boxes if b is not None]
    if not bs:
        return None
    return min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs)


def _jitter_colour(rng: np.random.Generator, name: str) -> np.ndarray:
    return np.clip(np.array(COLOURS[name], dtype=np.float32) + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


def _phase(rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.random()), float(rng.random())


def _object_extent(cls: ObjectClass) -> float:
    """Radius of the whole object in units of the main part's radius (any rotation)."""
    return max([1.0] + [math.hypot(dx, dy) + s for dx, dy, s in LAYOUTS[cls.layout]]) * 1.08


def _draw_object(img: np.ndarray, cls: ObjectClass, pose: Pose, rng: np.random.Generator,
                 coverage: np.ndarray | None = None) -> Box | None:
    """Draw an object class at pose (pose.radius = the main part's radius); return its pixel box."""
    placements = [(0.0, 0.0, 1.0)] + list(LAYOUTS[cls.layout])
    boxes = []
    for part, (dx, dy, s) in zip(cls.parts, placements, strict=True):
        jit = 0.0 if (dx, dy) == (0.0, 0.0) else 0.06
        child = pose.child(dx + rng.normal(0, jit), dy + rng.normal(0, jit), s * rng.uniform(0.92, 1.08),
                           rng.uniform(0.88, 1.12))
        boxes.append(_paint(img, part.shape, child, _jitter_colour(rng, part.colour), part.texture,
                            _phase(rng), coverage))
    return _union(boxes)


def _face_geometry(cls: FaceClass, pose: Pose, rng: np.random.Generator) -> tuple[dict[str, Pose], float]:
    """Poses of the face's parts (eyes and nose moved by a random yaw and pitch) and the yaw."""
    yaw, pitch = rng.uniform(-0.28, 0.28), rng.uniform(-0.12, 0.12)
    head = Pose(pose.cx, pose.cy, pose.radius, pose.angle, cls.aspect)
    spread = 0.36 * (1.0 - 0.35 * abs(yaw))
    return {
        "head": head,
        "left_eye": head.child(yaw * 0.4 - spread, -0.14 + pitch, 0.16),
        "right_eye": head.child(yaw * 0.4 + spread, -0.14 + pitch, 0.16),
        "nose": head.child(yaw * 0.55, 0.26 + pitch, 0.15),
        "ear_l": head.child(-0.72, -0.82, 0.36), "ear_r": head.child(0.72, -0.82, 0.36),
    }, yaw


def _draw_face(img: np.ndarray, cls: FaceClass, pose: Pose, rng: np.random.Generator,
               features: bool = True) -> tuple[Box | None, dict[str, Box]]:
    """Draw a face; return the head box and the boxes of left_eye, right_eye and nose."""
    g, yaw = _face_geometry(cls, pose, rng)
    boxes: list[Box | None] = []
    if cls.ears is not None:
        colour = _jitter_colour(rng, cls.ears.colour)
        boxes += [_paint(img, cls.ears.shape, g[e], colour) for e in ("ear_l", "ear_r")]
    boxes.append(_paint(img, cls.head.shape, g["head"], _jitter_colour(rng, cls.head.colour),
                        cls.head.texture, _phase(rng)))
    parts: dict[str, Box] = {}
    if not features:
        return _union(boxes), parts
    white, dark, nose = (np.array(c, dtype=np.float32) for c in (_EYE_WHITE, _DARK, _NOSE))
    for eye in ("left_eye", "right_eye"):
        box = _paint(img, "disc", g[eye], white)
        _paint(img, "disc", g[eye].child(yaw * 0.8, 0.05, 0.5), dark)  # pupil looks where the head turns
        if box is not None:
            parts[eye] = box
    box = _paint(img, "nose", g["nose"], nose)
    if box is not None:
        parts["nose"] = box
    return _union(boxes + list(parts.values())), parts


# ------------------------------------------------------------------------------------------------------------
# Backgrounds and lighting.


@functools.lru_cache(maxsize=1)
def _sources() -> tuple[Image.Image, ...]:
    """The cluttered-background pool: scikit-image's and scikit-learn's bundled photographs and textures."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    names = ("astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon",
             "horse", "coins", "immunohistochemistry", "hubble_deep_field", "colorwheel", "checkerboard",
             "clock", "cell", "page", "text")
    arrays = [np.asarray(getattr(skimage.data, n)()) for n in names] + list(load_sample_images().images)
    out = []
    for a in arrays:
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        out.append(Image.fromarray(a.astype(np.uint8)).convert("RGB"))
    return tuple(out)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random crop of a random source, flipped, tinted and softened (float32 HxWx3, 0..255)."""
    src = _sources()[rng.integers(len(_sources()))]
    sw, sh = src.size
    scale = rng.uniform(0.3, 1.0) * min(sw / w, sh / h)
    cw, ch = w * scale, h * scale
    x0, y0 = rng.uniform(0, sw - cw), rng.uniform(0, sh - ch)
    crop = src.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    bg = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.5:
        bg = bg[:, ::-1]
    bg = bg * rng.uniform(0.75, 1.15, 3).astype(np.float32)
    mean = bg.mean(axis=(0, 1), keepdims=True)
    return np.ascontiguousarray(mean + (bg - mean) * rng.uniform(0.45, 0.9))


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global brightness, contrast, colour cast and an illumination ramp: pixelwise, so boxes stay exact."""
    h, w = img.shape[:2]
    theta = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    along = ((xs - w / 2) * math.cos(theta) + (ys - h / 2) * math.sin(theta)) / max(h, w)
    ramp = 1.0 + rng.uniform(-0.2, 0.2) * along
    out = (img - 128.0) * rng.uniform(0.75, 1.2) + 128.0 + rng.uniform(-25, 25)
    out = out * rng.uniform(0.88, 1.12, 3).astype(np.float32) * ramp[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _image_size(rng: np.random.Generator, short: int) -> tuple[int, int]:
    """(height, width): the shorter side is `short`, the longer one up to 4/3 of it, mostly landscape."""
    long = int(rng.integers(short, math.floor(short * 4 / 3) + 1))
    return (short, long) if rng.random() < 0.7 else (long, short)


# ------------------------------------------------------------------------------------------------------------
# Scenes. A Job names one file; rendering it depends only on the job, so workers can run in any order.


class Job(NamedTuple):
    """One image to make: where it goes, how to seed it, what to draw and how to encode it."""

    path: str  # relative to the output root
    key: tuple[int, ...]  # (seed, dataset code, stream, class, index): the image's own random stream
    short: int
    scene: str  # object | caltech | face | clutter | voc
    classes: tuple[Any, ...]  # ObjectClass / FaceClass objects drawn in this image
    fmt: str = "jpeg"  # jpeg or one of QUIRKY_KINDS
    names: tuple[str, ...] = ()  # VOC class names of `classes`


def _place(rng: np.random.Generator, h: int, w: int, frac: tuple[float, float], centred: float,
           extent: float) -> Pose:
    """A pose whose object (extent = its radius in main-part radii) spans frac of the shorter side."""
    r_obj = rng.uniform(*frac) * min(h, w) / 2
    free_x, free_y = max(0.0, w / 2 - r_obj), max(0.0, h / 2 - r_obj)
    cx = w / 2 + rng.uniform(-1, 1) * free_x * centred
    cy = h / 2 + rng.uniform(-1, 1) * free_y * centred
    return Pose(cx, cy, r_obj / extent, math.radians(rng.uniform(-20, 20)))


def _loose_parts(rng: np.random.Generator, h: int, w: int, img: np.ndarray, n: int,
                 frac: tuple[float, float]) -> None:
    """Scatter n single parts of the vocabulary: clutter sharing the objects' parts, not their layout."""
    for _ in range(n):
        part = _draw_part_spec(rng)
        pose = _place(rng, h, w, frac, 1.2, 1.0)
        _paint(img, part.shape, pose, _jitter_colour(rng, part.colour), part.texture, _phase(rng))


def _distractors(rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> None:
    """0-2 small loose parts behind the object, so a class is its combination of parts, not any one part."""
    _loose_parts(rng, h, w, img, int(rng.choice(3, p=[0.4, 0.4, 0.2])), (0.12, 0.28))


def _scene_single(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    cls = job.classes[0]
    frac, centred = ((0.6, 0.95), 0.5) if job.scene == "caltech" else ((0.5, 0.95), 1.0)
    _distractors(rng, h, w, img)
    pose = _place(rng, h, w, frac, centred, _object_extent(cls))
    _draw_object(img, cls, pose, rng)
    return {}


def _scene_face(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray,
                features: bool = True) -> dict[str, Any]:
    # The whole head stays inside the image so that both eyes and the nose are always visible.
    _distractors(rng, h, w, img)
    pose = _place(rng, h, w, (0.55, 0.85), 0.9, 1.55)
    _, parts = _draw_face(img, job.classes[0], pose, rng, features)
    return {"parts": parts}


def _scene_clutter(rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    """Background classes: clutter and a few loose parts, no object."""
    _loose_parts(rng, h, w, img, int(rng.integers(0, 4)), (0.15, 0.35))
    return {}


def _scene_voc(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    """Several objects at spread-out positions; VOC boxes, truncation, occlusion and difficulty."""
    n = len(job.classes)
    frac = (0.5, 0.9) if n == 1 else (0.3, 0.6)
    drawn: list[tuple[str, Box, np.ndarray, float, Pose, float]] = []
    for cls, name in zip(job.classes, job.names, strict=True):
        extent = _object_extent(cls)
        best = None
        for _ in range(8):  # keep the candidate farthest from the objects already placed
            pose = _place(rng, h, w, frac, 1.15, extent)
            gap = min([math.hypot(pose.cx - d[4].cx, pose.cy - d[4].cy) for d in drawn] + [1e9])
            if best is None or gap > best[0]:
                best = (gap, pose)
        pose = best[1]
        cov = np.zeros((h, w), dtype=np.float32)
        box = _draw_object(img, cls, pose, rng, cov)
        if box is None:
            continue
        drawn.append((name, box, cov, float(cov.sum()), pose, pose.radius * extent))
    objects = []
    for i, (name, box, cov, area, pose, r_obj) in enumerate(drawn):
        on_top = np.zeros((h, w), dtype=np.float32)
        for later in drawn[i + 1:]:
            on_top = np.maximum(on_top, later[2])
        visible = float((cov * (1.0 - on_top)).sum()) / max(area, 1e-6)
        full = (pose.cx - r_obj, pose.cy - r_obj, pose.cx + r_obj, pose.cy + r_obj)
        inside = (min(full[2], w) - max(full[0], 0)) * (min(full[3], h) - max(full[1], 0)) / (2 * r_obj) ** 2
        deg = math.degrees(pose.angle)
        objects.append({
            "name": name, "box": box, "truncated": int(inside < 0.85), "occluded": int(visible < 0.95),
            "difficult": int(visible < 0.3),
            "pose": "Left" if deg < -10 else "Right" if deg > 10 else "Frontal",
        })
    return {"objects": objects}


def render(job: Job, seed_override: int | None = None, features: bool = True) -> tuple[np.ndarray, dict]:
    """Render one job to a uint8 HxWx3 array plus its metadata (face part boxes or VOC objects).

    `features=False` draws a face without eyes and nose from the same random stream (tests use it to check
    that the recorded boxes mark exactly the drawn parts).
    """
    key = job.key if seed_override is None else (seed_override, *job.key[1:])
    rng = np.random.default_rng(list(key))
    h, w = _image_size(rng, job.short)
    img = _background(rng, h, w)
    if job.scene in ("object", "caltech"):
        meta = _scene_single(job, rng, h, w, img)
    elif job.scene == "face":
        meta = _scene_face(job, rng, h, w, img, features)
    elif job.scene == "clutter":
        meta = _scene_clutter(rng, h, w, img)
    else:
        meta = _scene_voc(job, rng, h, w, img)
    return _lighting(img, rng), {"size": (h, w), **meta}


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    """JPEG as usual, or one of the real ImageNet's oddities (grey/CMYK JPEG, PNG bytes named .JPEG)."""
    im = Image.fromarray(rgb)
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.save(buf, "JPEG", quality=90)
    elif fmt == "grey":
        im.convert("L").save(buf, "JPEG", quality=90)
    elif fmt == "cmyk":
        im.convert("CMYK").save(buf, "JPEG", quality=90)
    elif fmt == "png_rgba":
        im.convert("RGBA").save(buf, "PNG")
    elif fmt == "png_palette":
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "PNG")
    elif fmt == "png_rgb":
        im.save(buf, "PNG")
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return buf.getvalue()


_ROOT: str = ""  # the temp output root, set in each worker


def _init_worker(root: str) -> None:
    global _ROOT
    _ROOT = root
    _sources()


def _make(job: Job) -> dict:
    """Render and write one job under _ROOT; return its metadata."""
    rgb, meta = render(job)
    with open(os.path.join(_ROOT, job.path), "wb") as f:
        f.write(_encode(rgb, job.fmt))
    return meta


def _run_jobs(jobs: list[Job], root: Path, workers: int, desc: str) -> list[dict]:
    """Make all jobs (in a process pool when there are many) and return their metadata in job order."""
    for d in sorted({os.path.dirname(j.path) for j in jobs}):
        (root / d).mkdir(parents=True, exist_ok=True)
    _init_worker(str(root))  # loaded once here, inherited by forked workers
    if workers <= 1 or len(jobs) < 64:
        return [_make(j) for j in jobs]
    import multiprocessing

    from tqdm import tqdm

    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(str(root),)) as pool:
        it = pool.imap(_make, jobs, chunksize=16)
        bar = tqdm(it, total=len(jobs), desc=f"generate {desc}", mininterval=5.0, disable=len(jobs) < 500)
        return list(bar)


# ------------------------------------------------------------------------------------------------------------
# Parameters.


def _int(params: dict, dataset: str, key: str, low: int) -> int:
    where = f"synthetic.{key}" if key == "image_size" else f"synthetic.{dataset}.{key}"
    if key not in params:
        raise ConfigError(f"{where} is missing; set it in the config's synthetic section")
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where} = {value!r}; it must be an integer >= {low}")
    return value


def check_params(dataset: str, params: dict) -> dict[str, int]:
    """Validate the generator parameters of one dataset; ConfigError names the offending key."""
    if dataset not in DATASETS:
        raise ConfigError(f"synthetic dataset {dataset!r} is unknown; use one of {', '.join(DATASETS)}")
    known = set(PARAM_KEYS[dataset]) | {"image_size"}
    for key in params:
        if key not in known:
            raise ConfigError(f"synthetic.{dataset}.{key} is not a known key; use {', '.join(sorted(known))}")
    p = {"image_size": _int(params, dataset, "image_size", 16)}
    for key in PARAM_KEYS[dataset]:
        p[key] = _int(params, dataset, key, 0 if key in ("face_classes", "quirky_images", "background_images",
                                                        "clutter_images") else 1)
    if dataset == "imagenet":
        if p["face_classes"] > p["classes"]:
            raise ConfigError("synthetic.imagenet.face_classes must not exceed synthetic.imagenet.classes")
        if p["quirky_images"] > p["classes"] * p["train_per_class"]:
            raise ConfigError("synthetic.imagenet.quirky_images exceeds the number of training images")
    if dataset in ("caltech101", "caltech256") and p["max_per_class"] < p["min_per_class"]:
        raise ConfigError(f"synthetic.{dataset}.max_per_class must be >= synthetic.{dataset}.min_per_class")
    if dataset == "caltech256" and p["classes"] > 998:
        raise ConfigError("synthetic.caltech256.classes must be <= 998 (folders are numbered 001..999)")
    if p.get("classes", 0) > MAX_CLASSES:
        raise ConfigError(f"synthetic.{dataset}.classes must be <= {MAX_CLASSES} (part combinations run out)")
    return p


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


def imagenet_plan(p: dict[str, int], seed: int) -> ImagenetPlan:
    """Plan the ImageNet stand-in from checked params: classes, wnids and every train/val job."""
    n_obj = p["classes"] - p["face_classes"]
    classes: list[Any] = object_classes("imagenet", n_obj) + list(face_classes(p["face_classes"]))
    # WordNet-like ids outside the real range: n90000001... for objects, n91000001... for faces.
    wnids = [f"n90{i + 1:06d}" for i in range(n_obj)] + [f"n91{i + 1:06d}" for i in range(p["face_classes"])]
    code, short, n_train = _code("imagenet"), p["image_size"], p["train_per_class"]
    rng = np.random.default_rng([seed, code, 99])
    quirky = sorted(rng.choice(len(classes) * n_train, size=p["quirky_images"], replace=False).tolist())
    fmt = {int(q): QUIRKY_KINDS[i % len(QUIRKY_KINDS)] for i, q in enumerate(quirky)}
    scene = ["object" if i < n_obj else "face" for i in range(len(classes))]
    train = [Job(f"train/{wn}/{wn}_{k + 1}.JPEG", (seed, code, 0, c, k), short, scene[c], (classes[c],),
                 fmt.get(c * n_train + k, "jpeg"))
             for c, wn in enumerate(wnids) for k in range(n_train)]
    labels = np.repeat(np.arange(len(classes)), p["val_per_class"])
    labels = labels[rng.permutation(len(labels))]  # the numbering interleaves the classes, as in ILSVRC 2012
    val = [Job(f"val/{wnids[c]}/ILSVRC2012_val_{i + 1:08d}.JPEG", (seed, code, 1, int(c), i), short, scene[c],
               (classes[c],)) for i, c in enumerate(labels)]
    return ImagenetPlan(wnids, classes, train, val, [int(c) for c in labels])


def _imagenet(root: Path, p: dict[str, int], seed: int, workers: int) -> dict:
    plan = imagenet_plan(p, seed)
    _run_jobs(plan.train, root, workers, "imagenet train")
    val_meta = _run_jobs(plan.val, root, workers, "imagenet val")
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
    return {"classes": [{"wnid": wn, "name": c.name, "face": isinstance(c, FaceClass), "spec": asdict(c)}
                        for wn, c in zip(plan.wnids, plan.classes, strict=True)],
            "quirky": {j.path: j.fmt for j in plan.train if j.fmt != "jpeg"}}


def _counts(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    return [int(x) for x in rng.integers(low, high + 1, size=n)]


def _folder_name(cls: ObjectClass) -> str:
    return cls.name.replace(" ", "_")


def _caltech(root: Path, p: dict[str, int], seed: int, workers: int, which: str) -> dict:
    classes = object_classes(which, p["classes"])
    code, short = _code(which), p["image_size"]
    rng = np.random.default_rng([seed, code, 99])
    counts = _counts(rng, len(classes), p["min_per_class"], p["max_per_class"])
    jobs = []
    if which == "caltech101":
        base = "caltech101/101_ObjectCategories"
        for c, (cls, n) in enumerate(zip(classes, counts, strict=True)):
            jobs += [Job(f"{base}/{_folder_name(cls)}/image_{k + 1:04d}.jpg", (seed, code, 0, c, k), short,
                         "caltech", (cls,)) for k in range(n)]
        jobs += [Job(f"{base}/BACKGROUND_Google/image_{k + 1:04d}.jpg", (seed, code, 2, 0, k), short,
                     "clutter", ()) for k in range(p["background_images"])]
        (root / base / "BACKGROUND_Google").mkdir(parents=True, exist_ok=True)  # torchvision expects it
    else:
        base = "caltech256/256_ObjectCategories"
        for c, (cls, n) in enumerate(zip(classes, counts, strict=True)):
            folder = f"{c + 1:03d}.{_folder_name(cls)}"
            jobs += [Job(f"{base}/{folder}/{c + 1:03d}_{k + 1:04d}.jpg", (seed, code, 0, c, k), short,
                         "caltech", (cls,)) for k in range(n)]
        c = len(classes) + 1
        jobs += [Job(f"{base}/{c:03d}.clutter/{c:03d}_{k + 1:04d}.jpg", (seed, code, 2, 0, k), short,
                     "clutter", ()) for k in range(p["clutter_images"])]
    _run_jobs(jobs, root, workers, which)
    return {"classes": [{"folder": _folder_name(c), "name": c.name, "spec": asdict(c)} for c in classes],
            "counts": counts}


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


def _voc(root: Path, p: dict[str, int], seed: int, workers: int) -> dict:
    classes = object_classes("voc", len(VOC_CLASSES))
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
                        tuple(classes[c] for c in picks), names=tuple(VOC_CLASSES[c] for c in picks)))
    metas = _run_jobs(jobs, root, workers, "voc")
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


def generate(dataset: str, out: Path, params: dict, seed: int, workers: int | None = None) -> None:
    """Write one synthetic dataset to `out` in the real dataset's layout, deterministically from `seed`.

    params = {"image_size": int, **config["synthetic"][dataset]}. The data is built in a temporary folder
    beside `out` and renamed into place at the end, so an interrupted run never leaves a complete-looking one.
    """
    p = check_params(dataset, params)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"synthetic.seed = {seed!r}; it must be an integer >= 0")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        info = _BUILDERS[dataset](tmp, p, seed, workers or default_workers())
        manifest = {"dataset": dataset, "seed": seed, "params": p, **info}
        (tmp / "synthetic.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
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

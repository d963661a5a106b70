"""Scenes: background photographs, lighting, image sizes, Job, placing objects, clutter, and the `parts`
generator's scenes.

A Job names one image; rendering it (generators.render) depends only on the job (its own random stream), so
jobs can be made in any order and by any number of worker processes. The backgrounds, lighting, image sizes,
loose parts, the clutter scene and the VOC scene's bookkeeping (voc_objects) are shared by both generators;
the `arrangements` generator's own placement and scenes are in arrangement_scenes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from zfrepro.data.synthetic.drawing import (
    Box,
    Pose,
    draw_face,
    draw_object,
    jitter_colour,
    object_extent,
    paint,
    random_phase,
)
from zfrepro.data.synthetic.vocabulary import draw_part_spec

# ------------------------------------------------------------------------------------------------------------
# Backgrounds and lighting.


@functools.lru_cache(maxsize=1)
def background_sources() -> tuple[Image.Image, ...]:
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


def scene_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random crop of a random source, flipped, tinted and softened (float32 HxWx3, 0..255)."""
    src = background_sources()[rng.integers(len(background_sources()))]
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


def apply_lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global brightness, contrast, colour cast and an illumination ramp: pixelwise, so boxes stay exact."""
    h, w = img.shape[:2]
    theta = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    along = ((xs - w / 2) * math.cos(theta) + (ys - h / 2) * math.sin(theta)) / max(h, w)
    ramp = 1.0 + rng.uniform(-0.2, 0.2) * along
    out = (img - 128.0) * rng.uniform(0.75, 1.2) + 128.0 + rng.uniform(-25, 25)
    out = out * rng.uniform(0.88, 1.12, 3).astype(np.float32) * ramp[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def scene_image_size(rng: np.random.Generator, short: int) -> tuple[int, int]:
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
    generator: str = "parts"  # the generator (generators.GENERATORS) that draws `classes`: parts | arrangements


def place_pose(rng: np.random.Generator, h: int, w: int, frac: tuple[float, float], centred: float,
           extent: float) -> Pose:
    """A pose whose object (extent = its radius in main-part radii) spans frac of the shorter side."""
    r_obj = rng.uniform(*frac) * min(h, w) / 2
    free_x, free_y = max(0.0, w / 2 - r_obj), max(0.0, h / 2 - r_obj)
    cx = w / 2 + rng.uniform(-1, 1) * free_x * centred
    cy = h / 2 + rng.uniform(-1, 1) * free_y * centred
    return Pose(cx, cy, r_obj / extent, math.radians(rng.uniform(-20, 20)))


def loose_parts(rng: np.random.Generator, h: int, w: int, img: np.ndarray, n: int,
                 frac: tuple[float, float], away: tuple[float, float, float] | None = None) -> None:
    """Scatter n single parts of the vocabulary: clutter sharing the objects' parts, not their layout.

    away = (cx, cy, r): each part keeps a gap of its own diameter from that circle (the object), so loose
    parts never touch the object and make it look like another arrangement; a part that finds no such place
    in 6 tries is left out. Without it (the `parts` generator) each part goes where its first try puts it.
    """
    for _ in range(n):
        part = draw_part_spec(rng)
        for _ in range(6):
            pose = place_pose(rng, h, w, frac, 1.2, 1.0)
            if away is None or math.hypot(pose.cx - away[0], pose.cy - away[1]) >= away[2] + 3 * pose.radius:
                paint(img, part.shape, pose, jitter_colour(rng, part.colour), part.texture, random_phase(rng))
                break


def _distractors(rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> None:
    """0-2 small loose parts behind the object, so a class is its combination of parts, not any one part."""
    loose_parts(rng, h, w, img, int(rng.choice(3, p=[0.4, 0.4, 0.2])), (0.12, 0.28))


def scene_single(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    cls = job.classes[0]
    frac, centred = ((0.6, 0.95), 0.5) if job.scene == "caltech" else ((0.5, 0.95), 1.0)
    _distractors(rng, h, w, img)
    pose = place_pose(rng, h, w, frac, centred, object_extent(cls))
    draw_object(img, cls, pose, rng)
    return {}


def scene_face(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray,
                features: bool = True) -> dict[str, Any]:
    # The whole head stays inside the image so that both eyes and the nose are always visible.
    _distractors(rng, h, w, img)
    pose = place_pose(rng, h, w, (0.55, 0.85), 0.9, 1.55)
    _, parts = draw_face(img, job.classes[0], pose, rng, features)
    return {"parts": parts}


def scene_clutter(rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    """Background classes: clutter and a few loose parts, no object."""
    loose_parts(rng, h, w, img, int(rng.integers(0, 4)), (0.15, 0.35))
    return {}


def scene_voc(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    """Several objects at spread-out positions; VOC boxes, truncation, occlusion and difficulty."""
    return voc_objects(job, rng, h, w, img, place_pose, object_extent, draw_object)


def voc_objects(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray, place: Callable[..., Pose],
                 extent_of: Callable[[Any], float], draw: Callable[..., Box | None]) -> dict[str, Any]:
    """The VOC scene of either generator: objects placed by `place` (as place_pose; extent_of(cls): the object's
    radius in pose radii), drawn by `draw` (as draw_object), and their VOC boxes, truncation, occlusion,
    difficulty and pose."""
    n = len(job.classes)
    frac = (0.5, 0.9) if n == 1 else (0.3, 0.6)
    drawn: list[tuple[str, Box, np.ndarray, float, Pose, float]] = []
    for cls, name in zip(job.classes, job.names, strict=True):
        extent = extent_of(cls)
        best = None
        for _ in range(8):  # keep the candidate farthest from the objects already placed
            pose = place(rng, h, w, frac, 1.15, extent)
            gap = min([math.hypot(pose.cx - d[4].cx, pose.cy - d[4].cy) for d in drawn] + [1e9])
            if best is None or gap > best[0]:
                best = (gap, pose)
        pose = best[1]
        cov = np.zeros((h, w), dtype=np.float32)
        box = draw(img, cls, pose, rng, cov)
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

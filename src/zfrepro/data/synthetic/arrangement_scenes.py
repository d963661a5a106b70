"""The `arrangements` generator's drawing and scenes: how an arrangement (arrangements.ObjectClass) and its
faces are drawn and placed.

- An object is drawn from its class (the shapes and the layout) with a colour and a texture drawn afresh for
  each part (_part_looks), about the centre of its layout's bounding box (_layout_frame); a face with a random
  head colour and texture, ears of another random colour, and the shared eyes and nose.
- An object's main part gets the same range of sizes whatever its layout (_place_object), and it turns by up to
  OBJECT_DEGREES; the loose parts of the clutter keep away from the object, so they never make it another
  arrangement; in OCCLUSION_RATE of the object images a patch of another photograph hides up to MAX_OCCLUDED
  of it (_occlude).

The drawing primitives, face geometry, backgrounds, lighting, loose parts, the clutter scene and the VOC
scene's bookkeeping are shared with the `parts` generator (drawing, scenes).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from zfrepro.data.synthetic.arrangements import LAYOUTS, FaceClass, ObjectClass
from zfrepro.data.synthetic.drawing import (
    Box,
    Pose,
    face_features,
    face_geometry,
    jitter_colour,
    paint,
    random_phase,
    union_box,
)
from zfrepro.data.synthetic.scenes import Job, loose_parts, place_pose, scene_background, voc_objects
from zfrepro.data.synthetic.vocabulary import COLOURS, TEXTURES

# ------------------------------------------------------------------------------------------------------------
# Drawing an arrangement and a face.


Look = tuple[np.ndarray, str, tuple[float, float]]  # (RGB colour, texture, texture phase) of one drawn part


def _part_looks(rng: np.random.Generator, cls: ObjectClass) -> list[Look]:
    """A random colour and texture for every part of one drawn object (no class attribute).

    Colours are drawn without replacement, so touching parts (a part inside another) stay visible; each
    part's colour is still uniform over the palette whatever the class.
    """
    colours = rng.choice(len(COLOURS), size=len(cls.shapes), replace=False)
    textures = rng.integers(len(TEXTURES), size=len(cls.shapes))
    names, kinds = list(COLOURS), list(TEXTURES)
    return [(jitter_colour(rng, names[c]), kinds[t], random_phase(rng)) for c, t in zip(colours, textures,
                                                                                      strict=True)]


@functools.cache
def _layout_frame(layout: str) -> tuple[float, float, float]:
    """(ox, oy, extent): the centre of a layout's bounding box and the radius about it that holds every part
    (any rotation, 8% margin for the jitter), in units of the main part's radius."""
    parts = [(0.0, 0.0, 1.0), *LAYOUTS[layout]]
    x0, x1 = min(dx - s for dx, _, s in parts), max(dx + s for dx, _, s in parts)
    y0, y1 = min(dy - s for _, dy, s in parts), max(dy + s for _, dy, s in parts)
    ox, oy = (x0 + x1) / 2, (y0 + y1) / 2
    return ox, oy, max(math.hypot(dx - ox, dy - oy) + s for dx, dy, s in parts) * 1.08


def object_extent(cls: ObjectClass) -> float:
    """Radius of the whole object about its centre in units of the main part's radius (any rotation)."""
    return _layout_frame(cls.layout)[2]


def draw_object(img: np.ndarray, cls: ObjectClass, pose: Pose, rng: np.random.Generator,
                 coverage: np.ndarray | None = None) -> Box | None:
    """Draw an object class with random colours and textures; return its pixel box.

    pose: the object's centre (the centre of its layout's bounding box), rotation, and the main part's radius.
    """
    ox, oy, _ = _layout_frame(cls.layout)
    looks = _part_looks(rng, cls)
    boxes = []
    for (shape, dx, dy, s), (colour, texture, phase) in zip(cls.slots(), looks, strict=True):
        jit = 0.0 if (dx, dy) == (0.0, 0.0) else 0.06
        child = pose.child(dx - ox + rng.normal(0, jit), dy - oy + rng.normal(0, jit), s * rng.uniform(0.92, 1.08),
                           rng.uniform(0.88, 1.12))
        boxes.append(paint(img, shape, child, colour, texture, phase, coverage))
    return union_box(boxes)


_HEAD_COLOURS = tuple(c for c in COLOURS if c != "white")  # white heads would hide the white eyes
_HEAD_TEXTURES = ("plain", "dots", "stripes")


def draw_face(img: np.ndarray, cls: FaceClass, pose: Pose, rng: np.random.Generator,
               features: bool = True) -> tuple[Box | None, dict[str, Box]]:
    """Draw a face (random head colour and texture, ears of another random colour); return the head box and
    the boxes of left_eye, right_eye and nose."""
    g, yaw = face_geometry(cls, pose, rng)
    head_colour = _HEAD_COLOURS[rng.integers(len(_HEAD_COLOURS))]
    head_texture = _HEAD_TEXTURES[rng.integers(len(_HEAD_TEXTURES))]
    ear_colours = [c for c in COLOURS if c != head_colour]
    ear_colour = ear_colours[rng.integers(len(ear_colours))]
    boxes: list[Box | None] = []
    if cls.ears is not None:
        colour = jitter_colour(rng, ear_colour)
        boxes += [paint(img, cls.ears, g[e], colour) for e in ("ear_l", "ear_r")]
    boxes.append(paint(img, cls.head, g["head"], jitter_colour(rng, head_colour), head_texture, random_phase(rng)))
    return face_features(img, g, yaw, boxes, features)


# ------------------------------------------------------------------------------------------------------------
# Placing objects, clutter kept away from them, occluders, and the scenes.


OBJECT_DEGREES = 25.0  # objects turn by up to this much either way
OCCLUSION_RATE, MAX_OCCLUDED = 0.3, 0.25  # share of object images with an occluder; most of the object it hides
# The extent of a typical layout ("row", "stack"): an object's main part gets the same range of sizes whatever
# its layout (frac of the shorter side for this extent), so part sizes say nothing about the arrangement.
_REFERENCE_EXTENT = 1.9


def _place_object(rng: np.random.Generator, h: int, w: int, frac: tuple[float, float], centred: float,
                  extent: float) -> Pose:
    """The pose of an object: the main part's radius from frac (for _REFERENCE_EXTENT), the whole object
    within the shorter side, its centre at a random place (centred: how far from the middle it may go)."""
    r_main = rng.uniform(*frac) * min(h, w) / 2 / _REFERENCE_EXTENT
    r_obj = min(r_main * extent, min(h, w) / 2)
    free_x, free_y = max(0.0, w / 2 - r_obj), max(0.0, h / 2 - r_obj)
    cx = w / 2 + rng.uniform(-1, 1) * free_x * centred
    cy = h / 2 + rng.uniform(-1, 1) * free_y * centred
    return Pose(cx, cy, r_obj / extent, math.radians(rng.uniform(-OBJECT_DEGREES, OBJECT_DEGREES)))


def _distractors(rng: np.random.Generator, h: int, w: int, img: np.ndarray,
                 away: tuple[float, float, float]) -> None:
    """0-2 small loose parts away from the object, so the presence of a shape is no cue to its class."""
    loose_parts(rng, h, w, img, int(rng.choice(3, p=[0.4, 0.4, 0.2])), (0.1, 0.24), away)


def _occlude(rng: np.random.Generator, h: int, w: int, img: np.ndarray, cov: np.ndarray, pose: Pose,
             r_obj: float) -> float:
    """Paste a patch of another photograph over the object's rim; return the share of the object it hides.

    The patch (a random rectangle) moves outwards until it hides at most MAX_OCCLUDED of the object (cov:
    its coverage); if it cannot, nothing is pasted.
    """
    total = float(cov.sum())
    phi = rng.uniform(0, 2 * math.pi)
    half, aspect = r_obj * rng.uniform(0.25, 0.5), math.exp(rng.uniform(-0.6, 0.6))
    hw, hh = half * aspect, half / aspect
    dist = r_obj * rng.uniform(0.45, 0.85)
    for _ in range(8):
        cx, cy = pose.cx + dist * math.cos(phi), pose.cy + dist * math.sin(phi)
        x0, y0 = max(0, round(cx - hw)), max(0, round(cy - hh))
        x1, y1 = min(w, round(cx + hw)), min(h, round(cy + hh))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return 0.0
        hidden = float(cov[y0:y1, x0:x1].sum()) / max(total, 1e-6)
        if hidden <= MAX_OCCLUDED:
            img[y0:y1, x0:x1] = scene_background(rng, y1 - y0, x1 - x0)
            return hidden
        dist += 0.15 * r_obj
    return 0.0


def scene_single(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    """One object (random colours and textures) over a photograph, loose parts away from it, sometimes an
    occluding patch of another photograph."""
    cls = job.classes[0]
    frac, centred = ((0.75, 1.0), 0.5) if job.scene == "caltech" else ((0.65, 1.0), 1.0)
    extent = object_extent(cls)
    pose = _place_object(rng, h, w, frac, centred, extent)
    r_obj = pose.radius * extent
    _distractors(rng, h, w, img, (pose.cx, pose.cy, r_obj))
    occlude = rng.random() < OCCLUSION_RATE
    cov = np.zeros((h, w), dtype=np.float32) if occlude else None
    draw_object(img, cls, pose, rng, cov)
    hidden = _occlude(rng, h, w, img, cov, pose, r_obj) if cov is not None else 0.0
    return {"occluded": round(hidden, 4)}


def scene_face(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray,
                features: bool = True) -> dict[str, Any]:
    # The whole head stays inside the image so that both eyes and the nose are always visible: no occluder,
    # and loose parts stay away from it.
    pose = place_pose(rng, h, w, (0.55, 0.85), 0.9, 1.55)
    _distractors(rng, h, w, img, (pose.cx, pose.cy, pose.radius * 1.55))
    _, parts = draw_face(img, job.classes[0], pose, rng, features)
    return {"parts": parts}


def scene_voc(job: Job, rng: np.random.Generator, h: int, w: int, img: np.ndarray) -> dict[str, Any]:
    """Several arrangements (random colours and textures) at spread-out positions; VOC boxes, truncation,
    occlusion and difficulty."""
    return voc_objects(job, rng, h, w, img, _place_object, object_extent, draw_object)

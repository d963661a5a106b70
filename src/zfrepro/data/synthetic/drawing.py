"""Drawing: shape outlines, poses, fill textures, and painting whole objects and faces onto an image.

Every operation is local to a shape's pixel box, so the boxes returned (objects, face parts) are exact. The
primitives, the face geometry and the eyes and nose are shared by both generators; draw_object and draw_face
draw the `parts` generator's classes (arrangement_scenes draws the `arrangements` generator's).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from zfrepro.data.synthetic.vocabulary import COLOURS, LAYOUTS, FaceClass, ObjectClass

_EYE_WHITE = (245, 245, 240)
_DARK = (25, 20, 20)
_NOSE = (60, 30, 25)


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


def paint(img: np.ndarray, shape: str, pose: Pose, colour: np.ndarray, texture: str = "plain",
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


def union_box(boxes: Iterable[Box | None]) -> Box | None:
    bs = [b for b in boxes if b is not None]
    if not bs:
        return None
    return min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs)


def jitter_colour(rng: np.random.Generator, name: str) -> np.ndarray:
    return np.clip(np.array(COLOURS[name], dtype=np.float32) + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


def random_phase(rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.random()), float(rng.random())


def object_extent(cls: ObjectClass) -> float:
    """Radius of the whole object in units of the main part's radius (any rotation)."""
    return max([1.0] + [math.hypot(dx, dy) + s for dx, dy, s in LAYOUTS[cls.layout]]) * 1.08


def draw_object(img: np.ndarray, cls: ObjectClass, pose: Pose, rng: np.random.Generator,
                 coverage: np.ndarray | None = None) -> Box | None:
    """Draw an object class at pose (pose.radius = the main part's radius); return its pixel box."""
    placements = [(0.0, 0.0, 1.0)] + list(LAYOUTS[cls.layout])
    boxes = []
    for part, (dx, dy, s) in zip(cls.parts, placements, strict=True):
        jit = 0.0 if (dx, dy) == (0.0, 0.0) else 0.06
        child = pose.child(dx + rng.normal(0, jit), dy + rng.normal(0, jit), s * rng.uniform(0.92, 1.08),
                           rng.uniform(0.88, 1.12))
        boxes.append(paint(img, part.shape, child, jitter_colour(rng, part.colour), part.texture,
                            random_phase(rng), coverage))
    return union_box(boxes)


def face_geometry(cls: FaceClass, pose: Pose, rng: np.random.Generator) -> tuple[dict[str, Pose], float]:
    """Poses of the face's parts (eyes and nose moved by a random yaw and pitch) and the yaw.

    Only cls.aspect is read, so the `arrangements` generator's face classes use it too.
    """
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


def draw_face(img: np.ndarray, cls: FaceClass, pose: Pose, rng: np.random.Generator,
               features: bool = True) -> tuple[Box | None, dict[str, Box]]:
    """Draw a face; return the head box and the boxes of left_eye, right_eye and nose."""
    g, yaw = face_geometry(cls, pose, rng)
    boxes: list[Box | None] = []
    if cls.ears is not None:
        colour = jitter_colour(rng, cls.ears.colour)
        boxes += [paint(img, cls.ears.shape, g[e], colour) for e in ("ear_l", "ear_r")]
    boxes.append(paint(img, cls.head.shape, g["head"], jitter_colour(rng, cls.head.colour),
                        cls.head.texture, random_phase(rng)))
    return face_features(img, g, yaw, boxes, features)


def face_features(img: np.ndarray, g: dict[str, Pose], yaw: float, boxes: list[Box | None],
                   features: bool) -> tuple[Box | None, dict[str, Box]]:
    """Draw the shared eyes and nose (unless not `features`) onto a drawn head; return the face's box (boxes:
    those of the head and ears) and the boxes of left_eye, right_eye and nose."""
    parts: dict[str, Box] = {}
    if not features:
        return union_box(boxes), parts
    white, dark, nose = (np.array(c, dtype=np.float32) for c in (_EYE_WHITE, _DARK, _NOSE))
    for eye in ("left_eye", "right_eye"):
        box = paint(img, "disc", g[eye], white)
        paint(img, "disc", g[eye].child(yaw * 0.8, 0.05, 0.5), dark)  # pupil looks where the head turns
        if box is not None:
            parts[eye] = box
    box = paint(img, "nose", g["nose"], nose)
    if box is not None:
        parts["nose"] = box
    return union_box(boxes + list(parts.values())), parts

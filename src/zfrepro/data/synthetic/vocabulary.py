"""The shared part vocabulary, and the `parts` generator's fixed class catalogue.

Shared by both generators: the datasets, SHAPES, TEXTURES, COLOURS, a Part (a shape filled with a texture in a
colour) and random loose parts (draw_part_spec). The `parts` generator (the default; `arrangements` has its
own catalogue): an object class is a fixed combination of 2-3 parts in one of the LAYOUTS; a face class is a
head (with optional ears) that shares the eyes and nose. The catalogue is one fixed stream of object classes
(independent of the data seed): dataset k of DATASETS takes every 4th entry from k, so the four sets always
hold disjoint combinations of the same parts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from zfrepro.data.registry import DATASETS as REGISTRY
from zfrepro.errors import ConfigError

T = TypeVar("T")  # a catalogue's class type

DATASETS = tuple(REGISTRY)  # ("imagenet", "caltech101", "caltech256", "voc"): the order deals the catalogue
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
FACE_PARTS = ("left_eye", "right_eye", "nose")

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
CATALOGUE_SEED = 20140101


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


def draw_part_spec(rng: np.random.Generator, exclude_colours: Iterable[str] = ()) -> Part:
    colours = [c for c in COLOURS if c not in set(exclude_colours)]
    return Part(SHAPES[rng.integers(len(SHAPES))], list(TEXTURES)[rng.integers(len(TEXTURES))],
                colours[rng.integers(len(colours))])


def _draw_object_class(rng: np.random.Generator) -> ObjectClass:
    layout = list(LAYOUTS)[rng.integers(len(LAYOUTS))]
    main = draw_part_spec(rng)
    second = draw_part_spec(rng, [main.colour])
    if layout == "ears":
        return ObjectClass((main, second, second), layout)
    if len(LAYOUTS[layout]) == 1:
        return ObjectClass((main, second), layout)
    return ObjectClass((main, second, draw_part_spec(rng, [main.colour, second.colour])), layout)


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
    rng = np.random.default_rng(CATALOGUE_SEED)
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


def dataset_share(catalogue: Callable[[int], Sequence[T]], dataset: str, n: int) -> list[T]:
    """The n classes of one dataset from a catalogue dealt in turn to DATASETS: dataset k takes entries k,
    k + len(DATASETS), ..., so no class is in two datasets and each dataset's first n stay fixed as n grows."""
    k = DATASETS.index(dataset)
    return list(catalogue(len(DATASETS) * n)[k::len(DATASETS)][:n])


def object_classes(dataset: str, n: int) -> list[ObjectClass]:
    """The n object classes of one dataset: its own slice of the catalogue."""
    return dataset_share(catalogue, dataset, n)


@functools.lru_cache(maxsize=8)
def face_classes(n: int) -> tuple[FaceClass, ...]:
    """n face classes with distinct names and (up to 21) head shape/colour pairs; eyes and nose are shared."""
    rng = np.random.default_rng(CATALOGUE_SEED + 1)
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

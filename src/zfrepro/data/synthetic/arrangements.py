"""The `arrangements` generator's class catalogue: a class is an arrangement of shared parts, in families.

A part is a shape of the shared vocabulary (vocabulary.SHAPES); its fill texture and colour are drawn afresh for
every image (independently per part, two parts of one object never share a colour), so they are never a class
attribute. An object class is an arrangement: 3 shapes placed in the slots of one of the LAYOUTS (a big main
part and two small ones, at fixed relative positions and scales). A family is one shape set (a main shape and
two small shapes); its classes are different arrangements of the same shapes, so within a family the bag of
local features (the shapes, their sizes, edge orientations, colours, textures) is the same and only the spatial
relations of the parts tell classes apart.

The catalogue is one fixed stream (independent of the data seed) of families. Every family offers 19
arrangements; the catalogue takes 16 of them (a fixed random choice) and deals 4 to each dataset of DATASETS,
interleaved so that dataset k takes every 4th entry from k. So the n classes a dataset gets are whole
families of FAMILY_SIZE (n // 4 of them, and part of one more), the four sets never share an arrangement, and
the transfer sets' family j holds new arrangements of the shape set of ImageNet's family j (for j below
ImageNet's family count; beyond it, shape sets ImageNet has not seen together, of the same shapes).

Flip safety: training flips images horizontally and the model sees rotations of up to FLIP_SAFE_DEGREES / 2,
so no two classes of the catalogue may be the same arrangement up to a mirror and a rotation of at most
FLIP_SAFE_DEGREES; the catalogue builder checks that (_check_flip_safe) and raises if it fails. Layouts that
are turns of one another differ by multiples of 90 degrees, so "A above B" and "A left of B" are distinct;
"A left of B" and "B left of A" are not (one is kept, see _arrangements).

A face class is a head shape, a head aspect and optional ears (their colours and the head's texture are
random per image); the eyes and nose are shared.

The shared vocabulary (shapes, textures, colours, the datasets) is `vocabulary`'s; that module's own LAYOUTS,
ObjectClass, FaceClass and catalogue are the `parts` generator's, these are the `arrangements` generator's.
How an arrangement is drawn and placed is `arrangement_scenes`.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from zfrepro.data.synthetic.vocabulary import CATALOGUE_SEED, DATASETS, SHAPES, dataset_share
from zfrepro.errors import ConfigError

SMALL = 0.65  # scale of the two small parts (the main part's radius is 1)
_D = 1.2  # distance of a small part from the main part's centre when they touch
_EX, _EY = 0.78, 0.92  # the "ears" offsets: _D away, about 40 degrees off the vertical
# Placements (dx, dy, scale) of the small parts in units of the main part's radius; y points down. Layouts
# that are turns of one another differ by multiples of 90 degrees (ears, side, feet; row, stack; the chains),
# never by a small rotation.
LAYOUTS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "row": ((-_D, 0.0, SMALL), (_D, 0.0, SMALL)),
    "stack": ((0.0, -_D, SMALL), (0.0, _D, SMALL)),
    "ears": ((-_EX, -_EY, SMALL), (_EX, -_EY, SMALL)),
    "feet": ((-_EX, _EY, SMALL), (_EX, _EY, SMALL)),
    "side": ((_EY, -_EX, SMALL), (_EY, _EX, SMALL)),  # "ears" turned 90 degrees
    "inside_above": ((0.0, 0.0, SMALL), (0.0, -_D, SMALL)),
    "inside_below": ((0.0, 0.0, SMALL), (0.0, _D, SMALL)),
    "inside_beside": ((0.0, 0.0, SMALL), (_D, 0.0, SMALL)),
    "chain": ((_D, 0.0, SMALL), (_D + 2 * SMALL, 0.0, SMALL)),
    "chain_down": ((0.0, _D, SMALL), (0.0, _D + 2 * SMALL, SMALL)),
    "chain_up": ((0.0, -_D, SMALL), (0.0, -_D - 2 * SMALL, SMALL)),
}
_LAYOUT_KINDS = {"row": "line", "stack": "line", "ears": "pair", "feet": "pair", "side": "pair",
                 "inside_above": "inside", "inside_below": "inside", "inside_beside": "inside",
                 "chain": "chain", "chain_down": "chain", "chain_up": "chain"}
LAYOUT_PHRASES = {
    "row": "{0} between {1} and {2}", "stack": "{0} with {1} above and {2} below",
    "ears": "{0} with {1} and {2} as ears", "feet": "{0} standing on {1} and {2}",
    "side": "{0} with {1} over {2} at its side", "inside_above": "{0} with {1} inside and {2} above",
    "inside_below": "{0} with {1} inside and {2} below", "inside_beside": "{0} with {1} inside and {2} beside",
    "chain": "{0} then {1} then {2} in a row", "chain_down": "{0} over {1} over {2}",
    "chain_up": "{0} under {1} under {2}",
}
FAMILY_SIZE = 4  # classes of one family in one dataset
FLIP_SAFE_DEGREES = 60.0  # twice the rotation the model sees (+-30): closer arrangements could be confused
_FLIP_SAFE_TOLERANCE = 0.5  # largest per-part mismatch (in mean part scales, after a pose) that counts as equal
FACE_HEADS = ("disc", "hexagon", "square")
FACE_EARS = (None, "triangle", "disc", "square")
FACE_ASPECTS = {0.8: "narrow", 0.9: "oval", 1.0: "round"}
MAX_FACE_CLASSES = len(FACE_HEADS) * len(FACE_EARS) * len(FACE_ASPECTS)


@dataclass(frozen=True)
class ObjectClass:
    """A class: shapes[0] is the big main part, shapes[1:] sit where LAYOUTS[layout] says.

    family: the index of its family in the catalogue (the classes of one family share their shape set).
    """

    shapes: tuple[str, ...]
    layout: str
    family: int = -1

    @property
    def name(self) -> str:
        return LAYOUT_PHRASES[self.layout].format(*self.shapes)

    def slots(self) -> tuple[tuple[str, float, float, float], ...]:
        """(shape, dx, dy, scale) of every part, the main part first, in main-part radii about its centre."""
        return tuple((s, dx, dy, sc) for s, (dx, dy, sc)
                     in zip(self.shapes, ((0.0, 0.0, 1.0), *LAYOUTS[self.layout]), strict=True))


@dataclass(frozen=True)
class FaceClass:
    """A face class: a head shape with an aspect and optional ears (colours and texture are random per image;
    the eyes and nose are shared)."""

    head: str
    aspect: float
    ears: str | None

    @property
    def name(self) -> str:
        ears = f"with {self.ears} ears" if self.ears else "without ears"
        return f"face: {FACE_ASPECTS[self.aspect]} {self.head} head {ears}"


# ------------------------------------------------------------------------------------------------------------
# Flip safety: two arrangements are the same when a horizontal mirror (or not) and a rotation of at most
# FLIP_SAFE_DEGREES map every part of one onto a part of the other with the same shape, position and scale.


def _normalised(slots: tuple[tuple[str, float, float, float], ...]) -> tuple[list[str], np.ndarray]:
    """Shapes and (x, y, scale) rows about the scale-weighted centre, in units of the mean part scale."""
    shapes = [s[0] for s in slots]
    a = np.array([s[1:] for s in slots], dtype=float)
    a[:, :2] -= (a[:, :2] * a[:, 2:]).sum(0) / a[:, 2].sum()
    return shapes, a * (len(a) / a[:, 2].sum())


def same_up_to_pose(a: ObjectClass, b: ObjectClass, degrees: float = FLIP_SAFE_DEGREES,
                    tol: float = _FLIP_SAFE_TOLERANCE) -> bool:
    """Whether a mirror (or none) and a rotation within +-degrees make arrangement a look like arrangement b."""
    sa, pa = _normalised(a.slots())
    sb, pb = _normalised(b.slots())
    if sorted(sa) != sorted(sb):
        return False
    t = np.deg2rad(np.arange(-degrees, degrees + 0.5, 1.0))
    rot = np.stack([np.stack([np.cos(t), -np.sin(t)], -1), np.stack([np.sin(t), np.cos(t)], -1)], -2)
    for perm in itertools.permutations(range(len(sb))):
        if [sb[i] for i in perm] != sa:
            continue
        q = pb[list(perm)]
        for mirror in (1.0, -1.0):
            p = pa[:, :2] * np.array([mirror, 1.0])
            moved = np.einsum("tij,kj->tki", rot, p)  # (angles, parts, xy)
            err = np.linalg.norm(moved - q[None, :, :2], axis=-1) + np.abs(pa[:, 2] - q[:, 2])[None]
            if (err.max(axis=1) < tol).any():
                return True
    return False


def _check_flip_safe(classes: tuple[ObjectClass, ...] | list[ObjectClass]) -> None:
    """Raise when two classes are the same arrangement up to a mirror and a small rotation.

    Only classes with the same shapes can be the same; a group of classes with distinct shapes is checked
    at once (parts matched by shape), others pair by pair with same_up_to_pose.
    """
    groups: dict[tuple[str, ...], list[ObjectClass]] = {}
    for c in classes:
        groups.setdefault(tuple(sorted(c.shapes)), []).append(c)
    for shapes, group in groups.items():
        if len(group) < 2:
            continue
        if len(set(shapes)) == len(shapes):
            same = _same_matrix(group)
        else:
            same = np.array([[i < j and same_up_to_pose(a, b) for j, b in enumerate(group)]
                             for i, a in enumerate(group)])
        if same.any():
            i, j = np.argwhere(same)[0]
            a, b = group[i], group[j]
            raise ConfigError(f"synthetic catalogue: {a.name!r} and {b.name!r} are the same arrangement up "
                              f"to a horizontal flip and a rotation of at most {FLIP_SAFE_DEGREES:g} degrees")


def _same_matrix(group: list[ObjectClass]) -> np.ndarray:
    """same_up_to_pose of every pair i < j of classes of one set of distinct shapes (upper triangle)."""
    rows = []
    for c in group:
        shapes, a = _normalised(c.slots())
        rows.append(a[np.argsort(shapes)])  # parts in one order for all: matched by shape
    p = np.stack(rows)  # (classes, parts, x y scale)
    # A mirror and a rotation keep each part's distance from the centre: a lower bound of the mismatch
    # that rules out most pairs before any rotation is tried.
    radius = np.linalg.norm(p[:, :, :2], axis=-1)
    bound = (np.abs(radius[:, None] - radius[None]) + np.abs(p[:, None, :, 2] - p[None, :, :, 2])).max(-1)
    same = np.zeros((len(group), len(group)), dtype=bool)
    ii, jj = np.nonzero(np.triu(bound < _FLIP_SAFE_TOLERANCE, 1))
    if len(ii) == 0:
        return same
    t = np.deg2rad(np.arange(-FLIP_SAFE_DEGREES, FLIP_SAFE_DEGREES + 0.5, 1.0))
    rot = np.stack([np.stack([np.cos(t), -np.sin(t)], -1), np.stack([np.sin(t), np.cos(t)], -1)], -2)
    scale_err = np.abs(p[ii, :, 2] - p[jj, :, 2])  # (pairs, parts)
    for mirror in (1.0, -1.0):
        moved = np.einsum("tij,ckj->tcki", rot, p[ii, :, :2] * np.array([mirror, 1.0]))
        err = np.linalg.norm(moved - p[None, jj, :, :2], axis=-1) + scale_err[None]
        same[ii, jj] |= (err.max(axis=-1) < _FLIP_SAFE_TOLERANCE).any(axis=0)
    return same


@functools.lru_cache(maxsize=1)
def _arrangements() -> tuple[tuple[str, tuple[int, int, int]], ...]:
    """(layout, order of the shape set (main, a, b) in its slots) of every distinct arrangement of a family.

    Built on an abstract family with three distinct shapes: an arrangement that is the same as an earlier
    one up to a mirror and a small rotation (e.g. "row" with the small parts swapped) is left out.
    """
    out: list[tuple[str, tuple[int, int, int]]] = []
    kept: list[ObjectClass] = []
    for layout in LAYOUTS:
        for order in ((0, 1, 2), (0, 2, 1)):
            cand = ObjectClass(tuple(SHAPES[i] for i in order), layout)
            if not any(same_up_to_pose(cand, k) for k in kept):
                out.append((layout, order))
                kept.append(cand)
    return tuple(out)


# ------------------------------------------------------------------------------------------------------------
# The catalogue: one fixed stream of families; each contributes FAMILY_SIZE arrangements to each dataset,
# interleaved so that dataset k of DATASETS takes every 4th entry from k.


@functools.lru_cache(maxsize=1)
def _families() -> tuple[tuple[str, str, str], ...]:
    """Every shape set (main, small, small) in a fixed order that spreads the shapes over the first families.

    The next family is the one whose shapes (the main one counted more) were used least so far, ties broken
    by a fixed random order; so the first few families use every shape and different main shapes.
    """
    rng = np.random.default_rng(CATALOGUE_SEED)
    n = len(SHAPES)
    todo = [(m, a, b) for m in range(n) for a, b in itertools.combinations([i for i in range(n) if i != m], 2)]
    todo = [todo[i] for i in rng.permutation(len(todo))]
    as_main, used, pairs = np.zeros(n), np.zeros(n), set()
    out = []
    while todo:
        cost = [4 * as_main[m] + used[m] + used[a] + used[b] + 2 * ((a, b) in pairs) for m, a, b in todo]
        m, a, b = todo.pop(int(np.argmin(cost)))
        as_main[m] += 1
        used[[m, a, b]] += 1
        pairs.add((a, b))
        small = (a, b) if rng.random() < 0.5 else (b, a)
        out.append((SHAPES[m], SHAPES[small[0]], SHAPES[small[1]]))
    return tuple(out)


def max_classes() -> int:
    """The most object classes one dataset can get: FAMILY_SIZE from every family."""
    return len(_families()) * FAMILY_SIZE


def _deal(rng: np.random.Generator, arrangements: tuple[tuple[str, tuple[int, int, int]], ...]) -> np.ndarray:
    """Arrangement indices (datasets x FAMILY_SIZE) of one family, each dataset's of different kinds.

    The kinds: a line through the main part (3 arrangements), a pair of ears (4), one part inside (6), a
    chain (6). Every dataset gets one of each kind, but one dataset (at random) gets a second inside or
    chain arrangement of another layout instead of a line.
    """
    by_kind: dict[str, list[int]] = {}
    for i, (layout, _) in enumerate(arrangements):
        by_kind.setdefault(_LAYOUT_KINDS[layout], []).append(i)
    pools = {kind: [idx[i] for i in rng.permutation(len(idx))] for kind, idx in by_kind.items()}
    no_line = int(rng.integers(len(DATASETS)))
    rows: list[list[int]] = [[] for _ in DATASETS]
    for kind in ("line", "pair", "inside", "chain"):
        for k in range(len(DATASETS)):
            if kind != "line" or k != no_line:
                rows[k].append(pools[kind].pop())
    extra = ("inside", "chain")[int(rng.integers(2))]
    have = {arrangements[i][0] for i in rows[no_line]}
    rows[no_line].append(next(i for i in pools[extra] if arrangements[i][0] not in have))
    return np.array([[row[i] for i in rng.permutation(len(row))] for row in rows])


@functools.lru_cache(maxsize=8)
def catalogue(n: int) -> tuple[ObjectClass, ...]:
    """The first n entries of the fixed class stream (a prefix of any longer one).

    Family j fills entries [16 j, 16 j + 16): 16 of its 19 arrangements, dealt at random so that each
    dataset gets several kinds of layout (_deal); the i-th class of dataset k is entry 16 j + 4 i + k. The
    whole prefix is checked to be flip safe.
    """
    per_family = FAMILY_SIZE * len(DATASETS)
    families = _families()
    if n > len(families) * per_family:
        raise ConfigError(f"synthetic: the catalogue holds {len(families) * per_family} classes "
                          f"({max_classes()} per dataset); ask for fewer than {n}")
    arrangements = _arrangements()
    assert len(arrangements) >= per_family, "too few arrangements per family to deal one to every dataset"
    rng = np.random.default_rng(CATALOGUE_SEED + 2)
    out: list[ObjectClass] = []
    for j, shapes in enumerate(families[:math.ceil(n / per_family)]):
        by_dataset = _deal(rng, arrangements)  # row k: dataset k's arrangements
        for i in range(FAMILY_SIZE):
            for k in range(len(DATASETS)):
                layout, order = arrangements[by_dataset[k, i]]
                out.append(ObjectClass(tuple(shapes[o] for o in order), layout, j))
    out = out[:n]
    _check_flip_safe(out)
    return tuple(out)


def object_classes(dataset: str, n: int) -> list[ObjectClass]:
    """The n object classes of one dataset: its own slice of the catalogue (whole families first)."""
    return dataset_share(catalogue, dataset, n)


@functools.lru_cache(maxsize=8)
def face_classes(n: int) -> tuple[FaceClass, ...]:
    """n face classes, distinct in head shape, aspect or ears (up to MAX_FACE_CLASSES); eyes and nose shared.

    Each next class differs from the earlier ones in as many of the three as possible (ties: a fixed random
    order), so the first three differ in all of them.
    """
    if n > MAX_FACE_CLASSES:
        raise ConfigError(f"synthetic.imagenet.face_classes must be <= {MAX_FACE_CLASSES} (distinct head shape, "
                          "aspect and ears)")
    rng = np.random.default_rng(CATALOGUE_SEED + 1)
    todo = [FaceClass(h, a, e) for h in FACE_HEADS for a in FACE_ASPECTS for e in FACE_EARS]
    todo = [todo[i] for i in rng.permutation(len(todo))]
    out: list[FaceClass] = []
    while len(out) < n:
        diffs = [[(f.head != g.head) + (f.aspect != g.aspect) + (f.ears != g.ears) for g in out] for f in todo]
        scores = [(min(d, default=3), sum(d)) for d in diffs]
        out.append(todo.pop(scores.index(max(scores))))  # the first best: ties go by the fixed random order
    return tuple(out)

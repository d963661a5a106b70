"""The generators that config synthetic.generator chooses between, and render(), which draws one job.

- `parts` (the default): a class is a fixed combination of 2-3 parts, each with its own shape, texture and
  colour, in one of a few layouts (vocabulary, drawing, scenes);
- `arrangements`: a class is an arrangement of 3 shapes; colour and texture are drawn per image and part,
  classes come in families of one shape set, the catalogue is flip safe, and objects are sometimes occluded
  (arrangements, arrangement_scenes).

A Generator names what differs between them: the class catalogue (the object and face classes of each
dataset) and the scenes that draw a class. The rest (backgrounds, lighting, encoding, the dataset layouts) is
shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from zfrepro.data.synthetic import arrangement_scenes, arrangements, scenes, vocabulary
from zfrepro.data.synthetic.scenes import Job, apply_lighting, scene_background, scene_clutter, scene_image_size

Scene = Callable[..., dict[str, Any]]  # (job, rng, h, w, img[, features]) -> the image's metadata


class Generator(NamedTuple):
    """One generator: its class catalogue and the scenes that draw its classes."""

    object_classes: Callable[[str, int], list[Any]]  # (dataset, n) -> that dataset's first n object classes
    face_classes: Callable[[int], tuple[Any, ...]]  # n -> the first n face classes (ImageNet's)
    max_face_classes: int | None  # how many distinct face classes there are; None: no limit
    max_classes: int  # object and face classes per dataset its catalogue can deal
    single: Scene  # one object (the "object" and "caltech" scenes)
    face: Scene  # one face (with `features`: its eyes and nose)
    voc: Scene  # several objects with VOC annotations


GENERATORS: dict[str, Generator] = {
    "parts": Generator(vocabulary.object_classes, vocabulary.face_classes, None, 1000, scenes.scene_single,
                       scenes.scene_face, scenes.scene_voc),
    # Beyond 138 classes per dataset two families' "inside" arrangements fail the catalogue's flip check.
    "arrangements": Generator(arrangements.object_classes, arrangements.face_classes, arrangements.MAX_FACE_CLASSES,
                              138, arrangement_scenes.scene_single, arrangement_scenes.scene_face,
                              arrangement_scenes.scene_voc),
}
DEFAULT_GENERATOR = "parts"  # the schema's default of synthetic.generator


def render(job: Job, seed_override: int | None = None, features: bool = True) -> tuple[np.ndarray, dict]:
    """Render one job with its generator to a uint8 HxWx3 array plus its metadata (face part boxes or VOC
    objects).

    `features=False` draws a face without eyes and nose from the same random stream (tests use it to check
    that the recorded boxes mark exactly the drawn parts).
    """
    key = job.key if seed_override is None else (seed_override, *job.key[1:])
    rng = np.random.default_rng(list(key))
    h, w = scene_image_size(rng, job.short)
    img = scene_background(rng, h, w)
    generator = GENERATORS[job.generator]
    if job.scene in ("object", "caltech"):
        meta = generator.single(job, rng, h, w, img)
    elif job.scene == "face":
        meta = generator.face(job, rng, h, w, img, features)
    elif job.scene == "clutter":
        meta = scene_clutter(rng, h, w, img)
    else:
        meta = generator.voc(job, rng, h, w, img)
    return apply_lighting(img, rng), {"size": (h, w), **meta}

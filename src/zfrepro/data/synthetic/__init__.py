"""Deterministic synthetic stand-ins for ImageNet 2012, Caltech-101/256 and PASCAL VOC 2012.

Images show objects built from parts of one shared vocabulary (10 shapes, 5 fill textures, 8 colours), drawn
with random position, scale, rotation and lighting over crops of the photographs and textures shipped with
scikit-image and scikit-learn. What a class is depends on the generator (config synthetic.generator):

- `parts` (the default): a class is a fixed combination and arrangement of 2-3 parts, each with its own shape,
  texture and colour. The transfer sets use other combinations of the same parts, so ImageNet-trained
  features transfer.
- `arrangements`: a class is an arrangement of 3 shapes (a big main part and two small ones in one of 11
  layouts); colour and texture are drawn afresh per image and part, so they carry no class information.
  Classes come in families of 4 arrangements of one shape set, so only the parts' spatial relations tell the
  classes of a family apart; no two classes are the same up to a horizontal flip and a rotation of 60
  degrees; 30% of object images have a patch of another photograph hiding up to 25% of the object, and loose
  parts of the clutter keep away from it. The transfer sets get new arrangements of ImageNet's shape sets.

A family of ImageNet "face" classes has two eyes and a nose whose boxes go to `parts.csv` (the correspondence
study, Table 1). Files are written in the real datasets' layouts, so torchvision's dataset classes (and the
real-data code) read them.

`parts.csv` boxes are 0-based pixel boxes, half-open: the part covers `image[y0:y1, x0:x1]`; `left_eye` is the
eye on the viewer's left when the head is upright. The same image bytes follow from the same seed and params,
whatever the number of worker processes.

Modules, each depending only on those above it:

- `vocabulary`: the shared parts (SHAPES, TEXTURES, COLOURS) and datasets; the `parts` generator's LAYOUTS,
  object and face classes and fixed catalogue;
- `arrangements`: the `arrangements` generator's layouts, object classes (arrangements) and their families,
  face classes, the fixed catalogue and its flip-safety check;
- `drawing`: shape outlines, poses, fill textures, face geometry (shared); painting the `parts` generator's
  objects and faces (with exact boxes);
- `scenes`: background photographs, lighting, image sizes, Job, placing objects, loose parts, the clutter and
  VOC scenes' machinery (shared); the `parts` generator's scenes;
- `arrangement_scenes`: drawing arrangements and their faces with random colours and textures, placing them,
  clutter kept away from them, occluders: the `arrangements` generator's scenes;
- `generators`: the two generators (catalogue and scenes) by name, and render();
- `pool`: encoding (JPEG and ImageNet's oddities) and the worker pool that makes jobs into files;
- `params`: the parameters of each dataset (and the generator) and check_params();
- `writers`: the per-dataset layouts (ImageNet with meta.bin and parts.csv, Caltech-101/256, VOC) and
  generate().
"""

from zfrepro.data.synthetic.generators import DEFAULT_GENERATOR, GENERATORS, render
from zfrepro.data.synthetic.params import check_params
from zfrepro.data.synthetic.scenes import Job
from zfrepro.data.synthetic.vocabulary import (
    COLOURS,
    DATASETS,
    FACE_PARTS,
    LAYOUTS,
    SHAPES,
    TEXTURES,
    VOC_CLASSES,
    catalogue,
    object_classes,
)
from zfrepro.data.synthetic.writers import generate, imagenet_plan

__all__ = [
    "COLOURS", "DATASETS", "DEFAULT_GENERATOR", "FACE_PARTS", "GENERATORS", "LAYOUTS", "SHAPES", "TEXTURES",
    "VOC_CLASSES", "Job", "catalogue", "check_params", "generate",
    "imagenet_plan", "object_classes", "render",
]

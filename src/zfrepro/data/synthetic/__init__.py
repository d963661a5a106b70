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

Modules, each depending only on those above it:

- `vocabulary`: the parts (SHAPES, TEXTURES, COLOURS, LAYOUTS), object and face classes, the fixed catalogue;
- `drawing`: shape outlines, poses, fill textures, painting objects and faces (with exact boxes);
- `scenes`: background photographs, lighting, image sizes, placing objects, the scenes, Job and render();
- `pool`: encoding (JPEG and ImageNet's oddities) and the worker pool that makes jobs into files;
- `params`: the parameters of each dataset and check_params();
- `writers`: the per-dataset layouts (ImageNet with meta.bin and parts.csv, Caltech-101/256, VOC) and
  generate().
"""

from zfrepro.data.synthetic.params import check_params
from zfrepro.data.synthetic.scenes import Job, render
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
from zfrepro.data.synthetic.writers import configure_generate_parser, generate, generate_command, imagenet_plan

__all__ = [
    "COLOURS", "DATASETS", "FACE_PARTS", "LAYOUTS", "SHAPES", "TEXTURES", "VOC_CLASSES", "Job", "catalogue",
    "check_params", "configure_generate_parser", "generate", "generate_command", "imagenet_plan", "object_classes",
    "render",
]

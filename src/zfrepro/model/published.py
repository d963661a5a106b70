"""The registry of published ImageNet networks this study can analyse without training them.

Each entry names a released weights file (where it is, its checksum, its format's state-dict keys), the numbers its
authors publish for it, the input preprocessing it was trained with, and the project spec that computes exactly its
function. imgclsmob's values are those of pytorchcv's `model_metainfos.csv` and `model_store.py` (pytorchcv 0.0.74);
torchvision's those of `torchvision.models.AlexNet_Weights.IMAGENET1K_V1`.

Architectures (read from pytorchcv's alexnet.py / zfnet.py and torchvision's alexnet.py):
- imgclsmob's ZFNet is Fig 3's ZF with LRN (size 5, alpha 1e-4, beta 0.75, k 2: this project's LRN) right after the
  ReLU and before the pool in layers 1-2 (our ZF normalises after the pool); paddings 1, 0, 1, 1, 1; pools 3/2 with
  ceil_mode. ZFNet-b: conv3-5 = 512/1024/512.
- imgclsmob's AlexNet is Krizhevsky's single column with conv1 unpadded; AlexNet-b is the "one weird trick" widths
  64/192/384/256/256, paddings 2, 2, 1, 1, 1 and no LRN, pools with ceil_mode.
- torchvision's AlexNet is AlexNet-b's layers with floor-mode pools; its adaptive average pool to 6x6 is the identity
  at a 224-pixel input (its only size here: fc6's weights fix the 6x6 grid), and its dropout before each hidden fc
  layer (ours: after) is the identity in evaluation, the only use of imported weights.
All take (pixel / 255 - mean) / std per channel with ImageNet's mean and std, shorter side resized to 256, centre
crop 224 (crop ratio 0.875), bilinear.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from zfrepro.errors import ConfigError
from zfrepro.model.architectures import krizhevsky_spec, zf_spec
from zfrepro.model.spec import ArchSpec, validate_spec

IMGCLSMOB = "https://github.com/osmr/imgclsmob"
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per channel, on pixels scaled to 0..1
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a published network's inputs were made: resize the shorter side, centre crop, (x/255 - mean) / std."""

    resize: int = 256
    crop: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def as_dict(self) -> dict:
        return {"resize": self.resize, "crop": self.crop, "crop_ratio": self.crop / self.resize,
                "interpolation": self.interpolation, "mean": list(self.mean), "std": list(self.std),
                "pixels": "scaled to 0..1 before the mean and std"}


@dataclass(frozen=True)
class Published:
    """One published weights file and what it computes."""

    name: str
    format: str  # "pytorchcv" or "torchvision": which state-dict keys the file has
    caption: str
    url: str  # the file as released (imgclsmob: a .zip holding `file_name`)
    file_name: str  # the .pth file itself, as fetch-weights stores it
    hash_algorithm: str  # "sha1" (imgclsmob's full SHA-1) or "sha256" (torchvision publishes an 8-digit prefix)
    checksum: str
    release: str
    source: str
    parameters: int
    top1_error: float | None  # % on ImageNet 2012 val, as published (None: not published with the file)
    top5_error: float | None
    build: Callable[[int, int], ArchSpec]  # (num_classes, input_size) -> the spec
    preprocessing: Preprocessing = Preprocessing()

    def provenance(self) -> dict:
        """What a checkpoint records about the file's origin (JSON-ready)."""
        return {"name": self.name, "format": self.format, "caption": self.caption, "url": self.url,
                "file_name": self.file_name, "hash_algorithm": self.hash_algorithm,
                "published_checksum": self.checksum, "release": self.release, "source": self.source,
                "parameters": self.parameters, "top1_error": self.top1_error, "top5_error": self.top5_error}


def _normalised(spec: ArchSpec, pre: Preprocessing) -> ArchSpec:
    """`spec` taking (pixel - 255 mean) / (255 std): analyses subtract the first, the network divides by the second."""
    return validate_spec(dataclasses.replace(spec, input_mean=tuple(255.0 * m for m in pre.mean),
                                             input_std=tuple(255.0 * s for s in pre.std)))


def _replace_convs(spec: ArchSpec, **changes: dict) -> ArchSpec:
    """spec with conv layer `name`'s fields replaced by changes[name] (e.g. conv1={"padding": 0})."""
    convs = tuple(dataclasses.replace(c, **changes.get(c.name, {})) for c in spec.convs)
    return dataclasses.replace(spec, convs=convs)


def zfnet_spec(num_classes: int, input_size: int = 224, maps: tuple[int, int, int] = (384, 384, 256)) -> ArchSpec:
    """imgclsmob's ZFNet (ZFNet-b with maps 512, 1024, 512): our ZF with LRN before the pool in layers 1-2."""
    spec = zf_spec(num_classes, input_size)
    spec = _replace_convs(spec, conv1={"norm_after_pool": False}, conv2={"norm_after_pool": False},
                          **{f"conv{3 + i}": {"out_channels": m} for i, m in enumerate(maps)})
    return _normalised(dataclasses.replace(spec, name="zfnet"), Preprocessing())


def alexnet_spec(num_classes: int, input_size: int = 224) -> ArchSpec:
    """imgclsmob's AlexNet: Krizhevsky's single column (LRN after the ReLU, before the pool) with conv1 unpadded."""
    spec = _replace_convs(krizhevsky_spec(num_classes, input_size), conv1={"padding": 0})
    return _normalised(dataclasses.replace(spec, name="alexnet"), Preprocessing())


def alexnetb_spec(num_classes: int, input_size: int = 224, ceil_mode: bool = True) -> ArchSpec:
    """AlexNet-b (imgclsmob; torchvision's AlexNet with ceil_mode=False): widths 64/192/384/256/256, no LRN."""
    spec = krizhevsky_spec(num_classes, input_size)
    widths = dict(zip([c.name for c in spec.convs], (64, 192, 384, 256, 256), strict=True))
    convs = tuple(dataclasses.replace(c, out_channels=widths[c.name], norm=False,
                                      pool=None if c.pool is None else dataclasses.replace(c.pool, ceil_mode=ceil_mode))
                  for c in spec.convs)
    return _normalised(dataclasses.replace(spec, name="alexnetb", convs=convs), Preprocessing())


def _imgclsmob(name: str, caption: str, error: str, sha1: str, release: str, parameters: int,
               build: Callable[[int, int], ArchSpec]) -> Published:
    """An imgclsmob release: file `{name}-{error}-{sha1[:8]}.pth`, zipped, under the release tag (model_store.py)."""
    file_name = f"{name}-{error}-{sha1[:8]}.pth"
    return Published(name, "pytorchcv", caption, f"{IMGCLSMOB}/releases/download/{release}/{file_name}.zip",
                     file_name, "sha1", sha1, release, IMGCLSMOB + " (MIT licence)", parameters, None,
                     int(error) / 100.0, build)


# The published networks by name (config: architectures.<arch>.published; `zfrepro fetch-weights NAME`).
PUBLISHED: dict[str, Published] = {
    p.name: p
    for p in (
        _imgclsmob("zfnet", "ZFNet", "1727", "d010ddca1eb32a50a8cceb475c792f53e769b631", "v0.0.395", 62357608,
                   zfnet_spec),
        _imgclsmob("zfnetb", "ZFNet-b", "1490", "f6bec24eba037c8e4956704ed5bafaed29966601", "v0.0.400", 107627624,
                   lambda n, s=224: dataclasses.replace(zfnet_spec(n, s, (512, 1024, 512)), name="zfnetb")),
        _imgclsmob("alexnet", "AlexNet", "1664", "2768cdb312d584e33e93f31b0c569589bb289749", "v0.0.481", 62378344,
                   alexnet_spec),
        _imgclsmob("alexnetb", "AlexNet-b", "1747", "ac887bf7eada4179857d243584ac30b4d74a6493", "v0.0.485",
                   61100840, alexnetb_spec),
        Published("torchvision-alexnet", "torchvision", "AlexNet (torchvision)",
                  "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "alexnet-owt-7be5be79.pth",
                  "sha256", "7be5be79", "IMAGENET1K_V1", "https://github.com/pytorch/vision (BSD licence)",
                  61100840, 100 - 56.522, 100 - 79.066,
                  lambda n, s=224: dataclasses.replace(alexnetb_spec(n, s, ceil_mode=False),
                                                       name="torchvision-alexnet")),
    )
}


def published(name: str, key: str = "published") -> Published:
    """The registry entry `name`; ConfigError naming `key` and the known names otherwise."""
    if name not in PUBLISHED:
        raise ConfigError(f"{key}: no published network is called {name!r}; use one of {list(PUBLISHED)}")
    return PUBLISHED[name]


# ---------------------------------------------------------------------------------------------- state-dict keys


def _pytorchcv_keys() -> dict[str, str]:
    """pytorchcv's AlexNet/ZFNet key stems -> this project's layer names (stage3 holds conv3-5)."""
    stems = {"features.stage1.unit1.conv": "conv1", "features.stage2.unit1.conv": "conv2",
             **{f"features.stage3.unit{i}.conv": f"conv{2 + i}" for i in (1, 2, 3)},
             "output.fc1.fc": "fc6", "output.fc2.fc": "fc7", "output.fc3": "fc8"}
    return {f"{stem}.{p}": f"{ours}.{p}" for stem, ours in stems.items() for p in ("weight", "bias")}


def _torchvision_keys() -> dict[str, str]:
    """torchvision's AlexNet (features.N / classifier.N) -> this project's layer names."""
    stems = {"features.0": "conv1", "features.3": "conv2", "features.6": "conv3", "features.8": "conv4",
             "features.10": "conv5", "classifier.1": "fc6", "classifier.4": "fc7", "classifier.6": "fc8"}
    return {f"{stem}.{p}": f"{ours}.{p}" for stem, ours in stems.items() for p in ("weight", "bias")}


STATE_KEYS = {"pytorchcv": _pytorchcv_keys(), "torchvision": _torchvision_keys()}  # format -> {theirs: ours}

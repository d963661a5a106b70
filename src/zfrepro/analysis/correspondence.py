"""Table 1 and Figure 8: does the network encode object parts (eyes, nose) consistently across images?

For each image i the same part is masked with the mean colour in the original image, before the usual
preprocessing (shorter side to S, centre crop S x S, mean subtraction, centre crop c), and
eps_i = x_i - x~_i is the change of the layer's features (flattened). The paper's measure
Delta_l = sum over pairs i != j of H(sign(eps_i), sign(eps_j)) is made a fraction (project decision): the
Hamming distance is divided by the vector length and averaged over the pairs i < j. Lower Delta = the part
changes the representation in the same way in every image. Random regions of the same size as the parts
are the control. Masks land in the original image, so a part that the crops cut away cannot be masked
where the network sees it: such images are skipped (with a message) and the next image of the class is used.
"""


from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zfrepro.analysis.parts_csv import PartsImage, load_parts_csv, part_label, part_order
from zfrepro.data.preprocess import center_crop, load_rgb, resize_center_crop
from zfrepro.data.splits import class_names
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import load_result
from zfrepro.model.checkpoint import load_model, network_mean
from zfrepro.model.network import ConvNet

RANDOM = "random"


# |eps| at or below SIGN_RTOL x (largest |feature| of the unmasked image at that layer) counts as no change:
# float32 convolutions can differ by ~1e-7 between batch shapes, and a unit the mask cannot reach must not
# get a random sign from rounding noise.
SIGN_RTOL = 1e-5


SHOW_REASONS = 3  # skipped images (with their CSV lines) named per class when too few are usable


@dataclass(frozen=True)
class CropGeometry:
    """Where the original image's pixels land in the model input: input = original * scale - offset.

    Follows resize_center_crop (shorter side to S, torchvision's sizes and centre-crop rounding) and
    center_crop (crop c at crop_offsets' centre), composed into one affine map per axis.
    """

    scale_x: float
    scale_y: float
    left: float
    top: float
    crop: int

    def to_input(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """An original-image box (x0, y0, x1, y1) in model-input coordinates (may reach outside 0..c)."""
        x0, y0, x1, y1 = box
        return (x0 * self.scale_x - self.left, y0 * self.scale_y - self.top,
                x1 * self.scale_x - self.left, y1 * self.scale_y - self.top)

    def region(self) -> tuple[float, float, float, float]:
        """The part of the original image that the model sees, in original coordinates (x0, y0, x1, y1)."""
        return (self.left / self.scale_x, self.top / self.scale_y,
                (self.left + self.crop) / self.scale_x, (self.top + self.crop) / self.scale_y)

    def visible_fraction(self, box: tuple[int, int, int, int]) -> float:
        """Fraction of the box's area inside the model input."""
        x0, y0, x1, y1 = self.to_input(box)
        w = max(0.0, min(x1, self.crop) - max(x0, 0.0))
        h = max(0.0, min(y1, self.crop) - max(y0, 0.0))
        return w * h / ((x1 - x0) * (y1 - y0))


def crop_geometry(width: int, height: int, image_size: int, crop_size: int) -> CropGeometry:
    """The CropGeometry of a width x height image under resize_center_crop(S) and the centre crop c."""
    # torchvision's resize to an int: the shorter side becomes S, the longer int(S * long / short).
    if width <= height:
        new_w, new_h = image_size, int(image_size * height / width)
    else:
        new_w, new_h = int(image_size * width / height), image_size
    top = int(round((new_h - image_size) / 2.0)) + int(round((image_size - crop_size) / 2.0))
    left = int(round((new_w - image_size) / 2.0)) + int(round((image_size - crop_size) / 2.0))
    return CropGeometry(new_w / width, new_h / height, float(left), float(top), crop_size)


def mean_colour(mean: torch.Tensor) -> np.ndarray:
    """The mask colour: the mean image averaged over positions, uint8 RGB (the 'mean pixel')."""
    return np.clip(np.rint(mean.float().mean(dim=(1, 2)).numpy()), 0, 255).astype(np.uint8)


def mask_box(image: np.ndarray, box: tuple[int, int, int, int], colour: np.ndarray) -> np.ndarray:
    """A copy of the uint8 HxWx3 image with pixels [y0:y1, x0:x1] set to `colour`."""
    x0, y0, x1, y1 = box
    out = image.copy()
    out[y0:y1, x0:x1] = colour
    return out


def preprocess(image: np.ndarray, image_size: int) -> torch.Tensor:
    """The usual preprocessing of an original uint8 HxWx3 image: uint8 [3, S, S] (resize_center_crop)."""
    return resize_center_crop(Image.fromarray(image), image_size)


def random_boxes(sizes: list[list[tuple[int, int]]], regions: list[tuple[float, float, float, float]],
                 repeats: int, seed: int) -> np.ndarray:
    """Random boxes, int [repeats, images, 4] (x0, y0, x1, y1) in original coordinates.

    For each repetition and image: the width and height of one of the image's parts (drawn uniformly), at a
    uniformly random position with the whole box inside `regions[i]` (what the model sees).
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((repeats, len(sizes), 4), dtype=np.int64)
    for r, i in itertools.product(range(repeats), range(len(sizes))):
        w, h = sizes[i][int(rng.integers(len(sizes[i])))]
        rx0, ry0, rx1, ry1 = regions[i]
        lo_x, hi_x = math.ceil(rx0 - 1e-9), math.floor(rx1 + 1e-9) - w
        lo_y, hi_y = math.ceil(ry0 - 1e-9), math.floor(ry1 + 1e-9) - h
        if hi_x < lo_x or hi_y < lo_y:
            raise DataError(f"a {w}x{h} random box does not fit in the visible region {regions[i]} of image {i}")
        x0, y0 = int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_y, hi_y + 1))
        out[r, i] = (x0, y0, x0 + w, y0 + h)
    return out


def feature_signs(eps: torch.Tensor, scale: torch.Tensor | None = None, rtol: float = SIGN_RTOL) -> torch.Tensor:
    """sign(eps) per row of [n, D] as int8, with |eps| <= rtol * scale[row] counted as 0 (no change)."""
    eps = eps.flatten(1).double()
    if scale is not None:
        eps = torch.where(eps.abs() <= rtol * scale.double().reshape(-1, 1), 0.0, eps)
    return torch.sign(eps).to(torch.int8)


def hamming_fractions(signs: torch.Tensor) -> torch.Tensor:
    """Normalised Hamming distance of every pair i < j of rows of [n, D] (itertools.combinations order)."""
    pairs = list(itertools.combinations(range(signs.shape[0]), 2))
    if not pairs:
        raise ConfigError("correspondence.images: Delta compares pairs of images, so at least 2 are needed")
    i, j = (torch.tensor(idx) for idx in zip(*pairs, strict=True))
    return (signs[i] != signs[j]).double().mean(dim=1)


def delta(eps: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    """Delta of one layer and one mask: the mean over image pairs of the sign-Hamming fraction of eps [n, D]."""
    return float(hamming_fractions(feature_signs(eps, scale)).mean())


def _mean_sd(values: torch.Tensor) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = values.double()
    return float(values.mean()), float(values.std()) if len(values) > 1 else 0.0


def check_layers(model: ConvNet, layers: list[str] | tuple[str, ...]) -> list[str]:
    """The requested layers, or ConfigError naming correspondence.layers."""
    names = [n for n in model.layer_names if n != "fc8"]
    bad = [layer for layer in layers if layer not in names]
    if bad or not layers:
        raise ConfigError(f"correspondence.layers: {bad or layers} not layers of this network; choose from "
                          f"{', '.join(names)}")
    return list(layers)


@torch.no_grad()
def layer_features(model: ConvNet, x: torch.Tensor, layers: list[str], batch_size: int = 64) -> dict:
    """The flattened outputs of `layers` for inputs [N, 3, c, c]: layer -> float [N, D]."""
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(x), batch_size):
        _, record = model.forward_record(x[start : start + batch_size])
        for layer in layers:
            chunks[layer].append(record.outputs[layer].flatten(1).float())
    return {layer: torch.cat(parts) for layer, parts in chunks.items()}


@dataclass
class Chosen:
    """An image that the analysis uses: its entry, its decoded pixels and its crop geometry."""

    entry: PartsImage
    pixels: np.ndarray  # uint8 H x W x 3, the original image
    geometry: CropGeometry


def _usable(entry: PartsImage, parts: list[str], image_size: int, crop: int,
            csv_path: Path) -> tuple[Chosen | None, str, int]:
    """(Chosen or None, why not, the CSV line the reason is about): the image is used when it has every part,
    all wholly inside the input."""
    missing = [p for p in parts if p not in entry.boxes]
    if missing:
        return None, f"no box for {', '.join(missing)}", entry.line
    pixels = np.asarray(load_rgb(entry.path))
    h, w = pixels.shape[:2]
    for part in parts:
        x0, y0, x1, y1 = entry.boxes[part]
        columns = [c for c, v, size in (("x1", x1, w), ("y1", y1, h)) if v > size]
        if columns:
            # The part's own row: an image's rows need not be adjacent, so its first line may be far away.
            raise DataError(f"parts CSV {csv_path}, line {entry.lines.get(part, entry.line)}, column "
                            f"{','.join(columns)}: the {part} box {entry.boxes[part]} of {entry.name} reaches "
                            f"outside the {w}x{h} image; correct the box (x1 <= {w}, y1 <= {h}, in pixels of the "
                            "original file) or the image path")
    geometry = crop_geometry(w, h, image_size, crop)
    cut = {p: geometry.visible_fraction(entry.boxes[p]) for p in parts}
    cut = {p: f for p, f in cut.items() if f < 1.0 - 1e-9}
    if cut:
        shown = ", ".join(f"{part_label(p)} {100 * f:.0f}% visible" for p, f in cut.items())
        line = entry.lines.get(next(iter(cut)), entry.line)  # the first cut box's row
        return None, f"the crop the network sees cuts a part box ({shown})", line
    return Chosen(entry, pixels, geometry), "", entry.line


def choose_images(entries: list[PartsImage], count: int, wnid: str | None, image_size: int, crop: int,
                  csv_path: Path) -> tuple[list[Chosen], list[str], str, list[tuple[str, str]]]:
    """The first `count` usable images of one class, in CSV order: (chosen, parts, class, skipped).

    The class is `wnid`, or (None) the first class folder, in sorted order, with `count` usable images.
    Parts are all part names the class's rows use; an image is usable when it has all of them and none is
    cut by the crop the network sees. Skipped images are returned as (image, reason).
    """
    if count < 2:
        raise ConfigError(f"correspondence.images is {count}: Delta compares pairs of images, use at least 2")
    groups: dict[str, list[PartsImage]] = {}
    for entry in entries:
        groups.setdefault(entry.group, []).append(entry)
    if wnid is not None and wnid not in groups:
        raise ConfigError(f"correspondence.wnid {wnid!r} has no images in {csv_path} (classes there: "
                          f"{', '.join(sorted(groups))}); choose one of them or null")
    report = []
    for group in [wnid] if wnid is not None else sorted(groups):
        parts = part_order({p for e in groups[group] for p in e.boxes})
        chosen, skipped, reasons = [], [], []
        for entry in groups[group]:
            use, why, line = _usable(entry, parts, image_size, crop, csv_path)
            if use is None:
                skipped.append((entry.name, why))
                reasons.append(f"line {line}: {entry.name}: {why}")
            else:
                chosen.append(use)
                if len(chosen) == count:
                    return chosen, parts, group, skipped
        # The first few reasons per class, with their lines, so that the user knows which rows to fix.
        more = [f"and {len(reasons) - SHOW_REASONS} more"] if len(reasons) > SHOW_REASONS else []
        why = f" [{'; '.join(reasons[:SHOW_REASONS] + more)}]" if reasons else ""
        report.append(f"{group}: {len(chosen)} usable, {len(skipped)} skipped{why}")
    raise ConfigError(f"correspondence.images = {count}, but no class in parts CSV {csv_path} has that many usable "
                      f"images ({'; '.join(report)}); fix the boxes or part names on those lines, add images whose "
                      "part boxes lie inside the centre crop, lower correspondence.images or choose "
                      "correspondence.wnid")


def correspondence(model_path: str | Path, data_dir: str | Path, parts_csv: str | Path, images: int = 5,
                   wnid: str | None = None, random_repeats: int = 50, layers: tuple[str, ...] = ("conv5", "fc7"),
                   seed: int = 0, batch_size: int = 64, log=print) -> dict:
    """Table 1 and Fig 8 data: Delta per layer for each part and for random boxes, plus the masked images.

    Parts: mean and sample sd over the image pairs of the normalised Hamming distance. Random: one box per
    image and repetition (see random_boxes); mean and sample sd of Delta over the repetitions.
    """
    if random_repeats < 1:
        raise ConfigError(f"correspondence.random_repeats is {random_repeats}: use at least 1")
    model, ckpt = load_model(model_path)
    layers = check_layers(model, layers)
    data_dir, parts_csv = Path(data_dir), Path(parts_csv).expanduser()
    mean_path = data_dir / "mean.pt"
    mean = network_mean(model.spec, load_result(mean_path))
    size, crop = mean.shape[-1], int(ckpt["crop_size"])
    chosen, parts, group, skipped = choose_images(load_parts_csv(parts_csv), images, wnid, size, crop, parts_csv)
    for name, why in skipped:
        log(f"skipped {name}: {why}")
    colour = mean_colour(mean)
    regions = [c.geometry.region() for c in chosen]
    sizes = [[(b[2] - b[0], b[3] - b[1]) for p, b in c.entry.boxes.items() if p in parts] for c in chosen]
    rand = random_boxes(sizes, regions, random_repeats, seed)

    # Inputs: originals, then each part for every image, then every repetition's random boxes.
    masked = [[c.entry.boxes[p] for c in chosen] for p in parts] + [[tuple(b) for b in rep] for rep in rand]
    originals = [preprocess(c.pixels, size) for c in chosen]
    with_masks = [preprocess(mask_box(c.pixels, box, colour), size)
                  for boxes in masked for c, box in zip(chosen, boxes, strict=True)]
    u8 = torch.stack(originals + with_masks)
    feats = layer_features(model, center_crop(u8, mean, crop), layers, batch_size)
    n = len(chosen)
    result: dict = {"parts": {}, "random": {}}
    for layer in layers:
        f = feats[layer]
        original, scale = f[:n], f[:n].abs().amax(dim=1)
        conditions = f[n:].view(len(masked), n, -1)
        eps = original[None] - conditions  # [masks, n, D]
        pair_dist = [hamming_fractions(feature_signs(e, scale)) for e in eps]
        result["parts"][layer] = {p: pair_dist[k] for k, p in enumerate(parts)}
        result["random"][layer] = torch.stack(pair_dist[len(parts):])  # [repeats, pairs]
    summary = {layer: {**{p: _mean_sd(result["parts"][layer][p]) for p in parts},
                       RANDOM: _mean_sd(result["random"][layer].mean(dim=1))} for layer in layers}
    for layer in layers:
        log(f"{layer}: " + ", ".join(f"{part_label(k)} {m:.3f} +- {s:.3f}" for k, (m, s) in summary[layer].items()))
    display = _display(u8, n, len(parts), crop)
    return {
        "summary": summary, "pair_distances": result["parts"], "random_pair_distances": result["random"],
        "layers": layers, "parts": parts, "group": group, "class_name": class_names(data_dir, [group])[0],
        "images": [c.entry.name for c in chosen], "boxes": torch.tensor([[c.entry.boxes[p] for p in parts]
                                                                          for c in chosen]),
        "input_boxes": torch.tensor([[c.geometry.to_input(c.entry.boxes[p]) for p in parts] for c in chosen]),
        "random_boxes": torch.from_numpy(rand), "skipped": skipped, "display": display,
        "columns": ["original", *parts, RANDOM], "mean_colour": torch.from_numpy(colour),
        "settings": {"model": str(model_path), "arch": ckpt.get("arch"), "seed_model": ckpt.get("seed"),
                     "parts_csv": str(parts_csv), "images": images, "wnid": wnid, "random_repeats": random_repeats,
                     "seed": seed, "image_size": size, "crop_size": crop, "sign_rtol": SIGN_RTOL},
    }


def _display(u8: torch.Tensor, n: int, n_parts: int, crop: int) -> torch.Tensor:
    """Fig 8 tiles, uint8 [n, 2 + parts, 3, c, c]: what the network sees (the centre crop, no mean
    subtraction) of the original, each part masked, and the first random repetition."""
    size = u8.shape[-1]
    off = int(round((size - crop) / 2.0))
    tiles = u8[:, :, off : off + crop, off : off + crop]
    keep = torch.arange((2 + n_parts) * n)  # originals, the parts, then the first repetition
    return tiles[keep].view(2 + n_parts, n, 3, crop, crop).transpose(0, 1).contiguous()

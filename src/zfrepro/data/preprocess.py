"""Image decoding (prepare decodes each source file once) and the paper's crops (section 3).

Images are stored as uint8 [3, S, S] (shorter side resized to S, centre-cropped); training and evaluation
subtract the per-pixel mean image at full size and take one of the ten crops (4 corners + centre, each
with and without a horizontal flip) of size c.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import torch
from PIL import Image

from zfrepro.errors import DataError

# Modes that carry more than 8 bits per channel and need rescaling to 0..255 before RGB conversion.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_BACKGROUND = (255, 255, 255)  # transparent pixels become white, as an image viewer would show them


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image file fully into an 8-bit RGB PIL image, whatever its mode or real format.

    The format is detected from the content (a PNG under a .JPEG name opens fine). Grey, CMYK, palette,
    16-bit and transparent images are converted; truncated or garbage files raise DataError naming the file.
    """
    try:
        with warnings.catch_warnings():
            # Corrupt-but-decodable EXIF blocks are common in ImageNet; they do not affect the pixels.
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(path) as img:
                img.load()  # decode now, so truncation is detected here and not later in a worker
                return _to_rgb(img)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read image {path}: {exc}. Replace or delete the file (prepare skips unreadable images "
            "up to data.max_bad_fraction)"
        ) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any PIL mode to RGB."""
    if img.mode == "RGB":
        return img.copy()
    if img.mode in _WIDE_MODES:
        return Image.fromarray(_wide_to_uint8(np.asarray(img)), mode="L").convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...


def _wide_to_uint8(array: np.ndarray) -> np.ndarray:
    """Map a 16-bit (or 32-bit int/float) grey array to 0..255."""
    array = array.astype(np.float64)
    # Mode I/F records no bit depth; values above 255 can only come from a 16-bit source.
    if array.max(initial=0) > 255:
        array = array / 257.0
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def resize_center_crop_array(img: Image.Image, size: int) -> np.ndarray:
    """Shorter side to `size` (bilinear, antialiased), centre crop: uint8 numpy [3, size, size].

    Pure PIL/numpy so that it is safe in forked worker processes.
    """
    # Imported here: torchvision's import costs ~1 s (it loads torch._dynamo), which every training and
    # evaluation job would pay for a function only the prepare steps call.
    from torchvision.transforms.v2 import functional as F

    img = F.resize(img, size, interpolation=F.InterpolationMode.BILINEAR, antialias=True)
    img = F.center_crop(img, [size, size])
    array = np.asarray(img, dtype=np.uint8)
    if array.shape != (size, size, 3):
        raise DataError(f"resize produced shape {array.shape}, expected ({size}, {size}, 3); is it RGB?")
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def resize_center_crop(img: Image.Image, size: int) -> torch.Tensor:
    """Shorter side to `size` (bilinear, antialiased), then centre crop: uint8 tensor [3, size, size]."""
    return torch.from_numpy(resize_center_crop_array(img, size))


def crop_offsets(image_size: int, crop_size: int) -> list[tuple[int, int]]:
    """The 5 (top, left) offsets of the paper's crops: top-left, top-right, bottom-left, bottom-right, centre.

    Same order and centre rounding as torchvision's five_crop.
    """
    if not 0 < crop_size <= image_size:
        raise ValueError(f"crop_size {crop_size} must be in 1..image_size ({image_size})")
    far = image_size - crop_size
    centre = int(round(far / 2.0))
    return [(0, 0), (0, far), (far, 0), (far, far), (centre, centre)]


def _check(images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int) -> int:
    """Validate shapes; return the image size S."""
    if images_u8.dim() != 4 or images_u8.shape[1] != 3 or images_u8.shape[2] != images_u8.shape[3]:
        raise ValueError(f"expected uint8 images [B, 3, S, S], got {tuple(images_u8.shape)}")
    size = images_u8.shape[-1]
    if tuple(mean.shape) != (3, size, size):
        raise ValueError(f"mean image has shape {tuple(mean.shape)}, expected (3, {size}, {size})")
    if not 0 < crop_size <= size:
        raise ValueError(f"crop_size {crop_size} must be in 1..{size}")
    return size


def _crop(images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int, index: int) -> torch.Tensor:
    """Crop `index` (0..9) of the mean-subtracted images; 5..9 are the five crops of the flipped image.

    Cropping first and subtracting the equally cropped mean gives the same numbers as subtracting at
    full size, with far less work. A crop of the flipped image at left offset x is the flip of the crop
    at offset S - c - x of the original.
    """
    size = images_u8.shape[-1]
    top, left = crop_offsets(size, crop_size)[index % 5]
    flip = index >= 5
    if flip:
        left = size - crop_size - left
    rows, cols = slice(top, top + crop_size), slice(left, left + crop_size)
    out = images_u8[:, :, rows, cols].to(torch.float32) - mean[:, rows, cols].to(torch.float32)
    return out.flip(-1) if flip else out


def random_ten_crop(
    images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One of the ten mean-subtracted crops per image, drawn with `generator`: float32 [B, 3, c, c]."""
    device = generator.device if generator is not None else torch.device("cpu")
    choice = torch.randint(0, 10, (images_u8.shape[0],), generator=generator, device=device)
    return ten_crop_select(images_u8, mean, crop_size, choice)


def ten_crop_select(
    images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int, indices: torch.Tensor
) -> torch.Tensor:
    """Crop `indices[b]` (0..9, ten_crops order) of each mean-subtracted image: float32 [B, 3, c, c].

    For callers that draw the crop indices themselves (e.g. once per epoch, to split them across processes).
    """
    _check(images_u8, mean, crop_size)
    choice = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if choice.numel() != images_u8.shape[0]:
        raise ValueError(f"{choice.numel()} crop indices for {images_u8.shape[0]} images")
    # Range check only on CPU: on a GPU it would force a device sync every training step.
    if choice.device.type == "cpu" and choice.numel() and (choice.min() < 0 or choice.max() > 9):
        raise ValueError("crop indices must lie in 0..9")
    if images_u8.device.type == "cpu":
        return _sliced_crops(images_u8, mean, crop_size, choice)
    return _gathered_crops(images_u8, mean, crop_size, choice)


def _sliced_crops(images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int, choice: torch.Tensor) -> torch.Tensor:
    """ten_crop_select on the CPU: one slice per crop position present (a few times faster than the gather)."""
    out = torch.empty((images_u8.shape[0], 3, crop_size, crop_size), dtype=torch.float32)
    for k in choice.unique().tolist():
        chosen = (choice == k).nonzero().flatten()
        out[chosen] = _crop(images_u8[chosen], mean, crop_size, k)
    return out


def _gathered_crops(images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int,
                    choice: torch.Tensor) -> torch.Tensor:
    """ten_crop_select on a GPU: one gather over the whole batch with per-sample row/column indices (flips are
    reversed column indices), so there is no per-sample loop and no device sync."""
    size = images_u8.shape[-1]
    device = images_u8.device
    choice = choice.to(device, non_blocking=True)  # callers keep the indices on the device; then a no-op
    tops, lefts, step = _crop_geometry(size, crop_size, device)
    flip = choice >= 5
    rows = tops[choice][:, None] + step  # [B, c]
    cols = lefts[choice][:, None] + torch.where(flip[:, None], crop_size - 1 - step, step)  # [B, c]
    batch = torch.arange(images_u8.shape[0], device=device)[:, None, None, None]
    channel = torch.arange(3, device=device)[None, :, None, None]
    rows, cols = rows[:, None, :, None], cols[:, None, None, :]
    crops = images_u8[batch, channel, rows, cols].to(torch.float32)
    return crops - mean.to(torch.float32)[channel, rows, cols]


@functools.lru_cache(maxsize=16)
def _crop_geometry(size: int, crop_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ten crops' top and left offsets and arange(crop_size), on `device`: built once per shape and device,
    because torch.tensor(list, device=cuda) copies from pageable memory and waits for it, every call."""
    offsets = crop_offsets(size, crop_size)
    tops = torch.tensor([t for t, _ in offsets] * 2, device=device)
    # crop k+5 of the mirrored image is the mirror of the original's crop at left offset S - c - left
    lefts = torch.tensor([x for _, x in offsets] + [size - crop_size - x for _, x in offsets], device=device)
    return tops, lefts, torch.arange(crop_size, device=device)


def center_crop(images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int) -> torch.Tensor:
    """The mean-subtracted centre crop: float32 [B, 3, c, c]."""
    _check(images_u8, mean, crop_size)
    return _crop(images_u8, mean, crop_size, 4)


def ten_crops(images_u8: torch.Tensor, mean: torch.Tensor, crop_size: int) -> torch.Tensor:
    """All ten mean-subtracted crops, in torchvision's ten_crop order: float32 [B, 10, 3, c, c]."""
    _check(images_u8, mean, crop_size)
    return torch.stack([_crop(images_u8, mean, crop_size, i) for i in range(10)], dim=1)

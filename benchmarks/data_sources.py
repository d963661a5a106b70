"""The images and prepared shards that the data-path benchmarks read (benchmarks/data_path.py on the CPU,
benchmarks/gpu_check.py on a GPU), and one pass of the training data path over them. Shared by both, so that
neither imports the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zfrepro.data.prepare import prepare_image_list
from zfrepro.data.preprocess import ten_crop_select
from zfrepro.data.splits import PreparedSplit

IMAGE_SIZE, CROP = 256, 224  # the paper's shape (config/paper.yaml)
SOURCE_SIZE = (500, 375)  # (width, height) of a typical ImageNet training JPEG


def make_sources(folder: Path, count: int, seed: int = 0, scenes: int = 32) -> list[str]:
    """`count` JPEG files (q90) of about 500 x 375 pixels: `scenes` generated photographs (zfrepro.data.synthetic,
    objects over real photographs), each file a different flip, crop and brightness of one of them."""
    from zfrepro.data.synthetic import Job, object_classes, render

    folder.mkdir(parents=True, exist_ok=True)
    classes = object_classes("imagenet", 20)
    rng = np.random.default_rng(seed)
    rendered = []
    for i in range(min(scenes, count)):
        job = Job(f"{i}.JPEG", (seed, 97, 0, i % len(classes), i), min(SOURCE_SIZE), "object",
                  (classes[i % len(classes)],))
        rendered.append(Image.fromarray(render(job)[0]))
    paths = []
    for i in range(count):
        im = rendered[i % len(rendered)]
        w, h = im.size
        s = rng.uniform(0.85, 1.0)
        x0, y0 = rng.uniform(0, w * (1 - s)), rng.uniform(0, h * (1 - s))
        im = im.resize(im.size, Image.Resampling.BILINEAR, box=(x0, y0, x0 + w * s, y0 + h * s))
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        im = Image.fromarray(np.clip(np.asarray(im, np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8))
        path = folder / f"n{i % 10:08d}_{i}.JPEG"
        im.save(path, format="JPEG", quality=90)
        paths.append(str(path))
    return paths


def build_split(sources: list[str], out_path: Path, fmt: str, threads: int = 1, quality: int = 90,
                image_size: int = IMAGE_SIZE) -> tuple[PreparedSplit, torch.Tensor]:
    """`zfrepro prepare`'s stream mode on `sources`: the split (JPEG or raw shards) and its mean image."""
    params = {"image_size": image_size, "crop_size": min(CROP, image_size), "cache": "stream", "cache_max_gb": 8,
              "max_bad_fraction": 0.0, "mean_max_images": None, "shard_format": fmt, "jpeg_quality": quality,
              "shard_images": 64}
    labels = [i % 10 for i in range(len(sources))]
    summary = prepare_image_list(sources, labels, [f"c{i}" for i in range(10)], out_path, params, threads=threads,
                                 compute_mean=True, desc=f"shards ({fmt})")
    assert summary.mean is not None
    return PreparedSplit(out_path), summary.mean


def stored_bytes(split: PreparedSplit) -> float:
    """Mean bytes per stored image of a stream-mode split."""
    return float(split.data["shards"]["length"].double().mean())


def loader_pass(split: PreparedSplit, order: torch.Tensor, batch: int, workers: int, mean: torch.Tensor,
                crop: int = CROP, device: torch.device | None = None, pin_memory: bool = False) -> int:
    """One pass of the training data path over `order`: batches from the shards, a random one of the ten crops of
    each image and the mean subtracted, on `device` (the CPU by default). Returns the images produced."""
    device = device or torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    seen = 0
    for images, _ in split.batches(order, batch, workers=workers, pin_memory=pin_memory, device=device):
        which = torch.randint(0, 10, (len(images),), generator=gen)
        x = ten_crop_select(images.to(device, non_blocking=True), mean, crop, which.to(device))
        seen += len(x)
    return seen


def orders(count: int, batch: int, batches: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A long pass of `batches` batches (shuffled passes over the `count` images, as an epoch reads them) and a
    one-batch pass: their difference is the steady state, without the workers' start-up."""
    gen = torch.Generator().manual_seed(seed)
    reps = -(-batches * batch // count)
    long = torch.cat([torch.randperm(count, generator=gen) for _ in range(reps)])[: batches * batch]
    return long, long[:batch]

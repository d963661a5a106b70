"""Ten-crop evaluation speed on a CPU by images per forward pass, as ratios against 256 (the old default).

Runs `evaluate.split_probabilities` (the function the `evaluate` rule runs) on one model and one split of
random images of the default shape, at each batch size in turns, one thread, and prints images per second
as a ratio against batch 256, and the largest difference of the softmax outputs from batch 256's (0 when the
batch size does not change a single bit). A large batch of ten crops (2,560 crops of 84 px) keeps every
layer's activations far out of the cache; small ones stay in it.

    .venv/bin/python benchmarks/eval_batch.py [--arch zf] [--images 320] [--repeats 3]

Machines are shared and noisy: each ratio is the best of `--repeats` rounds taken in turns.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

from zfrepro.data.splits import PreparedSplit
from zfrepro.io import atomic_torch_save
from zfrepro.model.architectures import spec_from_config
from zfrepro.model.evaluate import split_probabilities
from zfrepro.model.network import ConvNet, init_weights_

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="zf")
    ap.add_argument("--images", type=int, default=320)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 128, 64, 32, 16])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    crop, size = cfg["data"]["crop_size"], cfg["data"]["image_size"]
    classes = cfg["synthetic"]["imagenet"]["classes"]
    torch.manual_seed(0)
    model = ConvNet(spec_from_config(args.arch, cfg["architectures"][args.arch], num_classes=classes,
                                     input_size=crop)).eval()
    init_weights_(model, scheme="gaussian", std=0.02)
    mean = torch.full((3, size, size), 120.0)
    with tempfile.TemporaryDirectory() as tmp:
        # A split in the prepared format the rule reads (the in-memory cache), of random pixels.
        path = Path(tmp) / "val.pt"
        atomic_torch_save(path, {"images": torch.randint(0, 256, (args.images, 3, size, size), dtype=torch.uint8),
                           "labels": torch.randint(classes, (args.images,)), "image_size": size,
                           "classes": [f"c{i}" for i in range(classes)]})
        split = PreparedSplit(path)
        idx = torch.arange(len(split))
        best = dict.fromkeys(args.sizes, float("inf"))
        outputs = {}
        for _ in range(args.repeats):
            for bs in args.sizes:
                t = time.perf_counter()
                outputs[bs] = split_probabilities(model, split, mean, crop, idx, bs, torch.device("cpu"))["ten"]
                best[bs] = min(best[bs], time.perf_counter() - t)
    base = args.sizes[0]
    print(f"{args.arch}, {args.images} images x 10 crops of {crop} px, 1 thread; best of {args.repeats}")
    print(f"{'batch':>6} {'crops/pass':>10} {'images/s':>9} {'ratio':>6} {'max |diff|':>11}")
    for bs in args.sizes:
        diff = (outputs[bs] - outputs[base]).abs().max().item()
        print(f"{bs:>6} {bs * 10:>10} {args.images / best[bs]:>9.0f} {best[base] / best[bs]:>6.2f} {diff:>11.3g}")


if __name__ == "__main__":
    main()

"""Cost of Figure 2's mining pass: `mine_top9` (conv1..conv5 top-9 per map) vs a plain `model(x)` forward.

Both loop over the same images of the same split in the same batches, crop them the same way and run in
eval mode without gradients; the ratio is mining / plain (target <= 1.3). Each is timed `--repeats` times,
alternating, and the fastest run counts. With results/ present it uses the trained model and the
validation split; otherwise a randomly initialised ZF (width 0.25, 84 input) on random uint8 images.

    .venv/bin/python benchmarks/top9_pass.py                 # after `make reproduce`, or without results/
    .venv/bin/python benchmarks/top9_pass.py --random --images 2000 --device cuda
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from timing import best_of

from zfrepro.analysis.mining import mine_top9
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.model.architectures import zf_spec
from zfrepro.model.checkpoint import load_model
from zfrepro.model.network import ConvNet, init_weights_


def random_setup(tmp: Path, images: int, image_size: int = 96, crop: int = 84) -> tuple:
    """A random-init ZF at the default config and a cache-mode split of random uint8 images."""
    gen = torch.Generator().manual_seed(0)
    data = {"classes": [f"c{i}" for i in range(20)], "labels": torch.arange(images) % 20,
            "image_size": image_size,
            "images": torch.randint(0, 256, (images, 3, image_size, image_size), dtype=torch.uint8, generator=gen)}
    torch.save(data, tmp / "val.pt")
    model = init_weights_(ConvNet(zf_spec(20, crop, width=0.25)), "gaussian", std=0.02, generator=gen)
    mean = torch.full((3, image_size, image_size), 117.0)
    return model.eval(), PreparedSplit(tmp / "val.pt"), mean, crop, "random ZF width 0.25, random images"


def trained_setup(data_dir: Path, model_path: Path) -> tuple:
    """The trained model and the prepared validation split from results/."""
    model, ckpt = load_model(model_path)
    mean = torch.load(data_dir / "mean.pt", weights_only=True)
    return model, PreparedSplit(data_dir / "val.pt"), mean, int(ckpt["crop_size"]), str(model_path)


@torch.no_grad()
def plain_pass(model: ConvNet, split: PreparedSplit, mean: torch.Tensor, crop: int, indices: torch.Tensor,
               batch_size: int, device: torch.device) -> None:
    """model(x) over the images, batched and cropped as mine_top9 does."""
    mean = mean.to(device)
    for images, _ in split.batches(indices, batch_size):
        model(center_crop(images.to(device, non_blocking=True), mean, crop))


def mining_pass(model: ConvNet, split: PreparedSplit, mean: torch.Tensor, crop: int, indices: torch.Tensor,
                batch_size: int, device: torch.device) -> None:
    """mine_top9 over the images (its result is copied to the CPU, so the time is complete)."""
    mine_top9(model, split, mean, crop, batch_size=batch_size, indices=indices, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="results/data/imagenet")
    parser.add_argument("--model", default="results/models/zf/seed0/final.pt")
    parser.add_argument("--random", action="store_true", help="ignore results/: random model and images")
    parser.add_argument("--images", type=int, default=None, help="images to use (default: the whole split, "
                        "or 800 random ones)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data_dir, model_path = Path(args.data_dir), Path(args.model)

    with tempfile.TemporaryDirectory() as tmp:
        if not args.random and (data_dir / "val.pt").exists() and model_path.exists():
            model, split, mean, crop, what = trained_setup(data_dir, model_path)
        else:
            model, split, mean, crop, what = random_setup(Path(tmp), args.images or 800)
        model.to(device).eval()
        n = min(args.images or len(split), len(split))
        indices = torch.arange(n)
        call = (model, split, mean, crop, indices, args.batch_size, device)
        best = best_of({"plain": lambda: plain_pass(*call), "mining": lambda: mining_pass(*call)}, device,
                       args.repeats)
    plain, mining = best["plain"], best["mining"]
    ratio = mining / plain
    print(f"{what}: {n} images of {split.path.name}, crop {crop}, batch {args.batch_size}, device {device}, "
          f"{args.threads} threads, best of {args.repeats}")
    print(f"plain model(x) forward: {plain:8.3f} s  ({n / plain:8.1f} images/s)")
    print(f"mining pass (top-9, conv1-5): {mining:8.3f} s  ({n / mining:8.1f} images/s)")
    print(f"ratio mining/plain: {ratio:.2f}  (target <= 1.3)")
    print(json.dumps({"images": n, "plain_s": plain, "mining_s": mining, "ratio": ratio}))


if __name__ == "__main__":
    main()

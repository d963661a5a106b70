"""Training throughput: our trainer vs a plain torchvision-style loop, same model and optimizer, one process.

The plain loop is what a reader would write from torchvision's references: ImageFolder over the JPEG files,
per-image transforms (resize, centre crop, random crop, flip), a DataLoader, SGD. Ours reads the prepared
uint8 cache and crops whole batches at once. Both train for one epoch over the same images; the ratio is
ours / plain (above 1 means ours is faster).

    .venv/bin/python benchmarks/train_throughput.py            # after `make reproduce` (or the prepare step)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from zfrepro.model.architectures import spec_from_config
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.train import renormalize_filters_, train, with_dropout
from zfrepro.model.train_config import TrainConfig


def plain_loop(root: Path, arch: str, arch_params: dict, cfg: TrainConfig, image_size: int, crop: int,
               mean: torch.Tensor, threads: int, max_images: int) -> float:
    """One epoch of a torchvision-reference-style loop; returns images per second."""
    transform = v2.Compose([
        v2.Lambda(lambda im: im.convert("RGB")),
        v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size),
        v2.PILToTensor(), v2.ToDtype(torch.float32), v2.Lambda(lambda x: x - mean),
        v2.RandomCrop(crop), v2.RandomHorizontalFlip(),
    ])
    data = datasets.ImageFolder(str(root / "train"), transform=transform)
    subset = torch.utils.data.Subset(data, torch.randperm(len(data))[:max_images].tolist())
    loader = DataLoader(subset, batch_size=cfg.batch_size, shuffle=True, num_workers=threads,
                        persistent_workers=False)
    spec = with_dropout(spec_from_config(arch, arch_params, num_classes=len(data.classes), input_size=crop),
                        cfg.dropout)
    model = ConvNet(spec)
    init_weights_(model, **cfg.init)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    convs = model.conv_layers()
    model.train()
    seen, t0 = 0, time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        renormalize_filters_(convs, cfg.filter_radius or 0.1)
        seen += len(y)
    return seen / (time.perf_counter() - t0)


def ours(data_dir: Path, arch: str, arch_params: dict, cfg: TrainConfig, threads: int) -> float:
    """One epoch of `zfrepro.model.train`; images per second as its metrics record them (training steps only)."""
    with tempfile.TemporaryDirectory() as out:
        train(data_dir, arch, arch_params, cfg, seed=0, out_dir=out, device="cpu", threads=threads)
        return float(pd.read_csv(Path(out) / "metrics.csv")["images_per_second"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--data-dir", default="results/data/imagenet", help="prepared data (zfrepro prepare)")
    parser.add_argument("--root", default="results/data/synthetic/imagenet", help="the ImageNet-layout folder")
    parser.add_argument("--arch", default="zf")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    config = yaml.safe_load(Path(args.config).read_text())
    arch_params = config["architectures"][args.arch]
    train_cfg = {k: v for k, v in config.get("training", {}).items()}
    train_cfg.update(arch_params.get("training", {}))
    cfg = TrainConfig.from_dict({**train_cfg, "epochs": 1, "checkpoint_epochs": []})
    data_dir = Path(args.data_dir)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    mean = torch.load(data_dir / "mean.pt", weights_only=True)
    torch.set_num_threads(args.threads)

    ours_ips = ours(data_dir, args.arch, arch_params, cfg, args.threads)
    torch.set_num_threads(args.threads)
    n_train = manifest["counts"]["train"]
    plain_ips = plain_loop(Path(args.root), args.arch, arch_params, cfg, manifest["image_size"],
                           manifest["crop_size"], mean, args.threads, n_train)
    print(f"arch {args.arch}, batch {cfg.batch_size}, {args.threads} threads, one epoch each")
    print(f"ours (prepared uint8 cache, batched crops): {ours_ips:8.1f} images/s")
    print(f"plain torchvision loop (ImageFolder+DataLoader): {plain_ips:8.1f} images/s")
    print(f"ratio ours/plain: {ours_ips / plain_ips:.2f}")


if __name__ == "__main__":
    main()

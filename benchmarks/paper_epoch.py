"""One training epoch at the paper's shape, through `zfrepro train`'s own code: how fast the whole trainer runs.

ZF at full width, 1000 classes, 256 px stored images and 224 px crops, batch 128, bf16 autocast on CUDA, over
--images generated photographs (benchmarks/data_path.py: ~500 x 375 scenes over real photographs) prepared as
`zfrepro prepare` prepares them in stream mode (JPEG q90 shards: on CUDA read by DataLoader workers and decoded on
the GPU). The epoch is zfrepro.model.train.train itself (validation off): its metrics.csv gives the images/s of
the loop; the wall time of the call adds the start-up (model, loader workers, cuDNN autotuning).

    python benchmarks/paper_epoch.py --out paper_epoch.json           # on a CUDA machine (about 1-2 minutes)
    python benchmarks/paper_epoch.py --smoke --out /tmp/epoch.json    # anywhere: tiny shapes on the CPU

Prints one summary line; writes every number to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_path  # noqa: E402

from zfrepro.data.prepare import prepare_image_list  # noqa: E402
from zfrepro.io import atomic_torch_save, atomic_write_json  # noqa: E402
from zfrepro.model.train import train  # noqa: E402
from zfrepro.model.train_config import TrainConfig  # noqa: E402


def prepare(folder: Path, images: int, classes: int, size: int, crop: int, threads: int) -> Path:
    """train.pt/val.pt (stream-mode JPEG shards), mean.pt and manifest.json of `images` generated photographs."""
    sources = data_path.make_sources(folder / "src", images)
    names = [f"n{c:08d}" for c in range(classes)]
    params = {"image_size": size, "crop_size": crop, "cache": "stream", "cache_max_gb": 8, "max_bad_fraction": 0.0,
              "mean_max_images": None, "shard_format": "jpeg", "jpeg_quality": 90, "shard_images": 256}
    data = folder / "data"
    summary = prepare_image_list(sources, [i % classes for i in range(images)], names, data / "train.pt", params,
                                 threads=threads, compute_mean=True, desc="train shards")
    val = sources[: min(len(sources), 256)]
    prepare_image_list(val, [i % classes for i in range(len(val))], names, data / "val.pt", params, threads=threads,
                       desc="val shards")
    atomic_torch_save(data / "mean.pt", summary.mean)
    atomic_write_json(data / "manifest.json", {"classes": names, "image_size": size, "crop_size": crop,
                                               "train_images": images, "source": "generated (paper_epoch.py)"})
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=128 * 40, help="training images of the epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the job's CPUs (threads, workers)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--compile", action="store_true", help="training.compile: true")
    p.add_argument("--smoke", action="store_true", help="CPU, 72 px images, ZF at width 1/8, 10 classes")
    p.add_argument("--out", help="write the numbers to this JSON file")
    args = p.parse_args()
    size, crop, classes, width = 256, 224, 1000, 1.0
    if args.smoke:
        size, crop, classes, width = 72, 64, 10, 0.125
        args.images, args.batch_size, args.device, args.threads = 32, 8, "cpu", min(args.threads, 2)
    with tempfile.TemporaryDirectory(prefix="zf_paper_epoch_") as tmp:
        t0 = time.perf_counter()
        data = prepare(Path(tmp), args.images, classes, size, crop, args.threads)
        prepared = time.perf_counter() - t0
        cfg = TrainConfig(epochs=1, batch_size=args.batch_size, checkpoint_epochs=[], validate=False,
                          lr_schedule={"kind": "none"}, init={"scheme": "gaussian", "std": 0.01},
                          filter_radius=0.1, compile=args.compile)
        t0 = time.perf_counter()
        out = train(data, "zf", {"base": "zf", "width": width}, cfg, seed=0, out_dir=Path(tmp) / "run",
                    device=args.device, threads=args.threads)
        wall = time.perf_counter() - t0
        metrics = pd.read_csv(out.parent / "metrics.csv").iloc[0]
    device = args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    result = {"device": name, "images": args.images, "batch_size": args.batch_size, "image_size": size,
              "crop": crop, "classes": classes, "width": width, "compile": args.compile,
              "loop_seconds": float(metrics["seconds"]), "images_per_second": float(metrics["images_per_second"]),
              "train_call_seconds": wall, "prepare_seconds": prepared, "train_loss": float(metrics["train_loss"])}
    if args.out:
        atomic_write_json(args.out, result)
    print(f"paper-shape epoch on {name}: {args.images} images ({size} px, {crop} crops, {classes} classes, batch "
          f"{args.batch_size}): {result['images_per_second']:.0f} img/s in the loop ({result['loop_seconds']:.1f} s), "
          f"{wall:.1f} s for the whole train call; loss {result['train_loss']:.3f}; data prepared in {prepared:.0f} s")


if __name__ == "__main__":
    main()

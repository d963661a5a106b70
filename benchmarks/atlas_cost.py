"""Cost of the feature atlas (`zfrepro atlas`) at paper shape: every map of a full-width network (ZF: 96, 256,
384, 384, 256 maps at 224 px crops) with its top-9 projected by the deconvnet and written as pages.

The network is randomly initialised (He init, so maps fire) and the validation set is `--images` random
smooth 256 px images: the cost depends on the shapes, not on what the weights learned. The mining pass
(`zfrepro mine`'s mine_top9) is timed on its own, then the atlas command runs exactly as the workflow calls
it and its cost.json is printed: projections per second of the deconvnet and the total time, plus, with
`--epochs N`, the evolution of `--evolution-maps` over N random checkpoints (Fig 4 for those maps).

    .venv/bin/python benchmarks/atlas_cost.py                                # ZF, 300 images, 2 threads
    .venv/bin/python benchmarks/atlas_cost.py --images 100 --epochs 2 --keep /tmp/atlas_paper_shape
    .venv/bin/python benchmarks/atlas_cost.py --arch krizhevsky --width 0.25 --crop 84 --image-size 96
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from zfrepro.analysis.mining import mine_top9
from zfrepro.commands.visualize import atlas_command, configure_atlas_parser
from zfrepro.data.splits import PreparedSplit
from zfrepro.io import atomic_torch_save
from zfrepro.model.architectures import spec_from_config
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import spec_to_dict


def smooth_images(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random uint8 images [n, 3, size, size] with structure at several scales (not white noise)."""
    out = torch.zeros(n, 3, size, size)
    for cells in (4, 16, 64):
        out += F.interpolate(torch.rand(n, 3, cells, cells, generator=gen), size=(size, size), mode="bilinear",
                             align_corners=False)
    return (out / 3 * 255).clamp(0, 255).to(torch.uint8)


def write_inputs(root: Path, arch: str, width: float, images: int, image_size: int, crop: int, epochs: int,
                 classes: int = 20) -> dict:
    """A prepared split (val.pt, train.pt = the same images), mean.pt, final.pt and `epochs` earlier checkpoints."""
    gen = torch.Generator().manual_seed(0)
    names = [f"n{i:08d}" for i in range(classes)]
    data = {"classes": names, "labels": torch.arange(images) % classes, "image_size": image_size,
            "images": smooth_images(images, image_size, gen)}
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    for split in ("val", "train"):
        atomic_torch_save(data_dir / f"{split}.pt", data)
    atomic_torch_save(data_dir / "mean.pt", data["images"].float().mean(0))
    spec = spec_from_config(arch, {"base": arch, "width": width}, num_classes=classes, input_size=crop)
    paths = {}
    for epoch in range(1, epochs + 2):
        model = init_weights_(ConvNet(spec), "kaiming", generator=gen).eval()
        name = "final" if epoch == epochs + 1 else f"epoch{epoch}"
        paths[name] = root / f"{name}.pt"
        atomic_torch_save(paths[name], {"arch": arch, "spec": spec_to_dict(spec), "model": model.state_dict(),
                                        "epoch": epoch, "classes": names, "crop_size": crop, "seed": 0,
                                        "training": {}})
    return {"data_dir": data_dir, "checkpoints": paths}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="zf", choices=["zf", "krizhevsky"])
    p.add_argument("--width", type=float, default=1.0, help="1.0 = the paper's map counts")
    p.add_argument("--images", type=int, default=300, help="validation images (random, smooth)")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--epochs", type=int, default=0, help="earlier checkpoints for the evolution view (0: none)")
    p.add_argument("--evolution-maps", default='{"conv1": "all", "conv2": "all"}')
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--keep", help="keep the atlas in this folder (else it is deleted)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="atlas_cost_"))
    try:
        inputs = write_inputs(tmp, args.arch, args.width, args.images, args.image_size, args.crop, args.epochs)
        final = inputs["checkpoints"]["final"]
        ckpt = torch.load(final, weights_only=True)
        from zfrepro.model.checkpoint import load_model

        model, _ = load_model(final)
        split = PreparedSplit(inputs["data_dir"] / "val.pt")
        mean = torch.load(inputs["data_dir"] / "mean.pt", weights_only=True)
        t0 = time.perf_counter()
        mined = mine_top9(model, split, mean, ckpt["crop_size"], batch_size=64)
        mine_s = time.perf_counter() - t0
        atomic_torch_save(tmp / "top9.pt", {**mined, "split": "val", "model": str(final)})
        maps = {c.name: c.out_channels for c in model.spec.convs}
        print(f"{args.arch} width {args.width} at {args.crop} px: maps {maps}; {args.images} images; "
              f"mining {mine_s:.1f} s ({args.images / mine_s:.1f} images/s)")

        out = Path(args.keep) if args.keep else tmp / "atlas"
        argv = ["--threads", str(args.threads), "--model", str(final), "--top9", str(tmp / "top9.pt"),
                "--data-dir", str(inputs["data_dir"]), "--out-dir", str(out), "--device", "cpu",
                "--chunk", str(args.chunk), "--title", f"{args.arch} width {args.width} (random weights)"]
        if args.epochs:
            checkpoints = {str(e): str(inputs["checkpoints"][f"epoch{e}"]) for e in range(1, args.epochs + 1)}
            argv += ["--checkpoints", json.dumps(checkpoints), "--evolution-maps", args.evolution_maps,
                     "--evolution-split", "val", "--evolution-images", json.dumps(args.images)]
        parser = argparse.ArgumentParser()
        parser.add_argument("--threads", type=int, default=1)
        configure_atlas_parser(parser)
        t0, c0 = time.perf_counter(), time.process_time()
        atlas_command(parser.parse_args(argv))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        cost = json.loads((out / "cost.json").read_text())
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        files = sum(1 for f in out.rglob("*") if f.is_file())
        print(f"atlas: {cost['projections']['atlas']} projections, {cost['projections_per_second']} projections/s "
              f"(deconvnet {cost['seconds']['atlas']:.1f} s, writing {cost['seconds'].get('writing', 0):.1f} s)")
        if args.epochs:
            print(f"evolution: {cost['projections'].get('evolution', 0)} projections, "
                  f"{cost['evolution_projections_per_second']} projections/s, "
                  f"{cost['seconds'].get('evolution', 0):.1f} s + mining "
                  f"{cost['seconds'].get('evolution mining', 0):.1f} s")
        # CPU seconds beside wall seconds: on a shared machine the wall time says more about the neighbours
        print(f"total: {cost['total_seconds']:.1f} s in the command ({wall:.1f} s wall, {cpu:.1f} CPU s), "
              f"{args.threads} threads; "
              f"atlas {size / 2**20:.1f} MiB in {files} files")
        print(json.dumps({"mining_seconds": round(mine_s, 2), "atlas_mib": round(size / 2**20, 1),
                          "cpu_seconds": round(cpu, 1), **cost}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Cost of config/published.yaml for one published-size ZFNet (imgclsmob's, 62.4M parameters) at 224 px crops.

Random weights are written in pytorchcv's format and imported with `import_weights` (the workflow's path); the
validation set is `--images` random smooth 256 px images (the cost depends on the shapes, not on the weights).
Measured, each beside a plain reference in the same process (pytorchcv's own module on the same inputs):
- evaluation per image: the evaluate step's ten crops + centre (`split_probabilities`) vs pytorchcv's forward of the
  same ten crops;
- occlusion per image: Fig 7's 48 px square at stride 8 (`occlusion_maps`, 529 positions) vs pytorchcv's forward of
  the same 529 occluded copies;
- mining over N images: `mine_top9` vs pytorchcv's `features` forward of the same centre crops;
- the atlas over those N images (`zfrepro atlas`, `--atlas-maps` maps per layer), projections per second, and the
  whole atlas (every map) extrapolated from that rate.
The JSON also projects the configuration's time for 10,000 validation images on this machine (one network).

    .venv/bin/python benchmarks/published_cost.py                     # 64 images, 2 threads, CPU
    .venv/bin/python benchmarks/published_cost.py --images 200 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from atlas_cost import smooth_images  # noqa: E402
from timing import seconds  # noqa: E402

from zfrepro.analysis.atlas import atlas_command, configure_atlas_parser  # noqa: E402
from zfrepro.analysis.mining import mine_top9  # noqa: E402
from zfrepro.analysis.occlusion import model_forward, occlusion_maps  # noqa: E402
from zfrepro.data.preprocess import center_crop, ten_crops  # noqa: E402
from zfrepro.data.splits import PreparedSplit  # noqa: E402
from zfrepro.io import atomic_torch_save  # noqa: E402
from zfrepro.model.checkpoint import load_model, network_mean  # noqa: E402
from zfrepro.model.evaluate import split_probabilities  # noqa: E402
from zfrepro.model.import_weights import import_weights  # noqa: E402
from zfrepro.model.published import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

OCCLUDER, STRIDE, CLASSES = 48, 8, 1000


def inputs(root: Path, images: int) -> tuple[Path, Path, torch.nn.Module]:
    """(data dir, imported checkpoint, pytorchcv's module with the same random weights)."""
    from pytorchcv.models.zfnet import zfnet

    gen = torch.Generator().manual_seed(0)
    data = {"classes": [f"n{i:08d}" for i in range(CLASSES)], "labels": torch.arange(images) % CLASSES,
            "image_size": 256, "images": smooth_images(images, 256, gen)}
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    for split in ("val", "train"):
        atomic_torch_save(data_dir / f"{split}.pt", data)
    atomic_torch_save(data_dir / "mean.pt", data["images"].float().mean(0))
    torch.manual_seed(0)
    net = zfnet(num_classes=CLASSES).eval()
    torch.save(net.state_dict(), root / "zfnet-random.pth")
    import_weights("zfnet", root / "zfnet-random.pth", root / "final.pt", arch="zf", classes=data["classes"])
    return data_dir, root / "final.pt", net


def their_input(crops: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """pytorchcv's input from our mean-subtracted crops: (pixel / 255 - mean) / std."""
    pixels = crops + mean[:, : crops.shape[-2], : crops.shape[-1]]
    m, s = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixels / 255 - m) / s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=64, help="validation images for evaluation, mining and the atlas")
    p.add_argument("--occlusion-images", type=int, default=1)
    p.add_argument("--atlas-maps", type=int, default=4, help="maps per layer in the timed atlas")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--project-images", type=int, default=10000, help="validation images of the projection")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "published_cost.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="published_cost_"))
    try:
        data_dir, final, net = inputs(tmp, args.images)
        model, ckpt = load_model(final, device)
        net = net.to(device)
        split = PreparedSplit(data_dir / "val.pt")
        mean = network_mean(model.spec, torch.load(data_dir / "mean.pt", weights_only=True)).to(device)
        n, crop = args.images, ckpt["crop_size"]
        idx = torch.arange(n)
        result: dict = {"network": "zfnet (imgclsmob architecture, random weights)", "crop": crop, "images": n,
                        "threads": args.threads, "device": args.device, "torch": torch.__version__,
                        "machine": platform.processor() or platform.machine(), "python": platform.python_version()}

        # evaluation: the evaluate step's ten crops (+ centre) vs pytorchcv's forward of the same crops
        with torch.no_grad():
            ours = seconds(lambda: split_probabilities(model, split, mean, crop, idx, args.batch_size, device), device)
            images = split.data["images"][:n].to(device)

            def theirs() -> None:
                for start in range(0, n, args.batch_size):
                    crops = ten_crops(images[start:start + args.batch_size], mean, crop).flatten(0, 1)
                    net(their_input(crops, mean))

            ref = seconds(theirs, device)
        result["evaluation"] = {"seconds_per_image": ours / n, "reference_seconds_per_image": ref / n,
                                "ratio": ours / ref}

        # occlusion: Fig 7's square over one image vs pytorchcv's forward of the same occluded copies
        forward = model_forward(model, "conv5")
        x = center_crop(images[: args.occlusion_images], mean, crop)
        with torch.no_grad():
            ours = seconds(lambda: [occlusion_maps(forward, xi, OCCLUDER, STRIDE, args.batch_size) for xi in x], device)
            offsets = range(0, crop - OCCLUDER + 1, STRIDE)
            positions = len(offsets) ** 2

            def theirs_occ() -> None:
                for xi in x:
                    copies = []
                    for top in offsets:
                        for left in offsets:
                            c = xi.clone()
                            c[:, top:top + OCCLUDER, left:left + OCCLUDER] = 0
                            copies.append(c)
                            if len(copies) == args.batch_size:
                                net(their_input(torch.stack(copies), mean))
                                copies = []
                    if copies:
                        net(their_input(torch.stack(copies), mean))

            ref = seconds(theirs_occ, device)
        k = args.occlusion_images
        result["occlusion"] = {"positions": positions, "seconds_per_image": ours / k,
                               "reference_seconds_per_image": ref / k, "ratio": ours / ref}

        # mining over N images vs pytorchcv's features forward of the same centre crops
        t0 = time.perf_counter()
        mined = mine_top9(model, split, mean, crop, batch_size=args.batch_size, device=device)
        mine_s = time.perf_counter() - t0
        with torch.no_grad():
            ref = seconds(lambda: [net.features(their_input(center_crop(images[s:s + args.batch_size], mean, crop),
                                                            mean)) for s in range(0, n, args.batch_size)], device)
        result["mining"] = {"seconds": mine_s, "seconds_per_image": mine_s / n,
                            "reference_seconds_per_image": ref / n, "ratio": mine_s / ref}

        # the atlas (deconvnet projections of the top 9 of atlas_maps maps per layer)
        atomic_torch_save(tmp / "top9.pt", {**mined, "split": "val", "model": str(final)})
        parser = argparse.ArgumentParser()
        parser.add_argument("--threads", type=int, default=1)
        configure_atlas_parser(parser)
        argv = ["--threads", str(args.threads), "--model", str(final), "--top9", str(tmp / "top9.pt"),
                "--data-dir", str(data_dir), "--out-dir", str(tmp / "atlas"), "--device", args.device,
                "--maps-per-layer", str(args.atlas_maps)]
        t0 = time.perf_counter()
        atlas_command(parser.parse_args(argv))
        atlas_s = time.perf_counter() - t0
        cost = json.loads((tmp / "atlas" / "cost.json").read_text())
        every_map = sum(c.out_channels for c in model.spec.convs) * int(mined.get("k", 9))
        rate = cost["projections_per_second"]
        result["atlas"] = {"maps_per_layer": args.atlas_maps, "seconds": atlas_s, "projections_per_second": rate,
                           "projections_every_map": every_map, "every_map_seconds_estimate": every_map / rate}

        # the configuration for project_images validation images, one network, on this machine
        m, occ = args.project_images, 3 + 12  # Fig 7's three images and occlusion.sample's default 12
        parts = {"evaluation": m * result["evaluation"]["seconds_per_image"],
                 "mining": m * result["mining"]["seconds_per_image"],
                 "atlas (every map)": result["atlas"]["every_map_seconds_estimate"],
                 "occlusion (15 images)": occ * result["occlusion"]["seconds_per_image"]}
        result["projection"] = {"images": m, "seconds": parts, "total_hours": sum(parts.values()) / 3600}
        print(json.dumps(result, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

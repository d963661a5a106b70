"""Speed of Figure 7's occlusion (`zfrepro.analysis.occlusion.occlude`) vs Captum's Occlusion on the same model, image
and settings (square side, stride, baseline 0 = the mean pixel, the true class as target, the same number
of occluded copies per forward pass).

Ours also returns every layer-5 map's total per position (from the same forward pass) and all class
probabilities; Captum returns one class's attribution. The ratio is Captum / ours (> 1: ours is faster).
Each is timed `--repeats` times, alternating, and the fastest run counts. With results/ present it uses
the trained model and a validation image; otherwise (or with --random) a randomly initialised ZF.

    .venv/bin/python benchmarks/occlusion_speed.py                    # default model, 18 px square, stride 3
    .venv/bin/python benchmarks/occlusion_speed.py --random --width 1 --input-size 224 --size 48 --stride 8 \
        --device cuda                                                  # paper scale
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from captum.attr import Occlusion
from timing import best_of

from zfrepro.analysis.occlusion import occlude, occluder_positions
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.model.architectures import zf_spec
from zfrepro.model.checkpoint import load_model
from zfrepro.model.network import ConvNet, init_weights_


def setup(args: argparse.Namespace) -> tuple[ConvNet, torch.Tensor, int, str]:
    """(model, one model input [3, s, s], its label, description)."""
    data_dir, model_path = Path(args.data_dir), Path(args.model)
    if not args.random and (data_dir / "val.pt").exists() and model_path.exists():
        model, ckpt = load_model(model_path)
        split = PreparedSplit(data_dir / "val.pt")
        mean = torch.load(data_dir / "mean.pt", weights_only=True)
        x = center_crop(split.data["images"][args.image:args.image + 1] if split.in_memory else
                        next(split.batches([args.image], 1))[0], mean, int(ckpt["crop_size"]))[0]
        return model, x, int(split.labels[args.image]), f"{model_path}, validation image {args.image}"
    gen = torch.Generator().manual_seed(0)
    model = init_weights_(ConvNet(zf_spec(args.classes, args.input_size, width=args.width)), "gaussian",
                          std=0.01 / args.width ** 0.5, generator=gen)
    x = torch.randn(3, args.input_size, args.input_size, generator=gen) * 60
    return model, x, 0, f"random ZF width {args.width}, {args.input_size} px input, {args.classes} classes"


def run_ours(model: ConvNet, x: torch.Tensor, args: argparse.Namespace) -> None:
    occlude(model, x, args.size, args.stride, "conv5", args.batch_size)  # results land on the CPU: complete


def run_captum(model: ConvNet, x: torch.Tensor, label: int, args: argparse.Namespace) -> None:
    occ = Occlusion(lambda inp: model(inp).softmax(dim=1))
    with torch.no_grad():
        occ.attribute(x[None], sliding_window_shapes=(3, args.size, args.size),
                      strides=(3, args.stride, args.stride), baselines=0, target=label,
                      perturbations_per_eval=args.batch_size).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="results/data/imagenet")
    parser.add_argument("--model", default="results/models/zf/seed0/final.pt")
    parser.add_argument("--image", type=int, default=0, help="validation image index")
    parser.add_argument("--random", action="store_true", help="ignore results/: a random ZF and image")
    parser.add_argument("--width", type=float, default=0.25, help="--random: ZF width multiplier")
    parser.add_argument("--input-size", type=int, default=84, help="--random: input side")
    parser.add_argument("--classes", type=int, default=20, help="--random: number of classes")
    parser.add_argument("--size", type=int, default=18, help="square side (paper scale 48 at 224)")
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="occluded copies per forward pass (both)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, x, label, what = setup(args)
    model.to(device).eval()
    x = x.to(device)
    positions = len(occluder_positions(x.shape[-1], args.size, args.stride)) ** 2
    best = best_of({"ours": lambda: run_ours(model, x, args), "captum": lambda: run_captum(model, x, label, args)},
                   device, args.repeats)
    ours, captum = best["ours"], best["captum"]
    ratio = captum / ours
    print(f"{what}: square {args.size}, stride {args.stride}, {positions} positions, batch {args.batch_size}, "
          f"device {device}, {args.threads} threads, best of {args.repeats}")
    print(f"ours (probabilities + layer-5 totals): {ours:8.3f} s  ({positions / ours:8.1f} positions/s)")
    print(f"Captum Occlusion (one class):          {captum:8.3f} s  ({positions / captum:8.1f} positions/s)")
    print(f"ratio Captum/ours: {ratio:.2f}")
    print(json.dumps({"positions": positions, "ours_s": ours, "captum_s": captum, "ratio": ratio}))


if __name__ == "__main__":
    main()

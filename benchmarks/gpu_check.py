"""The GPU check: how fast the paper's ZF network trains at 224 on this machine's accelerator, and what limits it.

Run on a CUDA machine; it writes every number to a JSON file (and prints it):

- **train**: one SGD step of ZF (the trainer's own, zfrepro.model.train.sgd_step) at full width (1000 classes,
  224 crops, the paper's batch of 128), bf16 autocast and channels-last as `zfrepro train` runs on CUDA:
  images/s, and the model FLOP utilisation (MFU) = model FLOPs per image (forward + backward, counted by torch's
  FlopCounterMode) x images/s / the GPU's bf16 peak;
- **train_compiled**: the same step with torch.compile;
- **evaluate**: the ten-crop forward pass of evaluation, images/s;
- **data_path**: the data path alone, as training runs it: uint8 256 x 256 batches copied to the GPU from pinned
  memory, a random one of the ten crops (flips included) and the mean subtracted on the GPU
  (zfrepro.data.preprocess.ten_crop_select), images/s: compare with `train`;
- **data_path_jpeg**: the same from JPEG shards as `zfrepro train` reads them in stream mode (the default of
  config/paper.yaml): DataLoader workers (--data-workers) read and CRC-check the stored bytes, the batch is decoded
  on the GPU in one call (zfrepro.data.shards.decode_batch: nvJPEG), then cropped there; steady-state images/s
  (a long pass less a one-batch pass, so the workers' start-up is left out), and the decode call alone
  (`decode_images_per_second`). The shards are built in a temporary folder from generated ~500 x 375 photographs
  (benchmarks/data_path.py, which measures the CPU side);
- **ddp**: with several GPUs, one DDP step over all of them (NCCL) against one process on the same global
  batch (dropout off): the largest weight difference, and images/s per GPU.

    python benchmarks/gpu_check.py --out gpu_check.json           # on a CUDA machine
    python benchmarks/gpu_check.py --smoke --out /tmp/check.json  # anywhere: tiny sizes, checks the script runs

Timings are the best of `--repeats` rounds after a warm-up (benchmarks/timing.py). The peak comes from the
device's name (H100/H200 SXM: 989 dense bf16 TFLOP/s) or `--peak-tflops`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_of  # noqa: E402

from zfrepro.data.preprocess import center_crop, ten_crop_select, ten_crops  # noqa: E402
from zfrepro.model.network import ConvNet, init_weights_, spec_from_config  # noqa: E402
from zfrepro.model.train import sgd_step  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s) of the data-centre GPUs this may run on; others need --peak-tflops.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}


def build(width: float, crop: int, classes: int, device: torch.device, dropout: float = 0.5) -> ConvNet:
    spec = spec_from_config("zf", {"base": "zf", "width": width}, num_classes=classes, input_size=crop,
                            dropout=dropout)
    torch.manual_seed(0)
    model = ConvNet(spec)
    init_weights_(model, "gaussian", 0.01)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def flops_per_image(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Forward + backward FLOPs of one training step, per image (convolutions and matrix products)."""
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def check(args: argparse.Namespace) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    cuda = device.type == "cuda"
    batch, crop, size = args.batch_size, args.crop, args.image_size
    out: dict = {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__,
                 "batch_size": batch, "crop": crop, "image_size": size, "width": args.width, "classes": args.classes}
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, args.classes, (batch,), generator=gen)
    mean = torch.full((3, size, size), 117.0)

    # The data path alone: pinned uint8 batch -> device, random crop/flip and mean subtraction there.
    pinned = images.pin_memory() if cuda else images
    mean_dev = mean.to(device)
    which = torch.randint(0, 10, (batch,), generator=gen).to(device)

    def data_path() -> torch.Tensor:
        return ten_crop_select(pinned.to(device, non_blocking=True), mean_dev, crop, which)

    x = data_path().contiguous(memory_format=torch.channels_last) if cuda else data_path()
    y = labels.to(device)
    model = build(args.width, crop, args.classes, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    flops = flops_per_image(model, x[:2].float(), y[:2])
    runs = {"train": lambda: sgd_step(model, opt, x, y, autocast=cuda), "data_path": data_path}
    if not args.no_compile:
        compiled = torch.compile(model)
        runs["train_compiled"] = lambda: sgd_step(compiled, opt, x, y, autocast=cuda)

    eval_model = build(args.width, crop, args.classes, device).eval()

    @torch.no_grad()
    def evaluate() -> None:
        crops = ten_crops(images.to(device), mean_dev, crop).flatten(0, 1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            eval_model(crops).float().softmax(1)

    runs["evaluate"] = evaluate
    seconds = best_of(runs, device, args.repeats)
    if not args.no_jpeg:
        out["data_path_jpeg"] = jpeg_data_path(args, device, mean_dev)
    peak = peak_tflops(device, args.peak_tflops)
    out["model_gflop_per_image"] = flops / 1e9
    out["peak_bf16_tflops"] = peak
    for name, s in seconds.items():
        out[name] = {"seconds": s, "images_per_second": batch / s}
        if name.startswith("train") and peak:
            out[name]["mfu"] = flops * batch / s / (peak * 1e12)
    out["center_crop_check"] = float(center_crop(images[:1], mean, crop).abs().mean())  # the crops are real data
    if cuda and torch.cuda.device_count() > 1 and not args.no_ddp:
        out["ddp"] = ddp_check(args, torch.cuda.device_count())
    return out


def jpeg_data_path(args: argparse.Namespace, device: torch.device, mean: torch.Tensor) -> dict:
    """The data path from JPEG shards: workers read bytes, the GPU decodes (nvJPEG) and crops; images/s."""
    import data_sources as data_path  # the generated images and the shards built as prepare builds them

    from zfrepro.data.shards import decode_batch

    batch, size = args.batch_size, args.image_size
    with tempfile.TemporaryDirectory(prefix="zf_gpu_check_") as tmp:
        sources = data_path.make_sources(Path(tmp) / "src", batch * args.jpeg_batches)
        split, _ = data_path.build_split(sources, Path(tmp) / "jpeg" / "train.pt", "jpeg", image_size=size)
        long, short = data_path.orders(len(split), batch, args.jpeg_batches)
        encoded = [split.reader.encoded(row) for row in long[:batch].tolist()]
        pin = device.type == "cuda"

        def run(order: torch.Tensor) -> Callable[[], int]:
            return lambda: data_path.loader_pass(split, order, batch, args.data_workers, mean, args.crop, device, pin)

        runs = {"long": run(long), "short": run(short), "decode": lambda: decode_batch(encoded, device, size)}
        seconds = best_of(runs, device, args.repeats)
        stored = data_path.stored_bytes(split)
    per_batch = max(seconds["long"] - seconds["short"], 1e-9) / (len(long) // batch - 1)
    return {"seconds": per_batch, "images_per_second": batch / per_batch,
            "decode_images_per_second": batch / seconds["decode"], "workers": args.data_workers,
            "decoder": "nvJPEG (GPU)" if device.type == "cuda" else "libjpeg-turbo (CPU, DataLoader workers)",
            "bytes_per_image": stored, "batches_per_pass": len(long) // batch}


# ---------------------------------------------------------------------------------------------- DDP


def ddp_worker(args: argparse.Namespace) -> None:
    """Under torchrun: one DDP step on this rank's slice of a fixed global batch; rank 0 saves the weights."""
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl")
    device = torch.device("cuda", torch.cuda.current_device())
    x, y = _global_batch(args, device)
    model = build(args.width, args.crop, args.classes, device, dropout=0.0)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    mine = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    sgd_step(ddp, opt, x[mine], y[mine], autocast=False)  # fp32: the comparison is about DDP, not bf16
    seconds = best_of({"step": lambda: sgd_step(ddp, opt, x[mine], y[mine], autocast=True)}, device,
                      args.repeats)["step"]
    if rank == 0:
        torch.save({"weights": {k: v.cpu() for k, v in model.state_dict().items()},
                    "images_per_second_per_gpu": (len(x) // world) / seconds}, args.ddp_out)
    dist.destroy_process_group()


def _global_batch(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch_size, 3, args.crop, args.crop, generator=gen) * 50
    return x.to(device), torch.randint(0, args.classes, (args.batch_size,), generator=gen).to(device)


def ddp_check(args: argparse.Namespace, gpus: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "ddp.pt"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
               __file__, "--ddp-worker", "--ddp-out", str(saved), "--batch-size", str(args.batch_size),
               "--crop", str(args.crop), "--width", str(args.width), "--classes", str(args.classes),
               "--repeats", str(args.repeats)]
        subprocess.run(cmd, check=True)
        ddp = torch.load(saved, weights_only=True)
    device = torch.device("cuda", 0)
    x, y = _global_batch(args, device)
    model = build(args.width, args.crop, args.classes, device, dropout=0.0)
    sgd_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y, autocast=False)
    diff = max((ddp["weights"][k].float() - v.cpu().float()).abs().max().item() for k, v in model.state_dict().items())
    return {"gpus": gpus, "max_weight_difference_after_one_step": diff,
            "images_per_second_per_gpu": ddp["images_per_second_per_gpu"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if its name is not in the table")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    p.add_argument("--no-ddp", action="store_true")
    p.add_argument("--no-jpeg", action="store_true", help="skip the data path from JPEG shards")
    p.add_argument("--jpeg-batches", type=int, default=8, help="batches in a timed pass over the JPEG shards")
    p.add_argument("--data-workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="DataLoader workers reading the JPEG shards")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: only checks that the script runs")
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ddp-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ddp_worker:
        ddp_worker(args)
        return
    if args.smoke:
        args.batch_size, args.width, args.classes, args.repeats, args.no_compile = 4, 0.125, 10, 1, True
        args.jpeg_batches, args.data_workers = 3, min(args.data_workers, 2)
    result = check(args)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

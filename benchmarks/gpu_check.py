"""The GPU check: how fast the paper's ZF network trains at 224 on this machine's accelerator, and what limits it.

Run on a CUDA machine; every stage's result goes into the JSON file as soon as the stage ends (rewritten
atomically), so a stage that fails (for example torch.compile without a compiler on the node) is recorded with
its error and the others still run and keep their numbers:

- **train**: `--train-steps` iterations of the training loop's body as zfrepro.model.train runs it on CUDA (a
  random one of the ten crops cut on the GPU from a pinned uint8 batch, channels-last, bf16 autocast SGD step,
  the filter renormalisation, the loss and error sums kept on the device), ZF at full width (1000 classes, 224
  crops, the paper's batch of 128), timed as one block: images/s, and the model FLOP utilisation (MFU) = model
  FLOPs per image (forward + backward, counted by torch's FlopCounterMode) x images/s / the card's bf16 peak;
- **train_compiled**: the same with the network under torch.compile (training.compile);
- **evaluate**: zfrepro.model.evaluate.split_probabilities itself (ten crops, float32 as `zfrepro evaluate` runs:
  TF32 allowed, the evaluation batch of `--eval-batch-size` images) over an in-memory split, images/s;
- **data_path**: the data path alone: uint8 256 x 256 batches copied to the GPU from pinned memory, a random one
  of the ten crops (flips included) and the mean subtracted there (ten_crop_select), images/s;
- **data_path_jpeg**: the same from JPEG shards as `zfrepro train` reads them in stream mode: DataLoader workers
  (--data-workers) read the stored bytes and join them into one tensor per batch, the batch is decoded on the GPU
  in one call (zfrepro.data.shards.decode_batch: nvJPEG), then cropped there; steady-state images/s (a long pass
  less a one-batch pass), and the decode call alone (`decode_images_per_second`);
- **ddp**: with several GPUs, one DDP step over all of them against one process on the same global batch
  (dropout off, float32), the weights compared after exactly that one step: the largest difference; then
  images/s per GPU of further bf16 steps.

    python benchmarks/gpu_check.py --out gpu_check.json           # on a CUDA machine
    python benchmarks/gpu_check.py --smoke --out /tmp/check.json  # anywhere: tiny sizes on the CPU, DDP over two
                                                                  # gloo processes; --fail-stage NAME forces a failure

Timings are the best of `--repeats` rounds after a warm-up (benchmarks/timing.py). The peak comes from the card's
exact name (PEAK_BF16_TFLOPS: H100 SXM 989, PCIe 756, NVL 835 dense bf16 TFLOP/s, ...) or `--peak-tflops`; a card
not in the table gets images/s and no MFU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_of, seconds  # noqa: E402

from zfrepro.data.preprocess import center_crop, ten_crop_select  # noqa: E402
from zfrepro.io import atomic_write_json  # noqa: E402
from zfrepro.model.architectures import spec_from_config  # noqa: E402
from zfrepro.model.network import ConvNet, init_weights_  # noqa: E402
from zfrepro.model.train import renormalize_filters_, sgd_step  # noqa: E402

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, by the exact name torch.cuda.get_device_name reports.
# A substring match would give an H100 PCIe (756) or NVL (835) the SXM's 989 and understate its MFU by a quarter.
PEAK_BF16_TFLOPS = {
    "NVIDIA H100 80GB HBM3": 989.0,  # H100 SXM5
    "NVIDIA H100 PCIe": 756.0,
    "NVIDIA H100 NVL": 835.0,
    "NVIDIA H200": 989.0,  # H200 SXM
    "NVIDIA H200 NVL": 835.0,
    "NVIDIA GH200 480GB": 989.0,
    "NVIDIA A100-SXM4-40GB": 312.0,
    "NVIDIA A100-SXM4-80GB": 312.0,
    "NVIDIA A100-PCIE-40GB": 312.0,
    "NVIDIA A100 80GB PCIe": 312.0,
    "NVIDIA L40S": 362.0,
}
FILTER_RADIUS = 0.1  # the paper's renormalisation radius (config/paper.yaml)


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


def peak_tflops(name: str | None, given: float | None) -> float | None:
    """The card's dense bf16 peak: `given`, else its exact name's entry, else None (no MFU reported)."""
    if given:
        return given
    return PEAK_BF16_TFLOPS.get(name or "")


# ---------------------------------------------------------------------------------------------- the results


class Results:
    """The JSON file of the check, rewritten atomically after every stage, so that what finished survives."""

    def __init__(self, path: Path, head: dict):
        self.path, self.data = Path(path), {**head, "stages": {}}
        self.write()

    def write(self) -> None:
        atomic_write_json(self.path, self.data)

    def stage(self, name: str, run: Callable[[], dict], fail: str | None = None) -> dict | None:
        """Run one stage; record its result, or its error (type, message, last traceback lines); never raise."""
        t0 = time.perf_counter()
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        try:
            if fail == name:
                raise RuntimeError(f"failure forced by --fail-stage {name}")
            result = {"status": "ok", **run()}
        except Exception as exc:  # recorded: the next stages still run
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc().splitlines()[-6:]}
        result["stage_seconds"] = time.perf_counter() - t0
        self.data["stages"][name] = result
        self.write()
        print(f"gpu_check: {name}: {result['status']}", file=sys.stderr, flush=True)
        return result if result["status"] == "ok" else None


# ---------------------------------------------------------------------------------------------- the stages


def train_loop(model: torch.nn.Module, net: torch.nn.Module, pinned: torch.Tensor, labels: torch.Tensor,
               crops: torch.Tensor, mean: torch.Tensor, crop: int, device: torch.device,
               steps: int) -> Callable[[], None]:
    """`steps` iterations of zfrepro.model.train's loop body (as it runs on CUDA), on one batch."""
    cuda = device.type == "cuda"
    convs = model.conv_layers()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    crops = crops.to(device)

    def run() -> None:
        loss_sum = torch.zeros((), device=device)
        wrong = torch.zeros((), device=device)
        for _ in range(steps):
            x = ten_crop_select(pinned.to(device, non_blocking=True), mean, crop, crops)
            x = x.contiguous(memory_format=torch.channels_last)
            y = labels.to(device, non_blocking=True)
            loss, logits = sgd_step(net, optimizer, x, y, autocast=cuda)
            renormalize_filters_(convs, FILTER_RADIUS)
            loss_sum += loss.detach() * len(y)
            wrong += (logits.detach().argmax(1) != y).sum()
        if not torch.isfinite(loss_sum):  # the trainer's once-per-interval read
            raise RuntimeError("the loss diverged")

    return run


def train_stage(args: argparse.Namespace, device: torch.device, data: dict, flops: float, peak: float | None,
                compiled: bool) -> dict:
    model = build(args.width, args.crop, args.classes, device)
    net = torch.compile(model) if compiled else model
    run = train_loop(model, net, data["pinned"], data["labels"], data["crops"], data["mean"], args.crop, device,
                     args.train_steps)
    s = best_of({"train": run}, device, args.repeats)["train"]
    ips = args.batch_size * args.train_steps / s
    out = {"seconds": s, "steps": args.train_steps, "images_per_second": ips}
    if peak:
        out["mfu"] = flops * ips / (peak * 1e12)
    return out


def evaluate_stage(args: argparse.Namespace, device: torch.device, data: dict) -> dict:
    """split_probabilities (ten crops, float32) over an in-memory split of --eval-images images."""
    from zfrepro.data.splits import PreparedSplit
    from zfrepro.model.evaluate import split_probabilities

    n = args.eval_images
    with tempfile.TemporaryDirectory(prefix="zf_gpu_check_eval_") as tmp:
        path = Path(tmp) / "val.pt"
        images = data["images"][torch.arange(n) % len(data["images"])]
        torch.save({"classes": [f"c{i}" for i in range(args.classes)], "labels": torch.arange(n) % args.classes,
                    "image_size": args.image_size, "images": images}, path)
        split = PreparedSplit(path)
    model = build(args.width, args.crop, args.classes, device).eval()
    indices = torch.arange(n)

    def run() -> None:
        split_probabilities(model, split, data["mean"], args.crop, indices, args.eval_batch_size, device)

    s = best_of({"evaluate": run}, device, args.repeats)["evaluate"]
    return {"seconds": s, "images": n, "batch_size": args.eval_batch_size, "crops_per_image": 10,
            "precision": "float32 (TF32 on CUDA)", "images_per_second": n / s}


def data_path_stage(args: argparse.Namespace, device: torch.device, data: dict) -> dict:
    def run() -> torch.Tensor:
        return ten_crop_select(data["pinned"].to(device, non_blocking=True), data["mean"], args.crop, data["crops"])

    s = best_of({"data_path": run}, device, args.repeats)["data_path"]
    return {"seconds": s, "images_per_second": args.batch_size / s,
            "center_crop_check": float(center_crop(data["images"][:1], data["mean"].cpu(), args.crop).abs().mean())}


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
        timed = best_of(runs, device, args.repeats)
        stored = data_path.stored_bytes(split)
    per_batch = max(timed["long"] - timed["short"], 1e-9) / (len(long) // batch - 1)
    return {"seconds": per_batch, "images_per_second": batch / per_batch,
            "decode_images_per_second": batch / timed["decode"], "workers": args.data_workers,
            "decoder": "nvJPEG (GPU)" if device.type == "cuda" else "libjpeg-turbo (CPU, DataLoader workers)",
            "bytes_per_image": stored, "batches_per_pass": len(long) // batch}


def check(args: argparse.Namespace) -> Results:
    from zfrepro.options import resolve_device

    # The settings `zfrepro evaluate` and the other analyses get (TF32, cuDNN autotuning); training sets the same
    # autotuning, and its bf16 autocast is unaffected by TF32.
    device = resolve_device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else None
    peak = peak_tflops(name, args.peak_tflops)
    results = Results(args.out, {
        "device": name or "cpu", "torch": torch.__version__, "batch_size": args.batch_size, "crop": args.crop,
        "image_size": args.image_size, "width": args.width, "classes": args.classes, "peak_bf16_tflops": peak,
        "peak_source": "--peak-tflops" if args.peak_tflops else "PEAK_BF16_TFLOPS" if peak else
        "unknown card: images/s only, no MFU"})
    batch, crop, size = args.batch_size, args.crop, args.image_size
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    data = {"images": images, "pinned": images.pin_memory() if cuda else images,
            "labels": torch.randint(0, args.classes, (batch,), generator=gen),
            "crops": torch.randint(0, 10, (batch,), generator=gen).to(device),
            "mean": torch.full((3, size, size), 117.0).to(device)}
    if cuda:
        data["labels"] = data["labels"].pin_memory()
    model = build(args.width, crop, args.classes, device)
    x = ten_crop_select(images[:2], data["mean"].cpu(), crop, data["crops"][:2].cpu())
    flops = flops_per_image(model.cpu().float(), x, data["labels"][:2])
    results.data["model_gflop_per_image"] = flops / 1e9
    fail = args.fail_stage
    results.stage("train", lambda: train_stage(args, device, data, flops, peak, compiled=False), fail)
    if not args.no_compile:
        results.stage("train_compiled", lambda: train_stage(args, device, data, flops, peak, compiled=True), fail)
    results.stage("evaluate", lambda: evaluate_stage(args, device, data), fail)
    results.stage("data_path", lambda: data_path_stage(args, device, data), fail)
    if not args.no_jpeg:
        results.stage("data_path_jpeg", lambda: jpeg_data_path(args, device, data["mean"]), fail)
    gpus = torch.cuda.device_count() if cuda else 2 if args.smoke else 1
    if gpus > 1 and not args.no_ddp:
        results.stage("ddp", lambda: ddp_check(args, gpus, device), fail)
    return results


# ---------------------------------------------------------------------------------------------- DDP


def ddp_worker(args: argparse.Namespace) -> None:
    """Under torchrun: ONE float32 DDP step on this rank's slice of a fixed global batch, after which rank 0 saves
    the weights; then the timing steps (which change the weights, so they come after)."""
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if args.smoke:
        dist.init_process_group("gloo")
        device = torch.device("cpu")
    else:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
        device = torch.device("cuda", torch.cuda.current_device())
    x, y = _global_batch(args, device)
    model = build(args.width, args.crop, args.classes, device, dropout=0.0)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    mine = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    sgd_step(ddp, opt, x[mine], y[mine], autocast=False)  # fp32: the comparison is about DDP, not bf16
    if rank == 0:
        torch.save({"weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}, args.ddp_out)
    cuda = device.type == "cuda"
    s = seconds(lambda: [sgd_step(ddp, opt, x[mine], y[mine], autocast=cuda) for _ in range(args.repeats)], device)
    if rank == 0:
        saved = torch.load(args.ddp_out, weights_only=True)
        torch.save({**saved, "images_per_second_per_gpu": (len(x) // world) * args.repeats / s}, args.ddp_out)
    dist.destroy_process_group()


def _global_batch(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch_size, 3, args.crop, args.crop, generator=gen) * 50
    return x.to(device), torch.randint(0, args.classes, (args.batch_size,), generator=gen).to(device)


def ddp_check(args: argparse.Namespace, processes: int, device: torch.device) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "ddp.pt"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               __file__, "--ddp-worker", "--ddp-out", str(saved), "--batch-size", str(args.batch_size),
               "--crop", str(args.crop), "--width", str(args.width), "--classes", str(args.classes),
               "--repeats", str(args.repeats), *(["--smoke"] if args.smoke else [])]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ddp_timeout)
        if done.returncode != 0:
            raise RuntimeError(f"torchrun exited {done.returncode}: {done.stderr.strip()[-800:]}")
        ddp = torch.load(saved, weights_only=True)
    device = torch.device("cuda", 0) if device.type == "cuda" else device
    x, y = _global_batch(args, device)
    model = build(args.width, args.crop, args.classes, device, dropout=0.0)
    sgd_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y, autocast=False)
    diff = max((ddp["weights"][k].float() - v.cpu().float()).abs().max().item() for k, v in model.state_dict().items())
    scale = max(v.abs().max().item() for v in model.state_dict().values())
    return {"processes": processes, "backend": "gloo (CPU)" if device.type == "cpu" else "nccl",
            "max_weight_difference_after_one_step": diff, "largest_weight": scale,
            "images_per_second_per_gpu": ddp["images_per_second_per_gpu"]}


def summary(data: dict) -> str:
    """One line: each stage's images/s (and MFU), or that it failed."""
    parts = []
    for name, r in data["stages"].items():
        if r["status"] != "ok":
            parts.append(f"{name} FAILED ({r['error'][:80]})")
        elif "max_weight_difference_after_one_step" in r:
            parts.append(f"{name} max |dw| {r['max_weight_difference_after_one_step']:.2e}, "
                         f"{r['images_per_second_per_gpu']:.0f} img/s/GPU")
        else:
            mfu = f" MFU {r['mfu']:.1%}" if "mfu" in r else ""
            parts.append(f"{name} {r['images_per_second']:.0f} img/s{mfu}")
    return f"gpu_check on {data['device']}: " + "; ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=30, help="loop iterations in one timed train block")
    p.add_argument("--eval-images", type=int, default=512, help="images of the timed evaluation pass")
    p.add_argument("--eval-batch-size", type=int, default=32, help="evaluation.batch_size (config/paper.yaml)")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if its name is not in the table")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    p.add_argument("--no-ddp", action="store_true")
    p.add_argument("--ddp-timeout", type=float, default=600, help="seconds the DDP stage may take")
    p.add_argument("--no-jpeg", action="store_true", help="skip the data path from JPEG shards")
    p.add_argument("--jpeg-batches", type=int, default=8, help="batches in a timed pass over the JPEG shards")
    p.add_argument("--data-workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="DataLoader workers reading the JPEG shards")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, DDP over two gloo processes: checks the "
                   "script runs and records every stage")
    p.add_argument("--fail-stage", help="make this stage raise (to check that the others still report)")
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ddp-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ddp_worker:
        ddp_worker(args)
        return
    if args.smoke:
        args.batch_size, args.width, args.classes, args.repeats, args.no_compile = 4, 0.125, 10, 1, True
        args.jpeg_batches, args.data_workers, args.train_steps = 3, min(args.data_workers, 2), 3
        args.eval_images, args.eval_batch_size = 8, 4
    results = check(args)
    print(json.dumps(results.data, indent=2))
    print(summary(results.data))


if __name__ == "__main__":
    main()

"""The data path at paper shape against the model step, in one process: can the CPU feed the trainer?

Training reads each batch from the prepared shards (zfrepro.data.shards, stream mode): the stored 256 x 256 image
is read and CRC-checked, decoded (JPEG q90 with libjpeg-turbo, or raw uint8), stacked into a batch, and one of the
ten 224 crops (flips included) is cut and the mean image subtracted (zfrepro.data.preprocess.ten_crop_select).
This benchmark measures, on this machine and in this process:

- **data path per core**: PreparedSplit.batches(workers=0) + ten_crop_select with one torch thread, for JPEG and
  raw shards, batch 128; and its parts per image (read + CRC-32, decode, collate, crop + mean);
- **data path in total**: the same with --workers DataLoader worker processes decoding (the crop in the main
  process with all cores as torch threads, as CPU training runs it), steady state: (images of a long pass - one
  batch) / (its seconds - a one-batch pass's), which leaves out the workers' start-up;
- **prepare per core**: what `zfrepro prepare` does once per image: decode a source JPEG of ImageNet's typical
  size (500 x 375), resize the shorter side to 256, centre-crop, encode JPEG q90;
- **feeding a GPU**: what PreparedSplit.batches does on CUDA before the GPU decodes: --workers DataLoader workers
  read and CRC-check each stored JPEG and collate a batch of bytes (zfrepro.data.splits.encoded_batch), which
  crosses to the main process; steady-state images/s and ms per batch of 128 (the decode itself, nvJPEG, needs a
  GPU: benchmarks/gpu_check.py). `--feed-only` measures just this;
- **model step**: zfrepro.model.train.sgd_step of ZF at full width (1000 classes, 224 crops) on the CPU with all
  cores (--model-batch images; images/s is what matters), fp32;

and the ratios data path / model step. Then a projection, not a measurement: the images/s one GPU consumes at an
assumed model FLOP utilisation (--mfu of the bf16 peak --peak-tflops, FLOPs per training image counted by torch's
FlopCounterMode as benchmarks/gpu_check.py does) against what --node-cores CPU cores decode at the measured
per-core feed rate (read + CRC + decode + collate: on a GPU the crop runs there), less --trainer-cores per GPU,
for 1 and 8 GPUs. GPU decoding (nvJPEG) is measured by
benchmarks/gpu_check.py (its data_path_jpeg entry) on a CUDA machine, not here.

The shards are built in a temporary folder from --images generated photographs (zfrepro.data.synthetic's scenes
over real photographs, ~500 x 375, saved as JPEG q90 like ImageNet's files), reused by every measurement.
Timings are the best of --repeats rounds after a warm-up, all measurements taking turns (benchmarks/timing.py).

    .venv/bin/python benchmarks/data_path.py --out data_path.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_check  # noqa: E402
from data_sources import CROP, IMAGE_SIZE, SOURCE_SIZE, build_split, loader_pass, make_sources, orders, stored_bytes  # noqa: E402
from timing import best_of  # noqa: E402

from zfrepro.data.preprocess import load_rgb, resize_center_crop_array, ten_crop_select  # noqa: E402
from zfrepro.data.shards import encode  # noqa: E402
from zfrepro.data.splits import PreparedSplit  # noqa: E402
from zfrepro.model.train import sgd_step  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH, CLASSES = 128, 1000  # the paper's shape (config/paper.yaml), with data_sources' IMAGE_SIZE, CROP
RAW_BYTES = 3 * IMAGE_SIZE * IMAGE_SIZE  # 196,608 bytes per stored image in raw shards
H100_BF16_TFLOPS = 989.0  # dense bf16 peak of an H100 SXM (also H200)


# ---------------------------------------------------------------------------------------------- provenance


def provenance(repeats: int) -> dict:
    """Where and when a measurement ran: machine, CPU, load, commit (and whether the tree differs), repeats."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True, text=True,
                                  check=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), no GPU" if not torch.cuda.is_available()
        else f"{platform.machine()}, {os.cpu_count()} cores, {torch.cuda.get_device_name(0)}",
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "repeats": repeats,
        "torch": torch.__version__,
    }


def prepare_one(path: str, size: int = IMAGE_SIZE, quality: int = 90) -> bytes:
    """What prepare does once per image in stream mode (shards.write_shard): decode, resize, crop, encode."""
    return encode(resize_center_crop_array(load_rgb(path), size), "jpeg", quality)


def photo_bytes(size: int = IMAGE_SIZE, quality: int = 90) -> float:
    """Mean bytes of real photographs (scikit-image's astronaut, coffee, chelsea, rocket; scikit-learn's china and
    flower) stored as prepare stores them: a cross-check of the generated images' size."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = [getattr(skimage.data, n)() for n in ("astronaut", "coffee", "chelsea", "rocket")]
    photos += list(load_sample_images().images)
    return float(np.mean([len(encode(resize_center_crop_array(Image.fromarray(a).convert("RGB"), size), "jpeg",
                                      quality)) for a in photos]))


def gpu_feed_pass(split: PreparedSplit, order: torch.Tensor, batch: int, workers: int) -> int:
    """PreparedSplit.batches' CUDA path up to the GPU decode: workers read the stored bytes of each batch and collate
    them (splits.encoded_batch); the batch crosses to this process, which splits it into the per-image tensors
    decode_batch takes. Returns the images delivered."""
    from torch.utils.data import DataLoader

    from zfrepro.data import splits

    chunks = [order[s : s + batch].tolist() for s in range(0, len(order), batch)]
    loader = DataLoader(splits.ShardImages(split.reader, split.labels, decode=False), batch_sampler=chunks,
                        num_workers=workers, collate_fn=splits.encoded_batch, generator=torch.Generator())
    joined = getattr(splits, "joined_images", None)  # (absent before the bytes were joined in the workers)
    seen = 0
    for item in loader:
        images = joined(item[0], item[1]) if joined is not None and len(item) == 3 else item[0]
        seen += len(images)
    return seen


def measure_feed(args: argparse.Namespace) -> dict:
    """Only the "feeding a GPU" measurement (--feed-only): JPEG shards of --images generated photographs."""
    cores = os.cpu_count() or 1
    workers = args.workers or cores
    with tempfile.TemporaryDirectory(prefix="zf_data_path_") as tmp:
        print(f"generating {args.images} source images and building the JPEG shards in {tmp} ...", file=sys.stderr)
        sources = make_sources(Path(tmp) / "src", args.images)
        split, _ = build_split(sources, Path(tmp) / "jpeg" / "train.pt", "jpeg", threads=min(cores, 4))
        long, short = orders(args.images, BATCH, args.batches)
        runs = {f"gpu_feed_{length}": (lambda o=order: gpu_feed_pass(split, o, BATCH, workers))
                for length, order in (("long", long), ("short", short))}
        seconds = best_of(runs, torch.device("cpu"), args.repeats)
    rate = steady_rate(seconds, "gpu_feed", len(long), len(short))
    return {"provenance": provenance(args.repeats), "images": args.images, "workers": workers,
            "feeding_a_gpu": {"images_per_second": rate, "ms_per_batch": 1e3 * BATCH / rate}, "seconds": seconds}


def with_threads(threads: int, run: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        torch.set_num_threads(threads)
        return run()
    return call


def steady_rate(seconds: dict[str, float], name: str, long: int, short: int) -> float:
    """Images per second of a loader from its long and one-batch passes."""
    return (long - short) / max(seconds[f"{name}_long"] - seconds[f"{name}_short"], 1e-9)


def measure(args: argparse.Namespace) -> dict:
    cores = os.cpu_count() or 1
    workers = args.workers or cores
    out: dict = {"provenance": provenance(args.repeats),
                 "shape": {"image_size": IMAGE_SIZE, "crop": CROP, "batch": BATCH, "classes": CLASSES,
                           "source_size": list(SOURCE_SIZE)},
                 "images": args.images, "workers": workers}
    with tempfile.TemporaryDirectory(prefix="zf_data_path_") as tmp:
        tmp_path = Path(tmp)
        print(f"generating {args.images} source images and building the shards in {tmp} ...", file=sys.stderr)
        sources = make_sources(tmp_path / "src", args.images)
        splits = {fmt: build_split(sources, tmp_path / fmt / "train.pt", fmt, threads=min(cores, 4))
                  for fmt in ("jpeg", "raw")}
        mean = splits["jpeg"][1]
        out["bytes_per_image"] = {"source_jpeg": float(np.mean([os.path.getsize(p) for p in sources])),
                                  "jpeg_q90": stored_bytes(splits["jpeg"][0]), "raw": stored_bytes(splits["raw"][0]),
                                  "jpeg_q90_real_photos": photo_bytes()}
        long, short = orders(args.images, BATCH, args.batches)

        # the parts, per image, one core: one batch of rows
        reader = splits["jpeg"][0].reader
        rows = long[:BATCH].tolist()
        encoded = [reader.encoded(r) for r in rows]
        from torchvision.io import decode_jpeg

        decoded = [decode_jpeg(e) for e in encoded]
        stacked = torch.stack(decoded)
        which = torch.randint(0, 10, (BATCH,), generator=torch.Generator().manual_seed(1))
        runs: dict[str, Callable[[], object]] = {
            "part_read_crc": lambda: [reader.read(r) for r in rows],
            "part_decode_jpeg": lambda: [decode_jpeg(e) for e in encoded],
            "part_collate": lambda: torch.stack(decoded),
            "part_crop_mean": lambda: ten_crop_select(stacked, mean, CROP, which),
        }
        runs = {name: with_threads(1, run) for name, run in runs.items()}
        for fmt, (split, _) in splits.items():
            # per core: one process, one thread; total: the workers decode, the main process crops with all cores
            for kind, w, threads in (("core", 0, 1), ("total", workers, cores)):
                for length, order in (("long", long), ("short", short)):
                    runs[f"{fmt}_{kind}_{length}"] = with_threads(
                        threads, lambda s=split, o=order, w=w: loader_pass(s, o, BATCH, w, mean))
        for length, order in (("long", long), ("short", short)):
            runs[f"gpu_feed_{length}"] = lambda o=order: gpu_feed_pass(splits["jpeg"][0], o, BATCH, workers)
        prep = sources[: args.prepare_images]
        runs["prepare"] = with_threads(1, lambda: [prepare_one(p) for p in prep])

        # the model step: ZF at full width, 224, all cores
        cpu = torch.device("cpu")
        model = gpu_check.build(1.0, CROP, CLASSES, cpu)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        mb = args.model_batch
        x = ten_crop_select(stacked[:mb], mean, CROP, which[:mb])
        y = torch.randint(0, CLASSES, (mb,), generator=torch.Generator().manual_seed(2))
        torch.set_num_threads(cores)
        flops = gpu_check.flops_per_image(model, x[:2], y[:2])
        runs["model_step"] = with_threads(cores, lambda: sgd_step(model, opt, x, y, autocast=False))

        print(f"timing: best of {args.repeats} rounds after a warm-up ...", file=sys.stderr)
        seconds = best_of(runs, cpu, args.repeats)
        torch.set_num_threads(cores)

    per_image = {name.removeprefix("part_"): seconds[name] / BATCH for name in runs if name.startswith("part_")}
    out["per_image_seconds_one_core"] = per_image
    n_long, n_short = len(long), len(short)
    rates = {f"{fmt}_{kind}": steady_rate(seconds, f"{fmt}_{kind}", n_long, n_short)
             for fmt in ("jpeg", "raw") for kind in ("core", "total")}
    model_ips = mb / seconds["model_step"]
    feed = steady_rate(seconds, "gpu_feed", n_long, n_short)
    out["feeding_a_gpu"] = {"images_per_second": feed, "ms_per_batch": 1e3 * BATCH / feed}
    out["images_per_second"] = {
        "data_path_jpeg_per_core": rates["jpeg_core"], "data_path_jpeg_total": rates["jpeg_total"],
        "data_path_raw_per_core": rates["raw_core"], "data_path_raw_total": rates["raw_total"],
        # what a core does when the crop runs on the GPU: read + CRC + decode + collate
        "feed_jpeg_per_core": 1.0 / (per_image["read_crc"] + per_image["decode_jpeg"] + per_image["collate"]),
        "prepare_per_core": len(prep) / seconds["prepare"],
        "model_step_cpu_all_cores": model_ips,
    }
    out["model_step"] = {"batch": mb, "threads": cores, "seconds": seconds["model_step"], "dtype": "float32",
                         "gflop_per_image": flops / 1e9}
    out["ratios_to_model_step"] = {k: v / model_ips for k, v in out["images_per_second"].items()
                                   if k.startswith("data_path")}
    out["projection"] = projection(out["images_per_second"]["feed_jpeg_per_core"], flops, args)
    out["seconds"] = seconds
    return out


def projection(per_core: float, flops: float, args: argparse.Namespace) -> dict:
    """NOT measured: images/s one GPU consumes at the assumed MFU, against what the node's cores decode."""
    demand = args.peak_tflops * 1e12 * args.mfu / flops
    rows = []
    for gpus in (1, 8):
        decode_cores = max(args.node_cores - gpus * args.trainer_cores, 0)
        supply = per_core * decode_cores
        rows.append({"gpus": gpus, "decode_cores": decode_cores, "images_per_second_needed": demand * gpus,
                     "images_per_second_decoded": supply, "supply_over_demand": supply / (demand * gpus)})
    return {"assumed": {"peak_tflops": args.peak_tflops, "mfu": args.mfu, "node_cores": args.node_cores,
                        "trainer_cores_per_gpu": args.trainer_cores},
            "per_gpu_images_per_second_at_mfu": demand, "cpu_decode": rows}


def report(r: dict) -> str:
    p, ips, b = r["provenance"], r["images_per_second"], r["bytes_per_image"]
    dirty = " (+ uncommitted changes)" if p["uncommitted_changes"] else ""
    lines = [f"machine: {p['machine']}; commit {p['commit']}{dirty}; {p['date']}; best of {p['repeats']}; "
             f"load average at start {p['load_average_at_start']}",
             f"paper shape: {IMAGE_SIZE} px stored, {CROP} crops, batch {BATCH}; {r['images']} images, "
             f"{r['workers']} workers for the totals",
             f"bytes per image: source JPEG {b['source_jpeg']:,.0f}, shard JPEG q90 {b['jpeg_q90']:,.0f}, "
             f"raw {b['raw']:,.0f}; real photographs as JPEG q90 shards {b['jpeg_q90_real_photos']:,.0f}",
             "per image, one core (ms): " + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in
                                                      r["per_image_seconds_one_core"].items()),
             "images/s:"]
    lines += [f"  {k:32s} {v:10.1f}" for k, v in ips.items()]
    lines.append(feed_line(r))
    lines.append(f"ratios data path / model step (ZF fp32 step, {r['model_step']['batch']} images, "
                 f"{r['model_step']['threads']} threads, {r['model_step']['gflop_per_image']:.2f} GFLOP/image):")
    lines += [f"  {k:32s} {v:10.1f}" for k, v in r["ratios_to_model_step"].items()]
    pr = r["projection"]
    a = pr["assumed"]
    lines.append(f"projection (NOT measured): one GPU at {a['mfu']:.0%} of {a['peak_tflops']:.0f} TFLOP/s consumes "
                 f"{pr['per_gpu_images_per_second_at_mfu']:,.0f} images/s; a {a['node_cores']}-core node decodes at "
                 f"the measured feed rate per core with {a['trainer_cores_per_gpu']} core(s) per GPU left to the "
                 "trainer:")
    lines += [f"  {row['gpus']} GPU(s): need {row['images_per_second_needed']:,.0f}/s, {row['decode_cores']} cores "
              f"decode {row['images_per_second_decoded']:,.0f}/s: supply/demand {row['supply_over_demand']:.2f}"
              for row in pr["cpu_decode"]]
    return "\n".join(lines)


def feed_line(r: dict) -> str:
    f = r["feeding_a_gpu"]
    return (f"feeding a GPU (workers read + join the stored JPEG bytes, {r['workers']} workers): "
            f"{f['images_per_second']:,.0f} images/s, {f['ms_per_batch']:.1f} ms per batch of {BATCH}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256, help="generated source images (the shards hold them)")
    p.add_argument("--batches", type=int, default=8, help="batches of 128 in a long pass")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for the totals (0: all cores)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prepare-images", type=int, default=32, help="source images prepare is timed on")
    p.add_argument("--model-batch", type=int, default=16, help="batch of the CPU model step")
    p.add_argument("--mfu", type=float, default=0.3, help="assumed GPU model FLOP utilisation (projection)")
    p.add_argument("--peak-tflops", type=float, default=H100_BF16_TFLOPS, help="GPU bf16 peak (projection)")
    p.add_argument("--node-cores", type=int, default=16, help="CPU cores of the GPU node (projection)")
    p.add_argument("--trainer-cores", type=int, default=1, help="cores each GPU's trainer process keeps")
    p.add_argument("--out", help="write every number to this JSON file")
    p.add_argument("--feed-only", action="store_true", help="only the 'feeding a GPU' measurement")
    args = p.parse_args()
    if args.feed_only:
        result = measure_feed(args)
        p_ = result["provenance"]
        print(f"machine: {p_['machine']}; commit {p_['commit']}; {p_['date']}; best of {p_['repeats']}; load average "
              f"at start {p_['load_average_at_start']}; {args.images} images")
        print(feed_line(result))
    else:
        result = measure(args)
        print(report(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

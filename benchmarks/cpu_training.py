"""CPU training speed of the default study's networks under each option issue 12 asks about, as ratios.

Every variant runs our training step (`sgd_step` + filter renormalisation) on the same random batches of
the default shape (3 x crop x crop, width-0.25 networks) in this process, and the ratio is images per second
against the baseline: NCHW, float32, one thread, the configured batch size. Variants:

- channels_last: model and input in channels-last memory format (oneDNN's preferred layout on CPU);
- batch x2: twice the batch size (per-image cost; the learning rate would have to follow);
- threads 2: one job with two intra-op threads, against the baseline's one (Snakemake runs two one-thread
  jobs side by side on two cores, so this must beat 2.0 to be worth it; `two_jobs` measures that directly);
- two_jobs: two baseline processes at once, summed throughput (what `--cores 2` gets from two jobs);
- compile: `torch.compile` (inductor, C++ codegen); its one-off compile time is printed separately;
- bf16: CPU bf16 autocast.

    .venv/bin/python benchmarks/cpu_training.py [--arch zf] [--repeats 3] [--steps 6]

Machines are shared and noisy: the ratios come from the best of `--repeats` rounds taken in turns.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

import torch
import yaml

from zfrepro.model.architectures import spec_from_config
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.train import renormalize_filters_, sgd_step, with_dropout

ROOT = Path(__file__).resolve().parents[1]


def make_step(arch_cfg: dict, name: str, classes: int, crop: int, batch: int, channels_last: bool = False,
              compile_model: bool = False, bf16: bool = False):
    spec = with_dropout(spec_from_config(name, arch_cfg, num_classes=classes, input_size=crop), 0.5)
    torch.manual_seed(0)
    model = ConvNet(spec)
    init_weights_(model, scheme="gaussian", std=0.02)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_model else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    convs = model.conv_layers()
    x = torch.randn(batch, 3, crop, crop)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(classes, (batch,))

    def step():
        sgd_step(net, opt, x, y, autocast=False) if not bf16 else _bf16_step(net, opt, x, y)
        renormalize_filters_(convs, 0.04)

    return step


def _bf16_step(net, opt, x, y):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(x)
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def images_per_second(step, batch: int, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def _worker(args):
    arch_cfg, name, classes, crop, batch, steps, start = args
    torch.set_num_threads(1)
    step = make_step(arch_cfg, name, classes, crop, batch)
    step()
    start.wait()
    return images_per_second(step, batch, steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    p.add_argument("--arch", default="zf")
    p.add_argument("--steps", type=int, default=6, help="training steps per measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu_training.json"))
    args = p.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    arch_cfg = config["architectures"][args.arch]
    classes = config["synthetic"]["imagenet"]["classes"]
    crop, batch = config["data"]["crop_size"], config["training"]["batch_size"]

    variants = {
        "baseline": (1, dict(batch=batch)),
        "channels_last": (1, dict(batch=batch, channels_last=True)),
        "batch x2": (1, dict(batch=2 * batch)),
        "threads 2": (2, dict(batch=batch)),
        "bf16": (1, dict(batch=batch, bf16=True)),
    }
    if not args.skip_compile:
        variants["compile"] = (1, dict(batch=batch, compile_model=True))
    steps = {}
    compile_seconds = None
    for name, (_, kw) in variants.items():
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        steps[name] = make_step(arch_cfg, args.arch, classes, crop, **kw)
        steps[name]()  # warm-up (and compilation)
        if name == "compile":
            compile_seconds = time.perf_counter() - t0
    best = {name: 0.0 for name in variants}
    for _ in range(args.repeats):
        for name, (threads, kw) in variants.items():
            torch.set_num_threads(threads)
            best[name] = max(best[name], images_per_second(steps[name], kw["batch"], args.steps))
    torch.set_num_threads(1)

    ctx = mp.get_context("spawn")
    two = 0.0
    for _ in range(args.repeats):
        with ctx.Manager() as manager:
            start = manager.Barrier(2)
            with ctx.Pool(2) as pool:
                rates = pool.map(_worker, [(arch_cfg, args.arch, classes, crop, batch, args.steps, start)] * 2)
        two = max(two, sum(rates))
    best["two_jobs"] = two

    base = best["baseline"]
    print(f"{args.arch}: batch {batch}, crop {crop}, {classes} classes; best of {args.repeats} x {args.steps} steps")
    print(f"{'variant':<14} {'img/s':>8} {'ratio':>6}")
    for name, rate in best.items():
        print(f"{name:<14} {rate:8.1f} {rate / base:6.2f}")
    if compile_seconds is not None:
        print(f"compile: {compile_seconds:.1f} s before the first step")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"arch": args.arch, "batch": batch, "crop": crop, "images_per_second": best,
                               "compile_seconds": compile_seconds,
                               "ratio": {k: v / base for k, v in best.items()}}, indent=1))


if __name__ == "__main__":
    main()

"""Peak memory of the per-image stages at two dataset sizes, one twice the other: it should stay flat.

Generates an ImageNet-layout set (`zfrepro generate`, --classes classes at --image-size px) once per size in
--sizes (training and validation images per class), and one Caltech-101 set, then runs each stage as its own
`zfrepro` command under `/usr/bin/time -v`:

    prepare   zfrepro prepare, data.cache stream (images into shards, the float64 running mean image)
    mine      zfrepro mine: Fig 2's top-9 of every conv map over the validation split
    overlap   zfrepro overlap: every Caltech image against every ImageNet training image
    features  zfrepro features: Table 7's layers (conv1-5, fc7) of the validation split
    evaluate  zfrepro evaluate (only with --stages ...,evaluate: ten crops of every validation image, slow on a CPU)

The model is a randomly initialised full-width ZF at 224 (the memory does not depend on the weights). For
each stage it reports the maximum resident set size of the largest process (`/usr/bin/time -v`, i.e. the
main process or one worker, whichever is larger), the peak proportional set size of the whole process tree
(main + worker processes, sampled every --interval seconds with psutil; shared pages counted once), and the
size of the stage's outputs on disk (what the stage must hold in memory at the end when its output is O(N),
e.g. features [N, D]; the shards prepare writes are not counted). Ratios are size 2 / size 1.

    .venv/bin/python benchmarks/peak_memory.py                          # 1000 classes x 1 and 2 images
    .venv/bin/python benchmarks/peak_memory.py --classes 250 --sizes 4,8 --keep --workdir /tmp/pm

The table goes to stdout and, with the raw numbers, to benchmarks/results/peak_memory.{md,json} (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
STAGES = ("prepare", "mine", "overlap", "features", "evaluate")
DEFAULT_STAGES = ("prepare", "mine", "overlap", "features")
TABLE7_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc7"]
MB = 2**20


def zfrepro_command() -> list[str]:
    exe = Path(sys.executable).with_name("zfrepro")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "zfrepro.cli"]


def data_params(args: argparse.Namespace) -> dict:
    """The config's data section for `prepare`: stream mode, paper sizes."""
    return {"image_size": args.image_size, "crop_size": args.crop, "cache": "stream", "cache_max_gb": 8,
            "max_bad_fraction": 0.001, "mean_max_images": None, "shard_format": "jpeg", "jpeg_quality": 90,
            "shard_images": args.shard_images}


# ---------------------------------------------------------------------------------------------- measuring


def _tree_pss(root: psutil.Process) -> int:
    """PSS (bytes) of `root`'s descendants (not `root`: it is /usr/bin/time); RSS where PSS is unreadable."""
    total = 0
    try:
        procs = root.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            info = p.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return total


def _parse_time(text: str) -> dict:
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    seconds = None
    if wall:
        seconds = 0.0
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
    return {"max_rss_mb": int(rss.group(1)) / 1024 if rss else None, "wall_s": seconds}


# Used when /usr/bin/time is missing: a fresh wrapper process per command, so RUSAGE_CHILDREN covers only it.
_WRAPPER = """
import resource, subprocess, sys, time
t = time.time()
rc = subprocess.call(sys.argv[2:])
kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1], "w").write(f"Maximum resident set size (kbytes): {kb}\\n"
                             f"Elapsed (wall clock) time (h:mm:ss or m:ss): {time.time() - t:.2f}\\n")
sys.exit(rc)
"""


def measure(cmd: list[str], log: Path, interval: float) -> dict:
    """Run `cmd`; its peak memory and wall time. Raises CalledProcessError (log kept) when it fails."""
    report = log.with_suffix(".time")
    timer = shutil.which("time", path="/usr/bin:/bin")
    full = [timer, "-v", "-o", str(report), *cmd] if timer else [sys.executable, "-c", _WRAPPER, str(report), *cmd]
    peak = [0]
    with open(log, "w") as out:
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        done = threading.Event()

        def sample() -> None:
            root = psutil.Process(proc.pid)
            while not done.is_set():
                peak[0] = max(peak[0], _tree_pss(root))
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        done.set()
        sampler.join()
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)
    return {**_parse_time(report.read_text()), "tree_pss_mb": peak[0] / MB,
            "measured_with": "/usr/bin/time -v" if timer else "RUSAGE_CHILDREN of a wrapper"}


def disk_mb(*paths: Path) -> float:
    """Bytes on disk of files and folders (checksum sidecars included), in MiB."""
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
        total += sum(p.stat().st_size for p in files)
    return total / MB


# ---------------------------------------------------------------------------------------------- the stages


def generate(args: argparse.Namespace, dataset: str, params: dict, out: Path, logs: Path, imagenet: Path | None = None
             ) -> float:
    """Generate a dataset unless a complete one is there (synthetic.json with the same params); wall seconds."""
    manifest = out / "synthetic.json"
    stamp = out.with_name(out.name + ".params.json")
    wanted = json.dumps({"params": params, "seed": args.seed})
    if manifest.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        print(f"  reusing {out}")
        return 0.0
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*zfrepro_command(), "generate", "--dataset", dataset, "--out", str(out), "--params", json.dumps(params),
           "--seed", str(args.seed), "--imagenet-root", json.dumps(str(imagenet) if imagenet else None),
           "--threads", str(args.threads)]
    start = time.time()
    with open(logs / f"generate_{out.name}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=REPO)
    stamp.write_text(wanted)
    return time.time() - start


def write_checkpoint(path: Path, classes: list[str], crop: int, seed: int) -> None:
    """A randomly initialised full-width ZF in train.snapshot's format (as tests/conftest.py's random_zf_files)."""
    import torch

    from zfrepro.io import atomic_torch_save
    from zfrepro.model.architectures import spec_from_config
    from zfrepro.model.network import ConvNet, init_weights_
    from zfrepro.model.spec import spec_to_dict

    spec = spec_from_config("zf", {"base": "zf", "width": 1.0}, num_classes=len(classes), input_size=crop)
    model = init_weights_(ConvNet(spec), "gaussian", std=0.01, generator=torch.Generator().manual_seed(seed))
    atomic_torch_save(path, {"arch": "zf", "spec": spec_to_dict(spec), "model": model.state_dict(), "epoch": 1,
                             "classes": list(classes), "crop_size": crop, "seed": seed, "training": {}})


def stage_commands(args: argparse.Namespace, root: Path, prepared: Path, caltech: Path, model: Path, out: Path
                   ) -> dict[str, tuple[list[str], list[Path]]]:
    """stage -> (command, its outputs)."""
    z, t = zfrepro_command(), ["--threads", str(args.threads)]
    return {
        "prepare": ([*z, "prepare", "--root", str(root), "--out-dir", str(prepared),
                     "--params", json.dumps(data_params(args)), *t],
                    [prepared / f for f in ("train.pt", "val.pt", "mean.pt", "manifest.json")]),
        "mine": ([*z, "mine", "--model", str(model), "--data-dir", str(prepared), "--split", "val", "--k", "9",
                  "--batch-size", str(args.batch_size), "--out", str(out / "top9.pt"), *t], [out / "top9.pt"]),
        "overlap": ([*z, "overlap", "--dataset", "caltech101", "--root", str(caltech), "--imagenet-root", str(root),
                     "--size", "32", "--batch", str(args.overlap_batch), "--out", str(out / "overlap.csv"), *t],
                    [out / "overlap.csv", out / "overlap.json"]),
        "features": ([*z, "features", "--model", str(model), "--split-file", str(prepared / "val.pt"),
                      "--mean", str(prepared / "mean.pt"), "--layers", json.dumps(TABLE7_LAYERS),
                      "--max-feature-dim", "9216", "--batch-size", str(args.batch_size), "--device", "cpu",
                      "--out-dir", str(out / "features"), *t], [out / "features"]),
        "evaluate": ([*z, "evaluate", "--data-dir", str(prepared), "--model", str(model),
                      "--params", json.dumps({"train_subset": 100, "batch_size": args.batch_size}),
                      "--out", str(out / "metrics.json"), "--out-predictions", str(out / "predictions.pt"),
                      "--device", "cpu", *t], [out / "metrics.json", out / "predictions.pt"]),
    }


# ---------------------------------------------------------------------------------------------- report


def table(results: dict, sizes: list[int], counts: dict) -> str:
    a, b = (str(s) for s in sizes[:2])
    head = (f"| stage | max RSS, size {a} (MiB) | size {b} | ratio | tree PSS, size {a} (MiB) | size {b} | ratio "
            f"| output on disk {a} -> {b} (MiB) | wall {a} / {b} (s) |")
    lines = [head, "|" + "---|" * 9]
    for stage, by_size in results.items():
        r1, r2 = by_size.get(a), by_size.get(b)
        if not r1 or not r2:
            err = (r1 or r2 or {}).get("error", "not run")
            lines.append(f"| {stage} | {err} |" + " |" * 7)
            continue
        if "error" in r1 or "error" in r2:
            lines.append(f"| {stage} | failed: {r1.get('error') or r2.get('error')} |" + " |" * 7)
            continue

        def ratio(key: str, r1: dict = r1, r2: dict = r2) -> str:
            return f"{r2[key] / r1[key]:.3f}" if r1[key] else "-"

        lines.append(f"| {stage} | {r1['max_rss_mb']:.0f} | {r2['max_rss_mb']:.0f} | {ratio('max_rss_mb')} "
                     f"| {r1['tree_pss_mb']:.0f} | {r2['tree_pss_mb']:.0f} | {ratio('tree_pss_mb')} "
                     f"| {r1['output_mb']:.1f} -> {r2['output_mb']:.1f} | {r1['wall_s']:.0f} / {r2['wall_s']:.0f} |")
    sizes_line = "; ".join(f"size {s}: {c['train']} training, {c['val']} validation images" for s, c in counts.items())
    return "\n".join(lines) + f"\n\n{sizes_line}."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--sizes", default="1,2", help="training = validation images per class of each set, e.g. 1,2")
    p.add_argument("--image-size", type=int, default=256, help="generated shorter side and data.image_size")
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--caltech-classes", type=int, default=20)
    p.add_argument("--stages", default=",".join(DEFAULT_STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    p.add_argument("--threads", type=int, default=2, help="--threads of every command")
    p.add_argument("--batch-size", type=int, default=64, help="mine / features / evaluate batch size")
    p.add_argument("--overlap-batch", type=int, default=256,
                   help="ImageNet thumbnails per product: below the smaller set's size, so both sizes stream chunks")
    p.add_argument("--shard-images", type=int, default=256, help="data.shard_images")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between samples of the process tree")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="data and outputs go here (kept; generated sets are reused); default a temp dir")
    p.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "peak_memory"),
                   help="writes OUT.md and OUT.json")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    stages = [s for s in args.stages.split(",") if s]
    if len(sizes) != 2 or min(sizes) < 1:
        p.error("--sizes: two positive integers, e.g. 1,2")
    if unknown := set(stages) - set(STAGES):
        p.error(f"--stages: unknown {sorted(unknown)}; use {', '.join(STAGES)}")
    if "prepare" not in stages:
        p.error("--stages: prepare is needed (the other stages read its output)")
    from zfrepro.data.synthetic.params import MAX_CLASSES

    if args.classes > MAX_CLASSES:
        p.error(f"--classes {args.classes}: the generator makes at most {MAX_CLASSES} classes; keep the image "
                f"counts with fewer classes and more images per class, e.g. --classes 250 --sizes 4,8")

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="peak_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    print(f"working directory {work}; logs in {logs}")
    results: dict[str, dict[str, dict]] = {stage: {} for stage in stages}
    counts: dict[int, dict] = {}
    setup: dict[str, float] = {}
    try:
        caltech = work / "caltech101"
        setup["generate caltech101"] = generate(args, "caltech101", {
            "image_size": args.image_size, "classes": args.caltech_classes, "min_per_class": 40,
            "max_per_class": 60, "background_images": 50}, caltech, logs)
        model = work / "zf_random.pt"
        for size in sizes:
            print(f"size {size}: {args.classes} classes x {size} training and {size} validation images")
            root = work / f"imagenet_{size}"
            setup[f"generate imagenet {size}"] = generate(args, "imagenet", {
                "image_size": args.image_size, "classes": args.classes, "face_classes": min(4, args.classes),
                "train_per_class": size, "val_per_class": size, "quirky_images": min(4, args.classes * size)},
                root, logs)
            prepared, out = work / f"prepared_{size}", work / f"out_{size}"
            shutil.rmtree(prepared, ignore_errors=True)  # prepare keeps finished shards: measure a fresh one
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            commands = stage_commands(args, root, prepared, caltech, model, out)
            for stage in stages:
                if stage != "prepare" and "error" in results["prepare"].get(str(size), {}):
                    results[stage][str(size)] = {"error": "prepare failed"}
                    continue
                cmd, outputs = commands[stage]
                log = logs / f"{stage}_{size}.log"
                print(f"  {stage}: {' '.join(cmd)}", flush=True)
                try:
                    r = measure(cmd, log, args.interval)
                except subprocess.CalledProcessError as exc:
                    tail = log.read_text().strip().splitlines()[-1:] or [""]
                    print(f"    FAILED (exit {exc.returncode}): {tail[0]}  (log {log})", flush=True)
                    results[stage][str(size)] = {"error": f"exit {exc.returncode}: {tail[0][:200]}"}
                    continue
                r["output_mb"] = disk_mb(*outputs)
                r["command"] = cmd
                results[stage][str(size)] = r
                print(f"    max RSS {r['max_rss_mb']:.0f} MiB, tree PSS {r['tree_pss_mb']:.0f} MiB, "
                      f"output {r['output_mb']:.1f} MiB, {r['wall_s']:.0f} s", flush=True)
                if stage == "prepare":
                    manifest = json.loads((prepared / "manifest.json").read_text())
                    counts[size] = manifest["counts"]
                    if size == sizes[0]:  # one model for both sizes (the classes are the same)
                        from zfrepro.data.splits import PreparedSplit

                        write_checkpoint(model, PreparedSplit(prepared / "train.pt").classes, args.crop, args.seed)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, cwd=REPO).stdout.strip())
    text = table(results, sizes, counts)
    machine = f"{platform.node()}: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    header = (f"# Peak memory at two dataset sizes\n\n`{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}` at "
              f"commit {commit}{' (with uncommitted changes)' if dirty else ''}; {machine}; "
              f"{args.classes} classes, {args.image_size} px, crop {args.crop}, --threads {args.threads}, "
              f"batch {args.batch_size}, overlap batch {args.overlap_batch}.\n\n"
              "max RSS: the largest single process (/usr/bin/time -v); tree PSS: main + workers, sampled; "
              "output on disk: what the stage writes (the O(N) part a stage holds is its output, e.g. features "
              "[N, D]; prepare's shards excluded).\n\n")
    print("\n" + header + text)
    out_base = Path(args.out)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    out_base.with_suffix(".md").write_text(header + text + "\n")
    out_base.with_suffix(".json").write_text(json.dumps(
        {"commit": commit, "dirty": dirty, "machine": machine, "argv": sys.argv[1:], "counts": counts,
         "setup_seconds": setup, "results": results}, indent=2) + "\n")
    print(f"\nwritten {out_base.with_suffix('.md')} and {out_base.with_suffix('.json')}")


if __name__ == "__main__":
    main()

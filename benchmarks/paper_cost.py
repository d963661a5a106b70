"""The projected cost of the paper's protocol (config/paper.yaml), stage by stage: what runs, how many images,
how many FLOPs, what it costs per image on this machine (measured), and hours on one H100 and on an 8-GPU node
(projected).

Every stage's work is counted from the configuration the way the workflow plans it (workflow/rules/helpers/*.smk;
tests/test_benchmarks_paper_cost.py checks the counts against `snakemake -n`): 17 ImageNet trainings (the 13
architectures of config/paper.yaml and 4 more seeds of ZF for Table 2's ensemble) of 70 epochs, each validating
after every epoch; 65 from-scratch trainings (5 splits x the 2 Caltech-101 sizes and the 11 Caltech-256/Fig 9
sizes); ten-crop evaluation; frozen features; the overlap search; the analyses (top-9 mining, Fig 4's evolution
over the whole training set at every kept checkpoint, occlusion, invariance, correspondence); preparing the data.
The dataset sizes are the published ones (ImageNet 2012: 1,281,167 training and 50,000 validation images;
Caltech-101 9,144 with 467 background images; Caltech-256 30,607 with 827 clutter images; VOC 2012 classification
5,717 train and 5,823 val images).

- **FLOPs per image** are counted by torch's FlopCounterMode (convolutions and matrix products) on the real models
  at full width and 224 crops, on the meta device: a training step is forward + backward, evaluation and features
  a forward pass, mining and Fig 4 the convolutional layers only.
- **Measured** (this machine, in this process, best of --repeats): seconds per image of a training step, a forward
  pass and the convolutional layers of ZF and Krizhevsky in fp32 with all cores; per core, preparing one source
  JPEG (decode ~500 x 375, resize, crop, encode q90), feeding one image from JPEG shards (read, CRC, decode,
  collate), one overlap thumbnail, and the overlap search's matrix product; bytes per stored image. The other
  architectures' CPU seconds are scaled from ZF or Krizhevsky by their FLOPs (not measured).
- **Projected** (NOT measured: nothing here ran on a GPU): a GPU job takes its FLOPs / (989 TFLOP/s bf16 x --mfu)
  on an H100, unless the CPU cannot decode its images fast enough at the measured per-core feed rate: where the
  code decodes on the CPU the job takes at least images x feed cost / its decoding cores, and the table says
  "decode". Every GPU stage (training steps, the per-epoch validation, evaluation, the scratch runs, features,
  mining, the Fig 4 search) decodes on the GPU (nvJPEG,
  zfrepro.data.shards.decode_batch), assumed here to keep up: benchmarks/gpu_check.py measures it (data_path_jpeg);
  the JSON also gives those stages' hours with CPU decoding. Jobs run longest first on the free GPUs (ImageNet
  trainings with --gpus-per-training GPUs each under DDP, assumed to scale without loss). CPU stages (prepare,
  the overlap search) take the measured per-core costs on `threads.prepare` cores per job, jobs side by side:
  on a 1-GPU machine with --cores (default 16, as the project's lent H200 machine has) or an 8-GPU node with
  --node-cores (default 112, a DGX H100's 2 x 56). Stages run one after another; the total is their sum.

    .venv/bin/python benchmarks/paper_cost.py --out paper_cost.json          # about 1 minute on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_path  # noqa: E402
from timing import best_of  # noqa: E402

from zfrepro.data.preprocess import ten_crop_select  # noqa: E402
from zfrepro.model.architectures import spec_from_config  # noqa: E402
from zfrepro.model.network import ConvNet, init_weights_  # noqa: E402
from zfrepro.model.train import sgd_step  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# The published dataset sizes.
IMAGENET = {"train": 1_281_167, "val": 50_000}
CALTECH = {"caltech101": {"images": 9_144, "background": 467, "classes": 101},
           "caltech256": {"images": 30_607, "background": 827, "classes": 256}}
VOC = {"train": 5_717, "val": 5_823}
PEAK_TFLOPS = 989.0  # H100 SXM dense bf16
GTX580_TFLOPS = 1.58  # the paper's GPU, fp32 peak
PAPER_DAYS = 12.0  # "about 12 days on one GTX580" for one 70-epoch training
RAW_BYTES = 3 * 256 * 256


# ---------------------------------------------------------------------------------------------- the plan


def deep_merge(base: dict, over: dict) -> dict:
    """`over` merged into `base` key by key, as Snakemake merges --configfile over configfile."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def load_config(path: str | os.PathLike) -> dict:
    """config/config.yaml with `path` merged over it (what the workflow sees with --configfile path)."""
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    return deep_merge(base, yaml.safe_load(Path(path).read_text()) or {})


def train_params(config: dict, arch: str) -> dict:
    return {**config["training"], **config["architectures"][arch].get("training", {})}


def arch_params(config: dict, arch: str) -> dict:
    return {k: v for k, v in config["architectures"][arch].items() if k != "training"}


def trained_models(config: dict) -> list[tuple[str, int]]:
    """Every (arch, seed) trained on ImageNet: all architectures at all seeds, plus Table 2's ensemble members."""
    first = config["seeds"][0]
    models = {(arch, seed) for arch in config["architectures"] for seed in config["seeds"]}
    for refs in config["tables"]["table2"].values():
        for ref in [refs] if isinstance(refs, str) else refs:
            arch, _, seed = ref.partition("/")
            models.add((arch, int(seed.removeprefix("seed")) if seed else first))
    return sorted(models)


def kept_epochs(config: dict, arch: str) -> list[int]:
    tp = train_params(config, arch)
    return sorted(e for e in tp["checkpoint_epochs"] if e <= tp["epochs"])


def plan(config: dict) -> dict[str, Any]:
    """The jobs the configuration asks for and the images each processes (the workflow's helpers, recomputed)."""
    data, tr, vis = config["data"], config["transfer"], config["visualize"]
    if data.get("source") != "real":
        raise ValueError("the cost model is for real data (data.source: real), as in config/paper.yaml")
    crop = data["crop_size"]
    out: dict[str, Any] = {"crop": crop, "image_size": data["image_size"]}
    train_images = IMAGENET["train"]
    out["imagenet_trainings"] = [
        {"arch": arch, "seed": seed, "epochs": train_params(config, arch)["epochs"],
         "validate": train_params(config, arch).get("validate", True), "kept_epochs": kept_epochs(config, arch)}
        for arch, seed in trained_models(config)]
    # evaluation always scores the ten crops of every validation image (the centre crop is one of them)
    out["evaluations"] = [{"arch": a, "seed": s, "val_crops": 10,
                           "train_subset": min(config["evaluation"]["train_subset"], train_images)}
                          for a, s in trained_models(config)]
    out["prepare"] = {"imagenet": IMAGENET["train"] + IMAGENET["val"]}
    scratch, features, overlap = [], [], []
    if tr.get("enabled", True):  # the transfer studies
        scratch_tp = {**train_params(config, tr["arch"]), **tr["scratch"]["training"]}
        for name, info in CALTECH.items():
            background = tr[name].get("background", False)
            classes = info["classes"] + (1 if background else 0)
            kept = info["images"] - (0 if background else info["background"])
            out["prepare"][name] = kept
            sizes = set(tr[name]["train_sizes"]) | (set(tr["fig9_sizes"]) if name == "caltech256" else set())
            for n in sorted(sizes):
                for split in range(tr["splits"]):
                    scratch.append({"dataset": name, "n": n, "split": split, "classes": classes,
                                    "train_images": n * classes, "epochs": scratch_tp["epochs"],
                                    "validate": scratch_tp.get("validate", True),
                                    "test_images_at_most": classes * tr[name]["test_per_class"]})
            features.append({"dataset": name, "split": "all", "images": kept})
            if tr["overlap"]["enabled"]:
                overlap.append({"dataset": name, "queries": info["images"], "references": train_images,
                                "size": tr["overlap"]["size"]})
        out["prepare"]["voc"] = VOC["train"] + VOC["val"]
        features += [{"dataset": "voc", "split": s, "images": VOC[s]} for s in ("train", "val")]
    out["scratch_trainings"], out["features"], out["overlap"] = scratch, features, overlap
    enabled = tr.get("enabled", True)
    out["feature_layers"] = sorted(set(tr["table7_layers"]) | {"fc7", tr["voc"]["layer"]}) if enabled else []
    out["mining"] = [{"arch": a, "images": IMAGENET["val"]}
                     for a in sorted({vis["arch"], vis["krizhevsky_arch"]})]
    last = train_params(config, vis["arch"])["epochs"]
    epochs = kept_epochs(config, vis["arch"])
    out["evolution"] = {"arch": vis["arch"], "checkpoints": epochs + ([last] if last not in epochs else []),
                        "images": min(vis["fig4_train_images"] or train_images, train_images)}
    occ = config["occlusion"]
    positions = math.ceil((crop - occ["size"]) / occ["stride"]) + 1
    out["occlusion"] = {"images": len(occ["images"]), "positions": positions ** 2,
                        "forwards": len(occ["images"]) * (positions ** 2 + 1)}
    inv = config["invariance"]
    variants = len(inv["translations"]) + len(inv["scales"]) + len(inv["rotations"])
    out["invariance"] = {"images": len(inv["images"]), "forwards": len(inv["images"]) * (variants + 1)}
    corr = config["correspondence"]
    out["correspondence"] = {"images": corr["images"],
                             "forwards": corr["images"] * (1 + 3 + corr["random_repeats"])}  # original, 3 parts
    return out


# ---------------------------------------------------------------------------------------------- FLOPs


def build(config: dict, arch: str, classes: int, device: str = "meta") -> ConvNet:
    spec = spec_from_config(arch, arch_params(config, arch), num_classes=classes,
                            input_size=config["data"]["crop_size"])
    with torch.device(device):
        model = ConvNet(spec)
    if device != "meta":
        torch.manual_seed(0)
        init_weights_(model, "gaussian", 0.01)
    return model


def _count(run: Callable[[], object]) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return float(counter.get_total_flops())


def saved_bytes(model: ConvNet, batch: int, crop: int) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of a `batch`-image training step (fp32)."""
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, crop, crop, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x), y)
    return saved[0]


def model_costs(model: ConvNet, crop: int, batch: int = 2) -> dict[str, float]:
    """Per image: FLOPs of a training step, a forward pass and the conv layers (mining); parameters; the bytes
    autograd keeps for the backward pass per image in fp32 (the weights it also keeps are not per image: the
    difference between two batch sizes)."""
    from zfrepro.analysis.mining import conv_outputs

    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, crop, crop, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    model.train()
    train = _count(lambda: F.cross_entropy(model(x), y).backward())
    model.zero_grad(set_to_none=True)
    per_image = (saved_bytes(model, 2 * batch, crop) - saved_bytes(model, batch, crop)) / batch
    model.eval()
    with torch.no_grad():
        forward = _count(lambda: model(x))
        conv = _count(lambda: conv_outputs(model, x, list(model.conv_layers())))
    return {"train": train / batch, "forward": forward / batch, "conv": conv / batch,
            "params": float(sum(p.numel() for p in model.parameters())), "saved_bytes": per_image}


def all_flops(config: dict, p: dict) -> dict[str, dict[str, dict[str, float]]]:
    """model_costs of every ImageNet architecture (1000 classes) and of the scratch network per Caltech set."""
    crop = p["crop"]
    out: dict[str, dict[str, dict[str, float]]] = {"imagenet": {}, "scratch": {}}
    for arch in sorted({t["arch"] for t in p["imagenet_trainings"]}):
        out["imagenet"][arch] = model_costs(build(config, arch, 1000), crop)
    for classes in sorted({s["classes"] for s in p["scratch_trainings"]}):
        out["scratch"][str(classes)] = model_costs(build(config, config["transfer"]["arch"], classes), crop)
    return out


def feature_dims(config: dict, crop: int) -> dict[str, int]:
    """Stored feature size per layer: the output, or a pooled grid under transfer.max_feature_dim."""
    from zfrepro.transfer.features import pool_grid

    model = build(config, config["transfer"]["arch"], 1000)
    with torch.no_grad():
        _, record = model.forward_record(torch.zeros(1, 3, crop, crop, device="meta"))
    dims = {}
    for layer, output in record.outputs.items():
        shape = list(output.shape[1:])
        grid = pool_grid(shape, config["transfer"]["max_feature_dim"])
        dims[layer] = shape[0] * grid * grid if grid else math.prod(shape)
    return dims


# ---------------------------------------------------------------------------------------------- measurements


def measure(config: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per image on this CPU: model operations (all cores, fp32) and the CPU stages' work (one core)."""
    from zfrepro.analysis.mining import conv_outputs
    from zfrepro.analysis.overlap import thumbnail

    cores = os.cpu_count() or 1
    crop, b = config["data"]["crop_size"], args.batch
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="zf_paper_cost_") as tmp:
        print(f"generating {args.images} source images and JPEG shards ...", file=sys.stderr)
        sources = data_path.make_sources(Path(tmp) / "src", args.images)
        split, mean = data_path.build_split(sources, Path(tmp) / "jpeg" / "train.pt", "jpeg",
                                            quality=config["data"]["jpeg_quality"],
                                            image_size=config["data"]["image_size"])
        out["bytes_per_image"] = {"source_jpeg": float(np.mean([os.path.getsize(s) for s in sources])),
                                  "jpeg_generated": data_path.stored_bytes(split),
                                  "jpeg_real_photos": data_path.photo_bytes(config["data"]["image_size"],
                                                                             config["data"]["jpeg_quality"]),
                                  "raw": float(RAW_BYTES)}
        reader = split.reader
        rows = list(range(len(split)))
        from torchvision.io import decode_jpeg

        def feed() -> torch.Tensor:
            return torch.stack([decode_jpeg(reader.encoded(r)) for r in rows])

        one_core: dict[str, Callable[[], object]] = {
            "feed_jpeg": feed,
            "prepare": lambda: [data_path.prepare_one(s, config["data"]["image_size"], config["data"]["jpeg_quality"])
                                for s in sources],
            "overlap_thumbnail": lambda: [thumbnail(s, config["transfer"]["overlap"]["size"]) for s in sources],
        }
        dim = config["transfer"]["overlap"]["size"] ** 2
        gen = torch.Generator().manual_seed(0)
        q, r = torch.randn(args.overlap_queries, dim, generator=gen), torch.randn(2048, dim, generator=gen)
        one_core["overlap_product"] = lambda: (q @ r.T).max(dim=1)
        one_core = {k: data_path.with_threads(1, v) for k, v in one_core.items()}

        images = torch.stack([decode_jpeg(reader.encoded(i % len(split))) for i in range(b)])
        x = ten_crop_select(images, mean, crop, torch.arange(b) % 10)
        y = torch.arange(b) % 1000
        models = {arch: build(config, arch, 1000, "cpu") for arch in ("zf", "krizhevsky")}
        runs: dict[str, Callable[[], object]] = dict(one_core)
        for arch, model in models.items():
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            runs[f"{arch}_train"] = lambda m=model, o=opt: sgd_step(m.train(), o, x, y, autocast=False)
            runs[f"{arch}_forward"] = lambda m=model: _no_grad(lambda: m.eval()(x))
            runs[f"{arch}_conv"] = lambda m=model: _no_grad(lambda: conv_outputs(m.eval(), x))
        runs = {k: (v if k in one_core else data_path.with_threads(cores, v)) for k, v in runs.items()}
        print(f"timing: best of {args.repeats} rounds after a warm-up ...", file=sys.stderr)
        seconds = best_of(runs, torch.device("cpu"), args.repeats)
        torch.set_num_threads(cores)
    n = len(sources)
    out["one_core_seconds_per_image"] = {k: seconds[k] / n for k in ("feed_jpeg", "prepare", "overlap_thumbnail")}
    out["overlap_product_gflops_per_core"] = 2 * args.overlap_queries * 2048 * dim / seconds["overlap_product"] / 1e9
    out["all_cores_seconds_per_image"] = {k: v / b for k, v in seconds.items() if k not in one_core}
    out["cores"] = cores
    out["batch"] = b
    return out


def _no_grad(run: Callable[[], object]) -> object:
    with torch.no_grad():
        return run()


# ---------------------------------------------------------------------------------------------- projection


def _job(flops: float, decoded: float, cpu_seconds: float) -> dict[str, float]:
    return {"flops": flops, "decoded": decoded, "cpu_seconds": cpu_seconds}


def stages(config: dict, p: dict, flops: dict, m: dict, gpt: int = 1) -> list[dict[str, Any]]:
    """The stages as lists of jobs (as the workflow runs them): each job's FLOPs, images decoded from the shards
    and this machine's CPU seconds (measured per image x images). `decoder` says where a stage decodes its images
    as the code stands: "gpu" (nvJPEG, PreparedSplit.batches with a CUDA device: every GPU stage), "workers"
    (DataLoader workers, `threads` per job) or "main" (a job's main process, one core). CPU stages list
    core-seconds.
    `gpt`: GPUs per ImageNet training (gpus_per_training; DDP above 1)."""
    cpu = m["all_cores_seconds_per_image"]
    core = m["one_core_seconds_per_image"]
    im = flops["imagenet"]
    threads = config["threads"]

    def cpu_s(arch: str, kind: str, table: dict, classes_table: dict | None = None) -> float:
        """Measured for ZF and Krizhevsky; other architectures (and class counts) scaled by FLOPs."""
        base = "krizhevsky" if arch.startswith("krizhevsky") else "zf"
        return cpu[f"{base}_{kind}"] * (classes_table or table[arch])[kind] / im[base][kind]

    rows: list[dict[str, Any]] = []
    trainings = p["imagenet_trainings"]
    epochs = trainings[0]["epochs"]
    steps = [epochs * IMAGENET["train"] for _ in trainings]
    rows.append({"stage": f"ImageNet training, SGD steps: {len(trainings)} networks x {epochs} epochs",
                 "images": sum(steps), "decoder": "gpu", "threads": threads["train"], "gpus_per_job": gpt,
                 "jobs": [_job(n * im[t["arch"]]["train"], n, n * cpu_s(t["arch"], "train", im))
                          for n, t in zip(steps, trainings, strict=True)]})
    vals = [t["epochs"] * IMAGENET["val"] if t["validate"] else 0 for t in trainings]
    # center_crop_error runs the whole validation set in every process (no sharding over DDP ranks), decoded
    # on the GPU like the training batches
    rows.append({"stage": "ImageNet training, centre-crop validation after every epoch", "images": sum(vals),
                 "decoder": "gpu", "threads": threads["train"], "gpus_per_job": gpt, "replicated": gpt > 1,
                 "jobs": [_job(n * im[t["arch"]]["forward"], n, n * cpu_s(t["arch"], "forward", im))
                          for n, t in zip(vals, trainings, strict=True)]})
    scratch = p["scratch_trainings"]
    if scratch:
        jobs = []
        for s in scratch:
            f = flops["scratch"][str(s["classes"])]
            n, test = s["epochs"] * s["train_images"], s["test_images_at_most"]
            jobs.append(_job(n * f["train"] + test * f["forward"], n + test,
                             n * cpu_s("zf", "train", im, f) + test * cpu_s("zf", "forward", im, f)))
        rows.append({"stage": f"from-scratch Caltech trainings: {len(scratch)} x {scratch[0]['epochs']} epochs "
                              "(+ scoring on the test images)", "images": sum(j["decoded"] for j in jobs),
                     "decoder": "gpu", "threads": threads["train"], "gpus_per_job": 1, "jobs": jobs})
    jobs = []
    for e in p["evaluations"]:
        crops = IMAGENET["val"] * e["val_crops"] + e["train_subset"]
        jobs.append(_job(crops * im[e["arch"]]["forward"], IMAGENET["val"] + e["train_subset"],
                         crops * cpu_s(e["arch"], "forward", im)))
    rows.append({"stage": f"evaluation: {len(jobs)} networks, 10 crops of the 50k validation images + the centre "
                          f"crop of a {p['evaluations'][0]['train_subset']:,}-image training subset",
                 "images": sum(IMAGENET["val"] * e["val_crops"] + e["train_subset"] for e in p["evaluations"]),
                 "decoder": "gpu", "threads": threads["evaluate"], "gpus_per_job": 1, "jobs": jobs})
    zf = config["transfer"]["arch"]
    if p["features"]:
        rows.append({"stage": f"transfer features: {len(p['features'])} splits (Caltech-101, Caltech-256, VOC "
                              "train and val), one forward pass", "images": sum(f["images"] for f in p["features"]),
                     "decoder": "gpu", "threads": threads["evaluate"], "gpus_per_job": 1,
                     "jobs": [_job(f["images"] * im[zf]["forward"], f["images"],
                                   f["images"] * cpu_s(zf, "forward", im)) for f in p["features"]]})
    rows.append({"stage": f"top-9 mining (Figs 2, 6, 7): {len(p['mining'])} networks over the validation set, "
                          "conv layers", "images": sum(x["images"] for x in p["mining"]),
                 "decoder": "gpu", "threads": threads["evaluate"], "gpus_per_job": 1,
                 "jobs": [_job(x["images"] * im[x["arch"]]["conv"], x["images"],
                               x["images"] * cpu_s(x["arch"], "conv", im)) for x in p["mining"]]})
    ev = p["evolution"]
    n = len(ev["checkpoints"]) * ev["images"]
    rows.append({"stage": f"Fig 4 evolution: {len(ev['checkpoints'])} checkpoints x {ev['images']:,} training "
                          "images, conv layers (one job)", "images": n, "decoder": "gpu",
                 "threads": threads["evaluate"], "gpus_per_job": 1,
                 "jobs": [_job(n * im[ev["arch"]]["conv"], n, n * cpu_s(ev["arch"], "conv", im))]})
    vis = config["visualize"]["arch"]
    small = [p["occlusion"]["forwards"], p["invariance"]["forwards"], p["correspondence"]["forwards"]]
    rows.append({"stage": f"occlusion ({p['occlusion']['positions']} positions x {p['occlusion']['images']} "
                          "images), invariance, correspondence: forward passes", "images": sum(small),
                 "decoder": "gpu", "threads": threads["evaluate"], "gpus_per_job": 1,
                 "jobs": [_job(n * im[vis]["forward"], 0, n * cpu_s(vis, "forward", im)) for n in small]})

    rows.append({"stage": "prepare: decode, resize, crop, encode JPEG q90 (ImageNet train+val, Caltech, VOC)",
                 "images": sum(p["prepare"].values()), "decoder": "cpu", "threads": threads["prepare"],
                 "jobs": [{"flops": 0.0, "core_seconds": n * core["prepare"]} for n in p["prepare"].values()]})
    if p["overlap"]:
        jobs = []
        for o in p["overlap"]:
            product = 2.0 * o["queries"] * o["references"] * o["size"] ** 2
            jobs.append({"flops": product, "core_seconds": (o["queries"] + o["references"]) * core["overlap_thumbnail"]
                         + product / (m["overlap_product_gflops_per_core"] * 1e9)})
        rows.append({"stage": f"overlap search: {len(jobs)} jobs, each makes thumbnails of ImageNet's training set "
                              "and correlates them with every Caltech image (CPU)",
                     "images": sum(o["queries"] + o["references"] for o in p["overlap"]), "decoder": "cpu",
                     "threads": threads["prepare"], "jobs": jobs})
    for row in rows:
        row["flops"] = sum(j["flops"] for j in row["jobs"])
        row["decoded"] = sum(j.get("decoded", 0.0) for j in row["jobs"])
    return rows


def makespan(times: list[float], slots: int) -> float:
    """Longest-first list scheduling of jobs of `times` on `slots` identical workers: the last one's finish."""
    loads = [0.0] * max(1, slots)
    for t in sorted(times, reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def stage_hours(row: dict, gpus: int, cores: int, m: dict, args: argparse.Namespace,
                decoder: str | None = None) -> tuple[float, str]:
    """Wall-clock hours of a stage on a machine with `gpus` GPUs and `cores` CPU cores, and what bounds it.

    GPU stages: each job takes max(FLOPs / (peak x MFU x its GPUs), its images x the per-core feed cost / its
    decoding cores); jobs are scheduled longest first on the GPUs (ImageNet trainings take --gpus-per-training
    GPUs each, DDP, assumed to scale without loss; the others one). CPU stages: each job on its `threads` cores,
    jobs side by side while cores last."""
    decoder = decoder or row["decoder"]
    feed = m["one_core_seconds_per_image"]["feed_jpeg"]
    jobs = row["jobs"]
    if decoder == "cpu":
        per_job = min(row["threads"], cores)
        return makespan([j["core_seconds"] / per_job for j in jobs], max(1, cores // per_job)) / 3600, "CPU"
    rate = PEAK_TFLOPS * 1e12 * args.mfu
    per_job_gpus = min(row["gpus_per_job"], gpus)
    slots = max(1, gpus // per_job_gpus)
    concurrent = min(slots, len(jobs))
    free = max(cores - gpus * args.trainer_cores, 1)
    if decoder == "main":
        decode_cores = 1.0  # every DDP process decodes the whole set itself
    elif decoder == "workers":
        decode_cores = min(row["threads"] * per_job_gpus, free / concurrent)
    else:
        decode_cores = math.inf  # nvJPEG on the GPU: NOT measured, assumed to keep up
    compute_gpus = 1 if row.get("replicated") else per_job_gpus
    times, bound = [], "compute"
    for j in jobs:
        compute = j["flops"] / (rate * compute_gpus)
        decode = j["decoded"] * feed / decode_cores
        times.append(max(compute, decode))
        if decode > compute and j["decoded"]:
            bound = "decode"
    return makespan(times, slots) / 3600, bound


def project(rows: list[dict], m: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Hours per stage on this CPU, on a 1-GPU machine and on an 8-GPU node, and the totals."""
    machines = {"gpu1": (1, args.cores), "gpu8": (8, args.node_cores)}
    totals = {"this_cpu_hours": 0.0, "gpu1_hours": 0.0, "gpu8_hours": 0.0}
    for row in rows:
        if row["decoder"] == "cpu":
            row["this_cpu_hours"] = stage_hours(row, 0, m["cores"], m, args)[0]
        else:
            row["this_cpu_hours"] = sum(j["cpu_seconds"] for j in row["jobs"]) / 3600
        for key, (gpus, cores) in machines.items():
            row[f"{key}_hours"], row[f"{key}_bound"] = stage_hours(row, gpus, cores, m, args)
            if row["decoder"] == "gpu" and row["decoded"]:
                # the same stage if its images were decoded by CPU workers instead of nvJPEG
                row[f"{key}_hours_cpu_decode"] = stage_hours(row, gpus, cores, m, args, "workers")[0]
        for key in totals:
            totals[key] += row[key]
    return totals


def disk_and_memory(config: dict, p: dict, flops: dict, m: dict, dims: dict[str, int]) -> dict[str, Any]:
    """Bytes on disk (shards, checkpoints, predictions, features) and peak-memory notes."""
    b = m["bytes_per_image"]
    im, gb = flops["imagenet"], 1e9
    imagenet = p["prepare"]["imagenet"]
    transfer = sum(v for k, v in p["prepare"].items() if k != "imagenet")
    ckpt = sum(im[t["arch"]]["params"] * 4 * (len(t["kept_epochs"]) + 1) for t in p["imagenet_trainings"])
    resume = max(im[t["arch"]]["params"] * 4 * 2 for t in p["imagenet_trainings"])
    scratch = sum(flops["scratch"][str(s["classes"])]["params"] * 4 for s in p["scratch_trainings"])
    preds = len(p["evaluations"]) * IMAGENET["val"] * 1000 * 4 * 2
    layers = {layer: dims[layer] for layer in p["feature_layers"]}
    feats = sum(f["images"] for f in p["features"]) * sum(layers.values()) * 2
    biggest = max(p["features"], key=lambda f: f["images"]) if p["features"] else {"images": 0}
    big_model = max(im, key=lambda a: im[a]["params"])
    queries = max((o["queries"] for o in p["overlap"]), default=0)
    size = config["transfer"]["overlap"]["size"] ** 2
    return {
        "disk_gb": {
            "imagenet_shards_jpeg_generated": imagenet * b["jpeg_generated"] / gb,
            "imagenet_shards_jpeg_real_photos": imagenet * b["jpeg_real_photos"] / gb,
            "imagenet_shards_raw": imagenet * b["raw"] / gb,
            "transfer_shards_jpeg_real_photos": transfer * b["jpeg_real_photos"] / gb,
            "imagenet_checkpoints": ckpt / gb,
            "resume_state_per_training_at_most": resume / gb,
            "scratch_final_models": scratch / gb,
            "evaluation_predictions": preds / gb,
            "features_float16": feats / gb,
        },
        "feature_dims": layers,
        "memory_notes": {
            "largest_network": big_model,
            "largest_network_params_millions": im[big_model]["params"] / 1e6,
            "training_weights_grads_momentum_gb": im[big_model]["params"] * 12 / gb,
            "training_saved_activations_batch128_fp32_gb": {a: im[a]["saved_bytes"] * 128 / gb for a in ("zf",
                                                                                                          "krizhevsky")},
            "evaluation_batch_activations": "ten crops of 256 images = 2,560 crops per forward pass (no autograd)",
            "evaluation_predictions_per_model_gb": IMAGENET["val"] * 1000 * 4 * 2 / gb,
            "table2_ensemble_of_6_predictions_gb": 6 * IMAGENET["val"] * 1000 * 4 * 2 / gb,
            "features_largest_split_in_memory_gb": biggest["images"] * sum(layers.values()) * 2 / gb,
            "overlap_search_gb": 4 * queries * (size + 2048) / gb,
            "prepare": "one image per worker process (stream mode); the split's index grows with the images",
        },
    }


def paper_comparison(config: dict, flops: dict, totals: dict, rows: list[dict], args: argparse.Namespace) -> dict:
    """One ZF training (70 epochs over ImageNet) against the paper's 12 days on a GTX 580."""
    epochs = train_params(config, "zf")["epochs"]
    one = epochs * IMAGENET["train"] * flops["imagenet"]["zf"]["train"]
    gtx_days_at_peak = one / (GTX580_TFLOPS * 1e12) / 86400
    return {
        "zf_training_pflop": one / 1e15,
        "gtx580_days_at_peak": gtx_days_at_peak,
        "implied_gtx580_utilisation": gtx_days_at_peak / PAPER_DAYS,
        "zf_training_h100_hours_at_mfu": one / (PEAK_TFLOPS * 1e12 * args.mfu) / 3600,
        "protocol_total_gtx580_days_at_implied_utilisation":
            sum(r["flops"] for r in rows if r["decoder"] != "cpu") / (GTX580_TFLOPS * 1e12 * gtx_days_at_peak
                                                                     / PAPER_DAYS) / 86400,
        "protocol_gpu1_days": totals["gpu1_hours"] / 24,
        "protocol_gpu8_days": totals["gpu8_hours"] / 24,
    }


# ---------------------------------------------------------------------------------------------- output


def _hours(h: float) -> str:
    if h >= 24 * 365:
        return f"{h / (24 * 365):,.1f} y"
    if h >= 48:
        return f"{h / 24:,.1f} d"
    if h >= 1:
        return f"{h:,.1f} h"
    return f"{h * 60:,.1f} min"


def markdown(result: dict) -> str:
    a, prov, m = result["assumed"], result["provenance"], result["measured"]
    lines = [f"Paper protocol cost ({result['config']}). Measured on {prov['machine']}, commit {prov['commit']}"
             f"{' + uncommitted changes' if prov['uncommitted_changes'] else ''}, {prov['date']}, best of "
             f"{prov['repeats']}, load average at start {prov['load_average_at_start']}. Projected (NOT measured): "
             f"GPU stages at {a['mfu']:.0%} MFU of {a['peak_tflops']:.0f} TFLOP/s bf16; 1-GPU machine with "
             f"{a['cores']} cores, 8-GPU node with {a['node_cores']} cores, {a['trainer_cores']} core(s) per GPU "
             "kept by its process; CPU JPEG decoding at the measured per-core rate.", "",
             "| stage | images | GFLOP/image | PFLOP | decoded by | this CPU | 1 x H100 | 8 x H100 node |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    decoders = {"gpu": "GPU, nvJPEG (not measured)", "workers": "CPU, {threads} workers per job",
                "main": "CPU, the job's main process (1 core)", "cpu": "CPU, {threads} processes per job"}
    for r in result["stages"]:
        gfl = f"{r['flops'] / r['images'] / 1e9:.2f}" if r["flops"] and r["decoder"] != "cpu" else "-"
        pf = f"{r['flops'] / 1e15:,.1f}" if r["flops"] else "-"
        dec = decoders[r["decoder"]].format(threads=r["threads"]) if r["decoded"] or r["decoder"] == "cpu" else "-"
        g1 = _hours(r["gpu1_hours"]) + (" (decode)" if r["gpu1_bound"] == "decode" else "")
        g8 = _hours(r["gpu8_hours"]) + (" (decode)" if r["gpu8_bound"] == "decode" else "")
        lines.append(f"| {r['stage']} | {r['images']:,.0f} | {gfl} | {pf} | {dec} | {_hours(r['this_cpu_hours'])} "
                     f"| {g1} | {g8} |")
    t = result["totals"]
    lines.append(f"| **total** | | | {sum(r['flops'] for r in result['stages']) / 1e15:,.0f} | | "
                 f"**{_hours(t['this_cpu_hours'])}** | **{_hours(t['gpu1_hours'])}** | **{_hours(t['gpu8_hours'])}** |")
    c = result["paper"]
    d = result["disk_and_memory"]["disk_gb"]
    per = m["one_core_seconds_per_image"]
    gtx_total = c["protocol_total_gtx580_days_at_implied_utilisation"]
    lines += ["", f"Measured per image on one core: prepare {per['prepare'] * 1e3:.2f} ms, JPEG shard feed (read, "
              f"CRC, decode, collate) {per['feed_jpeg'] * 1e3:.3f} ms, overlap thumbnail "
              f"{per['overlap_thumbnail'] * 1e3:.2f} ms; overlap product {m['overlap_product_gflops_per_core']:.1f} "
              "GFLOP/s per core. All cores, fp32, per image: " + ", ".join(
                  f"{k} {v * 1e3:.0f} ms" for k, v in m["all_cores_seconds_per_image"].items()) + ".",
              "", f"The paper: one ZF training = {c['zf_training_pflop']:,.0f} PFLOP = {c['gtx580_days_at_peak']:.1f}"
              f" days of a GTX 580 at its 1.58 TFLOP/s peak, so its 12 days mean {c['implied_gtx580_utilisation']:.0%}"
              f" utilisation; at {a['mfu']:.0%} MFU one H100 needs {c['zf_training_h100_hours_at_mfu']:.1f} h. The"
              f" whole protocol's GPU work at that GTX 580 utilisation: {gtx_total:,.0f} GTX-580 days; projected "
              f"{c['protocol_gpu1_days']:.1f} days on 1 H100, "
              f"{c['protocol_gpu8_days']:.1f} days on an 8-GPU node.",
              "", "If the GPU-decoded stages decoded on CPU workers instead (threads.train or threads.evaluate per "
              "job): " + ", ".join(f"{r['stage'].split(':')[0]} {_hours(r['gpu1_hours_cpu_decode'])} on 1 GPU, "
                          f"{_hours(r['gpu8_hours_cpu_decode'])} on 8" for r in result["stages"]
                          if "gpu1_hours_cpu_decode" in r) + ".",
              "", "Disk (GB): " + ", ".join(f"{k} {v:,.1f}" for k, v in d.items()) + ".",
              "", memory_line(result["disk_and_memory"]["memory_notes"])]
    return "\n".join(lines)


def memory_line(mem: dict) -> str:
    saved = ", ".join(f"{v:.1f} GB for {k}" for k, v in mem["training_saved_activations_batch128_fp32_gb"].items())
    return (f"Memory: the largest network ({mem['largest_network']}, {mem['largest_network_params_millions']:.0f}M "
            f"parameters) needs {mem['training_weights_grads_momentum_gb']:.1f} GB for weights, gradients and "
            f"momentum; autograd keeps {saved} at batch 128 in fp32 (under bf16 autocast most are kept in bf16: not "
            f"counted here); evaluation predictions {mem['evaluation_predictions_per_model_gb']:.1f} GB per network, "
            f"{mem['table2_ensemble_of_6_predictions_gb']:.1f} GB for Table 2's 6-network ensemble; the largest "
            f"feature split in memory {mem['features_largest_split_in_memory_gb']:.1f} GB; the overlap search "
            f"{mem['overlap_search_gb']:.1f} GB.")


def run(args: argparse.Namespace) -> dict:
    config = load_config(args.config)
    p = plan(config)
    t0 = time.perf_counter()
    flops = all_flops(config, p)
    dims = feature_dims(config, p["crop"])
    m = measure(config, args)
    gpt = args.gpus_per_training or config["gpus_per_training"]
    rows = stages(config, p, flops, m, gpt)
    totals = project(rows, m, args)
    return {
        "config": str(args.config),
        "provenance": data_path.provenance(args.repeats),
        "assumed": {"mfu": args.mfu, "peak_tflops": PEAK_TFLOPS, "cores": args.cores, "node_cores": args.node_cores,
                    "trainer_cores": args.trainer_cores, "gpus_per_training": gpt,
                    "scheduling": "jobs longest first on free GPUs; DDP assumed to scale without loss",
                    "dataset_sizes": {"imagenet": IMAGENET, "caltech": CALTECH, "voc": VOC}},
        "plan": {"imagenet_trainings": len(p["imagenet_trainings"]), "scratch_trainings": len(p["scratch_trainings"]),
                 "evaluations": len(p["evaluations"]), "features": len(p["features"]), "mining": len(p["mining"]),
                 "evolution_checkpoints": p["evolution"]["checkpoints"], "overlap": len(p["overlap"]),
                 "occlusion": p["occlusion"], "invariance": p["invariance"], "correspondence": p["correspondence"],
                 "prepare": p["prepare"]},
        "flops_per_image": flops,
        "measured": m,
        "stages": rows,
        "totals": totals,
        "disk_and_memory": disk_and_memory(config, p, flops, m, dims),
        "paper": paper_comparison(config, flops, totals, rows, args),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "config/paper.yaml"), help="merged over config/config.yaml")
    p.add_argument("--mfu", type=float, default=0.3, help="ASSUMED model FLOP utilisation of the GPU stages")
    p.add_argument("--cores", type=int, default=16, help="CPU cores of the 1-GPU machine")
    p.add_argument("--node-cores", type=int, default=112, help="CPU cores of the 8-GPU node (DGX H100: 112)")
    p.add_argument("--trainer-cores", type=int, default=1, help="cores each GPU's process keeps from decoding")
    p.add_argument("--gpus-per-training", type=int, help="GPUs per ImageNet training on the 8-GPU node (DDP); "
                   "default: the config's gpus_per_training")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--images", type=int, default=32, help="generated source images the per-image costs are timed on")
    p.add_argument("--batch", type=int, default=8, help="images per timed model call on the CPU")
    p.add_argument("--overlap-queries", type=int, default=4096, help="query thumbnails in the timed product")
    p.add_argument("--out", help="write every number to this JSON file")
    p.add_argument("--markdown", help="write the table to this file")
    args = p.parse_args()
    result = run(args)
    table = markdown(result)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()

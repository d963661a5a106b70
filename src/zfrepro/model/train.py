"""Training as the paper does it (section 3), readable top to bottom.

SGD with momentum, random draws among the ten crops, dropout on layers 6 and 7, weight decay, the filter
renormalization ("feature scale clipping") after every step, and the learning rate divided by 10 when the
validation error plateaus. CPU by default, CUDA (bf16 autocast, channels-last) when present, data-parallel
across processes when started with torchrun. Every epoch leaves a resumable checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from zfrepro.data.preprocess import center_crop, ten_crop_select
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError, TrainingError
from zfrepro.io import (
    atomic_torch_save,
    atomic_write_text,
    load_json_result,
    load_result,
    move_result,
    recorded_checksum,
    sha256_of,
)
from zfrepro.model.architectures import spec_from_config
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import ArchSpec, spec_to_dict
from zfrepro.options import json_arg
from zfrepro.progress import format_duration, progress

# training.lr_schedule's defaults; also what a partial lr_schedule (transfer.scratch.training, which the schema
# does not fill in) falls back to.
LR_SCHEDULE_DEFAULTS = {"kind": "step", "factor": 0.1, "patience": 2, "min_lr": 1.0e-5, "milestones": [6]}


@dataclass
class TrainConfig:
    """The `training` section of the config (see config/README.md for what each value encodes).

    The defaults are the schema's (workflow/schemas/config.schema.yaml; tests/test_defaults.py checks that they
    agree). The workflow always passes the whole section, so they only serve direct callers.
    """

    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0005
    dropout: float = 0.5
    init: dict = field(default_factory=lambda: {"scheme": "gaussian", "std": 0.02})
    filter_radius: float | None = 0.04
    lr_schedule: dict = field(default_factory=lambda: dict(LR_SCHEDULE_DEFAULTS))
    checkpoint_epochs: list[int] = field(default_factory=lambda: [1, 2, 5])
    amp: bool = True
    channels_last: bool = True
    validate: bool = True  # the validation error after every epoch (the plateau schedule needs it)
    compile: bool = False  # torch.compile the network (opt-in: its first steps compile, and it needs a compiler)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"training.{unknown[0]}: unknown option; allowed: {', '.join(sorted(known))}")
        cfg = cls(**values)
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise ConfigError("training.epochs and training.batch_size must be at least 1")
        if cfg.lr_schedule.get("kind") not in ("plateau", "step", "none"):
            raise ConfigError("training.lr_schedule.kind must be one of plateau, step, none")
        if not cfg.validate and cfg.lr_schedule.get("kind") == "plateau":
            raise ConfigError("training.validate is false but training.lr_schedule.kind is plateau, which needs the "
                              "validation error: use a step schedule or validate")
        return cfg


# ----------------------------------------------------------------------------------------------------------
# The pieces of one training step


def renormalize_filters_(convs: dict[str, nn.Conv2d], radius: float) -> None:
    """Rescale every conv filter whose RMS exceeds `radius` back to RMS `radius` (paper, section 3)."""
    with torch.no_grad():
        for conv in convs.values():
            w = conv.weight
            rms = w.float().pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            w.mul_((radius / rms.clamp_min(1e-12)).clamp(max=1.0).to(w.dtype))


def sgd_step(net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, labels: torch.Tensor,
             autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step: forward (bf16 autocast on CUDA), cross-entropy in float32, backward; (loss, logits)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = net(x)
    loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, logits


def with_dropout(spec: ArchSpec, p: float) -> ArchSpec:
    """Set the dropout of the hidden fully connected layers (6 and 7 in the paper) to `p`."""
    fcs = tuple(dataclasses.replace(fc, dropout=p) if fc.dropout else fc for fc in spec.fcs)
    return dataclasses.replace(spec, fcs=fcs)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: dict) -> Any:
    """The paper anneals 'by hand' on a validation plateau; we automate it (project decision)."""
    schedule = {**LR_SCHEDULE_DEFAULTS, **schedule}
    kind = schedule["kind"]
    factor = schedule["factor"]
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=factor, patience=schedule["patience"], min_lr=schedule["min_lr"],
        )
    if kind == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, schedule.get("milestones", []), gamma=factor)
    return None


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch reseeds all randomness, so a resumed run follows the uninterrupted one exactly."""
    return seed * 100_003 + epoch


def dropout_seed(seed: int, epoch: int, rank: int) -> int:
    """The global RNG's seed (dropout) of one process in one epoch: epoch_seed on rank 0 (so one process trains
    as it always has), a 32-bit mix of it and the rank elsewhere, so that ranks draw different masks (the CPU
    generator keeps only 32 bits of a seed: adding the rank in high bits would change nothing)."""
    base = epoch_seed(seed, epoch)
    return base if rank == 0 else zlib.crc32(f"{base}/{rank}".encode())


def training_record(cfg: TrainConfig) -> dict:
    """The training section as the model files and the fingerprint record it: `compile` only when set, so that
    files of runs that do not compile stay as they were before the option existed."""
    record = dataclasses.asdict(cfg)
    if not cfg.compile:
        del record["compile"]
    return record


# ----------------------------------------------------------------------------------------------------------
# Resuming: only a state of this exact configuration is continued

# Bump when a change to this file makes the same configuration train differently: a saved resume state of
# the old code must then not be continued by the new one.
TRAINING_CODE_VERSION = 2  # 2: dropout seeds per DDP rank; the fingerprint names the architecture's config


def training_fingerprint(arch: str, spec: ArchSpec, cfg: TrainConfig, seed: int, data_dir: Path,
                         rt: Runtime, arch_params: dict | None = None) -> dict:
    """Everything that determines the weights a training run produces, as plain JSON-able values.

    The resume state records it, and a rerun continues that state only if nothing here changed. The data
    enter as the prepared manifest (class list, counts, sizes, exclusions; not its folder or cache mode,
    which change no image) and the checksum of the mean image (a digest of every training image's pixels).
    `arch_params` (the config's architectures.<arch>) is kept to name the keys a user changed.
    """
    manifest = {k: v for k, v in load_json_result(data_dir / "manifest.json").items() if k not in ("root", "mode")}
    recorded = recorded_checksum(data_dir / "mean.pt")
    mean_sha256 = recorded["sha256"] if recorded else sha256_of(data_dir / "mean.pt")
    return {"code": TRAINING_CODE_VERSION, "arch": arch, "spec": spec_to_dict(spec), "architecture": arch_params,
            "training": training_record(cfg), "seed": seed, "device": rt.device.type,
            "processes": rt.world,  # DDP drops a last global batch that does not split evenly
            "data": {"manifest": manifest, "mean_sha256": mean_sha256}}


def fingerprint_changes(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two fingerprints (for the log line)."""
    if not isinstance(saved, dict) or not isinstance(now, dict):
        return [prefix.rstrip(".") or "(all)"] if saved != now else []
    return [change for key in sorted(set(saved) | set(now))
            for change in fingerprint_changes(saved.get(key), now.get(key), f"{prefix}{key}.")]


# What a user changed, in the config's words, for each part of the fingerprint (its first dotted key).
_CONFIG_KEY = {"seed": "seeds", "device": "device", "processes": "gpus_per_training",
               "code": "the training code (zfrepro was updated)",
               "data": "the prepared ImageNet (data.* or synthetic.*)"}


def changed_config_keys(changes: list[str], arch: str) -> list[str]:
    """The config keys behind the fingerprint's changed dotted keys: architectures.<arch>.width rather than the
    spec.convs it changes, training.lr as it is; each named once, in order."""
    if "code" in changes:  # a state of older code: its other differences are the code's, not the user's
        return [_CONFIG_KEY["code"]]
    named: list[str] = []
    for change in changes:
        head, _, rest = change.partition(".")
        if head == "architecture":
            key = f"architectures.{arch}" + (f".{rest}" if rest else "")
        elif head in ("spec", "arch"):
            if any(c.startswith("architecture") for c in changes):
                continue  # the config keys that changed the spec are named
            key = f"architectures.{arch} (the network's layers)"
        elif head == "training":
            key = change
        else:
            key = _CONFIG_KEY.get(head, change)
        if key not in named:
            named.append(key)
    return named


def resumable_state(last: Path, fingerprint: dict, device: torch.device) -> dict | None:
    """The saved state of an interrupted run of this exact configuration, or None (then start afresh).

    A state from another configuration, or one that cannot be read, is deleted, saying why: continuing it
    would train a model that matches neither configuration.
    """
    if not last.exists():
        return None
    try:
        state = load_result(last, map_location=device)
    except DataError as err:
        why = f"it cannot be used ({err})"
    else:
        changes = fingerprint_changes(state.get("fingerprint", {}), fingerprint)
        if not changes:
            return state
        keys = changed_config_keys(changes, fingerprint.get("arch", "?"))
        shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        why = f"it was made with another configuration (changed: {shown})"
    print(f"not resuming from {last}: {why}; starting afresh", flush=True)
    shutil.rmtree(last.parent)
    return None


# ----------------------------------------------------------------------------------------------------------
# Devices and processes


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    local_world: int = 1  # processes of this job on this node (torchrun's LOCAL_WORLD_SIZE)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def threads(self, job_threads: int) -> int:
        """This process's share of the job's CPUs (torch threads, and loader workers): the job's `threads`
        are for all its processes on the node, so N ranks each taking all of them would oversubscribe N times."""
        return max(1, job_threads // self.local_world)


def setup_runtime(device: str) -> Runtime:
    """Pick the device; join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is visible; set device: auto or cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Runtime(torch.device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return Runtime(torch.device("cuda", local_rank), rank, world, local_world)
    dist.init_process_group("gloo")
    return Runtime(torch.device("cpu"), rank, world, local_world)


# ----------------------------------------------------------------------------------------------------------
# Validation error, used for the plateau schedule and the per-epoch metrics


@torch.no_grad()
def center_crop_error(model: nn.Module, split: PreparedSplit, mean: torch.Tensor, crop: int,
                      rt: Runtime, batch_size: int, autocast: bool, workers: int = 0) -> float:
    """Top-1 error (%) of the centre crop over the whole split (stream mode: read and decoded by `workers`
    loader processes, or on the GPU, as the training batches are).

    Under DDP each process takes a contiguous share of the split and the counts meet in one all-reduce; the
    count stays on the device until then (no host sync per batch).
    """
    model.eval()
    wrong = torch.zeros((), dtype=torch.int64, device=rt.device)
    n = len(split)
    mine = torch.arange(rt.rank * n // rt.world, (rt.rank + 1) * n // rt.world)
    batches = split.batches(mine, batch_size, workers=0 if split.in_memory else workers,
                            pin_memory=rt.device.type == "cuda", device=rt.device)
    steps = math.ceil(len(mine) / batch_size)
    for images, labels in progress(batches, total=steps, desc="validation", unit="batch", disable=not rt.main,
                                   leave=False):
        x = center_crop(images.to(rt.device, non_blocking=True), mean, crop)
        with torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        wrong += (logits.argmax(1) != labels.to(rt.device, non_blocking=True)).sum()
    if rt.world > 1:
        dist.all_reduce(wrong)
    model.train()
    return 100.0 * wrong.item() / max(1, n)


# ----------------------------------------------------------------------------------------------------------
# The training run


def train(
    data_dir: str | Path,
    arch: str,
    arch_params: dict,
    cfg: TrainConfig,
    seed: int,
    out_dir: str | Path,
    device: str = "auto",
    threads: int = 2,
) -> Path:
    """Train one model; write epoch{E}.pt, final.pt and metrics.csv to `out_dir`. Resumes if interrupted."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    work = out_dir / ".work"  # not a declared Snakemake output, so an interrupted job keeps it
    rt = setup_runtime(device)
    threads = rt.threads(threads)  # this process's share of the job's CPUs
    torch.set_num_threads(threads)

    train_split = PreparedSplit(data_dir / "train.pt")
    val_split = PreparedSplit(data_dir / "val.pt")
    mean = load_result(data_dir / "mean.pt").to(rt.device)
    crop = _crop_size_of(data_dir)
    num_classes = len(train_split.classes)

    spec = with_dropout(spec_from_config(arch, arch_params, num_classes=num_classes, input_size=crop),
                        cfg.dropout)
    torch.manual_seed(seed)
    model = ConvNet(spec)
    init_weights_(model, **cfg.init)
    cuda = rt.device.type == "cuda"
    if cuda:  # the convolutions' shapes never change, so cuDNN's autotuned choice holds for the whole run
        torch.backends.cudnn.benchmark = True
    model.to(rt.device)
    if cfg.channels_last:  # oneDNN's and cuDNN's preferred layout: 1.26x per CPU step (benchmarks/cpu_training.py)
        model.to(memory_format=torch.channels_last)
    autocast = cuda and cfg.amp
    convs = model.conv_layers()

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg.lr_schedule)
    history: list[dict] = []
    start_epoch = 1

    last = work / "last.pt"
    fingerprint = training_fingerprint(arch, spec, cfg, seed, data_dir, rt, arch_params)
    state = resumable_state(last, fingerprint, rt.device) if rt.main else None
    if rt.world > 1:  # the others load the state rank 0 accepted (a stale one it has deleted)
        accepted = [state is not None]
        dist.broadcast_object_list(accepted, src=0)
        if not rt.main and accepted[0]:
            state = load_result(last, map_location=rt.device)
    if state is not None:  # resume after an interruption
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        start_epoch = state["epoch"] + 1
        if rt.main:
            print(f"resuming from {last} after epoch {state['epoch']}", flush=True)

    net: nn.Module = model
    if rt.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if cuda else None)
    if cfg.compile:
        net = torch.compile(net)

    if cfg.batch_size % rt.world:
        raise ConfigError(f"training.batch_size ({cfg.batch_size}) must divide evenly over {rt.world} processes")
    steps_per_epoch = math.ceil(len(train_split) / cfg.batch_size)

    def snapshot(epoch: int) -> dict:
        """A self-contained model file: weights, the spec to rebuild it, and how it was trained."""
        return {"arch": arch, "spec": spec_to_dict(spec), "model": model.state_dict(), "epoch": epoch,
                "classes": train_split.classes, "crop_size": crop, "seed": seed, "training": training_record(cfg)}

    workers = threads if not train_split.in_memory else 0
    epoch_times: list[float] = []  # wall seconds of each epoch run here (training + validation), for the ETA

    for epoch in range(start_epoch, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        torch.manual_seed(dropout_seed(seed, epoch, rt.rank))  # dropout: each process draws its own masks
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))  # data order and crops
        order = torch.randperm(len(train_split), generator=gen)
        crops = torch.randint(10, (len(train_split),), generator=gen)
        if rt.world > 1 and len(order) % cfg.batch_size % rt.world:
            # A last global batch that cannot be split evenly would leave a process without work (DDP hangs).
            order = order[: len(order) - len(order) % cfg.batch_size]
        # Every process walks the same global batches and takes its own slice of each.
        mine = torch.cat([order[s : s + cfg.batch_size][rt.rank :: rt.world]
                          for s in range(0, len(order), cfg.batch_size)])
        my_crops = torch.cat([crops[s : s + cfg.batch_size][rt.rank :: rt.world]
                              for s in range(0, len(order), cfg.batch_size)])
        # One copy of the epoch's crop indices to the device (from pinned memory, not waited for): a copy per
        # step from pageable memory would stall every step until the GPU had caught up.
        my_crops = my_crops.pin_memory().to(rt.device, non_blocking=True) if cuda else my_crops
        local_batch = cfg.batch_size // rt.world

        net.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=rt.device)
        wrong = torch.zeros((), device=rt.device)
        seen = 0
        bar = progress(total=steps_per_epoch, desc=f"{arch} epoch {epoch}/{cfg.epochs}", unit="step",
                       disable=not rt.main)
        batches = train_split.batches(mine, local_batch, workers=workers, pin_memory=cuda, device=rt.device)
        for step, (images, labels) in enumerate(batches):
            idx = my_crops[step * local_batch : step * local_batch + len(labels)]
            x = ten_crop_select(images.to(rt.device, non_blocking=True), mean, crop, idx)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            labels = labels.to(rt.device, non_blocking=True)
            loss, logits = sgd_step(net, optimizer, x, labels, autocast)
            if cfg.filter_radius is not None:
                renormalize_filters_(convs, cfg.filter_radius)

            loss_sum += loss.detach() * len(labels)
            wrong += (logits.detach().argmax(1) != labels).sum()
            seen += len(labels)
            if (step + 1) % DIVERGENCE_CHECK_STEPS == 0 and not _all_finite(loss_sum, rt):
                _diverged(arch, epoch, step, cfg, last, rt)
            bar.update(1)
        bar.close()
        if cuda:  # nothing in the loop waits for the GPU: let its queued steps finish before the clock stops
            torch.cuda.synchronize(rt.device)
        seconds = time.perf_counter() - t0

        totals = torch.stack([loss_sum, wrong, torch.tensor(float(seen), device=rt.device)])
        if rt.world > 1:
            dist.all_reduce(totals)
        if not torch.isfinite(totals[0]):  # the sum over all processes: every one stops here, with one message
            _diverged(arch, epoch, steps_per_epoch, cfg, last, rt)
        train_loss, train_err = (totals[0] / totals[2]).item(), (100 * totals[1] / totals[2]).item()
        val_err = (center_crop_error(model, val_split, mean, crop, rt, 256, autocast, workers=threads)
                   if cfg.validate else math.nan)
        lr = optimizer.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_err)
        elif scheduler is not None:
            scheduler.step()
        history.append({"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_top1_error": train_err,
                        "val_top1_error_center": val_err, "seconds": seconds,
                        "images_per_second": totals[2].item() / seconds})
        if rt.main:
            epoch_times.append(time.perf_counter() - epoch_start)
            mean_epoch, left = sum(epoch_times) / len(epoch_times), cfg.epochs - epoch
            eta = (f"ETA {format_duration(left * mean_epoch)} for {left} more epoch{'s' if left != 1 else ''}"
                   if left else f"training done ({format_duration(sum(epoch_times))} for {len(epoch_times)} "
                                f"epoch{'s' if len(epoch_times) != 1 else ''} in this run)")
            print(f"epoch {epoch}/{cfg.epochs}: loss {train_loss:.4f} train err {train_err:.2f}% "
                  f"val err {val_err:.2f}% lr {lr:.2g} {totals[2].item() / seconds:.0f} img/s; "
                  f"epoch {format_duration(epoch_times[-1])} (mean {format_duration(mean_epoch)}), {eta}",
                  flush=True)
            if epoch in cfg.checkpoint_epochs:
                atomic_torch_save(work / f"epoch{epoch}.pt", snapshot(epoch))
            atomic_torch_save(last, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "scheduler": scheduler.state_dict() if scheduler is not None else {},
                                     "epoch": epoch, "history": history, "fingerprint": fingerprint})
        if rt.world > 1:
            dist.barrier()

    if rt.main:
        _publish(work, out_dir, cfg, history, snapshot(cfg.epochs))
    if rt.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out_dir / "final.pt"


def _publish(work: Path, out_dir: Path, cfg: TrainConfig, history: list[dict], final: dict) -> None:
    """Move the finished run's files to their declared names; the resume state goes last."""
    for epoch in cfg.checkpoint_epochs:
        if epoch <= cfg.epochs:
            move_result(work / f"epoch{epoch}.pt", out_dir / f"epoch{epoch}.pt")
    atomic_write_text(out_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))
    atomic_torch_save(out_dir / "final.pt", final)
    shutil.rmtree(work)


def _crop_size_of(data_dir: Path) -> int:
    import json

    manifest = data_dir / "manifest.json"
    try:
        return int(json.loads(manifest.read_text())["crop_size"])
    except (FileNotFoundError, KeyError) as err:
        raise ConfigError(f"{manifest} has no crop_size: rerun the prepare step (data.crop_size)") from err


# Steps between the in-epoch divergence checks: each reads one flag from the device (a host sync), so they
# are as rare as a log line; the end of every epoch checks as well.
DIVERGENCE_CHECK_STEPS = 100


def _all_finite(loss_sum: torch.Tensor, rt: Runtime) -> bool:
    """Whether the accumulated loss is finite on every process (one all-reduce under DDP, so that all ranks
    agree and stop together instead of one raising while the others wait in the next all-reduce)."""
    finite = torch.isfinite(loss_sum).to(torch.int32)
    if rt.world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def _diverged(arch: str, epoch: int, step: int, cfg: TrainConfig, last: Path, rt: Runtime) -> None:
    """Stop with advice; set the resume state aside so that no rerun continues a run that went astray.

    The resume state is saved after every epoch, so there is one (of epoch - 1) unless the first epoch diverged.
    """
    kept = last.with_name("diverged_last.pt")
    if rt.main and last.exists():
        move_result(last, kept)
    state = (f"the last finite state, after epoch {epoch - 1}, is kept for inspection in {kept}, never resumed"
             if epoch > 1 else "nothing was kept: no state is saved before the first epoch ends")
    raise TrainingError(
        f"training of '{arch}' diverged: the loss became NaN/inf at epoch {epoch}, step {step}. "
        f"Lower training.lr (now {cfg.lr}), keep training.filter_radius set (now {cfg.filter_radius}), "
        f"or change training.init (now {cfg.init}); the next run starts afresh ({state})."
    )


# ---------------------------------------------------------------------------------------------- command line


def configure_train_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--arch-params", required=True, type=json_arg(dict), help="JSON: architectures.<arch>")
    p.add_argument("--train-params", required=True, type=json_arg(dict),
                   help="JSON: the training section (with the architecture's overrides)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def train_command(args: argparse.Namespace) -> None:
    train(data_dir=args.data_dir, arch=args.arch, arch_params=args.arch_params,
          cfg=TrainConfig.from_dict(args.train_params), seed=args.seed, out_dir=args.out_dir, device=args.device,
          threads=args.threads)

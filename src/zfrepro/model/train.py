"""Training as the paper does it (section 3), readable top to bottom.

SGD with momentum, random draws among the ten crops, dropout on layers 6 and 7, weight decay, the filter
renormalization ("feature scale clipping") after every step, and the learning rate divided by 10 when the
validation error plateaus. CPU by default, CUDA (bf16 autocast, channels-last) when present, data-parallel
across processes when started with torchrun (zfrepro.model.runtime). Every epoch leaves a resumable checkpoint
(zfrepro.model.resume).

Laid out as torchvision's reference trainer: `train` sets the run up and walks the epochs, each one
`train_one_epoch` and then the validation error (`center_crop_error`), then the checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from zfrepro.data.preprocess import center_crop, ten_crop_select
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, TrainingError
from zfrepro.io import atomic_torch_save, atomic_write_text, load_result, move_result
from zfrepro.model.architectures import spec_from_config
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.resume import resume, save_resume_state, training_fingerprint
from zfrepro.model.runtime import Runtime, all_finite, distributed, dropout_seed, epoch_seed, my_share, setup_runtime
from zfrepro.model.spec import ArchSpec, spec_to_dict
from zfrepro.model.train_config import LR_SCHEDULE_DEFAULTS, TrainConfig, training_record
from zfrepro.options import json_arg
from zfrepro.progress import format_duration, progress

# Steps between the in-epoch divergence checks: each reads one flag from the device (a host sync), so they
# are as rare as a log line; the end of every epoch checks as well.
DIVERGENCE_CHECK_STEPS = 100


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


# ----------------------------------------------------------------------------------------------------------
# What one run reads


@dataclass(frozen=True)
class TrainingData:
    """The prepared ImageNet a run trains on: both splits, the mean image (on the device) and the crop side."""

    train: PreparedSplit
    val: PreparedSplit
    mean: torch.Tensor
    crop: int

    @classmethod
    def load(cls, data_dir: Path, device: torch.device) -> TrainingData:
        return cls(PreparedSplit(data_dir / "train.pt"), PreparedSplit(data_dir / "val.pt"),
                   load_result(data_dir / "mean.pt").to(device), _crop_size_of(data_dir))


@dataclass(frozen=True)
class Run:
    """What every part of one training run needs to know: which network, how, on which process, and where."""

    arch: str
    cfg: TrainConfig
    seed: int
    rt: Runtime
    work: Path  # the run's files until it ends: not a declared Snakemake output, so an interrupted job keeps it
    threads: int  # this process's share of the job's CPUs

    @property
    def last(self) -> Path:
        """The resume state, saved after every epoch."""
        return self.work / "last.pt"

    @property
    def cuda(self) -> bool:
        return self.rt.device.type == "cuda"

    @property
    def autocast(self) -> bool:
        return self.cuda and self.cfg.amp


@dataclass(frozen=True)
class EpochStats:
    """One epoch's training loss and top-1 error (%) over all processes, its images and its wall seconds."""

    loss: float
    error: float
    images: float
    seconds: float


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
    rt = setup_runtime(device)
    run = Run(arch, cfg, seed, rt, out_dir / ".work", rt.threads(threads))
    torch.set_num_threads(run.threads)
    data = TrainingData.load(data_dir, rt.device)
    spec = with_dropout(spec_from_config(arch, arch_params, num_classes=len(data.train.classes),
                                         input_size=data.crop), cfg.dropout)
    model = build_model(spec, run)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg.lr_schedule)
    fingerprint = training_fingerprint(arch, spec, cfg, seed, data_dir, rt, arch_params)
    start_epoch, history = resume(run.last, fingerprint, rt, model, optimizer, scheduler)
    net = distributed(model, rt)
    if cfg.compile:
        net = torch.compile(net)
    if cfg.batch_size % rt.world:
        raise ConfigError(f"training.batch_size ({cfg.batch_size}) must divide evenly over {rt.world} processes")

    epoch_times: list[float] = []  # wall seconds of each epoch run here (training + validation), for the ETA
    for epoch in range(start_epoch, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        stats = train_one_epoch(net, model.conv_layers(), optimizer, data, epoch, run)
        val_err = (center_crop_error(model, data.val, data.mean, data.crop, rt, 256, run.autocast,
                                     workers=run.threads) if cfg.validate else math.nan)
        lr = optimizer.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_err)
        elif scheduler is not None:
            scheduler.step()
        history.append({"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_top1_error": stats.error,
                        "val_top1_error_center": val_err, "seconds": stats.seconds,
                        "images_per_second": stats.images / stats.seconds})
        if rt.main:
            epoch_times.append(time.perf_counter() - epoch_start)
            log_epoch(epoch, cfg.epochs, stats, val_err, lr, epoch_times)
            if epoch in cfg.checkpoint_epochs:
                atomic_torch_save(run.work / f"epoch{epoch}.pt", model_file(model, epoch, run, data))
            save_resume_state(run.last, model, optimizer, scheduler, epoch, history, fingerprint)
        if rt.world > 1:
            dist.barrier()

    if rt.main:
        publish(run, out_dir, history, model_file(model, cfg.epochs, run, data))
    if rt.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out_dir / "final.pt"


def build_model(spec: ArchSpec, run: Run) -> ConvNet:
    """The network of `spec`, initialised from the run's seed, on the run's device in the layout it trains in."""
    torch.manual_seed(run.seed)
    model = ConvNet(spec)
    init_weights_(model, **run.cfg.init)
    if run.cuda:  # the convolutions' shapes never change, so cuDNN's autotuned choice holds for the whole run
        torch.backends.cudnn.benchmark = True
    model.to(run.rt.device)
    if run.cfg.channels_last:  # oneDNN's and cuDNN's preferred layout: 1.26x per CPU step (benchmarks/cpu_training.py)
        model.to(memory_format=torch.channels_last)
    return model


def train_one_epoch(net: nn.Module, convs: dict[str, nn.Conv2d], optimizer: torch.optim.Optimizer,
                    data: TrainingData, epoch: int, run: Run) -> EpochStats:
    """One pass over this process's share of the training set: a random one of the ten crops of each image, one
    SGD step and the filter renormalization per batch. Stops with advice if the loss diverges."""
    cfg, rt = run.cfg, run.rt
    torch.manual_seed(dropout_seed(run.seed, epoch, rt.rank))  # dropout: each process draws its own masks
    gen = torch.Generator().manual_seed(epoch_seed(run.seed, epoch))  # data order and crops
    order = torch.randperm(len(data.train), generator=gen)
    crops = torch.randint(10, (len(data.train),), generator=gen)
    mine, my_crops = my_share(order, crops, cfg.batch_size, rt)
    # One copy of the epoch's crop indices to the device (from pinned memory, not waited for): a copy per
    # step from pageable memory would stall every step until the GPU had caught up.
    my_crops = my_crops.pin_memory().to(rt.device, non_blocking=True) if run.cuda else my_crops
    local_batch = cfg.batch_size // rt.world
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)

    net.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=rt.device)
    wrong = torch.zeros((), device=rt.device)
    seen = 0
    bar = progress(total=steps_per_epoch, desc=f"{run.arch} epoch {epoch}/{cfg.epochs}", unit="step",
                   disable=not rt.main)
    workers = run.threads if not data.train.in_memory else 0
    batches = data.train.batches(mine, local_batch, workers=workers, pin_memory=run.cuda, device=rt.device)
    for step, (images, labels) in enumerate(batches):
        idx = my_crops[step * local_batch : step * local_batch + len(labels)]
        x = ten_crop_select(images.to(rt.device, non_blocking=True), data.mean, data.crop, idx)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        labels = labels.to(rt.device, non_blocking=True)
        loss, logits = sgd_step(net, optimizer, x, labels, run.autocast)
        if cfg.filter_radius is not None:
            renormalize_filters_(convs, cfg.filter_radius)

        loss_sum += loss.detach() * len(labels)
        wrong += (logits.detach().argmax(1) != labels).sum()
        seen += len(labels)
        if (step + 1) % DIVERGENCE_CHECK_STEPS == 0 and not all_finite(loss_sum, rt):
            _diverged(epoch, step, run)
        bar.update(1)
    bar.close()
    if run.cuda:  # nothing in the loop waits for the GPU: let its queued steps finish before the clock stops
        torch.cuda.synchronize(rt.device)
    seconds = time.perf_counter() - t0

    totals = torch.stack([loss_sum, wrong, torch.tensor(float(seen), device=rt.device)])
    if rt.world > 1:
        dist.all_reduce(totals)
    if not torch.isfinite(totals[0]):  # the sum over all processes: every one stops here, with one message
        _diverged(epoch, steps_per_epoch, run)
    return EpochStats((totals[0] / totals[2]).item(), (100 * totals[1] / totals[2]).item(), totals[2].item(),
                      seconds)


@torch.no_grad()
def center_crop_error(model: nn.Module, split: PreparedSplit, mean: torch.Tensor, crop: int,
                      rt: Runtime, batch_size: int, autocast: bool, workers: int = 0) -> float:
    """Top-1 error (%) of the centre crop over the whole split (stream mode: read and decoded by `workers`
    loader processes, or on the GPU, as the training batches are); the validation error of every epoch.

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
# Logging and the files a run leaves


def log_epoch(epoch: int, epochs: int, stats: EpochStats, val_err: float, lr: float,
              epoch_times: list[float]) -> None:
    """One line per epoch: its metrics, its wall time and the time left."""
    mean_epoch, left = sum(epoch_times) / len(epoch_times), epochs - epoch
    eta = (f"ETA {format_duration(left * mean_epoch)} for {left} more epoch{'s' if left != 1 else ''}"
           if left else f"training done ({format_duration(sum(epoch_times))} for {len(epoch_times)} "
                        f"epoch{'s' if len(epoch_times) != 1 else ''} in this run)")
    print(f"epoch {epoch}/{epochs}: loss {stats.loss:.4f} train err {stats.error:.2f}% "
          f"val err {val_err:.2f}% lr {lr:.2g} {stats.images / stats.seconds:.0f} img/s; "
          f"epoch {format_duration(epoch_times[-1])} (mean {format_duration(mean_epoch)}), {eta}",
          flush=True)


def model_file(model: ConvNet, epoch: int, run: Run, data: TrainingData) -> dict:
    """A self-contained model file: weights, the spec to rebuild it, and how it was trained."""
    return {"arch": run.arch, "spec": spec_to_dict(model.spec), "model": model.state_dict(), "epoch": epoch,
            "classes": data.train.classes, "crop_size": data.crop, "seed": run.seed,
            "training": training_record(run.cfg)}


def publish(run: Run, out_dir: Path, history: list[dict], final: dict) -> None:
    """Move the finished run's files to their declared names; the resume state goes last."""
    for epoch in run.cfg.checkpoint_epochs:
        if epoch <= run.cfg.epochs:
            move_result(run.work / f"epoch{epoch}.pt", out_dir / f"epoch{epoch}.pt")
    atomic_write_text(out_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))
    atomic_torch_save(out_dir / "final.pt", final)
    shutil.rmtree(run.work)


def _crop_size_of(data_dir: Path) -> int:
    manifest = data_dir / "manifest.json"
    try:
        return int(json.loads(manifest.read_text())["crop_size"])
    except (FileNotFoundError, KeyError) as err:
        raise ConfigError(f"{manifest} has no crop_size: rerun the prepare step (data.crop_size)") from err


def _diverged(epoch: int, step: int, run: Run) -> None:
    """Stop with advice; set the resume state aside so that no rerun continues a run that went astray.

    The resume state is saved after every epoch, so there is one (of epoch - 1) unless the first epoch diverged.
    """
    cfg, last = run.cfg, run.last
    kept = last.with_name("diverged_last.pt")
    if run.rt.main and last.exists():
        move_result(last, kept)
    state = (f"the last finite state, after epoch {epoch - 1}, is kept for inspection in {kept}, never resumed"
             if epoch > 1 else "nothing was kept: no state is saved before the first epoch ends")
    raise TrainingError(
        f"training of '{run.arch}' diverged: the loss became NaN/inf at epoch {epoch}, step {step}. "
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

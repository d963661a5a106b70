"""Devices and processes of a training run: the device, the DDP process group torchrun starts, each process's
share of the CPUs, and the per-epoch, per-rank seeds that make a run (and a resumed one) reproducible."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from zfrepro.errors import ConfigError


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


def distributed(model: nn.Module, rt: Runtime) -> nn.Module:
    """The model as the training steps call it: wrapped in DistributedDataParallel under torchrun."""
    if rt.world == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda"
                                               else None)


def all_finite(loss_sum: torch.Tensor, rt: Runtime) -> bool:
    """Whether the accumulated loss is finite on every process (one all-reduce under DDP, so that all ranks
    agree and stop together instead of one raising while the others wait in the next all-reduce)."""
    finite = torch.isfinite(loss_sum).to(torch.int32)
    if rt.world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch reseeds all randomness, so a resumed run follows the uninterrupted one exactly."""
    return seed * 100_003 + epoch


def dropout_seed(seed: int, epoch: int, rank: int) -> int:
    """The global RNG's seed (dropout) of one process in one epoch: epoch_seed on rank 0 (so one process trains
    as it always has), a 32-bit mix of it and the rank elsewhere, so that ranks draw different masks (the CPU
    generator keeps only 32 bits of a seed: adding the rank in high bits would change nothing)."""
    base = epoch_seed(seed, epoch)
    return base if rank == 0 else zlib.crc32(f"{base}/{rank}".encode())


def my_share(order: torch.Tensor, crops: torch.Tensor, batch_size: int, rt: Runtime) -> tuple[torch.Tensor, ...]:
    """This process's images and crop choices of an epoch: every process walks the same global batches and takes
    its own slice of each. A last global batch that cannot be split evenly is dropped under DDP, since it would
    leave a process without work (DDP hangs)."""
    if rt.world > 1 and len(order) % batch_size % rt.world:
        order = order[: len(order) - len(order) % batch_size]
    mine = torch.cat([order[s : s + batch_size][rt.rank :: rt.world] for s in range(0, len(order), batch_size)])
    my_crops = torch.cat([crops[s : s + batch_size][rt.rank :: rt.world] for s in range(0, len(order), batch_size)])
    return mine, my_crops

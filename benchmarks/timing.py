"""Timing shared by the benchmarks: wall-clock seconds of a call (complete on CUDA), best of several rounds."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def seconds(run: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of `run()`, with CUDA work finished before the clock starts and stops."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def best_of(runs: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """One warm-up call of each run, then `repeats` rounds taking turns; the fastest seconds of each."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(seconds(run, device))
    return {name: min(t) for name, t in times.items()}

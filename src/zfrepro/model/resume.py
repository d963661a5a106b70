"""Resuming a training run: only a saved state of this exact configuration is continued.

The trainer saves a state after every epoch; a rerun continues it if the fingerprint (everything that determines
the weights) is unchanged, and otherwise deletes it, naming the config keys that changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from zfrepro.errors import DataError
from zfrepro.io import atomic_torch_save, load_json_result, load_result, recorded_checksum, sha256_of
from zfrepro.model.runtime import Runtime
from zfrepro.model.spec import ArchSpec, spec_to_dict
from zfrepro.model.train_config import TrainConfig, training_record

# Bump when a change to the training code makes the same configuration train differently: a saved resume state
# of the old code must then not be continued by the new one.
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


def resume(last: Path, fingerprint: dict, rt: Runtime, model: nn.Module, optimizer: torch.optim.Optimizer,
           scheduler: Any) -> tuple[int, list[dict]]:
    """Load the saved state of an interrupted run of this configuration into the model, optimizer and scheduler;
    (the first epoch to run, the metrics of the epochs before it): (1, []) when starting afresh.

    Rank 0 decides; under DDP the others load the state it accepted (a stale one it has deleted).
    """
    state = resumable_state(last, fingerprint, rt.device) if rt.main else None
    if rt.world > 1:
        accepted = [state is not None]
        dist.broadcast_object_list(accepted, src=0)
        if not rt.main and accepted[0]:
            state = load_result(last, map_location=rt.device)
    if state is None:
        return 1, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if rt.main:
        print(f"resuming from {last} after epoch {state['epoch']}", flush=True)
    return state["epoch"] + 1, state["history"]


def save_resume_state(last: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epoch: int,
                      history: list[dict], fingerprint: dict) -> None:
    """The state `resume` continues from: weights, optimizer, schedule, metrics so far and the fingerprint."""
    atomic_torch_save(last, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict() if scheduler is not None else {},
                             "epoch": epoch, "history": history, "fingerprint": fingerprint})

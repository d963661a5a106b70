"""A recorder of the calls that make the host wait for an accelerator, or copy to it from pageable memory.

On a GPU these are the costs a CPU never shows: reading a device value on the host (`.item()`, `bool(t)`,
`int(t)`: aten._local_scalar_dense), ops whose output size depends on the data (nonzero, masked_select, unique:
the host must learn the size), copies back to the host (`.cpu()`, `.tolist()`, `.numpy()`, a device tensor
copied into a host one), and copies onto the device that wait for it or come from pageable memory
(`.to(device)` without non_blocking, `torch.tensor(list, device=...)`).

Which tensors "are on the device" is tracked, not read off `tensor.device`, so that the recorder also works on
a CPU-only machine, where the device is the CPU: a tensor is on the device when it was moved there
(`.to(device)`), created there (`device=` given to a factory), or computed from such a tensor (every
dispatched op passes the mark from its inputs to its outputs and to the arguments it writes). Host-side
bookkeeping (index lists, epoch orders) stays unmarked and is not counted. On CUDA, `is_cuda` marks a tensor
as well, and a non-blocking copy is checked to come from pinned memory.

Events, by kind:
- "sync": a device value read on the host or a data-dependent output size (aten op named);
- "d2h": a copy from the device to the host (a sync too, but one a loop schedules: one per batch of results);
- "h2d_blocking": a copy onto the device that waits, or comes from a Python list (pageable);
- "h2d_async": a non-blocking copy onto the device (on CUDA: checked pinned, else recorded as "h2d_pageable").
Each event records the innermost frame in src/zfrepro (file:line function), for the failure message.
"""

from __future__ import annotations

import collections
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import zfrepro

aten = torch.ops.aten
PACKAGE = str(Path(zfrepro.__file__).resolve().parent)
TORCH_DIR = str(Path(torch.__file__).parent)

# Ops whose result the host must wait for: a value read, or an output whose size depends on the values.
SYNC_OPS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
            aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default, aten.equal.default}
FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.rand, torch.randn, torch.randint,
             torch.randperm, torch.eye, torch.linspace}
TO_HOST = {torch.Tensor.cpu, torch.Tensor.tolist, torch.Tensor.numpy}


@dataclass(frozen=True)
class Event:
    kind: str
    op: str
    site: str


def _site() -> str:
    """The innermost frame of the package (where the call was written), or the innermost frame outside torch."""
    frame = sys._getframe(2)
    fallback = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(PACKAGE):
            return f"{Path(name).relative_to(PACKAGE)}:{frame.f_lineno} {frame.f_code.co_name}"
        if fallback is None and "torch" not in name and "sync_recorder" not in name:
            fallback = f"{Path(name).name}:{frame.f_lineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return fallback or "?"


def _caller_not_torch() -> bool:
    """Whether the factory being handled was called by code outside torch (torch.load builds its tensors with
    device=map_location: on the CPU they are host tensors)."""
    return not sys._getframe(2).f_code.co_filename.startswith(TORCH_DIR)


class _Marks:
    """Tensors on the device, by identity (weak: a freed tensor's id may be reused)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def add(self, t: object) -> None:
        if isinstance(t, torch.Tensor):
            key = id(t)
            self._refs[key] = weakref.ref(t, lambda _, key=key: self._refs.pop(key, None))

    def discard(self, t: object) -> None:
        if isinstance(t, torch.Tensor):
            self._refs.pop(id(t), None)

    def __contains__(self, t: object) -> bool:
        if not isinstance(t, torch.Tensor):
            return False
        if t.is_cuda:
            return True
        ref = self._refs.get(id(t))
        return ref is not None and ref() is t


def _tensors(tree: object) -> list[torch.Tensor]:
    return [t for t in torch.utils._pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]


class _Dispatch(TorchDispatchMode):
    def __init__(self, rec: SyncRecorder):
        super().__init__()
        self.rec = rec

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        inputs = _tensors((args, kwargs))
        on_device = any(t in rec.marks for t in inputs)
        if func in SYNC_OPS and on_device:
            rec.record("sync", str(func.overloadpacket.__name__))
        if func is aten.copy_.default and not rec.inside:  # a device tensor copied into a host one, or back
            dst, src = args[0], args[1]
            if src in rec.marks and dst not in rec.marks:
                rec.record("d2h", "copy_")
            elif dst in rec.marks and src not in rec.marks and src.dim() > 0:
                rec.record("h2d_blocking", "copy_")
        out = func(*args, **kwargs)
        if on_device:
            for t in _tensors(out):
                rec.marks.add(t)
            for arg, schema in zip(args, func._schema.arguments, strict=False):
                if schema.alias_info is not None and schema.alias_info.is_write:
                    rec.marks.add(arg)
        return out


class _Function(TorchFunctionMode):
    def __init__(self, rec: SyncRecorder):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        kind = None
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        mark_result = unmark_result = False
        if func in (torch.Tensor.to, torch.Tensor.cuda) and source is not None:
            if func is torch.Tensor.cuda:
                device, non_blocking = torch.device("cuda"), kwargs.get("non_blocking", False)
            else:
                device, _, non_blocking, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
            if device is not None and device.type == rec.device.type:
                mark_result = True
                if source not in rec.marks:
                    if not non_blocking:
                        kind = "h2d_blocking"
                    elif source.device.type == "cpu" and rec.device.type != "cpu" and not source.is_pinned():
                        kind = "h2d_pageable"
                    else:
                        kind = "h2d_async"
        elif func in TO_HOST and source is not None and source in rec.marks:
            kind, unmark_result = "d2h", True
        elif func in (torch.tensor, torch.as_tensor) and kwargs.get("device") is not None and _caller_not_torch():
            mark_result = True
            if not (args and isinstance(args[0], torch.Tensor) and args[0] in rec.marks):
                kind = "h2d_blocking"
        elif func in FACTORIES and kwargs.get("device") is not None \
                and torch.device(kwargs["device"]).type == rec.device.type and _caller_not_torch():
            mark_result = True  # (torch.load's own factories name the map_location: those tensors stay unmarked)
        if kind is not None:
            rec.record(kind, func.__name__)
        rec.inside += kind is not None
        try:
            out = func(*args, **kwargs)
        finally:
            rec.inside -= kind is not None
        if out is source and (mark_result and source not in rec.marks or unmark_result):
            # On the CPU a move returns its own argument: a copy stands for the tensor a device would hand back,
            # so that the host tensor stays a host tensor (and a device tensor a device one) for what follows.
            out = source.clone()
        if mark_result:
            rec.marks.add(out)
        if unmark_result:
            rec.marks.discard(out)
        return out


class SyncRecorder:
    """Context manager: records Events while active (see the module docstring). `device`: the compute device
    of the code under test (the CPU here; on a GPU machine, cuda)."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.events: list[Event] = []
        self.marks = _Marks()
        self.inside = 0
        self._modes = [_Function(self), _Dispatch(self)]

    def record(self, kind: str, op: str) -> None:
        self.events.append(Event(kind, op, _site()))

    def mark(self, *tensors: torch.Tensor) -> None:
        """Declare tensors to be on the device (e.g. a model's parameters moved there before recording)."""
        for t in tensors:
            self.marks.add(t)

    def counts(self) -> collections.Counter:
        return collections.Counter(e.kind for e in self.events)

    def by_site(self, kind: str) -> collections.Counter:
        return collections.Counter(f"{e.site} ({e.op})" for e in self.events if e.kind == kind)

    def __enter__(self) -> SyncRecorder:
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)

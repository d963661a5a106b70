"""Atomic file writes: a crash never leaves a half-written result that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    return _atomic(path, lambda tmp: torch.save(obj, tmp))


def _existing(path: str | os.PathLike) -> Path:
    """`path` if it exists; else a DataError saying which Snakemake target makes it."""
    if not Path(path).exists():
        raise DataError(f"{path} is missing: run the step that writes it (snakemake {path})")
    return Path(path)


def load_result(path: str | os.PathLike) -> Any:
    """A .pt file the workflow writes (loaded with weights_only=True); if absent, say which target makes it."""
    return torch.load(_existing(path), weights_only=True)


def load_json_result(path: str | os.PathLike) -> Any:
    """A JSON file the workflow writes (metrics, splits, scores); if absent, say which target makes it."""
    return json.loads(_existing(path).read_text())

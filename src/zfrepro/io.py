"""Safe results: atomic writes, a checksum beside each binary result, and loads that name the file at fault.

A crash never leaves a half-written result that looks complete (write to a temporary file, then rename), and a
full disk ends in one line (DiskFullError) with the earlier version of the file intact.
Each `.pt` result gets a sidecar `.<name>.sha256.json` (its SHA-256, size and modification time), so a file damaged
or replaced after its step wrote it is caught when read, and before any job runs (`damaged_results`): a file whose
size differs at once, one whose modification time moved by its SHA-256 (a same-size copy of another seed's model).
This module imports torch only when it saves or loads a tensor file: the workflow's planning imports it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zfrepro.errors import DataError, DiskFullError, disk_full

_UMASK = os.umask(0)
os.umask(_UMASK)
SIDECAR_SUFFIX = ".sha256.json"


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
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if disk_full(err):
            raise DiskFullError(f"no space left on device writing {path}: free space and rerun; nothing finished "
                                "was lost (the file is written whole or not at all)") from None
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """torch.save, atomically, with a checksum sidecar (removed first: a crash leaves no stale checksum)."""
    import torch

    def write(tmp: str) -> None:
        # Through a file object, torch names the archive inside "archive" rather than after the (random)
        # temporary file, so the same result is the same bytes in every run (and has the same checksum).
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    path = Path(path)
    sidecar(path).unlink(missing_ok=True)
    _atomic(path, write)
    record_checksum(path)
    return path


def move_result(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename a result and its checksum sidecar (os.replace: atomic within one file system)."""
    src, dst = Path(src), Path(dst)
    sidecar(dst).unlink(missing_ok=True)
    os.replace(src, dst)
    if sidecar(src).exists():
        os.replace(sidecar(src), sidecar(dst))
    return dst


# ---------------------------------------------------------------------------------------------- checksums


def sidecar(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}{SIDECAR_SUFFIX}")


def sha256_of(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def record_checksum(path: str | os.PathLike, sha256: str | None = None) -> None:
    """Write the sidecar: the file's SHA-256 (`sha256` when the caller has just computed it), size and mtime."""
    path = Path(path)
    stat = path.stat()
    atomic_write_json(sidecar(path), {"file": path.name, "sha256": sha256 or sha256_of(path), "bytes": stat.st_size,
                                      "mtime_ns": stat.st_mtime_ns})


def recorded_checksum(path: str | os.PathLike) -> dict | None:
    """The sidecar's {file, sha256, bytes}, or None for a file written without one (or an unreadable one)."""
    try:
        return json.loads(sidecar(path).read_text())
    except (OSError, ValueError):
        return None


def rewrite_advice(path: Path) -> str:
    """What to type to get a good copy of a damaged or missing result back."""
    path = Path(path)
    if path.parent.name.endswith(".shards"):  # a shard of a stream-mode split (zfrepro.data.shards)
        split = path.parent.with_name(path.parent.name[: -len(".shards")] + ".pt")
        return (f"delete it and its split (rm {path} {split}) and rerun: prepare rewrites the missing shard and "
                "keeps the others")
    return (f"delete it (rm {path}) and rerun: the step that wrote it (snakemake {path}) writes it again, "
            "and the steps after it rerun")


def check_size(path: str | os.PathLike, record: dict | None = None) -> str | None:
    """Cheap check (no reading): a problem sentence if the file's size differs from the recorded one
    (`record`: the sidecar, when the caller has read it already)."""
    path = Path(path)
    record = record or recorded_checksum(path)
    size = path.stat().st_size
    if record is None or size == record["bytes"]:
        return None
    return (f"{path} is damaged: it has {size} bytes but its step wrote {record['bytes']} "
            f"(truncated or overwritten?); {rewrite_advice(path)}")


def verify(path: str | os.PathLike) -> None:
    """Raise a DataError if `path` differs from what its step wrote (size, then SHA-256)."""
    path, record = Path(path), recorded_checksum(path)
    if record is None:  # written before checksums existed, or by hand: nothing to compare with
        return
    problem = check_size(path, record)
    if problem is None and sha256_of(path) != record["sha256"]:
        problem = (f"{path} is damaged: its SHA-256 differs from the one its step recorded in {sidecar(path)}; "
                   f"{rewrite_advice(path)}")
    if problem:
        raise DataError(problem)


def check_content(path: str | os.PathLike) -> str | None:
    """A problem sentence if `path` is not what its step wrote: its size first, then, only when its modification
    time is not the recorded one, its SHA-256. A file found intact after all (touched, or copied back) gets its
    new time recorded, so it is hashed once, not at every start."""
    path = Path(path)
    record = recorded_checksum(path)
    if record is None:
        return None
    if problem := check_size(path, record):
        return problem
    mtime = path.stat().st_mtime_ns
    if record.get("mtime_ns") == mtime:
        return None
    digest = sha256_of(path)
    if digest != record["sha256"]:
        return (f"{path} is damaged: its content differs from what its step wrote (SHA-256 in {sidecar(path)}; "
                f"overwritten, or another file copied over it?); {rewrite_advice(path)}")
    record_checksum(path, sha256=digest)
    return None


def damaged_results(root: str | os.PathLike) -> Iterator[str]:
    """A problem sentence for every result under `root` that differs from what its step wrote (planning time):
    every size is compared, and the content of every file whose modification time moved (`check_content`)."""
    for side in sorted(Path(root).rglob(f".*{SIDECAR_SUFFIX}")):
        path = side.with_name(side.name[1 : -len(SIDECAR_SUFFIX)])
        if path.exists() and (problem := check_content(path)):
            yield problem


# ---------------------------------------------------------------------------------------------- loading


def _existing(path: str | os.PathLike) -> Path:
    """`path` if it exists; else a DataError saying which Snakemake target makes it."""
    if not Path(path).exists():
        raise DataError(f"{path} is missing: run the step that writes it (snakemake {path})")
    return Path(path)


def load_result(path: str | os.PathLike, map_location: Any = None, mmap: bool = False) -> Any:
    """A .pt file the workflow writes, checked against its checksum and loaded with weights_only=True.

    Missing, damaged or unreadable files raise a DataError that names the file and says how to rewrite it.
    """
    import torch

    path = _existing(path)
    verify(path)
    try:
        return torch.load(path, weights_only=True, map_location=map_location, mmap=mmap)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path} cannot be read ({reason}); {rewrite_advice(path)}") from None


def load_json_result(path: str | os.PathLike) -> Any:
    """A JSON file the workflow writes (metrics, splits, scores); if absent or broken, say which file and why."""
    path = _existing(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg}); "
                        f"{rewrite_advice(path)}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_dir_beside(final: Path) -> Path:
    """An empty folder beside `final` (same file system, so the last rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it the permissions mkdir would
    return tmp


def commit_dir(tmp: Path, final: Path) -> Path:
    """Rename the finished folder `tmp` to `final`, replacing an older one (moved aside, then deleted)."""
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / "x")
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    return final

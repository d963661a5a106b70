"""Sharded storage of a prepared split (stream mode): each image decoded from its source file once, stored at
S x S in shard files, and read back in batches without PIL.

A stream-mode split `train.pt` holds the labels and an index; its images live beside it in `train.shards/`:

    00000.bin        the images of rows 0..k-1 back to back, as JPEG (data.shard_format: jpeg) or raw uint8 [3, S, S]
    00000.meta.pt    what the shard's worker wrote: per-image offsets, lengths and CRC-32s, the unreadable
                     files, the shard's share of the mean image, and a fingerprint of its inputs

Why JPEG by default: ImageNet's 1.28M training images at 256 x 256 are 252 GB as raw uint8 but about 25-35 GB
as JPEG at quality 90, a size that fits on a node's local disk and in its page cache; libjpeg-turbo decodes
a 256 x 256 JPEG in about 0.2 ms on one CPU core (benchmarks/data_path.py), and nvJPEG decodes a batch on
the GPU. `raw` trades 8x the disk for no decoding and pixels identical to the memory cache.

Every shard is written by one worker to a temporary file and renamed, then its meta file is written, so a
killed `prepare` keeps its finished shards: a rerun checks each one (fingerprint, size, SHA-256) and only
writes the missing ones. Reading checks every image's CRC-32, so a damaged shard is named, never trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zfrepro.errors import DataError
from zfrepro.io import SIDECAR_SUFFIX, atomic_torch_save, atomic_write_json, load_result, rewrite_advice, sidecar

FORMATS = ("jpeg", "raw")
# torchvision 0.29 (pinned) marks its JPEG codec deprecated in favour of TorchCodec, which is not a dependency;
# the codec works and is what nvJPEG decoding on the GPU goes through.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)
SHARD_CODE_VERSION = 1  # bump when the bytes a shard holds for the same inputs change


def shard_folder(split_path: str | os.PathLike) -> Path:
    """`train.pt` -> `train.shards/`: the folder that holds the images of a stream-mode split."""
    split_path = Path(split_path)
    return split_path.with_name(f"{split_path.stem}.shards")


def encoding_name(fmt: str, quality: int) -> str:
    """How the pixels of a split are stored, in words (the training fingerprint records it)."""
    return f"jpeg q{quality}" if fmt == "jpeg" else "uint8"


# ---------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class ShardJob:
    """One shard to write: the source files of rows `start`.. and which of them enter the mean image."""

    folder: str
    index: int
    start: int
    paths: tuple[str, ...]
    in_mean: tuple[bool, ...]
    size: int
    fmt: str
    quality: int

    @property
    def data_path(self) -> Path:
        return Path(self.folder) / f"{self.index:05d}.bin"

    @property
    def meta_path(self) -> Path:
        return Path(self.folder) / f"{self.index:05d}.meta.pt"

    def fingerprint(self) -> str:
        """A digest of everything that determines the shard's bytes."""
        inputs = [SHARD_CODE_VERSION, self.size, self.fmt, self.quality if self.fmt == "jpeg" else None,
                  list(self.paths), list(self.in_mean)]
        return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()


def finished_shard(job: ShardJob) -> dict | None:
    """The meta of a shard an earlier run finished with the same inputs and intact bytes, else None."""
    if not job.meta_path.exists() or not job.data_path.exists():
        return None
    try:
        meta = load_result(job.meta_path)
    except DataError:
        return None
    if meta.get("fingerprint") != job.fingerprint() or job.data_path.stat().st_size != meta["bytes"]:
        return None
    with open(job.data_path, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != meta["sha256"]:
            return None
    return meta


def encode(array: np.ndarray, fmt: str, quality: int) -> bytes:
    """uint8 [3, S, S] -> the bytes a shard stores for it."""
    if fmt == "raw":
        return np.ascontiguousarray(array).tobytes()
    from torchvision.io import encode_jpeg

    return encode_jpeg(torch.from_numpy(np.ascontiguousarray(array)), quality=quality).numpy().tobytes()


def write_shard(job: ShardJob) -> dict:
    """Decode, resize and crop the job's files, write the shard and its meta; return the meta.

    Runs in a worker process: PIL, numpy and libjpeg only, nothing that starts torch's thread pools.
    A shard finished by an earlier run with the same inputs is kept as it is.
    """
    from zfrepro.data.preprocess import load_rgb, resize_center_crop_array

    done = finished_shard(job)
    if done is not None:
        return {**done, "resumed": True}
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    kept, offsets, lengths, crcs, skipped = [], [], [], [], []
    mean_sum = np.zeros((3, job.size, job.size), dtype=np.int64)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{job.data_path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            position = 0
            for row, (path, in_mean) in enumerate(zip(job.paths, job.in_mean, strict=True)):
                try:
                    array = resize_center_crop_array(load_rgb(path), job.size)
                except DataError as exc:
                    skipped.append((path, str(exc)))
                    continue
                data = encode(array, job.fmt, job.quality)
                out.write(data)
                digest.update(data)
                kept.append(row)
                offsets.append(position)
                lengths.append(len(data))
                crcs.append(zlib.crc32(data))
                position += len(data)
                if in_mean:
                    mean_sum += array
        os.chmod(tmp, 0o644)
        os.replace(tmp, job.data_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    meta = {
        "fingerprint": job.fingerprint(), "file": job.data_path.name, "bytes": position, "sha256": digest.hexdigest(),
        "kept": torch.tensor(kept, dtype=torch.int64), "offsets": torch.tensor(offsets, dtype=torch.int64),
        "lengths": torch.tensor(lengths, dtype=torch.int64), "crc32": torch.tensor(crcs, dtype=torch.int64),
        "skipped": [p for p, _ in skipped], "reasons": [r for _, r in skipped],
        "mean_sum": torch.from_numpy(mean_sum), "mean_count": int(sum(job.in_mean[r] for r in kept)),
    }
    # The same {file, sha256, bytes} sidecar as every result, so planning catches a truncated shard too.
    atomic_write_json(sidecar(job.data_path), {"file": job.data_path.name, "sha256": meta["sha256"],
                                               "bytes": position})
    atomic_torch_save(job.meta_path, meta)
    return {**meta, "resumed": False}


def shard_jobs(paths: Sequence[str], in_mean: Sequence[bool], folder: Path, size: int, fmt: str, quality: int,
               per_shard: int) -> list[ShardJob]:
    """The shards of a split: consecutive runs of `per_shard` rows."""
    return [ShardJob(str(folder), i, start, tuple(str(p) for p in paths[start : start + per_shard]),
                     tuple(bool(m) for m in in_mean[start : start + per_shard]), size, fmt, quality)
            for i, start in enumerate(range(0, len(paths), per_shard))]


def remove_stale(folder: Path, keep: Sequence[ShardJob]) -> None:
    """Delete the files of `folder` that are not shards of `keep` (left by a run with more shards)."""
    if not folder.is_dir():
        return
    wanted = {p.name for job in keep for p in (job.data_path, job.meta_path)}
    wanted |= {sidecar(folder / name).name for name in list(wanted)}
    for path in folder.iterdir():
        if path.name not in wanted and (path.suffix in (".bin", ".pt", ".tmp") or path.name.endswith(SIDECAR_SUFFIX)):
            path.unlink()


def index_of(jobs: Sequence[ShardJob], metas: Sequence[dict], split_path: Path) -> dict[str, Any]:
    """The `shards` entry of a split file: where each kept image lies, and each shard's size and checksum."""
    folder = Path(jobs[0].folder) if jobs else shard_folder(split_path)
    shard = torch.cat([torch.full((len(m["kept"]),), i, dtype=torch.int32) for i, m in enumerate(metas)])
    return {
        "folder": os.path.relpath(folder, split_path.parent),
        "format": jobs[0].fmt if jobs else "jpeg",
        "quality": jobs[0].quality if jobs else None,
        "files": [m["file"] for m in metas],
        "bytes": [int(m["bytes"]) for m in metas],
        "sha256": [m["sha256"] for m in metas],
        "shard": shard,
        "offset": torch.cat([m["offsets"] for m in metas]),
        "length": torch.cat([m["lengths"] for m in metas]),
        "crc32": torch.cat([m["crc32"] for m in metas]),
    }


def subset_index(index: dict[str, Any], rows: torch.Tensor, parent_path: Path, out_path: Path) -> dict[str, Any]:
    """The `shards` entry for rows of a parent split, written at `out_path`: the same shard files, re-pointed."""
    folder = (Path(parent_path).parent / index["folder"]).resolve()
    per_image = {k: index[k][rows].clone() for k in ("shard", "offset", "length", "crc32")}
    return {**index, **per_image, "folder": os.path.relpath(folder, Path(out_path).resolve().parent)}


# ---------------------------------------------------------------------------------------------- reading


class ShardReader:
    """Reads the images of a stream-mode split by row: the stored bytes (CRC-checked) or the decoded uint8 image.

    Opening only compares shard sizes with the index (no reading), so it is cheap at any scale; every read
    checks the image's CRC-32. Both raise a DataError that names the shard and says how to rewrite it.
    Picklable, so DataLoader workers each get their own copy.
    """

    def __init__(self, index: dict[str, Any], split_path: str | os.PathLike, image_size: int):
        self.split_path = Path(split_path)
        self.folder = self.split_path.parent / index["folder"]
        self.format: str = index["format"]
        self.image_size = int(image_size)
        self.files = [self.folder / name for name in index["files"]]
        self.shard = index["shard"].numpy()
        self.offset = index["offset"].numpy()
        self.length = index["length"].numpy()
        self.crc32 = index["crc32"].numpy()
        used = np.unique(self.shard)
        for i in used:
            path, expected = self.files[i], index["bytes"][i]
            if not path.exists():
                raise DataError(f"{path} is missing: the images of {self.split_path} are incomplete; "
                                f"{self._advice(path)}")
            if path.stat().st_size != expected:
                raise DataError(f"{path} is damaged: it has {path.stat().st_size} bytes but prepare wrote {expected}"
                                f"; {self._advice(path)}")

    def _advice(self, path: Path) -> str:
        return rewrite_advice(path)

    def __len__(self) -> int:
        return len(self.shard)

    def read(self, row: int) -> bytes:
        """The stored bytes of image `row`, checked against its CRC-32."""
        path = self.files[self.shard[row]]
        length = int(self.length[row])
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.pread(fd, length, int(self.offset[row]))
        finally:
            os.close(fd)
        if len(data) != length or zlib.crc32(data) != int(self.crc32[row]):
            raise DataError(f"{path} is damaged: image {row} of {self.split_path} fails its CRC-32 check; "
                            f"{self._advice(path)}")
        return data

    def encoded(self, row: int) -> torch.Tensor:
        """The stored bytes of image `row` as a uint8 tensor (for decoding a whole batch on the GPU)."""
        return torch.frombuffer(bytearray(self.read(row)), dtype=torch.uint8)

    def image(self, row: int) -> torch.Tensor:
        """Image `row` decoded: uint8 [3, S, S]."""
        data = self.read(row)
        size = self.image_size
        if self.format == "raw":
            return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(3, size, size)
        from torchvision.io import decode_jpeg

        image = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        if tuple(image.shape) != (3, size, size):
            raise DataError(f"{self.files[self.shard[row]]}: image {row} decodes to {tuple(image.shape)}, expected "
                            f"(3, {size}, {size}); {self._advice(self.files[self.shard[row]])}")
        return image


def decode_batch(encoded: Sequence[torch.Tensor], device: torch.device, image_size: int) -> torch.Tensor:
    """A batch of stored JPEGs decoded on `device` in one call (nvJPEG on CUDA): uint8 [B, 3, S, S]."""
    from torchvision.io import decode_jpeg

    if device.type == "cuda":
        # torchvision 0.29's batched GPU decoder allocates its outputs on the caller's stream but writes them on
        # a private stream that does not wait for it (pytorch/vision#9606): memory the caller's queued work still
        # uses (the previous batch's torch.stack reads freed decoder outputs) could be overwritten before that
        # work runs. Waiting here for the caller's stream (the prefetch thread's, not the training stream) closes it.
        torch.cuda.current_stream(device).synchronize()
    images = decode_jpeg(list(encoded), device=device)
    batch = torch.stack(images)
    if tuple(batch.shape[1:]) != (3, image_size, image_size):
        raise DataError(f"stored images decode to {tuple(batch.shape[1:])}, expected (3, {image_size}, {image_size})")
    return batch

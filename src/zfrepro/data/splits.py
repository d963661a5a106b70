"""A prepared split (`results/data/{dataset}/{split}.pt`) read as batches of uint8 images.

Memory mode holds the decoded images in the split file; stream mode reads them from its shards
(zfrepro.data.shards) in DataLoader workers, which read and decode the next batches while the current one
trains. Both yield the same uint8 [B, 3, S, S] batches, so training and evaluation never care which one it
is. On CUDA, JPEG shards are decoded on the GPU a batch at a time (workers only read bytes); otherwise
workers decode with libjpeg-turbo and the batch is copied from pinned memory.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from zfrepro.data.shards import ShardReader, decode_batch
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import load_result


class ShardImages(Dataset):
    """DataLoader items of a stream-mode split: (decoded uint8 [3, S, S], label), or (stored bytes, label)."""

    def __init__(self, reader: ShardReader, labels: torch.Tensor, decode: bool):
        self.reader, self.labels, self.decode = reader, labels, decode

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.reader.image(row) if self.decode else self.reader.encoded(row)
        return image, self.labels[row]


def encoded_batch(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Collate stored JPEGs of unequal lengths: their bytes joined into one uint8 tensor, the offsets [B + 1] of
    each image in it, and the stacked labels. One tensor crosses from the worker, not one per image: each costs
    a shared-memory file and its handshake (benchmarks/data_path.py, "feeding a GPU", measures the difference)."""
    lengths = torch.tensor([len(image) for image, _ in items], dtype=torch.int64)
    offsets = torch.zeros(len(items) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    return torch.cat([image for image, _ in items]), offsets, torch.stack([label for _, label in items])


def joined_images(data: torch.Tensor, offsets: torch.Tensor) -> list[torch.Tensor]:
    """The per-image byte tensors (views, no copy) of a batch joined by encoded_batch."""
    bounds = offsets.tolist()
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


class PreparedSplit:
    """One split written by `zfrepro prepare`: labels, class names and the images (in memory or in shards)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        self.data = load_result(path)
        self.classes: list[str] = list(self.data["classes"])
        self.labels: torch.Tensor = self.data["labels"]
        self.image_size: int = int(self.data["image_size"])
        self.in_memory = "images" in self.data
        self.reader: ShardReader | None = None
        if not self.in_memory:
            if "shards" not in self.data:
                raise DataError(f"{path} was written by an older version of prepare (a list of files, no shards); "
                                f"delete it (rm {path}) and rerun the step that writes it (snakemake {path})")
            self.reader = ShardReader(self.data["shards"], path, self.image_size)
            if len(self.reader) != len(self.labels):
                raise DataError(f"{path} indexes {len(self.reader)} stored images for {len(self.labels)} labels; "
                                f"delete it (rm {path}) and rerun the step that writes it (snakemake {path})")

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self,
        order: Sequence[int] | torch.Tensor,
        batch_size: int,
        workers: int = 0,
        pin_memory: bool = False,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 images, int64 labels) over `order` in chunks of `batch_size`, keeping the order.

        With a CUDA `device`, stream-mode JPEG batches are decoded there (and returned there); every other
        batch is returned on the CPU (pinned with `pin_memory`) for the caller to move.
        """
        order = torch.as_tensor(order, dtype=torch.long)
        device = torch.device(device) if device is not None else None
        cuda = device is not None and device.type == "cuda"
        if self.in_memory:
            gathered = self._memory_batches(order, batch_size, pin_memory)
            # On CUDA: gathered into pinned memory and copied by a background thread, a batch or two ahead.
            yield from prefetched(_moved(gathered, device), device) if cuda else gathered
            return
        assert self.reader is not None
        on_gpu = cuda and self.reader.format == "jpeg"
        chunks = [order[s : s + batch_size].tolist() for s in range(0, len(order), batch_size)]
        loader = DataLoader(
            ShardImages(self.reader, self.labels, decode=not on_gpu),
            batch_sampler=chunks,
            num_workers=workers,
            pin_memory=pin_memory and not on_gpu,
            collate_fn=encoded_batch if on_gpu else None,
            # Its own generator: seeding workers from the global RNG would shift the dropout draws.
            generator=torch.Generator(),
            persistent_workers=False,
        )
        if not on_gpu:
            yield from loader
            return
        decoded = ((decode_batch(joined_images(data, offsets), device, self.image_size),
                    labels.pin_memory().to(device, non_blocking=True)) for data, offsets, labels in loader)
        yield from prefetched(decoded, device)

    def _memory_batches(self, order: torch.Tensor, batch_size: int,
                        pin_memory: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images = self.data["images"]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = images[idx], self.labels[idx]
            yield tuple(t.pin_memory() for t in batch) if pin_memory else batch


def _moved(batches: Iterator[tuple[torch.Tensor, ...]], device: torch.device) -> Iterator[tuple[torch.Tensor, ...]]:
    """Each batch's tensors copied to `device` without waiting (from pinned memory: a real asynchronous copy)."""
    for batch in batches:
        yield tuple(t.to(device, non_blocking=True) for t in batch)


def prefetched(batches: Iterator[Any], device: torch.device | None = None, depth: int = 2) -> Iterator[Any]:
    """The items of `batches`, produced by a background thread up to `depth` ahead of the consumer.

    On CUDA the thread works on its own stream (the GPU decode of the next batch overlaps the current step),
    and the consumer's stream waits for each batch before using it. Exceptions reach the consumer in order.
    """
    cuda = device is not None and device.type == "cuda"
    side = torch.cuda.Stream(device) if cuda else None
    # The thread's own current device starts at GPU 0: without setting it, rank k of a DDP job would open a
    # context (and allocate) on GPU 0 for every kernel the thread launches without an explicit device.
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            if cuda:
                torch.cuda.set_device(index)
            with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
                for item in batches:
                    ready = torch.cuda.Event() if cuda else None
                    if ready is not None:
                        ready.record(side)
                    while not stop.is_set():
                        try:
                            items.put((item, ready, None), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
        except BaseException as exc:  # handed to the consumer, which raises it
            items.put((None, None, exc))
            return
        items.put((end, None, None))

    thread = threading.Thread(target=produce, daemon=True, name="zfrepro-prefetch")
    thread.start()
    try:
        while True:
            item, ready, exc = items.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            if ready is not None:
                stream = torch.cuda.current_stream(device)
                stream.wait_event(ready)
                for tensor in item if isinstance(item, tuple) else (item,):
                    if isinstance(tensor, torch.Tensor) and tensor.is_cuda:
                        tensor.record_stream(stream)  # the caching allocator must not reuse it under us
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def images_by_class(split: PreparedSplit, specs: Any, key: str) -> list[int]:
    """Split indices of [{wnid, nth}, ...]: the nth (0-based) validation image of class wnid, in split order."""
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{key}: expected a non-empty list of {{wnid, nth}}, got {specs!r}")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"wnid", "nth"}:
            raise ConfigError(f"{key}[{i}]: expected {{wnid: ..., nth: ...}}, got {spec!r}")
        wnid, nth = spec["wnid"], spec["nth"]
        if wnid not in split.classes:
            shown = ", ".join(split.classes[:8]) + (", ..." if len(split.classes) > 8 else "")
            raise ConfigError(f"{key}[{i}].wnid: {wnid!r} is not a class of {split.path} ({shown})")
        members = (split.labels == split.classes.index(wnid)).nonzero().flatten()
        if isinstance(nth, bool) or not isinstance(nth, int) or not 0 <= nth < len(members):
            raise ConfigError(f"{key}[{i}].nth: {nth!r} must be an integer in 0..{len(members) - 1} "
                              f"({len(members)} validation images of {wnid})")
        out.append(int(members[nth]))
    return out


def sample_by_class(split: PreparedSplit, n: int, exclude: Sequence[int] = ()) -> list[int]:
    """n split indices spread over the classes: the first image of every class (in class order), then the
    second of every class, and so on, leaving out `exclude`. Deterministic: a fixed sample for statistics
    over more images than a figure shows."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"sample: expected an integer >= 0, got {n!r}")
    members = [(split.labels == c).nonzero().flatten().tolist() for c in range(len(split.classes))]
    skip, out = set(int(i) for i in exclude), []
    for nth in range(max((len(m) for m in members), default=0)):
        for m in members:
            if len(out) == n:
                return out
            if nth < len(m) and m[nth] not in skip:
                out.append(m[nth])
    return out


def class_names(data_dir: str | Path, wnids: Sequence[str]) -> list[str]:
    """Readable names of `wnids` from the prepared manifest (the wnid itself where it has none)."""
    path = Path(data_dir) / "manifest.json"
    names: dict[str, str] = {}
    if path.exists():
        manifest = json.loads(path.read_text())
        names = dict(zip(manifest.get("classes", []), manifest.get("class_names", []), strict=False))
    return [names.get(w, w) for w in wnids]


# ---------------------------------------------------------------------------------------------- measurement

"""A prepared split (`results/data/{dataset}/{split}.pt`) read as batches of uint8 images.

Cache mode holds the decoded images in memory; stream mode decodes files with DataLoader workers.
Both yield the same uint8 [B, 3, S, S] batches, so training and evaluation never care which one it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from zfrepro.data.preprocess import StreamDataset
from zfrepro.errors import ConfigError
from zfrepro.io import load_result


class PreparedSplit:
    """One split written by `zfrepro prepare`: labels, class names and either images or file paths."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        self.data = load_result(path)
        self.classes: list[str] = list(self.data["classes"])
        self.labels: torch.Tensor = self.data["labels"]
        self.image_size: int = int(self.data["image_size"])
        self.in_memory = "images" in self.data

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self, order: Sequence[int] | torch.Tensor, batch_size: int, workers: int = 0, pin_memory: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 images, int64 labels) over `order` in chunks of `batch_size`, keeping the order."""
        order = torch.as_tensor(order, dtype=torch.long)
        if self.in_memory:
            images = self.data["images"]
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                yield images[idx], self.labels[idx]
            return
        dataset = StreamDataset(self.data)
        chunks = [order[s : s + batch_size].tolist() for s in range(0, len(order), batch_size)]
        loader = DataLoader(
            dataset,
            batch_sampler=chunks,
            num_workers=workers,
            pin_memory=pin_memory,
            # Its own generator: seeding workers from the global RNG would shift the dropout draws.
            generator=torch.Generator(),
        )
        yield from loader


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


def class_names(data_dir: str | Path, wnids: Sequence[str]) -> list[str]:
    """Readable names of `wnids` from the prepared manifest (the wnid itself where it has none)."""
    path = Path(data_dir) / "manifest.json"
    names: dict[str, str] = {}
    if path.exists():
        manifest = json.loads(path.read_text())
        names = dict(zip(manifest.get("classes", []), manifest.get("class_names", []), strict=False))
    return [names.get(w, w) for w in wnids]


# ---------------------------------------------------------------------------------------------- measurement

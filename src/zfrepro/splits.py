"""A prepared split (`results/data/{dataset}/{split}.pt`) read as batches of uint8 images.

Cache mode holds the decoded images in memory; stream mode decodes files with DataLoader workers.
Both yield the same uint8 [B, 3, S, S] batches, so training and evaluation never care which one it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .errors import DataError
from .preprocess import StreamDataset


class PreparedSplit:
    """One split written by `zfrepro prepare`: labels, class names and either images or file paths."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.exists():
            raise DataError(f"prepared split {path} is missing: run the prepare step (snakemake {path})")
        self.path = path
        self.data = torch.load(path, weights_only=True)
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

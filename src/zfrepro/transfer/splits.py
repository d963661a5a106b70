"""The random train/test splits of a prepared Caltech set: nested training sets (size n is the first n of a
per-class permutation) and one test set per split, the same for every n (paper section 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from zfrepro.errors import ConfigError, DataError


def positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return int(value)


def _check_sizes(sizes: Any, key: str) -> list[int]:
    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not sizes:
        raise ConfigError(f"{key}: expected a non-empty list of training images per class, got {sizes!r}")
    return sorted({positive_int(n, f"{key}[{i}]") for i, n in enumerate(sizes)})


def make_splits(labels: Sequence[int] | torch.Tensor | np.ndarray, classes: Sequence[str], sizes: Sequence[int],
                n_splits: int, test_per_class: int, seed: int, key: str, dataset: str | None = None) -> dict:
    """Random train/test splits of a single-label dataset (JSON-ready, indices into its prepared split).

    For split s and class c the class's indices are permuted with default_rng([seed, s, c]); the training set
    of size n is the first n of that permutation (so sizes are nested) and the test set is the next
    `test_per_class` after the largest size (fewer when the class is smaller: the paper's "up to 50").
    A class with no more images than the largest size raises ConfigError naming `key`.
    """
    sizes = _check_sizes(sizes, key)
    n_splits = positive_int(n_splits, "transfer.splits")
    # fig9_sizes shares the Caltech-256 test size, so only a <dataset>.train_sizes key tells the section.
    section = key.rsplit(".", 1)[0] if key.endswith(".train_sizes") else f"transfer.{dataset or '<dataset>'}"
    test_per_class = positive_int(test_per_class, f"{section}.test_per_class")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"transfer.seed: expected an integer >= 0, got {seed!r}")
    y = np.asarray(torch.as_tensor(labels).numpy() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    if y.ndim != 1:
        raise DataError(f"make_splits needs one label per image, got labels of shape {list(y.shape)} (multi-label?)")
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(f"labels lie in {y.min()}..{y.max()} but there are {len(classes)} classes")
    largest = sizes[-1]
    members = [np.flatnonzero(y == c) for c in range(len(classes))]
    for c, idx in enumerate(members):
        if len(idx) <= largest:
            raise ConfigError(f"{key}: class {classes[c]!r} has {len(idx)} images, but training on {largest} per "
                              f"class needs at least {largest + 1} (one left to test); lower the sizes or drop "
                              "the class")
    splits = []
    for s in range(n_splits):
        perms = [np.random.default_rng([int(seed), s, c]).permutation(idx) for c, idx in enumerate(members)]
        train = {str(n): sorted(int(i) for perm in perms for i in perm[:n]) for n in sizes}
        test = sorted(int(i) for perm in perms for i in perm[largest:largest + test_per_class])
        splits.append({"train": train, "test": test})
    return {"dataset": dataset, "seed": int(seed), "sizes": sizes, "test_per_class": test_per_class,
            "classes": [str(c) for c in classes], "splits": splits}

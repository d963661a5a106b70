"""The study's datasets, named once: the role each plays and what the paper calls it.

The name is the dataset's folder, its config keys (`data.<name>_root`, `synthetic.<name>`, `transfer.<name>`)
and its value on the command line; the generator, the loaders, the transfer study, the tables and the
workflow all take their lists from here. The order is fixed: the generator's class catalogue deals its
object classes to the datasets in this order, so reordering would change the generated data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str  # as the paper prints it
    role: str  # "pretraining" (the network is trained on it) or "transfer" (its features are reused)
    layout: str  # "imagenet", "caltech" or "voc": the on-disk layout, its loader and its generator


DATASETS = {d.name: d for d in (
    Dataset("imagenet", "ImageNet 2012", "pretraining", "imagenet"),
    Dataset("caltech101", "Caltech-101", "transfer", "caltech"),
    Dataset("caltech256", "Caltech-256", "transfer", "caltech"),
    Dataset("voc", "PASCAL VOC 2012", "transfer", "voc"),
)}
TRANSFER = tuple(name for name, d in DATASETS.items() if d.role == "transfer")
CALTECH = tuple(name for name, d in DATASETS.items() if d.layout == "caltech")

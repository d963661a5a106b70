"""Import published weights: a released state dict becomes the project's checkpoint (models/{arch}/seed{seed}/final.pt).

The checkpoint is the one `train` writes (weights, spec, classes, crop size), plus where the weights came from (the
file's SHA-1 and whether it equals the published one) and the preprocessing the network was trained with, so that
evaluation and every analysis feed it what it saw in training (spec.ArchSpec.input_mean / input_std).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save
from zfrepro.model.network import ConvNet
from zfrepro.model.published import STATE_KEYS, Published, published
from zfrepro.model.spec import CLASSIFIER, num_parameters, spec_to_dict


def file_digest(path: str | Path, algorithm: str = "sha1") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_matches(path: str | Path, entry: Published) -> bool:
    """Whether the file's digest is the published one (torchvision publishes a prefix of the SHA-256)."""
    return file_digest(path, entry.hash_algorithm).startswith(entry.checksum)


def read_state_dict(path: str | Path, entry: Published) -> Mapping[str, torch.Tensor]:
    """The file's state dict (torch.load with weights_only=True: a weights file runs no code)."""
    path = Path(path)
    expected = f"a {entry.format} state dict of {entry.name}"
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected {expected} (`zfrepro fetch-weights {entry.name}` gets it)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors alike for a file that is not its own
        raise DataError(f"{path}: cannot be read as a PyTorch file ({type(err).__name__}); "
                        f"expected {expected}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a mapping of tensors; expected {expected}")
    return state


def convert_state_dict(state: Mapping[str, torch.Tensor], entry: Published, path: str | Path = "weights",
                       input_size: int | None = None) -> tuple[ConvNet, dict[str, torch.Tensor]]:
    """The project's network for `entry` with the file's weights: (model, its state dict).

    The number of classes is read from the classifier's weights (a network trained on other classes keeps its own);
    the first key of the file that is unknown, missing or of another shape is named in one line (DataError).
    """
    keys = STATE_KEYS[entry.format]
    expected = f"expected {entry.format}'s {entry.name} state dict (keys {', '.join(list(keys)[:2])}, ...)"
    classifier = next(theirs for theirs, ours in keys.items() if ours == f"{CLASSIFIER}.weight")
    weight = state.get(classifier)
    if weight is None or weight.dim() != 2:
        raise DataError(f"{path}: key {classifier!r} {'is missing' if weight is None else 'is not a matrix'}; "
                        f"{expected}")
    spec = entry.build(int(weight.shape[0]), input_size or entry.preprocessing.crop)
    model = ConvNet(spec)
    target = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for theirs, tensor in state.items():
        ours = keys.get(theirs)
        if ours is None:
            raise DataError(f"{path}: unexpected key {theirs!r}; {expected}")
        if tuple(tensor.shape) != tuple(target[ours].shape):
            raise DataError(f"{path}: key {theirs!r} has shape {list(tensor.shape)}, {entry.name} at "
                            f"{spec.input_size} px needs {list(target[ours].shape)}; {expected}")
        converted[ours] = tensor.to(torch.float32)
    missing = [theirs for theirs in keys if theirs not in state]
    if missing:
        raise DataError(f"{path}: key {missing[0]!r} is missing; {expected}")
    model.load_state_dict(converted)
    return model.eval(), model.state_dict()


def check_sizes(entry: Published, image_size: int | None, crop_size: int | None) -> None:
    """The data's sizes must be those the network was trained with: other crops see another field of view."""
    pre = entry.preprocessing
    for key, given, wanted in (("data.image_size", image_size, pre.resize), ("data.crop_size", crop_size, pre.crop)):
        if given is not None and given != wanted:
            raise ConfigError(f"{key} is {given}, but {entry.name} was trained on {pre.crop} px crops of images "
                              f"resized to {pre.resize} px: set {key}: {wanted} for published weights")


def import_weights(name: str, weights: str | Path, out: str | Path, arch: str | None = None, seed: int = 0,
                   input_size: int | None = None, classes: list[str] | None = None,
                   image_size: int | None = None) -> dict[str, Any]:
    """Convert the published file `weights` of network `name` into a checkpoint at `out`; returns its record.

    `classes`: the class names in the network's output order (ImageNet's WordNet ids, sorted, for the published
    files), or None when unknown. `image_size`, `input_size`: the data's, checked against the preprocessing.
    """
    entry = published(name)
    check_sizes(entry, image_size, input_size)
    model, state = convert_state_dict(read_state_dict(weights, entry), entry, weights, input_size)
    spec = model.spec
    if arch is not None:
        spec = dataclasses.replace(spec, name=arch)
    if classes is not None and len(classes) != spec.num_classes:
        raise DataError(f"{weights}: the network has {spec.num_classes} outputs but the data have {len(classes)} "
                        "classes; import weights trained on these classes, or use the dataset they were trained on")
    sha1 = file_digest(weights, "sha1")
    record = {"file": str(weights), "sha1": sha1, "checksum_matches_published": checksum_matches(weights, entry),
              **entry.provenance()}
    checkpoint = {"arch": arch or entry.name, "spec": spec_to_dict(spec), "model": state, "epoch": None,
                  "classes": classes, "crop_size": spec.input_size, "seed": seed, "published": record,
                  "preprocessing": entry.preprocessing.as_dict()}
    atomic_torch_save(out, checkpoint)
    return {**record, "parameters_in_file": num_parameters(spec), "out": str(out)}

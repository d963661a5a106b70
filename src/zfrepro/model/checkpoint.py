"""A trained model back from its checkpoint, and what every analysis of it starts from."""

from __future__ import annotations

from pathlib import Path

import torch

from zfrepro.data.splits import PreparedSplit
from zfrepro.io import load_result
from zfrepro.model.network import ConvNet
from zfrepro.model.spec import ArchSpec, spec_from_dict


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ConvNet, dict]:
    """Rebuild a model from a checkpoint written by `train` (loaded with weights_only=True)."""
    ckpt = load_result(path, map_location=device)
    model = ConvNet(spec_from_dict(ckpt["spec"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def network_mean(spec: ArchSpec, data_mean: torch.Tensor) -> torch.Tensor:
    """The mean image a network's inputs are taken from: the data's mean image (the paper's networks), or for a
    network with a per-channel input_mean (published weights) that constant image, same shape and device."""
    if spec.input_mean is None:
        return data_mean
    channel = torch.tensor(spec.input_mean, dtype=data_mean.dtype, device=data_mean.device)
    return channel.view(-1, 1, 1).expand_as(data_mean).clone()


def open_inputs(model_path: str | Path, data_dir: str | Path, split: str = "val") -> tuple:
    """(model, checkpoint, prepared split, mean image): what every analysis of a trained model starts from.
    The mean image is the one the network was trained with (network_mean)."""
    model, ckpt = load_model(model_path)
    data_dir = Path(data_dir)
    mean = network_mean(model.spec, load_result(data_dir / "mean.pt"))
    return model, ckpt, PreparedSplit(data_dir / f"{split}.pt"), mean

"""A trained model back from its checkpoint, and what every analysis of it starts from."""

from __future__ import annotations

from pathlib import Path

import torch

from zfrepro.data.splits import PreparedSplit
from zfrepro.io import load_result
from zfrepro.model.network import ConvNet, spec_from_dict


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ConvNet, dict]:
    """Rebuild a model from a checkpoint written by `train` (loaded with weights_only=True)."""
    ckpt = load_result(path, map_location=device)
    model = ConvNet(spec_from_dict(ckpt["spec"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def open_inputs(model_path: str | Path, data_dir: str | Path, split: str = "val") -> tuple:
    """(model, checkpoint, prepared split, mean image): what every analysis of a trained model starts from."""
    model, ckpt = load_model(model_path)
    data_dir = Path(data_dir)
    return model, ckpt, PreparedSplit(data_dir / f"{split}.pt"), load_result(data_dir / "mean.pt")

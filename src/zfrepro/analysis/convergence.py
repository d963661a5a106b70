"""Claim 9 in numbers (Fig 4): the lower layers' features settle within a few epochs, the upper ones later.

Fig 4 shows it as pictures: the strongest activation of a few maps at each kept epoch. The number here is
how similar each conv layer's representation at a kept epoch is to its final one: linear CKA (centred kernel
alignment, Kornblith et al. 2019) between the layer's features at epoch e and at the last epoch, over the
same fixed validation images (centre crops). CKA is 1 when the two representations are the same up to a
rotation and a scale, near 0 when unrelated; it compares layers of any width. Every seed of the network
that kept epoch checkpoints gives its own curve, so the spread over seeds is the noise.

  gram(X)       X X^T for features X [n, D] whose columns are centred (each feature's mean over the images
                removed): the centred linear kernel, [n, n].
  cka(K, L)     <K, L> / (||K|| ||L||) (Frobenius) for two centred Gram matrices of the same images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from zfrepro.analysis.mining import iter_conv_outputs, load_images
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError
from zfrepro.io import load_result
from zfrepro.model.checkpoint import load_model


def gram(features: torch.Tensor) -> torch.Tensor:
    """Centred linear kernel [n, n] (float64) of features [n, ...] (flattened per image)."""
    x = features.flatten(1).double()
    x = x - x.mean(dim=0, keepdim=True)
    return x @ x.T


def cka(k: torch.Tensor, l: torch.Tensor) -> float:  # noqa: E741 (the usual names of the two kernels)
    """Linear CKA of two centred Gram matrices of the same images; 0 when either has no variance."""
    norm = float(k.norm() * l.norm())
    return float((k * l).sum()) / norm if norm > 0 else 0.0


@torch.no_grad()
def layer_grams(model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str], batch_size: int = 256) -> dict:
    """{layer: centred Gram [n, n]} of each conv block's output for inputs x [n, 3, s, s]."""
    outputs: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(x), batch_size):
        for name, out in iter_conv_outputs(model, x[start:start + batch_size], layers):
            outputs[name].append(out.flatten(1).float().cpu())
    return {layer: gram(torch.cat(parts)) for layer, parts in outputs.items()}


def sample_indices(count: int, images: int | None, seed: int) -> torch.Tensor:
    """A fixed random subset of `images` of `count` validation images (all for None), sorted."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[: images or count].sort().values


def convergence_data(checkpoints: Mapping[int, Mapping[int, str | Path]], data_dir: str | Path,
                     images: int | None, seed: int, device: str | torch.device = "cpu",
                     batch_size: int = 256) -> dict[str, Any]:
    """For each seed {epoch: checkpoint} (its last epoch the final model): CKA of every conv layer between
    each earlier epoch and the last one, as "cka" [seeds, epochs, layers] (float64)."""
    if not checkpoints:
        raise ConfigError("convergence: no checkpoints (training.checkpoint_epochs keeps the epochs it compares)")
    epochs = sorted({int(e) for kept in checkpoints.values() for e in kept})
    for s, kept in checkpoints.items():
        if sorted(int(e) for e in kept) != epochs:
            raise ConfigError(f"convergence: seed {s} kept epochs {sorted(kept)}, the others {epochs}; every seed "
                              "of the network must keep the same epochs (training.checkpoint_epochs)")
    if len(epochs) < 2:
        raise ConfigError("convergence: only the final epoch is kept; set training.checkpoint_epochs to earlier "
                          "epochs (Fig 4's columns)")
    split = PreparedSplit(Path(data_dir) / "val.pt")
    mean = load_result(Path(data_dir) / "mean.pt")
    chosen = sample_indices(len(split), images, seed)
    seeds = sorted(int(s) for s in checkpoints)
    layers: list[str] | None = None
    inputs: dict[int, torch.Tensor] = {}  # crop size -> the chosen images, cut once
    values = []
    for s in seeds:
        kept = {int(e): path for e, path in checkpoints[s].items()}
        grams = {}
        for epoch in epochs:
            model, ckpt = load_model(kept[epoch], device)
            layers = layers or [c.name for c in model.spec.convs]
            crop = int(ckpt["crop_size"])
            if crop not in inputs:
                inputs[crop] = center_crop(load_images(split, chosen), mean, crop).to(device)
            grams[epoch] = layer_grams(model, inputs[crop], layers, batch_size)
        final = grams[epochs[-1]]
        values.append([[cka(grams[e][layer], final[layer]) for layer in layers] for e in epochs[:-1]])
    return {"cka": torch.tensor(values, dtype=torch.float64), "seeds": seeds, "epochs": epochs[:-1],
            "final_epoch": epochs[-1], "layers": layers, "images": int(len(chosen)), "sample_seed": seed}


@dataclass(frozen=True)
class ConvergenceStudy:
    """Fig 4's numbers (claim 9) as `zfrepro convergence` saves them: CKA of each layer's features with the
    final epoch's, per seed and kept epoch."""

    cka: Any  # [seeds, kept epochs, layers] float64 tensor
    seeds: list[int]
    epochs: list[int]  # the kept epochs before the final one
    final_epoch: int
    layers: list[str]
    arch: str | None  # the network's name, when the command recorded it

    @classmethod
    def from_saved(cls, data: Mapping[str, Any]) -> ConvergenceStudy:
        return cls(data["cka"], list(data["seeds"]), list(data["epochs"]), int(data["final_epoch"]),
                   list(data["layers"]), data.get("arch"))


def convergence_table(data: Mapping[str, Any]) -> pd.DataFrame:
    """One row per layer, one column per kept epoch: CKA with the final epoch, mean (and sd) over seeds."""
    cka_values = data["cka"]
    rows = []
    for j, layer in enumerate(data["layers"]):
        row: dict[str, Any] = {"layer": layer}
        for i, epoch in enumerate(data["epochs"]):
            v = cka_values[:, i, j]
            row[f"epoch {epoch}"] = round(float(v.mean()), 4)
            if len(v) > 1:
                row[f"epoch {epoch} sd"] = round(float(v.std(unbiased=True)), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def footnote(data: Mapping[str, Any], arch: str) -> str:
    seeds = data["seeds"]
    spread = f"mean and sample sd over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"seed {seeds[0]}"
    return (f"Claim 9 of the paper: lower layers converge within a few epochs, upper ones only after many (Fig 4). "
            f"Linear CKA between each conv layer's features of {arch} at the kept epoch and at its final epoch "
            f"({data['final_epoch']}), over {data['images']} validation images (centre crops, the same for every "
            f"epoch; sample seed {data['sample_seed']}); 1 = the same representation up to a rotation and scale. "
            f"{spread.capitalize()}. Definitions in src/zfrepro/analysis/convergence.py.")



"""zfrepro.model.checkpoint: a trained model comes back from its file computing what it computed when saved, and
`open_inputs` hands every analysis the model with the prepared split and mean image it asked for."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from zfrepro.data.preprocess import center_crop
from zfrepro.io import atomic_torch_save
from zfrepro.model.architectures import zf_spec
from zfrepro.model.checkpoint import load_model, open_inputs
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import spec_to_dict


def test_load_model_rebuilds_a_model_whose_outputs_equal_the_original(tmp_path):
    # Dropout and nonzero biases: the rebuilt model must be in eval mode and carry every parameter.
    spec = zf_spec(4, 64, width=0.125, dropout=0.5)
    original = init_weights_(ConvNet(spec), "gaussian", std=0.05, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name, param in original.named_parameters():
            if name.endswith("bias"):
                param.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(1))
    ckpt = {"arch": "zf", "spec": spec_to_dict(spec), "model": original.state_dict(), "epoch": 3,
            "classes": ["a", "b", "c", "d"], "crop_size": 64, "seed": 0, "training": {}}
    path = atomic_torch_save(tmp_path / "final.pt", ckpt)  # the way `train` writes it (with a checksum)

    model, loaded = load_model(path)
    assert not model.training  # eval mode: no dropout, the same outputs every call
    assert model.spec == spec
    assert (loaded["epoch"], loaded["classes"], loaded["crop_size"]) == (3, ["a", "b", "c", "d"], 64)
    x = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(model(x), original.eval()(x))
        assert torch.equal(model(x), model(x))
    assert next(model.parameters()).device == torch.device("cpu")


def test_load_model_of_a_trained_model_reproduces_its_recorded_validation_error(tiny_zf, tiny_prepared):
    # `train` recorded the final model's centre-crop validation error in metrics.csv while the model was in memory;
    # the reloaded model must make exactly the same mistakes.
    model, ckpt = load_model(tiny_zf)
    recorded = pd.read_csv(tiny_zf.parent / "metrics.csv")["val_top1_error_center"].iloc[-1]
    val = torch.load(tiny_prepared / "val.pt", weights_only=True)
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    with torch.no_grad():
        predicted = model(center_crop(val["images"], mean, ckpt["crop_size"])).argmax(1)
    error = 100 * (predicted != val["labels"]).float().mean().item()
    assert error == pytest.approx(recorded, abs=1e-4)
    assert ckpt["classes"] == val["classes"] and ckpt["epoch"] == 2


@pytest.mark.parametrize("split", ["val", "train"])
def test_open_inputs_returns_the_model_the_prepared_split_and_the_mean(tiny_zf, tiny_prepared, split):
    model, ckpt, prepared, mean = open_inputs(tiny_zf, tiny_prepared, split)
    expected_model, expected_ckpt = load_model(tiny_zf)
    assert model.spec == expected_model.spec and ckpt["epoch"] == expected_ckpt["epoch"]
    for name, value in expected_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    data = torch.load(tiny_prepared / f"{split}.pt", weights_only=True)
    assert len(prepared) == len(data["labels"])
    assert torch.equal(prepared.labels, data["labels"]) and prepared.classes == data["classes"]
    assert torch.equal(mean, torch.load(tiny_prepared / "mean.pt", weights_only=True))

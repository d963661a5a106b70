"""A new base network is one builder in BASE_NETWORKS (docs/extending.md): a network with four conv layers and
hidden fc layers numbered after them (fc5, fc6) takes the config's layer keys from its own spec, trains, and goes
through evaluation, mining (checked against the recording forward) and the deconvnet (checked against Captum's
NeuronDeconvolution on a twin nn.Sequential) with no layer name spelled for it anywhere."""

from __future__ import annotations

import pytest
import torch
from captum.attr import NeuronDeconvolution
from test_deconvnet import captum

from zfrepro.analysis.deconvnet import Target, project
from zfrepro.analysis.mining import load_images, mine_top9
from zfrepro.analysis.projections import top9_figure_data
from zfrepro.data.preprocess import center_crop
from zfrepro.errors import ConfigError
from zfrepro.model import architectures
from zfrepro.model.checkpoint import open_inputs
from zfrepro.model.evaluate import evaluate
from zfrepro.model.spec import ArchSpec, ConvSpec, FCSpec, PoolSpec, validate_spec
from zfrepro.model.train import train
from zfrepro.model.train_config import TrainConfig

FOUR = {"base": "four", "width": 0.125}


def four_conv_spec(num_classes: int, input_size: int = 224, width: float = 1.0, dropout: float = 0.5) -> ArchSpec:
    """ZF's first two blocks, then two 3x3 layers of which the last pools, and two hidden fc layers."""
    pool = PoolSpec(3, 2, 0, True)

    def w(n: int) -> int:
        return max(1, round(n * width))

    convs = (ConvSpec("conv1", w(96), 7, 2, 1, pool, norm=True), ConvSpec("conv2", w(256), 5, 2, 0, pool, norm=True),
             ConvSpec("conv3", w(384), 3, 1, 1), ConvSpec("conv4", w(256), 3, 1, 1, pool))
    fcs = (FCSpec("fc5", w(1024), dropout), FCSpec("fc6", w(512), dropout))
    return validate_spec(ArchSpec("four", convs, fcs, num_classes, input_size))


@pytest.fixture
def four_registered(monkeypatch):
    monkeypatch.setitem(architectures.BASE_NETWORKS, "four", four_conv_spec)


def test_the_config_layer_keys_are_the_new_networks(four_registered):
    spec = architectures.spec_from_config("net", {**FOUR, "remove": [3, 5], "conv_maps": {"4": 512},
                                                  "fc_units": 2048}, num_classes=3, input_size=64)
    assert [c.name for c in spec.convs] == ["conv1", "conv2", "conv4"]
    assert spec.convs[-1].out_channels == 64  # 512 at width 1/8
    assert [(f.name, f.units) for f in spec.fcs] == [("fc6", 256)]  # the one number resizes every hidden fc
    for bad, key in [({"remove": [4]}, "remove"), ({"conv_maps": {"5": 8}}, "conv_maps"),
                     ({"fc_units": {"7": 8}}, "fc_units")]:
        with pytest.raises(ConfigError, match=f"architectures.net.{key}: layer .* use one of"):
            architectures.spec_from_config("net", {**FOUR, **bad}, num_classes=3, input_size=64)


@pytest.fixture
def four_trained(four_registered, tiny_prepared, tmp_path):
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 16, "checkpoint_epochs": [1],
                                 "lr_schedule": {"kind": "none"}, "init": {"scheme": "kaiming", "std": 0.01}})
    return train(tiny_prepared, "four", FOUR, cfg, seed=0, out_dir=tmp_path / "four", device="cpu", threads=1)


def test_a_four_conv_network_trains_and_is_mined_and_projected(four_trained, tiny_prepared):
    model, ckpt, split, mean = open_inputs(four_trained, tiny_prepared)
    assert model.layer_names == ["conv1", "conv2", "conv3", "conv4", "fc5", "fc6", "fc8"]
    assert (four_trained.parent / "epoch1.pt").exists() and (four_trained.parent / "metrics.csv").exists()
    metrics, predictions = evaluate(four_trained, tiny_prepared, device="cpu", threads=1)
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())  # the spec's count, the module's
    assert predictions["center"].shape == (len(split), 3)

    top9 = mine_top9(model, split, mean, ckpt["crop_size"], k=3)  # default layers: the spec's conv layers
    assert [name for name in top9 if name.startswith("conv")] == ["conv1", "conv2", "conv3", "conv4"]
    x = center_crop(load_images(split, torch.arange(len(split))), mean, ckpt["crop_size"])
    with torch.no_grad():
        record = model.eval().forward_record(x)[1]
    best = record.outputs["conv4"].amax(dim=(2, 3)).max(dim=0)  # each map's strongest image
    torch.testing.assert_close(top9["conv4"]["value"][:, 0], best.values)

    targets = [Target(int(top9["conv4"]["image"][c, 0]), "conv4", c, int(top9["conv4"]["y"][c, 0]),
                      int(top9["conv4"]["x"][c, 0])) for c in range(4)]
    unit = project(model, x, targets, norm="gradient", record=record, value="unit")
    torch.testing.assert_close(unit, captum(NeuronDeconvolution, model, x, targets), rtol=1e-4, atol=1e-5)

    figure = top9_figure_data(four_trained, tiny_prepared, top9, maps_per_layer=2, seed=0)
    assert list(figure["layers"]) == ["conv1", "conv2", "conv3", "conv4"]

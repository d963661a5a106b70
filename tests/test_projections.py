"""zfrepro.analysis.projections, the figures' data: patches and projections line up with the mined activations
(Fig 2), Fig 1's unpooling puts each pooled value back at its switch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zfrepro.analysis.deconvnet import Target, project
from zfrepro.analysis.mining import mine_top9, patch_box, receptive_fields
from zfrepro.analysis.projections import project_entries, top9_figure_data, unpooling_data
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.model.checkpoint import load_model


def test_patches_and_projections_sit_on_the_receptive_field(tiny_prepared, tiny_zf):
    model, _ = load_model(tiny_zf)
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    crop = model.spec.input_size
    layer, channel, image = "conv2", 3, 5
    images = split.data["images"][image : image + 1]
    x = center_crop(images, mean, crop)
    out = model.forward_record(x)[1].outputs[layer][0, channel]
    y, xx = divmod(int(out.argmax()), out.shape[1])
    proj, patch = project_entries(model, split, mean, layer, torch.tensor([channel]), torch.tensor([image]),
                                  torch.tensor([y]), torch.tensor([xx]))
    # Independent: the projection of the full input, and the displayed crop, cut at patch_box by slicing.
    full = project(model, x, [Target(0, layer, channel, y, xx)])[0]
    top, left, bottom, right = patch_box(receptive_fields(model.spec)[layer], y, xx, crop)
    shown = center_crop(images, torch.zeros_like(mean), crop)[0]
    assert full[:, :top].abs().sum() == 0 and full[:, bottom:].abs().sum() == 0  # nothing outside the field
    assert full[:, :, :left].abs().sum() == 0 and full[:, :, right:].abs().sum() == 0
    assert torch.allclose(proj[0].sum(), full.sum(), atol=1e-4)  # the cut keeps all of the projection
    inside = patch[0][patch[0] != 128]
    assert inside.numel() > 0
    assert set(inside.unique().tolist()) <= set(shown[:, top:bottom, left:right].unique().tolist())


def test_top9_figure_data_matches_mining(tiny_prepared, tiny_zf):
    model, ckpt = load_model(tiny_zf)
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    mined = mine_top9(model, split, mean, ckpt["crop_size"], k=3)
    data = top9_figure_data(tiny_zf, tiny_prepared, mined, maps_per_layer=2, seed=0)
    assert set(data["layers"]) == {"conv1", "conv2", "conv3", "conv4", "conv5"}
    for layer, d in data["layers"].items():
        m, k = d["projections"].shape[:2]
        assert (m, k) == (2, 3)
        assert d["patches"].shape == d["projections"].shape
        assert torch.equal(d["values"], mined[layer]["value"][d["channels"]])
        assert (d["values"][:, :1] > 0).all()  # maps that never fire are not chosen when others do


def test_unpooling_puts_each_pooled_value_back_at_its_switch(tiny_prepared, tiny_zf):
    d = unpooling_data(tiny_zf, tiny_prepared, "conv1", image=0, window=4)
    pooled, switches, unpooled, pool_input = d["pooled"], d["switches"], d["unpooled"], d["pool_input"]
    assert d["ops"] == ["conv", "relu", "pool", "norm"]
    assert torch.equal(F.max_pool2d(pool_input[None], 3, 2, ceil_mode=True)[0], pooled)
    # Slow reference: loop over pooled units, add each value at its switch.
    expected = torch.zeros_like(pool_input).flatten()
    for value, where in zip(pooled.flatten().tolist(), switches.flatten().tolist(), strict=True):
        expected[where] += value
    assert torch.allclose(unpooled.flatten(), expected)
    assert (pool_input.flatten()[switches.flatten()] == pooled.flatten()).all()  # switches point at the maxima

"""Tests for zfrepro.model.spec, .architectures and .network: sizes against Fig 3 / AlexNet, Table 3 variants,
switches against a slow reference, parameter counts computed by hand, config errors and checkpoint round trips."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zfrepro.errors import ConfigError
from zfrepro.model.architectures import krizhevsky_spec, spec_from_config, zf_spec
from zfrepro.model.network import BandedLRN, ConvNet, init_weights_
from zfrepro.model.spec import (
    ArchSpec,
    ConvSpec,
    FCSpec,
    PoolSpec,
    min_input_size,
    num_parameters,
    output_shapes,
    rectified_shapes,
    spec_from_dict,
    spec_to_dict,
)

BIG = {"3": 512, "4": 1024, "5": 512}
# Every modification in the paper's Table 3 (Krizhevsky and ZF blocks), applied to both bases.
TABLE3 = {
    "base": {},
    "no34": {"remove": [3, 4]},
    "no7": {"remove": [7]},
    "no67": {"remove": [6, 7]},
    "no3467": {"remove": [3, 4, 6, 7]},
    "fc2048": {"fc_units": 2048},
    "fc8192": {"fc_units": 8192},
    "maps": {"conv_maps": BIG},
    "fc8192_maps": {"fc_units": 8192, "conv_maps": BIG},
}
VARIANTS = [(base, row) for base in ("zf", "krizhevsky") for row in TABLE3]
ALL_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]


def _spec(base: str, row: str, size: int, width: float, classes: int = 10) -> ArchSpec:
    cfg = {"base": base, "width": width, **TABLE3[row]}
    return spec_from_config(f"{base}_{row}", cfg, num_classes=classes, input_size=size)


def _record_shapes(model: ConvNet, x: torch.Tensor) -> tuple[dict, dict]:
    """Shapes (no batch dim) of the record's layer outputs and rectified maps."""
    _, rec = model.forward_record(x)
    outs = {k: tuple(v.shape[1:]) for k, v in rec.outputs.items()}
    rect = {k: tuple(v.shape[1:]) for k, v in rec.rectified.items()}
    return outs, rect


# --------------------------------------------------------------------------------------- sizes


def test_zf_sizes_at_224():
    spec = zf_spec(1000)
    expected_rect = {"conv1": 110, "conv2": 26, "conv3": 13, "conv4": 13, "conv5": 13}
    expected_out = {"conv1": 55, "conv2": 13, "conv3": 13, "conv4": 13, "conv5": 6}
    maps = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256}
    rect, outs = rectified_shapes(spec), output_shapes(spec)
    for name, side in expected_rect.items():
        assert rect[name] == (maps[name], side, side)
        assert outs[name] == (maps[name], expected_out[name], expected_out[name])
    assert outs["fc6"] == (4096,) and outs["fc7"] == (4096,) and outs["fc8"] == (1000,)
    model = ConvNet(spec).eval()
    with torch.no_grad():
        real_out, real_rect = _record_shapes(model, torch.randn(1, 3, 224, 224))
    assert real_out == outs and real_rect == rect
    assert model.fc6.in_features == 256 * 6 * 6 == 9216


def test_krizhevsky_sizes_at_224():
    spec = krizhevsky_spec(1000)
    rect, outs = rectified_shapes(spec), output_shapes(spec)
    assert [rect[n][1] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [55, 27, 13, 13, 13]
    assert [outs[n][1] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [27, 13, 13, 13, 6]
    model = ConvNet(spec).eval()
    with torch.no_grad():
        real_out, real_rect = _record_shapes(model, torch.randn(1, 3, 224, 224))
    assert real_out == outs and real_rect == rect
    assert spec.convs[0].kernel == 11 and spec.convs[0].stride == 4


@pytest.mark.parametrize("base,row", VARIANTS)
def test_table3_variant_at_224_meta(base, row):
    """Full-size variants: torch's own shape propagation (meta tensors) agrees with output_shapes."""
    spec = _spec(base, row, 224, 1.0, classes=1000)
    with torch.device("meta"):
        model = ConvNet(spec)
        real_out, real_rect = _record_shapes(model, torch.empty(2, 3, 224, 224))
    assert real_out == output_shapes(spec) and real_rect == rectified_shapes(spec)
    assert all(h >= 1 for shape in real_out.values() for h in shape)
    removed = set(TABLE3[row].get("remove", []))
    assert model.layer_names == [n for n in ALL_LAYERS if int(n[-1]) not in removed]
    assert list(real_out) == model.layer_names


@pytest.mark.parametrize("base,row", VARIANTS)
def test_table3_variant_at_84_real(base, row):
    spec = _spec(base, row, 84, 0.25)
    model = ConvNet(spec).eval()
    with torch.no_grad():
        real_out, real_rect = _record_shapes(model, torch.randn(2, 3, 84, 84))
        assert model(torch.randn(2, 3, 84, 84)).shape == (2, 10)
    assert real_out == output_shapes(spec) and real_rect == rectified_shapes(spec)
    assert all(h >= 1 for shape in real_out.values() for h in shape)
    assert sum(p.numel() for p in model.parameters()) == num_parameters(spec)


def test_small_input_sizes_at_84():
    assert output_shapes(zf_spec(10, 84, 0.25))["conv5"] == (64, 2, 2)
    # Ceil-mode pools give Krizhevsky the same 2x2 last grid as ZF at 84 (and the same sizes as floor at 224).
    assert output_shapes(krizhevsky_spec(10, 84, 0.25))["conv5"] == (64, 2, 2)


def test_remove_34_feeds_conv5_from_conv2():
    model = ConvNet(_spec("krizhevsky", "no34", 84, 0.25))
    assert list(model.conv_layers()) == ["conv1", "conv2", "conv5"]
    assert model.conv5.in_channels == model.conv2.out_channels == 64
    no67 = ConvNet(_spec("zf", "no67", 84, 0.25))
    assert list(no67.fc_layers()) == ["fc8"] and no67.fc8.in_features == 64 * 2 * 2


def test_parameter_counts_by_hand():
    # ZF at 84, width 0.25 (24, 64, 96, 96, 64 maps; 1024 units), 10 classes, pool5 = 64 x 2 x 2 = 256.
    full = (3 * 24 * 49 + 24) + (24 * 64 * 25 + 64) + (64 * 96 * 9 + 96) + (96 * 96 * 9 + 96) \
        + (96 * 64 * 9 + 64) + (256 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10)
    assert full == 1558826
    tiny = (3 * 24 * 49 + 24) + (24 * 64 * 25 + 64) + (64 * 64 * 9 + 64) + (256 * 10 + 10)
    for spec, count in ((zf_spec(10, 84, 0.25), full), (_spec("zf", "no3467", 84, 0.25), tiny)):
        assert num_parameters(spec) == count
        assert sum(p.numel() for p in ConvNet(spec).parameters()) == count
    # Paper-size ZF, 1000 classes: fc6 sees 256 x 6 x 6 = 9216 inputs.
    paper = (3 * 96 * 49 + 96) + (96 * 256 * 25 + 256) + (256 * 384 * 9 + 384) + (384 * 384 * 9 + 384) \
        + (384 * 256 * 9 + 256) + (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert num_parameters(zf_spec(1000)) == paper == 62357608


def test_too_small_input_is_a_config_error():
    assert min_input_size(zf_spec(10, 84, 0.25)) == 63  # 63 -> 30 -> 15 -> 6 -> 3 -> 3 -> 3 -> 3 -> 1
    zf_spec(10, 63)
    with pytest.raises(ConfigError, match=r"architectures\.zf: input size 62 .*at least 63.*data\.crop_size"):
        zf_spec(10, 62)
    with pytest.raises(ConfigError, match=r"architectures\.mine: input size 20"):
        spec_from_config("mine", {"base": "krizhevsky"}, 10, 20)


# --------------------------------------------------------------------------------------- op order, record


def test_conv_block_op_order():
    zf, kr = zf_spec(10, 84, 0.25), krizhevsky_spec(10, 84, 0.25)
    assert [c.ops for c in zf.convs] == [("conv", "relu", "pool", "norm")] * 2 + [("conv", "relu")] * 2 \
        + [("conv", "relu", "pool")]
    assert [c.ops for c in kr.convs][:2] == [("conv", "relu", "norm", "pool")] * 2
    x = torch.randn(2, 3, 84, 84) * 50
    for spec in (zf, kr):
        model = ConvNet(spec).eval()
        with torch.no_grad():
            _, rec = model.forward_record(x)
        r = rec.rectified["conv1"]
        assert torch.equal(r, F.relu(model.conv1(x)))
        pool = lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True)  # noqa: E731
        expected = model.lrn(pool(r)) if spec is zf else pool(model.lrn(r))
        torch.testing.assert_close(rec.outputs["conv1"], expected, rtol=0, atol=0)
        assert rec.ops["conv1"] == spec.convs[0].ops


def test_record_matches_forward():
    spec = zf_spec(7, 84, 0.25)
    model = init_weights_(ConvNet(spec), std=0.05).eval()
    x = torch.randn(3, 3, 84, 84) * 60
    with torch.no_grad():
        logits, rec = model.forward_record(x)
        plain = model(x)
    assert torch.equal(logits, plain) and torch.equal(rec.outputs["fc8"], plain)
    assert set(rec.switches) == set(rec.pool_input_shape) == {"conv1", "conv2", "conv5"}
    assert set(rec.rectified) == {"conv1", "conv2", "conv3", "conv4", "conv5"}
    assert rec.conv_input_shape["conv1"] == x.shape
    assert rec.conv_input_shape["conv2"] == rec.outputs["conv1"].shape
    # fc activations are after ReLU and before dropout: check in train mode.
    model.train()
    torch.manual_seed(0)
    logits_train, rec = model.forward_record(x)
    torch.manual_seed(0)
    assert torch.equal(model(x), logits_train)
    fc6 = F.relu(model.fc6(torch.flatten(rec.outputs["conv5"], 1)))
    torch.testing.assert_close(rec.outputs["fc6"], fc6)
    assert (rec.outputs["fc7"] >= 0).all()


def test_forward_rejects_wrong_input_size():
    model = ConvNet(zf_spec(10, 84, 0.25))
    with pytest.raises(ValueError, match="84"):
        model(torch.randn(1, 3, 90, 90))


def test_forward_record_is_differentiable():
    model = ConvNet(zf_spec(5, 84, 0.25))
    x = torch.randn(1, 3, 84, 84, requires_grad=True)
    _, rec = model.forward_record(x)
    rec.outputs["conv5"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------- switches


def _slow_pool(x: torch.Tensor, k: int, s: int, p: int, out_hw: tuple[int, int]):
    """Reference max pooling by looping over windows: (max values, flat argmax h*W+w) per [N, C, oh, ow]."""
    n, c, h, w = x.shape
    vals = torch.empty(n, c, *out_hw, dtype=x.dtype)
    idx = torch.empty(n, c, *out_hw, dtype=torch.long)
    for b in range(n):
        for ch in range(c):
            for i in range(out_hw[0]):
                for j in range(out_hw[1]):
                    r0, c0 = i * s - p, j * s - p
                    best, arg = None, None
                    for r in range(max(r0, 0), min(r0 + k, h)):
                        for q in range(max(c0, 0), min(c0 + k, w)):
                            v = x[b, ch, r, q].item()
                            if best is None or v > best:
                                best, arg = v, r * w + q
                    vals[b, ch, i, j], idx[b, ch, i, j] = best, arg
    return vals, idx


def _slow_unpool(vals: torch.Tensor, idx: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    out = torch.zeros(*vals.shape[:2], hw[0] * hw[1], dtype=vals.dtype)
    out.scatter_(2, idx.flatten(2), vals.flatten(2))
    return out.view(*vals.shape[:2], *hw)


@pytest.mark.parametrize("size,k,s,p,ceil", [(11, 3, 2, 0, True), (12, 3, 2, 0, True), (10, 3, 2, 1, False),
                                             (9, 2, 2, 0, True)])
def test_switches_match_slow_loop(size, k, s, p, ceil):
    torch.manual_seed(size)
    x = torch.randn(2, 3, size, size + 1)  # continuous values: no ties
    pooled, idx = F.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
    vals, ref_idx = _slow_pool(x, k, s, p, tuple(pooled.shape[-2:]))
    assert torch.equal(pooled, vals) and torch.equal(idx, ref_idx)
    unpooled = F.max_unpool2d(pooled, idx, k, s, p, output_size=x.shape[-2:])
    assert torch.equal(unpooled, _slow_unpool(vals, ref_idx, tuple(x.shape[-2:])))


@pytest.mark.parametrize("build", [zf_spec, krizhevsky_spec])
def test_recorded_switches_put_each_max_back(build):
    spec = build(4, 63 if build is zf_spec else 51, 0.1)  # the smallest inputs: fast slow-loop
    model = init_weights_(ConvNet(spec), std=0.1).eval()
    with torch.no_grad():
        _, rec = model.forward_record(torch.randn(2, 3, spec.input_size, spec.input_size) * 30)
    checked = 0
    for c in spec.convs:
        if c.pool is None:
            continue
        # The pool's input: the rectified map, normalized first where the block normalizes before pooling.
        pool_in = rec.rectified[c.name]
        if c.norm and c.ops.index("norm") < c.ops.index("pool"):
            pool_in = model.lrn(pool_in)
        assert pool_in.shape == rec.pool_input_shape[c.name]
        sw, hw = rec.switches[c.name], tuple(pool_in.shape[-2:])
        pooled = pool_in.flatten(2).gather(2, sw.flatten(2)).view_as(sw)  # values at the switches
        k, s, p = c.pool.kernel, c.pool.stride, c.pool.padding
        vals, ref_idx = _slow_pool(pool_in, k, s, p, tuple(sw.shape[-2:]))
        assert torch.equal(pooled, vals)  # every switch points at its window's maximum
        unpooled = F.max_unpool2d(pooled, sw, k, s, p, output_size=hw)
        # ReLU zeros can tie; any tied location holds 0, so the unpooled maps still agree exactly.
        assert torch.equal(unpooled, _slow_unpool(vals, ref_idx, hw))
        checked += 1
    assert checked == 3


# --------------------------------------------------------------------------------------- config


def test_width_scales_maps_and_units_not_classes():
    full, half = zf_spec(10), zf_spec(10, width=0.5)
    assert [c.out_channels for c in half.convs] == [48, 128, 192, 192, 128]
    assert [f.units for f in half.fcs] == [2048, 2048] and half.num_classes == 10
    assert [c.out_channels for c in zf_spec(10, 84, 0.25).convs] == [24, 64, 96, 96, 64]
    tiny = zf_spec(10, width=1e-4)
    assert all(c.out_channels == 1 for c in tiny.convs) and all(f.units == 1 for f in tiny.fcs)
    assert [c.kernel for c in half.convs] == [c.kernel for c in full.convs]


def test_fc_units_and_conv_maps_change_the_right_layers():
    base = _spec("zf", "base", 84, 0.25)
    fc = _spec("zf", "fc8192", 84, 0.25)
    maps = _spec("zf", "maps", 84, 0.25)
    assert fc.convs == base.convs and [f.units for f in fc.fcs] == [2048, 2048]  # 8192 x 0.25
    assert maps.fcs == base.fcs
    assert [c.out_channels for c in maps.convs] == [24, 64, 128, 256, 128]  # (.., 512, 1024, 512) x 0.25
    only7 = spec_from_config("z", {"base": "zf", "fc_units": {"7": 8192}}, 10, 224)
    assert [f.units for f in only7.fcs] == [4096, 8192]
    no7 = spec_from_config("z", {"base": "krizhevsky", "remove": [7], "fc_units": 2048}, 10, 224)
    assert [(f.name, f.units) for f in no7.fcs] == [("fc6", 2048)]
    # The training key belongs to the trainer; dropout comes from training.dropout.
    s = spec_from_config("z", {"base": "zf", "training": {"filter_radius": None}}, 10, 224, dropout=0.3)
    assert s.name == "z" and [f.dropout for f in s.fcs] == [0.3, 0.3]
    assert s == spec_from_config("z", {"base": "zf"}, 10, 224, dropout=0.3)


@pytest.mark.parametrize("cfg,key", [
    ({"base": "zf", "colour": 1}, "architectures.bad.colour"),
    ({"base": "vgg"}, "architectures.bad.base"),
    ({}, "architectures.bad.base"),
    ({"base": "zf", "width": 0}, "architectures.bad.width"),
    ({"base": "zf", "width": "wide"}, "architectures.bad.width"),
    ({"base": "zf", "remove": [5]}, "architectures.bad.remove"),
    ({"base": "zf", "remove": 3}, "architectures.bad.remove"),
    ({"base": "zf", "remove": [8]}, "architectures.bad.remove"),
    ({"base": "zf", "fc_units": -5}, "architectures.bad.fc_units"),
    ({"base": "zf", "fc_units": {"5": 100}}, "architectures.bad.fc_units"),
    ({"base": "zf", "fc_units": 2048, "remove": [6, 7]}, "architectures.bad.fc_units"),
    ({"base": "zf", "conv_maps": {"9": 10}}, "architectures.bad.conv_maps"),
    ({"base": "zf", "conv_maps": {"3": 1.5}}, "architectures.bad.conv_maps.3"),
    ({"base": "zf", "conv_maps": [512]}, "architectures.bad.conv_maps"),
    ({"base": "zf", "conv_maps": {"3": 512}, "remove": [3, 4]}, "architectures.bad.conv_maps"),
])
def test_config_errors_name_the_key(cfg, key):
    with pytest.raises(ConfigError) as err:
        spec_from_config("bad", cfg, 10, 224)
    assert key in str(err.value)


def test_config_error_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"zf.*krizhevsky"):
        spec_from_config("bad", {"base": "vgg"}, 10, 224)
    with pytest.raises(ConfigError, match=r"\[3, 4, 6, 7\]"):
        spec_from_config("bad", {"base": "zf", "remove": [1]}, 10, 224)
    with pytest.raises(ConfigError, match="allowed keys are base, width"):
        spec_from_config("bad", {"base": "zf", "extra": 1}, 10, 224)
    with pytest.raises(ConfigError, match="architectures.bad"):
        spec_from_config("bad", None, 10, 224)


# --------------------------------------------------------------------------------------- checkpoints, init


@pytest.mark.parametrize("base,row", VARIANTS)
def test_spec_dict_round_trip(base, row):
    spec = _spec(base, row, 84, 0.25)
    buf = io.BytesIO()
    torch.save({"spec": spec_to_dict(spec)}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)["spec"]
    assert spec_from_dict(loaded) == spec


def test_checkpoint_state_dict_loads_into_rebuilt_model():
    spec = _spec("krizhevsky", "no34", 84, 0.25)
    model = init_weights_(ConvNet(spec)).eval()
    again = ConvNet(spec_from_dict(spec_to_dict(spec))).eval()
    again.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 84, 84)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert "conv5.weight" in model.state_dict() and "fc8.bias" in model.state_dict()


def test_spec_from_dict_rejects_garbage():
    with pytest.raises(ConfigError, match="spec"):
        spec_from_dict({"name": "x"})
    d = spec_to_dict(zf_spec(10, 84, 0.25))
    del d["convs"][0]["kernel"]
    with pytest.raises(ConfigError, match="malformed"):
        spec_from_dict(d)


def test_custom_small_spec():
    spec = ArchSpec("tiny", (ConvSpec("conv1", 4, 3, 1, 1, PoolSpec(2, 2, 0, False), norm=True),),
                    (FCSpec("fc6", 5, 0.0),), num_classes=3, input_size=8)
    assert output_shapes(spec) == {"conv1": (4, 4, 4), "fc6": (5,), "fc8": (3,)}
    assert num_parameters(spec) == (3 * 4 * 9 + 4) + (64 * 5 + 5) + (5 * 3 + 3)
    assert ConvNet(spec)(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_init_gaussian_std_and_zero_biases():
    model = ConvNet(zf_spec(10, 84, 0.25))
    init_weights_(model, scheme="gaussian", std=0.01, generator=torch.Generator().manual_seed(0))
    layers = model.conv_layers() | model.fc_layers()
    weights = torch.cat([m.weight.flatten() for m in layers.values()])
    assert abs(weights.std().item() - 0.01) < 2e-4 and abs(weights.mean().item()) < 1e-4
    for name, layer in layers.items():
        assert torch.count_nonzero(layer.bias) == 0, name
        if layer.weight.numel() >= 10000:
            assert abs(layer.weight.std().item() - 0.01) < 1e-3, name
    again = init_weights_(ConvNet(zf_spec(10, 84, 0.25)), generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.fc6.weight, model.fc6.weight)


def test_init_kaiming():
    model = init_weights_(ConvNet(zf_spec(10, 84, 0.25)), scheme="kaiming", std=0.01)
    conv2 = model.conv2.weight  # fan_in = 24 * 5 * 5
    assert abs(conv2.std().item() - (2 / (24 * 25)) ** 0.5) < 0.005
    assert abs(model.fc7.weight.std().item() - (2 / 1024) ** 0.5) < 0.002
    assert torch.count_nonzero(model.conv2.bias) == 0
    with pytest.raises(ConfigError, match="training.init.scheme"):
        init_weights_(model, scheme="xavier")
    with pytest.raises(ConfigError, match="training.init.std"):
        init_weights_(model, std=-1)


def test_channels_last_and_bf16_autocast_forward():
    """The training path's memory format and autocast (checked on CPU; CUDA uses the same code)."""
    model = init_weights_(ConvNet(zf_spec(10, 84, 0.25)), std=0.05).eval()
    x = torch.randn(2, 3, 84, 84) * 50
    with torch.no_grad():
        ref = model(x)
        model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x.contiguous(memory_format=torch.channels_last))
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()


def test_replace_classifier_for_transfer():
    model = ConvNet(zf_spec(10, 84, 0.25))
    conv1 = model.conv1.weight.clone()
    new = model.replace_classifier(20)
    assert model.fc8 is new and new.out_features == 20 and model.spec.num_classes == 20
    assert model(torch.randn(1, 3, 84, 84)).shape == (1, 20) and torch.equal(model.conv1.weight, conv1)


@pytest.mark.parametrize("channels", [1, 2, 3, 5, 24, 37])
@pytest.mark.parametrize("size", [1, 2, 5])
def test_banded_lrn_equals_torchs_local_response_norm(channels, size):
    # The reference is torch's own LocalResponseNorm: same output and same input gradient, channels_last or not.
    gen = torch.Generator().manual_seed(channels * 10 + size)
    x = (torch.randn(3, channels, 6, 5, generator=gen, dtype=torch.float64) * 30).requires_grad_()
    ours, ref = BandedLRN(size, 1e-4, 0.75, 2.0), nn.LocalResponseNorm(size, 1e-4, 0.75, 2.0)
    y_ours, y_ref = ours(x), ref(x)
    assert torch.allclose(y_ours, y_ref, rtol=1e-14, atol=1e-14)
    w = torch.randn(y_ref.shape, generator=gen, dtype=torch.float64)
    g_ours, = torch.autograd.grad((y_ours * w).sum(), x)
    g_ref, = torch.autograd.grad((y_ref * w).sum(), x)
    assert torch.allclose(g_ours, g_ref, rtol=1e-10, atol=1e-12)
    x32 = x.detach().float().contiguous(memory_format=torch.channels_last)
    assert torch.allclose(ours(x32), ref(x32), rtol=1e-6, atol=1e-6)  # float32: summation order may differ
    assert ours.state_dict() == {} and list(ours.parameters()) == []

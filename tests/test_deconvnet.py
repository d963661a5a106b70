"""Tests for zfrepro.analysis.deconvnet: the fast batched projection against a slow reference written from the paper's
words (python loops), hand-computed cases, Captum's NeuronDeconvolution (equal) and GuidedBackprop / plain
gradients (different rules), wrong variants of each step (they must fail the same comparisons), and the `project`
command."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop
from torch import nn

from zfrepro.analysis import deconvnet
from zfrepro.analysis.deconvnet import Target, project, project_maps, strongest
from zfrepro.cli import main as cli_main
from zfrepro.data.preprocess import center_crop
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError
from zfrepro.model.checkpoint import load_model
from zfrepro.model.network import ConvNet
from zfrepro.model.spec import ArchSpec, ConvSpec, PoolSpec

from conftest import drawn_figure

DT = torch.float64
TOL = {"rtol": 1e-9, "atol": 1e-11}
REAL_TRANSPOSE_CONV = deconvnet._transpose_conv  # the wrong variants below wrap the real step


def tiny_spec(norm: bool = True) -> ArchSpec:
    """Both block orders (ZF: pool then norm; Krizhevsky: norm then pool), overlapping 3/2 pools with a
    partial ceil-mode window, a stride-2 conv that needs output_padding, an even kernel, a strong LRN of even
    size (asymmetric channel window) so that identity and gradient modes differ clearly."""
    pool = PoolSpec(3, 2, 0, True)
    convs = (
        ConvSpec("conv1", 4, 3, 1, 1, pool, norm=norm, norm_after_pool=True),  # 24 -> 24 -> 12 (ceil)
        ConvSpec("conv2", 5, 3, 2, 1, pool, norm=norm, norm_after_pool=False),  # 12 -> 6 -> 3 (ceil)
        ConvSpec("conv3", 6, 2, 1, 1),  # 3 -> 4
        ConvSpec("conv4", 5, 3, 1, 1),  # 4 -> 4, a ReLU with no pool below it (as ZF's conv3/conv4)
    )
    return ArchSpec("tiny", convs, (), num_classes=2, input_size=24, lrn=(4, 1.0, 0.75, 1.0))


def tiny_model(norm: bool = True, seed: int = 0) -> ConvNet:
    """Random weights and nonzero biases (the forward uses biases, the deconvnet must not)."""
    model = ConvNet(tiny_spec(norm)).to(DT).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in model.conv_layers().values():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=DT) * 0.5)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g, dtype=DT) * 0.1)
    return model


def tiny_images(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 24, 24, generator=torch.Generator().manual_seed(seed), dtype=DT)


def tiny_targets(record, seed: int = 2) -> list[Target]:
    """Per image and layer: the strongest activation and two random positive ones, in a shuffled order."""
    g = torch.Generator().manual_seed(seed)
    targets = []
    for layer, act in record.outputs.items():
        if layer not in record.ops:
            continue
        for i in range(act.shape[0]):
            targets.append(strongest(record, layer, i))
            positive = act[i].nonzero()
            for j in torch.randperm(len(positive), generator=g)[:2]:
                c, y, x = positive[j].tolist()
                targets.append(Target(i, layer, c, y, x))
    order = torch.randperm(len(targets), generator=g).tolist()
    return [targets[k] for k in order]


# ---------------------------------------------------------------------------------------------- slow reference


def ref_switches(x: torch.Tensor, pool: PoolSpec, out_hw: tuple[int, int]) -> dict:
    """Switches by looping over the pooling windows: (c, i, j) -> (r, s), the first largest value in
    row-major order (windows clipped to the map, as padding never wins)."""
    c_n, h, w = x.shape
    sw = {}
    for c in range(c_n):
        for i in range(out_hw[0]):
            for j in range(out_hw[1]):
                best, loc = None, None
                for r in range(max(0, i * pool.stride - pool.padding), min(h, i * pool.stride - pool.padding
                                                                             + pool.kernel)):
                    for s in range(max(0, j * pool.stride - pool.padding), min(w, j * pool.stride
                                                                                 - pool.padding + pool.kernel)):
                        if best is None or x[c, r, s] > best:
                            best, loc = x[c, r, s], (r, s)
                sw[(c, i, j)] = loc
    return sw


def ref_unpool(sig: torch.Tensor, sw: dict, hw: tuple[int, int]) -> torch.Tensor:
    """Paper: place each pooled value at its switch; overlapping windows sharing a switch ADD."""
    out = sig.new_zeros(sig.shape[0], *hw)
    for (c, i, j), (r, s) in sw.items():
        out[c, r, s] += sig[c, i, j]
    return out


def ref_transpose_conv(sig: torch.Tensor, weight: torch.Tensor, stride: int, pad: int,
                       hw: tuple[int, int]) -> torch.Tensor:
    """Paper: each unit sends its value back through its filter to the inputs that filter read (explicit
    sums over filter taps; no bias)."""
    out = sig.new_zeros(weight.shape[1], *hw)
    k = weight.shape[-1]
    for y in range(sig.shape[1]):
        for x in range(sig.shape[2]):
            if not sig[:, y, x].any():
                continue  # a silent unit sends nothing
            for u in range(k):
                for v in range(k):
                    r, s = y * stride - pad + u, x * stride - pad + v
                    if 0 <= r < hw[0] and 0 <= s < hw[1]:
                        for co in range(weight.shape[0]):
                            out[:, r, s] += weight[co, :, u, v] * sig[co, y, x]
    return out


def ref_lrn_grad(sig: torch.Tensor, x: torch.Tensor, lrn_params) -> torch.Tensor:
    """The true LRN gradient, by autograd on a fresh LocalResponseNorm alone."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = nn.LocalResponseNorm(*lrn_params)(x[None])[0]
        return torch.autograd.grad(y, x, sig)[0]


def ref_project(model: ConvNet, record, image: int, layer: str, top: torch.Tensor, norm: str) -> torch.Tensor:
    """Word for word from section 2.1: from `top` at `layer`'s output go down block by block:
    (norm: identity or its gradient), unpool with the switches, rectify, filter with the transposed filters."""
    spec = model.spec
    names = [c.name for c in spec.convs]
    sig = top.clone()
    for c in reversed(spec.convs[: names.index(layer) + 1]):
        # this block's forward, from its rectified map: remember the pool's switches and the LRN's input
        cur, sw, lrn_in = record.rectified[c.name][image], None, None
        for op in c.ops[2:]:
            if op == "pool":
                out_hw = record.outputs[c.name].shape[-2:]  # LRN keeps the size, in either order
                pool_hw = cur.shape[-2:]
                sw = ref_switches(cur, c.pool, tuple(out_hw))
                pooled = cur.new_zeros(cur.shape[0], *out_hw)
                for (ch, i, j), (r, s) in sw.items():
                    pooled[ch, i, j] = cur[ch, r, s]
                cur = pooled
            else:
                lrn_in = cur
                cur = nn.LocalResponseNorm(*spec.lrn)(cur[None])[0]
        torch.testing.assert_close(cur, record.outputs[c.name][image], **TOL)
        conv = model.conv_layers()[c.name]
        for op in reversed(c.ops):
            if op == "norm" and norm == "gradient":
                sig = ref_lrn_grad(sig, lrn_in, spec.lrn)
            elif op == "pool":
                sig = ref_unpool(sig, sw, tuple(pool_hw))
            elif op == "relu":
                sig = torch.clamp(sig, min=0)
            elif op == "conv":
                sig = ref_transpose_conv(sig, conv.weight.detach(), c.stride, c.padding,
                                         tuple(record.conv_input_shape[c.name][-2:]))
    return sig


def one_hot(record, t: Target, value: str = "activation") -> torch.Tensor:
    act = record.outputs[t.layer][t.image]
    top = torch.zeros_like(act)
    top[t.channel, t.y, t.x] = act[t.channel, t.y, t.x] if value == "activation" else 1.0
    return top


@pytest.fixture(scope="module")
def setup():
    """Tiny model, images, record, targets and the slow reference's projections for both norm modes."""
    model, x = tiny_model(), tiny_images()
    with torch.no_grad():
        record = model.forward_record(x)[1]
    targets = tiny_targets(record)
    ref = {norm: torch.stack([ref_project(model, record, t.image, t.layer, one_hot(record, t), norm)
                              for t in targets]) for norm in deconvnet.NORMS}
    return model, x, record, targets, ref


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, **TOL)


# ---------------------------------------------------------------------------------------------- the reference


def test_the_test_data_exercise_every_rule(setup):
    """Without shared switches, negative backward signals and a strong LRN the comparisons would prove
    nothing: check the tiny net has all three."""
    model, x, record, targets, ref = setup
    sw = record.switches["conv1"].flatten(2)
    shared = sum(int(len(p) - len(p.unique())) for p in sw.flatten(0, 1))
    assert shared > 10
    assert {t.layer for t in targets} == {"conv1", "conv2", "conv3", "conv4"}
    assert not close(ref["identity"], ref["gradient"])
    # the signal reaching conv2's ReLU from conv3 has negative parts that the rectification removes
    t = next(t for t in targets if t.layer == "conv3")
    w3 = model.conv_layers()["conv3"].weight.detach()
    assert (F.conv_transpose2d(one_hot(record, t)[None], w3, padding=1) < 0).any()


@pytest.mark.parametrize("norm", deconvnet.NORMS)
def test_project_equals_slow_reference(setup, norm):
    """The batched projection (chunks mixing images, several layers, shuffled order) equals the loops."""
    model, x, record, targets, ref = setup
    got = project(model, x, targets, norm=norm, record=record, chunk=4)
    assert got.shape == (len(targets), 3, 24, 24)
    torch.testing.assert_close(got, ref[norm], **TOL)
    assert (got.abs().sum((1, 2, 3)) > 0).float().mean() > 0.8  # (the LRN gradient can cancel a few)


def _unpool_keeps_one(signal, switches, pool_input_shape):
    return F.max_unpool2d(signal, switches, 3, 2, output_size=pool_input_shape[-2:])


def _no_rectification(signal):
    return signal


def _unflipped_filters(signal, conv, input_shape):
    flipped = copy.deepcopy(conv)
    flipped.weight.data = conv.weight.detach().flip(2, 3)
    return REAL_TRANSPOSE_CONV(signal, flipped, input_shape)


def _with_bias(signal, conv, input_shape):
    return REAL_TRANSPOSE_CONV(signal + conv.bias.detach().view(1, -1, 1, 1), conv, input_shape)


@pytest.mark.parametrize("norm", deconvnet.NORMS)
@pytest.mark.parametrize("step,wrong", [("_unpool", _unpool_keeps_one), ("_rectify", _no_rectification),
                                        ("_transpose_conv", _unflipped_filters), ("_transpose_conv", _with_bias)])
def test_wrong_variants_fail_the_reference(setup, monkeypatch, norm, step, wrong):
    """Keeping one of two overlapping contributions, dropping the rectification, correlating with unflipped
    filters or using biases each breaks the equality with the reference (so the test above guards them)."""
    model, x, record, targets, ref = setup
    monkeypatch.setattr(deconvnet, step, wrong)
    got = project(model, x, targets, norm=norm, record=record)
    assert not close(got, ref[norm])


def test_project_maps_equals_slow_reference(setup):
    """The general form: a whole feature map (every activation of one channel kept) per image."""
    model, x, record, _, _ = setup
    maps = torch.zeros_like(record.outputs["conv2"])
    maps[:, 1] = record.outputs["conv2"][:, 1]
    got = project_maps(model, x, "conv2", maps, norm="gradient", record=record, chunk=2)
    want = torch.stack([ref_project(model, record, i, "conv2", maps[i], "gradient") for i in range(len(x))])
    torch.testing.assert_close(got, want, **TOL)


def test_lrn_backward_equals_autograd():
    """The closed-form LRN gradient equals autograd for odd and even sizes and the paper's parameters."""
    g = torch.Generator().manual_seed(3)
    for params in [(1, 1.0, 0.75, 1.0), (2, 0.5, 0.6, 1.5), (3, 1.0, 0.75, 1.0), (4, 2.0, 0.75, 1.0),
                   (5, 1e-4, 0.75, 2.0), (6, 1.0, 0.5, 2.0)]:
        x = torch.randn(3, 7, 4, 5, generator=g, dtype=DT) * 2
        sig = torch.randn(3, 7, 4, 5, generator=g, dtype=DT)
        lrn = nn.LocalResponseNorm(*params)
        want = torch.stack([ref_lrn_grad(sig[i], x[i], params) for i in range(3)])
        torch.testing.assert_close(deconvnet._lrn_backward(sig, x, lrn), want, **TOL)


# ---------------------------------------------------------------------------------------------- hand-computed


def test_unpool_adds_a_shared_switch_by_hand():
    """A 5x5 image whose maximum sits in all four 3x3/2 windows: unpooling [[1,2],[3,4]] puts 10 there;
    F.max_unpool2d would keep only one of the four."""
    spec = ArchSpec("one", (ConvSpec("conv1", 1, 1, 1, 0, PoolSpec(3, 2, 0, True)),), (), 1, 5, in_channels=1)
    model = ConvNet(spec).to(DT)
    with torch.no_grad():
        model.conv1.weight.fill_(1.0)
        model.conv1.bias.zero_()
    x = torch.rand(1, 1, 5, 5, generator=torch.Generator().manual_seed(4), dtype=DT)
    x[0, 0, 2, 2] = 5.0
    with torch.no_grad():
        record = model.forward_record(x)[1]
    assert (record.switches["conv1"] == 12).all()
    maps = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=DT)
    want = torch.zeros(1, 1, 5, 5, dtype=DT)
    want[0, 0, 2, 2] = 10.0
    assert torch.equal(project_maps(model, x, "conv1", maps, record=record), want)
    kept = F.max_unpool2d(maps, record.switches["conv1"], 3, 2, output_size=(5, 5))
    assert kept[0, 0, 2, 2] in (1.0, 2.0, 3.0, 4.0)
    want[0, 0, 2, 2] = 5.0  # a single target keeps its activation (5), nothing else
    assert torch.equal(project(model, x, [Target(0, "conv1", 0, 1, 1)], record=record)[0], want[0])


def test_one_conv_layer_projects_to_its_filter_by_hand():
    """Through one conv layer a unit projects to (activation x) its own filter, upright, at its receptive
    field: rows/cols y*stride - pad + (0..k-1), clipped at the border."""
    spec = ArchSpec("conv", (ConvSpec("conv1", 2, 3, 2, 1),), (), 1, 7)
    model = ConvNet(spec).to(DT)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        model.conv1.weight.copy_(torch.randn(2, 3, 3, 3, generator=g, dtype=DT))
        model.conv1.bias.fill_(20.0)  # keeps the units active; the projection must not see it
    x = torch.randn(1, 3, 7, 7, generator=g, dtype=DT)
    with torch.no_grad():
        record = model.forward_record(x)[1]
    w = model.conv1.weight.detach()
    for y, xx in [(1, 2), (0, 0), (3, 3)]:
        a = record.outputs["conv1"][0, 1, y, xx]
        assert a > 0
        want = torch.zeros(3, 9, 9, dtype=DT)  # padded by 1 on each side, cropped below
        want[:, 2 * y:2 * y + 3, 2 * xx:2 * xx + 3] = a * w[1]
        got = project(model, x, [Target(0, "conv1", 1, y, xx)], record=record)[0]
        torch.testing.assert_close(got, want[:, 1:8, 1:8], **TOL)


def rect_model() -> tuple[ConvNet, torch.Tensor]:
    """1x1 input -1; conv1 weights [2, -1, 3] -> rectified [0, 1, 0]; conv2 weights [-3, 2, 1] -> 2."""
    spec = ArchSpec("rect", (ConvSpec("conv1", 3, 1), ConvSpec("conv2", 1, 1)), (), 1, 1, in_channels=1)
    model = ConvNet(spec).to(DT)
    with torch.no_grad():
        model.conv1.weight.copy_(torch.tensor([2.0, -1.0, 3.0], dtype=DT).view(3, 1, 1, 1))
        model.conv2.weight.copy_(torch.tensor([-3.0, 2.0, 1.0], dtype=DT).view(1, 3, 1, 1))
        model.conv1.bias.zero_()
        model.conv2.bias.zero_()
    return model, torch.full((1, 1, 1, 1), -1.0, dtype=DT)


def test_rectification_by_hand():
    """Backward signal 2*[-3, 2, 1]: the deconvnet rectifies it to [0, 4, 2] -> 2*0 - 4 + 3*2 = 2.
    Without rectification: -12 - 4 + 6 = -10. With the forward ReLU mask [0, 1, 0] (the plain gradient,
    and here also guided backprop): -4."""
    model, x = rect_model()
    t = Target(0, "conv2", 0, 0, 0)
    assert project(model, x, [t]).item() == pytest.approx(2.0)
    xg = x.clone().requires_grad_(True)
    a = model.forward_record(xg)[1].outputs["conv2"].sum()
    assert a.item() == pytest.approx(2.0)
    assert (a.item() * torch.autograd.grad(a, xg)[0]).item() == pytest.approx(-4.0)


# ---------------------------------------------------------------------------------------------- Captum


def sequential_twin(model: ConvNet) -> tuple[nn.Sequential, dict[str, nn.Module]]:
    """The conv part of `model` as nn.Sequential with nn.ReLU modules (Captum hooks modules), same
    weights; returns it and each block's last module (whose output is the block's output)."""
    mods: list[nn.Module] = []
    last = {}
    for c in model.spec.convs:
        mods += [copy.deepcopy(model.conv_layers()[c.name]), nn.ReLU()]
        for op in c.ops[2:]:
            p = c.pool
            mods.append(nn.MaxPool2d(p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode) if op == "pool"
                        else nn.LocalResponseNorm(*model.spec.lrn))
        last[c.name] = mods[-1]
    return nn.Sequential(*mods).eval(), last


def captum(kind, model: ConvNet, x: torch.Tensor, targets: list[Target]) -> torch.Tensor:
    """Captum's `kind` (a neuron attribution) of each target on the twin network, stacked [K, 3, H, W]."""
    seq, last = sequential_twin(model)
    with torch.no_grad():
        torch.testing.assert_close(seq(x), model.forward_record(x)[1].outputs[model.spec.convs[-1].name])
    with warnings.catch_warnings():  # Captum announces its ReLU hooks and the inputs' requires_grad
        warnings.simplefilter("ignore", UserWarning)
        return torch.cat([kind(seq, last[t.layer]).attribute(x[t.image:t.image + 1].clone(),
                                                             neuron_selector=(t.channel, t.y, t.x))
                          for t in targets])


@pytest.mark.parametrize("lrn", [True, False])
def test_gradient_mode_equals_captum_neuron_deconvolution(lrn):
    """norm="gradient" is the gradient of the target activation with every ReLU's backward replaced by
    rectification: Captum's NeuronDeconvolution on a twin nn.Sequential. Without LRN both modes equal it."""
    model, x = tiny_model(norm=lrn, seed=6), tiny_images(seed=7)
    with torch.no_grad():
        record = model.forward_record(x)[1]
    targets = tiny_targets(record, seed=8)
    want = captum(NeuronDeconvolution, model, x, targets)
    assert (want.abs().sum((1, 2, 3)) > 0).float().mean() > 0.8
    unit = project(model, x, targets, norm="gradient", record=record, value="unit")
    torch.testing.assert_close(unit, want, **TOL)
    acts = torch.stack([record.outputs[t.layer][t.image, t.channel, t.y, t.x] for t in targets])
    scaled = project(model, x, targets, norm="gradient", record=record)
    torch.testing.assert_close(scaled, acts.view(-1, 1, 1, 1) * want, **TOL)
    identity = project(model, x, targets, norm="identity", record=record, value="unit")
    assert close(identity, want) == (not lrn)


def test_guided_backprop_and_plain_gradient_are_different_rules():
    """Captum's GuidedBackprop (forward mask AND rectification) and the plain gradient (forward mask only)
    differ from the deconvnet. Guided backprop differs where a ReLU has no max-pool just below it in the
    backward pass (conv4 -> conv3 here, conv5 -> conv4 -> conv3 in ZF): the switches sit on active units, so
    there the forward mask is mostly 1 anyway."""
    model, x = tiny_model(seed=9), tiny_images(seed=10)
    with torch.no_grad():
        record = model.forward_record(x)[1]
    targets = [t for t in tiny_targets(record, seed=11) if t.layer != "conv1"]
    deconv = project(model, x, targets, norm="gradient", record=record, value="unit")
    torch.testing.assert_close(deconv, captum(NeuronDeconvolution, model, x, targets), **TOL)
    guided = captum(NeuronGuidedBackprop, model, x, targets)
    xg = x.clone().requires_grad_(True)
    outputs = model.forward_record(xg)[1].outputs
    grads = torch.stack([torch.autograd.grad(outputs[t.layer][t.image, t.channel, t.y, t.x], xg,
                                             retain_graph=True)[0][t.image] for t in targets])

    def distance(other: torch.Tensor) -> torch.Tensor:
        """Relative L2 distance per target (a zero deconvnet projection against a nonzero other is +inf)."""
        return (deconv - other).flatten(1).norm(dim=1) / deconv.flatten(1).norm(dim=1)

    assert (distance(grads) > 0.2).all()
    assert (distance(guided)[[t.layer == "conv4" for t in targets]] > 0.2).all()
    assert not close(guided, grads)


# ---------------------------------------------------------------------------------------------- API behaviour


def test_chunks_order_and_record_do_not_change_results(setup):
    """Any chunk size gives the same rows in the targets' order; each row equals its target alone; a
    record computed inside equals the one passed in."""
    model, x, record, targets, _ = setup
    full = project(model, x, targets, record=record, chunk=64)
    for chunk in (1, 5):
        torch.testing.assert_close(project(model, x, targets, record=record, chunk=chunk), full, **TOL)
    for k in (0, len(targets) // 2, len(targets) - 1):
        torch.testing.assert_close(project(model, x, [targets[k]], record=record)[0], full[k], **TOL)
    torch.testing.assert_close(project(model, x, targets), full, **TOL)
    assert project(model, x, [], record=record).shape == (0, 3, 24, 24)


def test_project_maps_of_one_hot_maps_equals_project(setup):
    model, x, record, targets, _ = setup
    chosen = [next(t for t in targets if t.layer == "conv3" and t.image == i) for i in range(len(x))]
    maps = torch.stack([one_hot(record, t) for t in chosen])
    torch.testing.assert_close(project_maps(model, x, "conv3", maps, norm="gradient", record=record),
                               project(model, x, chosen, norm="gradient", record=record), **TOL)


def test_biases_are_not_used(setup):
    """With the record fixed, changing every conv bias leaves the projections unchanged."""
    model, x, record, targets, ref = setup
    other = copy.deepcopy(model)
    with torch.no_grad():
        for conv in other.conv_layers().values():
            conv.bias.add_(5.0)
    torch.testing.assert_close(project(other, x, targets, norm="gradient", record=record), ref["gradient"],
                               **TOL)


def test_strongest_is_the_argmax(setup):
    _, _, record, _, _ = setup
    for layer in ("conv1", "conv2", "conv3", "conv4"):
        for i in range(3):
            act = record.outputs[layer][i]
            best = max(((act[c, y, x].item(), (c, y, x)) for c in range(act.shape[0])
                        for y in range(act.shape[1]) for x in range(act.shape[2])), key=lambda p: p[0])
            assert strongest(record, layer, i) == Target(i, layer, *best[1])


def test_bad_input_raises_config_errors(setup):
    model, x, record, _, _ = setup
    with pytest.raises(ConfigError, match="deconvnet.norm"):
        project(model, x, [Target(0, "conv1", 0, 0, 0)], norm="invert", record=record)
    with pytest.raises(ConfigError, match="fc6"):
        project(model, x, [Target(0, "fc6", 0, 0, 0)], record=record)
    for bad, field in [(Target(3, "conv1", 0, 0, 0), "image"), (Target(0, "conv1", 4, 0, 0), "channel"),
                       (Target(0, "conv2", 0, 3, 0), "y"), (Target(0, "conv2", 0, 0, -1), "x")]:
        with pytest.raises(ConfigError, match=field):
            project(model, x, [bad], record=record)
    with pytest.raises(ConfigError, match="record"):
        project(model, x[:2], [Target(0, "conv1", 0, 0, 0)], record=record)
    with pytest.raises(ConfigError, match="shape"):
        project_maps(model, x, "conv1", torch.zeros(3, 4, 5, 5, dtype=DT), record=record)
    with pytest.raises(ConfigError, match="out of range"):
        strongest(record, "conv1", 7)


# ---------------------------------------------------------------------------------------------- command line


def test_project_command_matches_the_api(tiny_prepared, tiny_zf, tmp_path, capsys):
    out = tmp_path / "p.pt"
    assert cli_main(["project", "--model", str(tiny_zf), "--data-dir", str(tiny_prepared), "--targets",
                     '["4:conv2:1:2:1", "1:conv1:0:4:4"]', "--out", str(out), "--png", str(tmp_path / "p.png")]) == 0
    saved = torch.load(out, weights_only=True)
    model, _ = load_model(tiny_zf)
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    x = center_crop(split.data["images"][[1, 4]], mean, model.spec.input_size)
    expected = project(model, x, [Target(1, "conv2", 1, 2, 1), Target(0, "conv1", 0, 4, 4)])
    assert torch.allclose(saved["projections"], expected)
    assert (saved["images"], saved["split"], saved["norm"]) == ([1, 4], "val", "identity")
    drawn_figure(tmp_path / "p.png")  # the grid is drawn, not merely a file
    assert cli_main(["project", "--model", str(tiny_zf), "--data-dir", str(tiny_prepared), "--targets",
                     '["1:conv1"]', "--out", str(out)]) == 2
    assert "IMAGE:LAYER:CHANNEL:Y:X" in capsys.readouterr().err

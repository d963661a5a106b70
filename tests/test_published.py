"""Published networks imported into the project's network: the same logits as the original modules, built without
weights by their own packages (pytorchcv for imgclsmob's ZFNet, ZFNet-b, AlexNet, AlexNet-b; torchvision for its
AlexNet), the same deconvnet as Captum's NeuronDeconvolution on the original module, the registry's numbers against
pytorchcv's own metadata, and one line for a file that does not fit. Nothing is downloaded."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import pytest
import torch
import torchvision
from captum.attr import NeuronDeconvolution
from pytorchcv.models.alexnet import alexnet, alexnetb
from pytorchcv.models.common.model_store import get_model_metainfo
from pytorchcv.models.zfnet import zfnet, zfnetb

from zfrepro.analysis.deconvnet import Target, project
from zfrepro.analysis.mining import conv_outputs
from zfrepro.cli import main as cli_main
from zfrepro.errors import ConfigError, DataError
from zfrepro.model.architectures import zf_spec
from zfrepro.model.checkpoint import load_model, network_mean
from zfrepro.model.import_weights import convert_state_dict, import_weights
from zfrepro.model.network import ConvNet
from zfrepro.model.published import IMAGENET_MEAN, IMAGENET_STD, PUBLISHED
from zfrepro.model.spec import num_parameters, spec_to_dict

CLASSES = 10
ORIGINALS = {
    "zfnet": zfnet, "zfnetb": zfnetb, "alexnet": alexnet, "alexnetb": alexnetb,
    "torchvision-alexnet": lambda num_classes: torchvision.models.alexnet(weights=None, num_classes=num_classes),
}
LOGIT_TOL = 1e-4  # the bar, absolute, on logits of size about 10-100
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def original(name: str, seed: int = 0) -> torch.nn.Module:
    """The original module with random weights: conv1's large enough that LRN (k = 2) changes the activations
    strongly (with small ones LRN is a near-constant factor that commutes with the pool, hiding a misplaced LRN),
    the classifier scaled so that the logits reach about 20 (float32 rounding stays far below the tolerance)."""
    net = ORIGINALS[name](num_classes=CLASSES).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            fan_in = p[0].numel() if p.dim() > 1 else 1
            gain = 40.0 if i == 0 else 1.5
            p.copy_(torch.randn(p.shape, generator=g) * (gain / fan_in ** 0.5 if p.dim() > 1 else 0.1))
        classifier = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
        scale = 20.0 / float(net(original_input(pixels())).abs().max())
        classifier.weight.mul_(scale)
        classifier.bias.mul_(scale)
    return net


def pixels(n: int = 2, seed: int = 1) -> torch.Tensor:
    """Images as pixel values 0..255 at 224 px."""
    return torch.randint(0, 256, (n, 3, 224, 224), generator=torch.Generator().manual_seed(seed)).float()


def original_input(images: torch.Tensor) -> torch.Tensor:
    """What torchvision's and imgclsmob's evaluation feed them: (pixel / 255 - mean) / std."""
    return (images / 255 - MEAN) / STD


def project_input(model: ConvNet, images: torch.Tensor) -> torch.Tensor:
    """What this project feeds its network: the pixels minus the network's mean image (network_mean)."""
    return images - network_mean(model.spec, torch.zeros(3, 224, 224))


@pytest.fixture(scope="module")
def imported():
    """name -> (original module, imported ConvNet, largest |logit| difference, largest |logit|)."""
    out = {}
    x = pixels()
    for name in ORIGINALS:
        net = original(name)
        model, _ = convert_state_dict(net.state_dict(), PUBLISHED[name])
        with torch.no_grad():
            want, got = net(original_input(x)), model(project_input(model, x))
        out[name] = (net, model, float((want - got).abs().max()), float(want.abs().max()))
    return out


@pytest.mark.parametrize("name", list(ORIGINALS))
def test_imported_network_gives_the_originals_logits(imported, name):
    net, model, diff, scale = imported[name]
    print(f"{name}: largest logit difference {diff:.2e} (logits up to {scale:.1f})")
    assert scale > 1.0  # logits are not all near zero
    assert diff <= LOGIT_TOL


@pytest.mark.parametrize("name", list(ORIGINALS))
def test_parameter_counts_are_the_published_ones(name):
    """At 1000 classes the spec's count is the file's count as published (pytorchcv's metadata; torchvision's)."""
    entry = PUBLISHED[name]
    spec = entry.build(1000, 224)
    assert num_parameters(spec) == entry.parameters == sum(p.numel() for p in ORIGINALS[name](num_classes=1000)
                                                              .parameters())
    if entry.format == "pytorchcv":
        weights, error, sha1, release = get_model_metainfo(name)
        assert (weights, sha1, release) == (entry.parameters, entry.checksum, entry.release)
        assert entry.top5_error == int(error) / 100 and entry.file_name.startswith(f"{name}-{error}-{sha1[:8]}")


def test_a_misplaced_lrn_or_padding_would_be_seen(imported):
    """The comparison above can fail: the paper's ZF (LRN after the pool) and Krizhevsky's padding 2 in conv1
    give other logits from the same weights."""
    x = pixels()
    for name, wrong in (("zfnet", {"conv1": {"norm_after_pool": True}, "conv2": {"norm_after_pool": True}}),
                        ("alexnet", {"conv1": {"padding": 2}})):
        net, model, _, scale = imported[name]
        spec = model.spec
        spec = dataclasses.replace(spec, convs=tuple(dataclasses.replace(c, **wrong.get(c.name, {}))
                                                     for c in spec.convs))
        other = ConvNet(spec).eval()
        other.load_state_dict(model.state_dict())
        with torch.no_grad():
            diff = (net(original_input(x)) - other(project_input(model, x))).abs().max()
        assert diff > 1000 * LOGIT_TOL


@pytest.mark.parametrize("name", list(ORIGINALS))
def test_deconvnet_of_an_imported_network_equals_captum_on_the_original(imported, name):
    """Captum's NeuronDeconvolution on the original module (attributions to its normalised input) times the
    chain rule's 1 / (255 std) = the project's deconvnet (norm="gradient", value="unit") to the pixels."""
    net, model, _, _ = imported[name]
    x = pixels(1, seed=3)
    net, model = copy.deepcopy(net).double(), copy.deepcopy(model).double()
    xo, xp = original_input(x).double(), project_input(model, x).double()
    if name == "torchvision-alexnet":
        ends = {"conv1": net.features[2], "conv2": net.features[5], "conv4": net.features[9],
                "conv5": net.features[12]}
    else:
        f = net.features
        ends = {"conv1": f.stage1.pool1, "conv2": f.stage2.pool2, "conv4": f.stage3.unit2, "conv5": f.stage3.pool3}
    with torch.no_grad():
        outs = conv_outputs(model, xp, list(ends))
    for layer, module in ends.items():
        channel = int(outs[layer][0].flatten(1).max(1).values.argmax())  # a map that fires
        y, xx = divmod(int(outs[layer][0, channel].argmax()), outs[layer].shape[-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            want = NeuronDeconvolution(net, module).attribute(xo.clone(), neuron_selector=(channel, y, xx))
        want = want / (255 * STD.double())
        got = project(model, xp, [Target(0, layer, channel, y, xx)], norm="gradient", value="unit")
        assert want.abs().max() > 0
        # 1e-6 of the peak: the network's input scale is stored in float32 (1e-7 relative), which can move a
        # near-tie of a pool's switches; a wrong rule differs at the peak's order (test_deconvnet.py).
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))


def test_import_writes_a_checkpoint_that_loads_and_records_its_origin(tmp_path, imported):
    net, _, _, _ = imported["zfnet"]
    weights = tmp_path / "zfnet-random.pth"
    torch.save(net.state_dict(), weights)
    classes = [f"n{i:08d}" for i in range(CLASSES)]
    record = import_weights("zfnet", weights, tmp_path / "final.pt", arch="zf_published", classes=classes)
    model, ckpt = load_model(tmp_path / "final.pt")
    assert ckpt["published"]["sha1"] == record["sha1"] and not ckpt["published"]["checksum_matches_published"]
    assert ckpt["preprocessing"]["mean"] == list(IMAGENET_MEAN) and ckpt["preprocessing"]["crop"] == 224
    assert ckpt["classes"] == classes and ckpt["arch"] == model.spec.name == "zf_published"
    x = pixels()
    with torch.no_grad():
        torch.testing.assert_close(model(project_input(model, x)), net(original_input(x)), rtol=0, atol=LOGIT_TOL)


def test_the_paper_networks_spec_is_unchanged():
    """The new input-normalisation fields are written only when set: the paper's checkpoints keep their bytes."""
    d = spec_to_dict(zf_spec(10, 224))
    assert "input_mean" not in d and "input_std" not in d
    assert ConvNet(zf_spec(10, 224)).input_scale is None


def bad_files(tmp_path):
    """(file, the key the message must name) for files that do not fit zfnet."""
    state = original("zfnet").state_dict()
    renamed = {("features.stage1.unit1.conv.kernel" if k == "features.stage1.unit1.conv.weight" else k): v
               for k, v in state.items()}
    wrong_shape = {**state, "features.stage3.unit2.conv.weight": torch.zeros(512, 384, 3, 3)}
    missing = {k: v for k, v in state.items() if k != "output.fc2.fc.bias"}
    alexnet_file = original("alexnet").state_dict()
    cases = {"renamed": (renamed, "features.stage1.unit1.conv.kernel"),
             "wrong_shape": (wrong_shape, "features.stage3.unit2.conv.weight"),
             "missing": (missing, "output.fc2.fc.bias"),
             "alexnet_weights": (alexnet_file, "features.stage1.unit1.conv.weight"),
             "not_a_state_dict": ([1, 2, 3], "not a mapping of tensors")}
    out = []
    for label, (obj, key) in cases.items():
        path = tmp_path / f"{label}.pth"
        torch.save(obj, path)
        out.append((path, key))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    out.append((garbage, "cannot be read"))
    return out


def test_a_file_that_does_not_fit_gets_one_line(tmp_path, capsys):
    for path, key in bad_files(tmp_path):
        with pytest.raises(DataError) as err:
            import_weights("zfnet", path, tmp_path / "out.pt")
        message = str(err.value)
        assert "\n" not in message and str(path) in message and key in message
        if "key" in message:
            assert "pytorchcv's zfnet state dict" in message
        assert cli_main(["import-weights", "--published", "zfnet", "--weights", str(path),
                         "--out", str(tmp_path / "out.pt")]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "out.pt").exists()


def test_the_schemas_published_names_are_the_registrys():
    """A new published network is an entry of PUBLISHED plus its name in the schema's enum."""
    import yaml

    from conftest import REPO

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    enum = schema["$defs"]["arch"]["properties"]["published"]["properties"]["name"]["enum"]
    assert enum == list(PUBLISHED)


def test_other_image_or_crop_sizes_are_refused_naming_the_key(tmp_path):
    """The published networks saw 224 crops of 256 px images: other data sizes are one line naming the key."""
    weights = tmp_path / "zfnet.pth"
    torch.save(original("zfnet").state_dict(), weights)
    for kwargs, key in (({"image_size": 288}, "data.image_size"), ({"input_size": 200}, "data.crop_size")):
        with pytest.raises(ConfigError, match=key):
            import_weights("zfnet", weights, tmp_path / "out.pt", **kwargs)
    import_weights("zfnet", weights, tmp_path / "out.pt", image_size=256, input_size=224)

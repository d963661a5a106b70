"""Evaluation against independent computations: scikit-learn's top-k and a per-image torchvision pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import top_k_accuracy_score
from torchvision.datasets import ImageNet
from torchvision.transforms import v2

from zfrepro.data.splits import PreparedSplit
from zfrepro.model.checkpoint import load_model
from zfrepro.model.evaluate import errors_of, evaluate, split_probabilities, topk_wrong
from zfrepro.model.train import train
from zfrepro.model.train_config import TrainConfig

from conftest import TINY_ARCHS, TINY_DATA


def test_topk_matches_scikit_learn():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(200, 7, generator=gen)
    labels = torch.randint(0, 7, (200,), generator=gen)
    wrong = topk_wrong(scores, labels, ks=(1, 3, 5))
    for k in (1, 3, 5):
        acc = top_k_accuracy_score(labels.numpy(), scores.numpy(), k=k, labels=np.arange(7))
        assert wrong[k] == round((1 - acc) * 200)


def test_topk_hand_computed():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert topk_wrong(scores, labels, ks=(1, 2, 5)) == {1: 2, 2: 2, 5: 0}


@pytest.fixture(scope="module")
def tiny_model(tiny_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig.from_dict({"epochs": 3, "batch_size": 16, "checkpoint_epochs": [],
                                 "init": {"scheme": "gaussian", "std": 0.03}})
    return train(tiny_prepared, "zf", TINY_ARCHS["zf"], cfg, seed=0, out_dir=out, device="cpu", threads=1)


def test_evaluate_matches_a_per_image_torchvision_pipeline(tiny_imagenet, tiny_prepared, tiny_model):
    metrics, predictions = evaluate(tiny_model, tiny_prepared, train_subset=10, device="cpu", threads=1)
    model, _ = load_model(tiny_model)
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    size, crop = TINY_DATA["image_size"], TINY_DATA["crop_size"]
    # Independent path: torchvision's ImageNet class and transforms, one image at a time.
    to_tensor = v2.Compose([v2.Lambda(lambda im: im.convert("RGB")), v2.Resize(size, antialias=True),
                            v2.CenterCrop(size), v2.PILToTensor(), v2.ToDtype(torch.float32)])
    val = ImageNet(str(tiny_imagenet), split="val")
    wrong_center = wrong_ten = 0
    with torch.no_grad():
        for img, label in val:
            x = to_tensor(img) - mean
            center = v2.functional.center_crop(x, [crop, crop])
            wrong_center += int(model(center[None]).argmax(1).item() != label)
            crops = torch.stack(v2.functional.ten_crop(x, [crop, crop]))
            wrong_ten += int(model(crops).softmax(1).mean(0).argmax().item() != label)
    n = len(val)
    assert metrics["val_images"] == n
    assert metrics["val"]["center"]["top1_error"] == pytest.approx(100 * wrong_center / n)
    assert metrics["val"]["ten"]["top1_error"] == pytest.approx(100 * wrong_ten / n)
    assert metrics["val"]["ten"]["top5_error"] == 0.0  # 3 classes: the true one is always in the top 5
    assert metrics["train_subset_images"] == 10
    assert metrics["chance_top1_error"] == pytest.approx(100 * 2 / 3)
    # The kept predictions are the softmax outputs the errors came from (ensembles average them).
    assert predictions["ten"].shape == (n, 3) and torch.allclose(predictions["ten"].sum(1), torch.ones(n))
    assert errors_of({k: predictions[k] for k in ("center", "ten")}, predictions["labels"]) == metrics["val"]
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())


def test_split_probabilities_batch_of_one_equal_one_batch(tiny_prepared, tiny_model):
    """The softmax outputs are filled into preallocated [N, C] tensors batch by batch: batches of 1 give what
    one batch of every asked-for image gives, in the order of `indices`, centre crop alone or with ten."""
    model, ckpt = load_model(tiny_model)
    split = PreparedSplit(tiny_prepared / "val.pt")
    mean = torch.load(tiny_prepared / "mean.pt", weights_only=True)
    crop, cpu = int(ckpt["crop_size"]), torch.device("cpu")
    indices = torch.tensor([5, 0, 3, 1, 2])
    whole = split_probabilities(model, split, mean, crop, indices, len(indices), cpu)
    ones = split_probabilities(model, split, mean, crop, indices, 1, cpu)
    center = split_probabilities(model, split, mean, crop, indices, 2, cpu, ten=False)
    assert set(whole) == set(ones) == {"center", "ten"} and set(center) == {"center"}
    for kind in whole:
        assert whole[kind].shape == (len(indices), len(split.classes))
        torch.testing.assert_close(ones[kind], whole[kind], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(center["center"], whole["center"], rtol=1e-5, atol=1e-6)
    assert split_probabilities(model, split, mean, crop, indices[:0], 4, cpu) == {}

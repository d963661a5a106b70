"""zfrepro.data.registry: the study's four datasets, named once, in the order the generator depends on, with the
names the config and the loaders use."""

from __future__ import annotations

import yaml

from zfrepro.data import datasets
from zfrepro.data.registry import CALTECH, DATASETS, TRANSFER
from zfrepro.data.synthetic import vocabulary

from conftest import REPO


def test_the_datasets_their_order_and_their_groups():
    assert list(DATASETS) == ["imagenet", "caltech101", "caltech256", "voc"]
    assert all(name == d.name for name, d in DATASETS.items())
    assert [d.title for d in DATASETS.values()] == ["ImageNet 2012", "Caltech-101", "Caltech-256", "PASCAL VOC 2012"]
    assert [name for name, d in DATASETS.items() if d.role == "pretraining"] == ["imagenet"]
    assert TRANSFER == ("caltech101", "caltech256", "voc")
    assert CALTECH == ("caltech101", "caltech256")
    assert {d.layout for d in DATASETS.values()} == {"imagenet", "caltech", "voc"}


def test_the_generator_deals_its_classes_in_the_registry_order():
    # Reordering the registry would change every generated dataset: the class catalogue is dealt in this order.
    assert vocabulary.DATASETS == tuple(DATASETS)


def test_each_name_is_its_config_keys_and_its_loader():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]
    roots = {key for key in schema["data"]["properties"] if key.endswith("_root")}
    assert roots == {f"{name}_root" for name in DATASETS}
    assert set(DATASETS) <= set(schema["synthetic"]["properties"])
    assert set(TRANSFER) <= set(schema["transfer"]["properties"]) and "imagenet" not in schema["transfer"]["properties"]
    for name in DATASETS:
        assert callable(getattr(datasets, f"open_{name}", None)), f"zfrepro.data.datasets.open_{name}"

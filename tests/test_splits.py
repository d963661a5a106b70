"""Prepared splits: choosing images by class, class names from the manifest."""

from __future__ import annotations

import json

import pytest
import torch

from zfrepro.data.splits import PreparedSplit, class_names, images_by_class
from zfrepro.errors import ConfigError


def _split(tmp_path, labels: list[int]) -> PreparedSplit:
    torch.save({"classes": ["n1", "n2", "n3"], "labels": torch.tensor(labels), "image_size": 8,
                "images": torch.zeros(len(labels), 3, 8, 8, dtype=torch.uint8)}, tmp_path / "val.pt")
    return PreparedSplit(tmp_path / "val.pt")


def test_images_are_counted_within_their_class(tmp_path):
    split = _split(tmp_path, [0, 0, 1, 2, 1, 1])
    specs = [{"wnid": "n2", "nth": 0}, {"wnid": "n2", "nth": 2}, {"wnid": "n1", "nth": 1}]
    assert images_by_class(split, specs, "occlusion.images") == [2, 5, 1]
    with pytest.raises(ConfigError, match=r"occlusion.images\[1\].nth.*0\.\.0"):
        images_by_class(split, [{"wnid": "n1", "nth": 0}, {"wnid": "n3", "nth": 1}], "occlusion.images")
    with pytest.raises(ConfigError, match=r"occlusion.images\[0\].wnid.*n9"):
        images_by_class(split, [{"wnid": "n9", "nth": 0}], "occlusion.images")
    with pytest.raises(ConfigError, match=r"occlusion.images\[0\]"):
        images_by_class(split, [{"wnid": "n1"}], "occlusion.images")
    with pytest.raises(ConfigError, match="occlusion.images"):
        images_by_class(split, [], "occlusion.images")


def test_class_names_come_from_the_manifest(tmp_path):
    assert class_names(tmp_path, ["a", "b"]) == ["a", "b"]  # no manifest: the ids
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": ["b", "a"], "class_names": ["bee", "ant"]}))
    assert class_names(tmp_path, ["a", "b", "c"]) == ["ant", "bee", "c"]

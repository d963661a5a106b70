"""Prepared splits: choosing images by class, class names from the manifest, the background prefetch of batches."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from zfrepro.data.splits import PreparedSplit, class_names, images_by_class, prefetched, sample_by_class
from zfrepro.errors import ConfigError, DataError


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


def test_the_sample_takes_each_class_in_turn_and_skips_the_figures_images(tmp_path):
    split = _split(tmp_path, [0, 0, 1, 2, 1, 1])  # class 0: 0, 1; class 1: 2, 4, 5; class 2: 3
    assert sample_by_class(split, 4) == [0, 2, 3, 1]  # the first of every class, then the second
    assert sample_by_class(split, 4, exclude=[2, 3]) == [0, 1, 4, 5]
    assert sample_by_class(split, 99) == [0, 2, 3, 1, 4, 5]  # at most every image
    assert sample_by_class(split, 0) == []
    with pytest.raises(ConfigError, match="sample"):
        sample_by_class(split, -1)


def test_class_names_come_from_the_manifest(tmp_path):
    assert class_names(tmp_path, ["a", "b"]) == ["a", "b"]  # no manifest: the ids
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": ["b", "a"], "class_names": ["bee", "ant"]}))
    assert class_names(tmp_path, ["a", "b", "c"]) == ["ant", "bee", "c"]


def test_prefetched_keeps_order_and_runs_ahead_of_the_consumer():
    made = []

    def batches():
        for i in range(6):
            made.append(i)
            yield torch.full((2,), i), torch.tensor(i)

    stream = prefetched(batches(), depth=2)
    first = next(stream)
    time.sleep(0.2)
    assert torch.equal(first[0], torch.zeros(2)) and len(made) >= 3  # the next ones are ready meanwhile
    assert [int(label) for _, label in stream] == [1, 2, 3, 4, 5]


def test_prefetched_raises_the_producers_error_in_order_and_stops_early():
    def failing():
        yield 1
        raise DataError("shard 7 is damaged")

    stream = prefetched(failing())
    assert next(stream) == 1
    with pytest.raises(DataError, match="shard 7"):
        next(stream)
    endless = prefetched(iter(range(10**9)))
    assert [next(endless) for _ in range(3)] == [0, 1, 2]
    endless.close()  # the consumer stops: the producer thread ends instead of filling memory
    assert not any(t.name == "zfrepro-prefetch" and t.is_alive() for t in threading.enumerate())

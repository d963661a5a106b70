"""Tests for zfrepro.data.shards: JPEG shards decode as an independent decoder (PIL) decodes their bytes, a killed
prepare resumes keeping its finished shards, and damaged, truncated or missing shards are named, never read."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

import zfrepro.data.shards as shards
from zfrepro.data.prepare import prepare_image_list
from zfrepro.data.preprocess import load_rgb, resize_center_crop
from zfrepro.data.shards import decode_batch, shard_folder
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import DataError
from zfrepro.io import atomic_torch_save, damaged_results

from conftest_data import write_jpeg

SIZE = 24


def _params(**overrides):
    return {"image_size": SIZE, "crop_size": 20, "cache": "stream", "cache_max_gb": 8, "max_bad_fraction": 0.0,
            "mean_max_images": None, "shard_format": "jpeg", "jpeg_quality": 90, "shard_images": 4, **overrides}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    return [str(write_jpeg(tmp_path / "src" / f"{i}.jpg", rng)) for i in range(10)]


def _prepare(files, out, threads=1, **overrides):
    labels = [i % 3 for i in range(len(files))]
    return prepare_image_list(files, labels, ["a", "b", "c"], out, _params(**overrides), threads=threads,
                              compute_mean=True)


def _pil_decode(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)


def test_jpeg_shards_decode_like_pil_and_stay_close_to_the_source(files, tmp_path):
    summary = _prepare(files, tmp_path / "s.pt", threads=2)
    split = PreparedSplit(tmp_path / "s.pt")
    assert summary.mode == "stream" and len(split.data["shards"]["files"]) == 3  # 10 images, 4 per shard
    images = torch.cat([b for b, _ in split.batches(torch.arange(10), 3, workers=2)])
    for row, path in enumerate(files):
        assert torch.equal(images[row], _pil_decode(split.reader.read(row)))  # libjpeg-turbo == PIL
        source = resize_center_crop(load_rgb(path), SIZE)
        # quality 90 on random-noise test images: small but nonzero loss
        assert 0 < (images[row].float() - source.float()).abs().mean() < 12
    # the mean image is taken from the decoded sources, before JPEG
    exact = torch.stack([resize_center_crop(load_rgb(p), SIZE) for p in files]).double().mean(0)
    assert torch.allclose(summary.mean.double(), exact, atol=1e-4)
    # the GPU path's batched decode (run here on the CPU) gives the same images
    encoded = [split.reader.encoded(r) for r in range(10)]
    assert torch.equal(decode_batch(encoded, torch.device("cpu"), SIZE), images)


def test_a_killed_prepare_keeps_its_finished_shards(files, tmp_path, monkeypatch, capsys):
    original = shards.write_shard

    def dies_on_shard_2(job):
        if job.index == 2:
            raise KeyboardInterrupt  # the job killed while writing its third shard
        return original(job)

    monkeypatch.setattr("zfrepro.data.prepare.write_shard", dies_on_shard_2)
    with pytest.raises(KeyboardInterrupt):
        _prepare(files, tmp_path / "s.pt")
    folder = shard_folder(tmp_path / "s.pt")
    assert sorted(p.name for p in folder.glob("*.bin")) == ["00000.bin", "00001.bin"]
    assert not (tmp_path / "s.pt").exists() and not list(folder.glob("*.tmp"))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    monkeypatch.setattr("zfrepro.data.prepare.write_shard", original)
    _prepare(files, tmp_path / "s.pt")
    assert "kept 2 of 3 shards" in capsys.readouterr().err
    assert all(folder.joinpath(name).stat().st_mtime_ns == t for name, t in before.items())  # not rewritten
    resumed = torch.cat([b for b, _ in PreparedSplit(tmp_path / "s.pt").batches(torch.arange(10), 10)])
    _prepare(files, tmp_path / "fresh.pt")
    fresh = torch.cat([b for b, _ in PreparedSplit(tmp_path / "fresh.pt").batches(torch.arange(10), 10)])
    assert torch.equal(resumed, fresh)


def test_changed_inputs_rewrite_shards_and_stale_ones_go(files, tmp_path, capsys):
    _prepare(files, tmp_path / "s.pt")
    capsys.readouterr()
    _prepare(files, tmp_path / "s.pt", jpeg_quality=50)  # other bytes: nothing may be kept
    assert "kept" not in capsys.readouterr().err
    _prepare(files[:6], tmp_path / "s.pt", shard_images=6)  # one shard now: 00001.* are stale
    folder = shard_folder(tmp_path / "s.pt")
    assert sorted(p.name for p in folder.iterdir()) == [".00000.bin.sha256.json", ".00000.meta.pt.sha256.json",
                                                        "00000.bin", "00000.meta.pt"]
    _prepare(files, tmp_path / "s.pt", cache="memory")
    assert not folder.exists()


def test_raw_shards_hold_the_memory_cache_pixels(files, tmp_path):
    _prepare(files, tmp_path / "raw.pt", shard_format="raw")
    _prepare(files, tmp_path / "mem.pt", cache="memory")
    raw = torch.cat([b for b, _ in PreparedSplit(tmp_path / "raw.pt").batches(torch.arange(10), 4)])
    assert torch.equal(raw, PreparedSplit(tmp_path / "mem.pt").data["images"])


def test_damaged_truncated_and_missing_shards_are_named(files, tmp_path):
    _prepare(files, tmp_path / "s.pt")
    folder = shard_folder(tmp_path / "s.pt")
    shard = folder / "00001.bin"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF  # one flipped bit pattern inside image 4 (the first of shard 1)
    shard.write_bytes(bytes(data))
    split = PreparedSplit(tmp_path / "s.pt")  # sizes agree: opening succeeds ...
    with pytest.raises(DataError, match=r"00001\.bin is damaged: image 4 .* CRC-32") as err:
        list(split.batches(torch.arange(10), 5))  # ... reading the image does not
    assert "rerun: prepare rewrites the missing shard" in str(err.value)
    with pytest.raises(DataError) as in_worker:  # read in a loader worker: the same one line, no traceback
        list(split.batches(torch.arange(10), 5, workers=1))
    assert str(in_worker.value) == str(err.value)
    split.reader.image(0)  # other shards still read

    shard.write_bytes(bytes(data[:-10]))
    with pytest.raises(DataError, match=r"00001\.bin is damaged: it has \d+ bytes but prepare wrote"):
        PreparedSplit(tmp_path / "s.pt")
    shard.unlink()
    with pytest.raises(DataError, match=r"00001\.bin is missing"):
        PreparedSplit(tmp_path / "s.pt")
    # the advice works: deleting the split and rerunning rewrites only that shard
    os.unlink(tmp_path / "s.pt")
    _prepare(files, tmp_path / "s.pt")
    assert len(list(PreparedSplit(tmp_path / "s.pt").batches(torch.arange(10), 10))) == 1


def test_planning_names_a_truncated_shard_and_how_to_rewrite_it(files, tmp_path):
    _prepare(files, tmp_path / "s.pt")
    shard = shard_folder(tmp_path / "s.pt") / "00002.bin"
    shard.write_bytes(shard.read_bytes()[:-1])
    (problem,) = damaged_results(tmp_path)  # what the workflow checks before running any job
    assert f"{shard} is damaged" in problem and f"rm {shard} {tmp_path / 's.pt'}" in problem


def test_a_split_of_the_old_stream_format_is_refused(tmp_path):
    atomic_torch_save(tmp_path / "old.pt", {"classes": ["a"], "labels": torch.zeros(1, dtype=torch.int64),
                                            "image_size": 8, "paths": ["/x.jpg"]})
    with pytest.raises(DataError, match=r"older version of prepare .*\(rm .*old\.pt\)"):
        PreparedSplit(tmp_path / "old.pt")

"""Results are written atomically with a checksum, a damaged one is named when read and before any job runs, and a
full disk ends in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from zfrepro.errors import DataError, DiskFullError
from zfrepro.io import (
    atomic_torch_save,
    damaged_results,
    load_json_result,
    load_result,
    move_result,
    sidecar,
    verify,
)


def test_saved_result_carries_its_checksum(tmp_path):
    path = atomic_torch_save(tmp_path / "a.pt", {"w": torch.arange(10)})
    record = json.loads(sidecar(path).read_text())
    assert record["file"] == "a.pt" and record["bytes"] == path.stat().st_size
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(load_result(path)["w"], torch.arange(10))


def test_truncated_result_is_named_with_what_to_do(tmp_path):
    path = atomic_torch_save(tmp_path / "final.pt", {"w": torch.randn(1000)})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=rf"{path} is damaged: it has \d+ bytes but its step wrote \d+.*rm {path}"):
        load_result(path)
    assert [p.split(" is damaged")[0] for p in damaged_results(tmp_path)] == [str(path)]


def test_same_size_corruption_is_caught_by_the_checksum(tmp_path):
    path = atomic_torch_save(tmp_path / "final.pt", {"w": torch.randn(1000)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data: torch would load it silently
    path.write_bytes(bytes(data))
    (problem,) = damaged_results(tmp_path)  # planning sees it: the modification time moved, so it hashes
    assert problem.startswith(f"{path} is damaged: its content differs from what its step wrote")
    assert f"rm {path}" in problem
    with pytest.raises(DataError, match="SHA-256 differs"):
        verify(path)


@pytest.mark.parametrize("copy", [shutil.copyfile, shutil.copy2], ids=["cp", "cp -p"])
def test_another_seeds_model_copied_over_is_caught_while_planning(tmp_path, copy):
    weights = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    seed0 = atomic_torch_save(tmp_path / "seed0/final.pt", {"w": weights})
    seed1 = atomic_torch_save(tmp_path / "seed1/final.pt", {"w": weights + 1})
    assert seed0.stat().st_size == seed1.stat().st_size and list(damaged_results(tmp_path)) == []
    copy(seed0, seed1)  # same size, a valid model file, only the wrong one (cp -p even keeps seed0's time)
    (problem,) = damaged_results(tmp_path)
    assert problem.startswith(f"{seed1} is damaged: its content differs")


def test_an_intact_file_whose_time_moved_is_hashed_once(tmp_path, monkeypatch):
    import zfrepro.io

    path = atomic_torch_save(tmp_path / "final.pt", {"w": torch.randn(100)})
    os.utime(path, ns=(1, 1))  # touched (snakemake --touch, a copy back): same bytes, another time
    hashed = []
    real = zfrepro.io.sha256_of
    monkeypatch.setattr(zfrepro.io, "sha256_of", lambda p: hashed.append(p) or real(p))
    assert list(damaged_results(tmp_path)) == [] and list(damaged_results(tmp_path)) == []
    assert hashed == [path]  # the new time is recorded: later starts read only sizes and times
    assert json.loads(sidecar(path).read_text())["mtime_ns"] == 1


def test_a_full_disk_ends_in_one_line_and_keeps_the_earlier_file(tmp_path, monkeypatch):
    path = atomic_torch_save(tmp_path / "last.pt", {"epoch": 1})
    before = path.read_bytes()
    real_save = torch.save

    def save_to_a_full_disk(obj, f, *args, **kwargs):  # the real torch.save, on a device that is always full
        with open("/dev/full", "wb") as full:
            real_save(obj, full, *args, **kwargs)

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    monkeypatch.setattr(torch, "save", save_to_a_full_disk)
    with pytest.raises(DiskFullError) as caught:
        atomic_torch_save(path, {"epoch": 2, "w": torch.zeros(100_000)})
    assert str(caught.value) == (f"no space left on device writing {path}: free space and rerun; nothing finished "
                                 "was lost (the file is written whole or not at all)")
    assert path.read_bytes() == before and not list(tmp_path.glob(".last.pt.*.tmp"))


def test_unreadable_file_without_checksum_is_named(tmp_path):
    path = tmp_path / "old.pt"  # e.g. written before checksums existed
    path.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=rf"{path} cannot be read .*delete it"):
        load_result(path)


def test_missing_result_says_which_target_makes_it(tmp_path):
    with pytest.raises(DataError, match=r"absent.pt is missing: run the step that writes it \(snakemake "):
        load_result(tmp_path / "absent.pt")


def test_broken_json_result_names_line_and_column(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(DataError, match=rf"{path}, line 4, column 1: not valid JSON"):
        load_json_result(path)


def test_move_result_takes_the_checksum_along(tmp_path):
    src = atomic_torch_save(tmp_path / "work" / "epoch1.pt", torch.ones(3))
    dst = move_result(src, tmp_path / "epoch1.pt")
    assert not sidecar(src).exists() and sidecar(dst).exists()
    verify(dst)


def test_evaluate_on_a_truncated_model_prints_one_line(tmp_path):
    model = atomic_torch_save(tmp_path / "final.pt", {"w": torch.randn(1000)})
    model.write_bytes(model.read_bytes()[:500])
    res = subprocess.run([sys.executable, "-m", "zfrepro.cli", "evaluate", "--data-dir", str(tmp_path),
                          "--model", str(model), "--params", "{}", "--out", str(tmp_path / "m.json"),
                          "--out-predictions", str(tmp_path / "p.pt"), "--device", "cpu"],
                         capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{model} is damaged" in lines[0] and f"rm {model}" in lines[0]


def test_same_result_is_the_same_bytes(tmp_path):
    # torch.save names the zip archive after the file it writes to: a random temporary name would differ
    a = atomic_torch_save(tmp_path / "a" / "final.pt", {"w": torch.arange(5.0)})
    b = atomic_torch_save(tmp_path / "b" / "final.pt", {"w": torch.arange(5.0)})
    assert a.read_bytes() == b.read_bytes()

"""benchmarks/first_gpu_run.sh --smoke: the first-GPU-run script's steps on the CPU (gpu_check, the tiny study as
a dry run, one training epoch through zfrepro train), one summary line each, every step's JSON written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_smoke_run_prints_one_line_per_step_and_writes_their_numbers(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "SNAKEMAKE": str(Path(sys.executable).parent / "snakemake")}
    res = subprocess.run(["bash", str(REPO / "benchmarks/first_gpu_run.sh"), "--smoke", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=600)
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0, res.stdout + res.stderr
    assert [line.split(" ")[0] for line in lines] == ["gpu_check", "tiny_study", "paper_epoch"], lines
    assert "FAILED" not in res.stdout
    check = json.loads((tmp_path / "gpu_check.json").read_text())
    assert all(stage["status"] == "ok" for stage in check["stages"].values()) and "train" in check["stages"]
    assert "jobs planned (dry run)" in lines[1] and "tiny study on cpu: ? jobs" not in lines[1]
    epoch = json.loads((tmp_path / "paper_epoch.json").read_text())
    assert epoch["images"] == 32 and epoch["images_per_second"] > 0


@pytest.mark.slow
def test_a_failing_step_is_named_and_the_rest_still_run(tmp_path):
    """A broken interpreter for the Python steps: both say FAILED with their log, the study still runs, and the
    exit status counts the failures."""
    fake = tmp_path / "bin"
    fake.mkdir()
    broken = fake / "python"
    broken.write_text("#!/bin/sh\necho 'no torch here' >&2\nexit 3\n")
    broken.chmod(0o755)
    env = {**os.environ, "PYTHON": str(broken), "SNAKEMAKE": str(Path(sys.executable).parent / "snakemake")}
    res = subprocess.run(["bash", str(REPO / "benchmarks/first_gpu_run.sh"), "--smoke", str(tmp_path / "out")],
                         env=env, capture_output=True, text=True, timeout=300)
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 2, res.stdout + res.stderr
    assert "FAILED (exit 3)" in lines[0] and "no torch here" in lines[0]
    assert any(line.startswith("tiny_study") and "planned" in line for line in lines)
    assert "FAILED (exit 3)" in lines[-1]

"""Failures a user can cause end in one line naming the file or config key: a lock left by a killed run,
a missing or broken config file, device: cuda without a GPU."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zfrepro import preflight

from conftest import REPO

TINY = ["--configfile", "tests/config/tiny.yaml", "--replace-workflow-config"]


def _workdir(tmp: Path, real_config: bool = False) -> Path:
    """A scratch copy of the workflow (links to the repository's files); `real_config`: config/ copied, to break."""
    for name in ("Snakefile", "workflow", "tests") + (() if real_config else ("config",)):
        (tmp / name).symlink_to(REPO / name)
    if real_config:
        shutil.copytree(REPO / "config", tmp / "config")
    return tmp


def _run(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def _wait(condition, timeout=60.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------------------
# A lock left by a killed run


def test_lock_of_a_killed_run_is_removed_once_nothing_works_in_the_folder(tmp_path, capsys):
    cwd = _workdir(tmp_path)
    voc = ["-m", "snakemake", *TINY, "--cores", "1", "results/data/synthetic/voc"]
    run = subprocess.Popen([sys.executable, *voc], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: preflight.lock_files(cwd))
    finally:
        run.send_signal(signal.SIGKILL)  # like `kill -9` of Snakemake alone: its job may run on, orphaned
        run.wait()
    locks = preflight.lock_files(cwd)
    _wait(lambda: not preflight.workers(cwd))  # the orphaned `zfrepro generate`, if any, finishes
    again = _run(cwd, *voc, "--rerun-incomplete")
    assert again.returncode != 0 and "LockException" in again.stdout + again.stderr  # what every rerun hit before

    # A process still working in the folder (a stand-in for an orphaned job): the lock stays.
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "zfrepro"], cwd=cwd)
    try:
        _wait(lambda: preflight.workers(cwd))
        assert preflight.check_lock(cwd) == 1
        assert preflight.check_lock(cwd, stop_if_running=False) == 0  # dry runs and reports go on
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 2 and f"pid {worker.pid} still works" in lines[0] and "make unlock" in lines[0]
        assert lines[0].startswith("error:") and lines[1].startswith("note:")
        assert preflight.lock_files(cwd) == locks
    finally:
        worker.kill()
        worker.wait()

    # Nothing works there any more: `make reproduce`'s first step unlocks, and the run goes through.
    res = _run(cwd, "-m", "zfrepro.preflight", "--", *TINY)
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [
        f"Removed the lock a killed run left in {cwd.resolve()}/.snakemake/locks (no snakemake or zfrepro process "
        "works here): ran `snakemake --unlock`."]
    assert not preflight.lock_files(cwd)
    assert _run(cwd, *voc, "--rerun-incomplete").returncode == 0


def test_lock_without_proc_prints_what_to_type(tmp_path, monkeypatch, capsys):
    locks = tmp_path / ".snakemake" / "locks"  # the layout of Snakemake's FilePersistence
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/data/synthetic/voc\n")
    monkeypatch.setattr(preflight, "workers", lambda workdir: None)  # as on macOS
    assert preflight.check_lock(tmp_path) == 0
    assert "type `make unlock`" in capsys.readouterr().err
    assert preflight.lock_files(tmp_path) == [locks / "0.output.lock"]
    assert preflight.check_lock(tmp_path / "elsewhere") == 0  # no locks: nothing to say


def test_workers_lists_only_processes_in_the_folder_that_mention_the_workflow(tmp_path):
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], cwd=tmp_path)
    named = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "snakemake"], cwd=tmp_path)
    try:
        _wait(lambda: preflight.workers(tmp_path))
        assert [pid for pid, _ in preflight.workers(tmp_path)] == [named.pid]
        assert preflight.workers(tmp_path / "..") != []  # below the folder counts too (shadow rules)
    finally:
        for proc in (quiet, named):
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------------------
# Config files


def test_configfile_values_are_read_as_snakemake_does():
    args = ["-n", "--configfile", "a.yaml", "b.yaml", "--cores", "2", "--configfiles=c.yaml", "-d", "w", "all"]
    assert preflight.option_values(args, preflight.CONFIGFILE_OPTIONS, many=True) == ["a.yaml", "b.yaml", "c.yaml"]
    assert preflight.option_values(args, preflight.DIRECTORY_OPTIONS) == ["w"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "config file {path} not found (relative to {cwd}): check the path, e.g. config/paper.yaml."),
        ("device: cpu\nseeds: [0\nfoo: 1\n", "config file {path}, line 3, column 4: expected ',' or ']', but got "
         "':' (while parsing a flow sequence from line 2); fix the YAML there"),
        ("training:\n\tepochs: 2\n", "config file {path}, line 2, column 1: found character '\\t' that cannot "
         "start any token; fix the YAML there (indent with spaces, not tabs"),
        ("- device: cpu\n", "config file {path} holds list, not `key: value` settings at the top level"),
        ("", "config file {path} holds nothing, not `key: value` settings"),
    ],
)
def test_config_file_problem_is_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "my.yaml"
    if text is not None:
        path.write_text(text)
    res = _run(tmp_path, "-m", "zfrepro.preflight", "--", "-n", "--configfile", "my.yaml", "--cores", "1")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: " + expected.format(path="my.yaml", cwd=tmp_path))


def test_config_file_that_loads_passes(tmp_path):
    assert preflight.config_file_problem(REPO / "config/paper.yaml") is None
    assert preflight.config_file_problem(REPO / "tests/config/tiny.yaml") is None
    (tmp_path / "c.json").write_text('{"device": "cpu"}')
    assert preflight.config_file_problem(tmp_path / "c.json") is None


def test_broken_workflow_config_yaml_names_its_line(tmp_path):
    cwd = _workdir(tmp_path, real_config=True)
    config = cwd / "config/config.yaml"
    config.write_text(config.read_text().replace("seeds: [0]", "seeds: [0", 1))
    res = _run(cwd, "-m", "snakemake", "-n")
    assert res.returncode != 0
    assert "config file config/config.yaml, line 7, column 1: expected ',' or ']'" in res.stdout + res.stderr
    assert "(while parsing a flow sequence from line 6)" in res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------------------
# device: cuda without a GPU

# A stand-in for snakemake-executor-plugin-slurm: only its settings are read (non-local); a dry run never
# submits, so the project's SLURM profile can be planned without the plugin or a cluster.
FAKE_SLURM = """\
from snakemake.executors.local import Executor  # noqa: F401
from snakemake_interface_executor_plugins.settings import CommonSettings

common_settings = CommonSettings(non_local_exec=True, implies_no_shared_fs=False, job_deploy_sources=False)
"""


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif("_has_gpu()", reason="this machine has a GPU: device: cuda is fine here")
def test_cuda_without_gpu_stops_a_local_run_while_planning_but_not_a_cluster_run(tmp_path):
    (tmp_path / "work").mkdir()
    cwd = _workdir(tmp_path / "work")
    problem = ("config device is 'cuda' but PyTorch sees no CUDA GPU on this machine, where the jobs run: "
               "set device: auto (a GPU when there is one) or device: cpu, e.g. --config device=auto.")
    local = _run(cwd, "-m", "snakemake", *TINY, "--cores", "1", "results/data/synthetic/voc", "--config", "device=cuda")
    out = local.stdout + local.stderr
    assert local.returncode != 0 and problem in out and "Traceback" not in out
    assert not (cwd / "results").exists()  # stopped before any job
    dry = _run(cwd, "-m", "snakemake", "-n", *TINY, "--config", "device=cuda")
    assert dry.returncode == 0 and f"note (a run would stop here): {problem}" in dry.stdout + dry.stderr

    plugin = tmp_path / "plugins" / "snakemake_executor_plugin_slurm"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(FAKE_SLURM)
    cluster = _run(cwd, "-m", "snakemake", "-n", "--profile", "workflow/profiles/slurm", *TINY,
                   "--config", "device=cuda", env={"PYTHONPATH": str(plugin.parent)})
    assert cluster.returncode == 0, (cluster.stdout + cluster.stderr)[-3000:]
    assert "train_zf" in cluster.stdout and "CUDA" not in cluster.stdout + cluster.stderr


# ---------------------------------------------------------------------------------------------------------
# A damaged result stops the run before any job reruns on it (and deletes the good outputs after it)


def test_truncated_model_stops_planning_naming_the_file(tmp_path):
    from zfrepro.io import atomic_torch_save

    cwd = _workdir(tmp_path)
    model = atomic_torch_save(cwd / "results/models/zf/seed0/final.pt", {"w": list(range(1000))})
    assert _run(cwd, "-m", "snakemake", *TINY, "-n").returncode == 0
    model.write_bytes(model.read_bytes()[:-50])
    res = _run(cwd, "-m", "snakemake", *TINY, "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "results/models/zf/seed0/final.pt is damaged: it has" in out
    assert "delete it (rm results/models/zf/seed0/final.pt) and rerun" in out

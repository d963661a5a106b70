"""zfrepro.preflight, what `make` runs before Snakemake: a lock left by a killed run is removed once nothing works
in the folder (and named when something does), and a config file that does not load is one line naming the file,
the line and the column."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from zfrepro import preflight

from conftest import REPO, TINY_CONFIG, run_python, workflow_copy


def _wait(condition, timeout=60.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------------------
# A lock left by a killed run


def test_lock_of_a_killed_run_is_removed_once_nothing_works_in_the_folder(tmp_path, capsys):
    cwd = workflow_copy(tmp_path)
    voc = ["-m", "snakemake", *TINY_CONFIG, "--cores", "1", "results/tiny/data/synthetic/voc"]
    run = subprocess.Popen([sys.executable, *voc], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: preflight.lock_files(cwd))
    finally:
        run.send_signal(signal.SIGKILL)  # like `kill -9` of Snakemake alone: its job may run on, orphaned
        run.wait()
    locks = preflight.lock_files(cwd)
    _wait(lambda: not preflight.workers(cwd))  # the orphaned `zfrepro generate`, if any, finishes
    again = run_python(cwd, *voc, "--rerun-incomplete")
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
    res = run_python(cwd, "-m", "zfrepro.preflight", "--", *TINY_CONFIG)
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [
        f"Removed the lock a killed run left in {cwd.resolve()}/.snakemake/locks (no snakemake or zfrepro process "
        "works here): ran `snakemake --unlock`."]
    assert not preflight.lock_files(cwd)
    assert run_python(cwd, *voc, "--rerun-incomplete").returncode == 0


def test_lock_without_proc_prints_what_to_type(tmp_path, monkeypatch, capsys):
    locks = tmp_path / ".snakemake" / "locks"  # the layout of Snakemake's FilePersistence
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/tiny/data/synthetic/voc\n")
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
    res = run_python(tmp_path, "-m", "zfrepro.preflight", "--", "-n", "--configfile", "my.yaml", "--cores", "1")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: " + expected.format(path="my.yaml", cwd=tmp_path))


def test_config_file_that_loads_passes(tmp_path):
    assert preflight.config_file_problem(REPO / "config/paper.yaml") is None
    assert preflight.config_file_problem(REPO / "tests/config/tiny.yaml") is None
    (tmp_path / "c.json").write_text('{"device": "cpu"}')
    assert preflight.config_file_problem(tmp_path / "c.json") is None


# ---------------------------------------------------------------------------------------------------------
# The results folder `make report` and `make clean` use: the one Snakemake's merged config gives


@pytest.mark.parametrize("args, expected", [
    ([], "results/demo"),
    (["--configfile", "config/paper.yaml"], "results/paper"),
    (["--configfile", "config/paper.yaml", "--cores", "2", "--config", "device=cpu", "results_dir=runs/x"], "runs/x"),
    (["--config=results_dir=runs/y"], "runs/y"),
    (["--replace-workflow-config", "--configfile", "tests/config/tiny.yaml"], "results/tiny"),
])
def test_results_dir_is_the_one_the_merged_config_gives(args, expected, monkeypatch):
    monkeypatch.chdir(REPO)
    assert preflight.results_dir(args) == expected


def test_results_dir_agrees_with_the_workflows_own_plan():
    """Snakemake itself (a dry run of one target) puts the paper config's outputs where preflight says."""
    args = ["--configfile", "config/paper.yaml", "--config", "results_dir=runs/z", "data={source: synthetic}"]
    res = run_python(REPO, "-m", "snakemake", "-n", *args, "--", "runs/z/data/synthetic/voc")
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]
    assert preflight.results_dir(args) == "runs/z"

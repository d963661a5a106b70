"""zfrepro.preflight, what `make` runs before Snakemake: a lock left by a killed run is removed once nothing works
in the folder (and named when something does), and a config file that does not load is one line naming the file,
the line and the column."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------------------
# Deleting is only ever of what the workflow wrote: `make clean` and the results_dir check


def _scratch_checkout(tmp_path) -> Path:
    """A checkout to lose: the repository's folders, each with a file, and a results folder of the tiny config."""
    checkout = tmp_path / "checkout"
    for name in ("src", "config", "workflow", "tests", "docs", ".git", ".venv", "results/tiny"):
        (checkout / name).mkdir(parents=True)
        (checkout / name / "keep.txt").write_text("mine")
        (checkout / name / preflight.RESULTS_MARK).write_text("planted: the path guard alone must refuse")
    (checkout / "Snakefile").write_text("# the checkout's\n")
    return checkout


def _clean(checkout, results_dir, capsys) -> tuple[int, str]:
    code = preflight.main(["--clean", "--", "--config", f"results_dir={results_dir}"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("given", ["{checkout}", "{checkout}/", ".", "./", "..", "src", "config", "workflow", "tests",
                                   "docs", ".git", ".venv", "src/zfrepro", "results", "results/", "~", "{home}"])
def test_clean_never_removes_the_checkout_its_folders_or_home(tmp_path, monkeypatch, capsys, given):
    checkout = _scratch_checkout(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / preflight.RESULTS_MARK).write_text("planted")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(checkout)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, err = _clean(checkout, given.format(checkout=checkout, home=home), capsys)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("make clean: error: config results_dir ") and err.endswith("Nothing was removed.\n")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # the real rm never ran


@pytest.mark.parametrize("given", ["/", "//", "/usr", "/usr/lib", "/tmp", "/root", "/etc", "/var", "/home"])
def test_clean_never_removes_a_system_folder(tmp_path, monkeypatch, capsys, given):
    checkout = _scratch_checkout(tmp_path)
    monkeypatch.chdir(checkout)

    def tripwire(path, *args, **kwargs):
        raise AssertionError(f"make clean tried to delete {path}")

    monkeypatch.setattr(preflight.shutil, "rmtree", tripwire)  # a system folder is never handed to the real rm
    code, err = _clean(checkout, given, capsys)
    assert code == 1 and err.startswith("make clean: error: config results_dir ") and err.count("\n") == 1


def test_clean_removes_a_marked_results_folder_and_says_what(tmp_path, monkeypatch, capsys):
    checkout = _scratch_checkout(tmp_path)
    monkeypatch.chdir(checkout)
    code, err = _clean(checkout, "results/tiny", capsys)
    assert code == 0 and err == ("make clean: removing results/tiny (2 files, 0.0 MB): the results of this "
                                 "configuration.\n")
    assert not (checkout / "results/tiny").exists() and (checkout / "src/keep.txt").exists()
    elsewhere = tmp_path / "runs"  # outside the checkout, e.g. a scratch disk: fine when marked
    elsewhere.mkdir()
    (elsewhere / preflight.RESULTS_MARK).write_text("")
    assert _clean(checkout, str(elsewhere), capsys)[0] == 0 and not elsewhere.exists()
    assert _clean(checkout, "results/never", capsys) == (0, "make clean: results/never does not exist: nothing to "
                                                            "remove.\n")


def test_clean_keeps_a_folder_the_workflow_did_not_mark(tmp_path, monkeypatch, capsys):
    checkout = _scratch_checkout(tmp_path)
    monkeypatch.chdir(checkout)
    (checkout / "results/tiny" / preflight.RESULTS_MARK).unlink()
    code, err = _clean(checkout, "results/tiny", capsys)
    assert code == 1 and f"has no {preflight.RESULTS_MARK}" in err and err.count("\n") == 1
    assert (checkout / "results/tiny/keep.txt").exists()


def test_results_dir_problem_accepts_folders_of_their_own(tmp_path):
    for fine in ("results/demo", "results/paper", "runs/x", str(tmp_path / "elsewhere"), "/tmp/zf-results"):
        assert preflight.results_dir_problem(fine, REPO) is None, fine


@pytest.mark.parametrize("given", ["src", "config", ".", "..", "/", "//", "/usr", "/tmp", "/root", str(REPO)])
def test_the_workflow_refuses_such_a_results_dir_in_one_line(given):
    res = run_python(REPO, "-m", "snakemake", "-n", *TINY_CONFIG, "--config", f"results_dir={given}")
    assert res.returncode == 1
    lines = [line for line in res.stderr.splitlines() if "extended by additional config" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: config results_dir"), lines  # no traceback lines
    if not given.endswith("/"):  # (the schema's pattern refuses a trailing slash first)
        assert lines == [f"error: {preflight.results_dir_problem(given, REPO)}"]


# ---------------------------------------------------------------------------------------------------------
# `make unlock` respects a live run


def test_unlock_keeps_a_live_runs_lock_and_names_its_pids(tmp_path, monkeypatch, capsys):
    workflow_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/tiny/models/zf/seed0/final.pt\n")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "snakemake"], cwd=tmp_path)
    try:
        _wait(lambda: preflight.workers(tmp_path))
        assert preflight.unlock(tmp_path) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid(s) {worker.pid} still work in this folder" in err
        assert "`make unlock FORCE=1`" in err and preflight.lock_files(tmp_path)
        assert preflight.unlock(tmp_path, force=True) == 0  # explicitly forced
        assert "forced" in capsys.readouterr().err and not preflight.lock_files(tmp_path)
    finally:
        worker.kill()
        worker.wait()
    assert preflight.unlock(tmp_path) == 0 and "nothing to do" in capsys.readouterr().err


def test_a_config_item_that_is_not_key_value_is_one_line(tmp_path):
    res = run_python(tmp_path, "-m", "zfrepro.preflight", "--", "-n", "--config", "results_dir=a", "foo")
    assert res.returncode == 1 and res.stderr == (
        "error: --config 'foo' is not key=value: write e.g. --config results_dir=results/mine (nested keys as YAML: "
        "--config training='{epochs: 20}').\n")

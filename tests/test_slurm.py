"""The workflow on SLURM, for real: a one-node cluster on this machine (.ci/slurm_setup.sh: Debian's slurm-wlm and
munge, slurmctld and slurmd on localhost) runs the tiny study through workflow/profiles/slurm and the pinned
snakemake-executor-plugin-slurm, and its outputs are byte for byte the local run's. And what a job of a new
architecture asks SLURM for with device: cuda, read off the sbatch lines the plugin submits (no GPU needed).

The cluster test needs root (it installs packages and starts daemons) and apt-get; elsewhere it is skipped with the
reason. It keeps no accounting database: the plugin tracks jobs with squeue (tests/slurm/profile).
Set ZFREPRO_SLURM_FULL=1 to run the whole tiny DAG on SLURM (about 70 jobs: 11 minutes on a loaded 2-core machine,
where each job's own Snakemake start costs seconds) instead of the default targets (slurm_targets: 20 jobs).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import _planned_resources as planned_resources

from zfrepro import preflight

from conftest import REPO, run_python, workflow_copy

SETUP = REPO / ".ci/slurm_setup.sh"
SLURM_PROFILE = "workflow/profiles/slurm"
TEST_PROFILE = "tests/slurm/profile"  # layered over SLURM_PROFILE: only what the one-node test cluster needs
FAKE_BIN = REPO / "tests/slurm/fake_bin"
TINY = REPO / "tests/config/tiny.yaml"


def results_dir() -> str:
    """The tiny config's results folder, as `make` finds it (zfrepro.preflight.results_dir)."""
    return preflight.results_dir(["--replace-workflow-config", "--configfile", str(TINY)])


def slurm_targets() -> list[str]:
    """What the cluster test builds: two tables and two figures and all they need, 20 jobs of 16 rules (data,
    training, evaluation, deconvnet projections, transfer features, classifiers and from-scratch training, plots; the
    tables are local rules), or with ZFREPRO_SLURM_FULL=1 everything (`rule all`)."""
    if os.environ.get("ZFREPRO_SLURM_FULL") == "1":
        return []
    results = results_dir()
    return [f"{results}/tables/table2_imagenet.csv", f"{results}/tables/table4_caltech101.csv",
            f"{results}/figures/fig2_top9.png", f"{results}/figures/fig3_architecture.png"]


def tiny_workflow(tmp: Path) -> Path:
    """A scratch copy of the workflow whose config/config.yaml is tests/config/tiny.yaml.

    Not `--configfile tests/config/tiny.yaml --replace-workflow-config` (conftest.TINY_CONFIG): Snakemake 9 does not
    pass --replace-workflow-config on to the jobs it submits (snakemake/spawn_jobs.py forwards --configfiles, not that
    flag), so each SLURM job would merge config/config.yaml under tiny.yaml and plan other jobs than the main process
    (test_replace_workflow_config_reaches_the_submitted_jobs)."""
    cwd = workflow_copy(tmp, real_config=True)
    shutil.copyfile(TINY, cwd / "config/config.yaml")
    return cwd


def snakemake(cwd: Path, *args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_python(cwd, "-m", "snakemake", *args, timeout=timeout, env=env)


def check(res: subprocess.CompletedProcess, what: str) -> None:
    if res.returncode != 0:
        pytest.fail(f"{what} failed:\n{res.stdout[-4000:]}\n{res.stderr[-6000:]}")


def require_plugin() -> None:
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: .venv/bin/pip install -e '.[dev]' "
                    "(pyproject.toml pins it)")


# ---------------------------------------------------------------------------------------------------------
# A one-node SLURM cluster on this machine


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """.ci/slurm_setup.sh (idempotent): skip, with its reason, where it cannot bring SLURM up."""
    if os.geteuid() != 0:
        pytest.skip("SLURM test needs root (.ci/slurm_setup.sh installs slurm-wlm, munge and starts slurmctld, slurmd)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("SLURM test needs apt-get to install Debian's slurm-wlm and munge (not found)")
    require_plugin()
    res = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900)
    print(res.stdout, res.stderr)
    if res.returncode != 0:
        lines = (res.stderr.strip() or res.stdout.strip() or f"exit status {res.returncode}").splitlines()
        pytest.skip(f"SLURM test: .ci/slurm_setup.sh could not start SLURM: {lines[0]}")


def cancel_jobs_of(cwd: Path) -> None:
    """Cancel whatever SLURM still holds from a run in `cwd` (a failed or timed-out run leaves its jobs queued)."""
    res = subprocess.run(["squeue", "-h", "-o", "%i %Z"], capture_output=True, text=True)
    ids = [line.split()[0] for line in res.stdout.splitlines() if line.split()[1:] == [str(cwd)]]
    if ids:
        subprocess.run(["scancel", *ids], check=False)


@pytest.fixture(scope="module")
def local_and_slurm_runs(slurm_cluster, tmp_path_factory) -> dict:
    """The tiny study's targets run locally (workflow/profiles/default) and on SLURM (workflow/profiles/slurm), each in
    the same folder in turn (some outputs record absolute input paths), then moved aside: {"local", "slurm": folder,
    "slurm_seconds", "slurm_output"}."""
    base = tmp_path_factory.mktemp("slurm_study")
    work = base / "work"
    runs = {}
    for name, args in (("local", ["--profile", "workflow/profiles/default"]),
                       ("slurm", ["--profile", SLURM_PROFILE, "--profile", TEST_PROFILE])):
        work.mkdir()
        cwd = tiny_workflow(work)
        start = time.monotonic()
        try:
            res = snakemake(cwd, *args, *slurm_targets(), timeout=1800)
        finally:
            if name == "slurm":
                cancel_jobs_of(cwd)
        seconds = time.monotonic() - start
        print(f"{name} run: {seconds:.0f} s")
        if res.returncode != 0 and name == "slurm":
            logs = sorted((cwd / ".snakemake/slurm_logs").rglob("*.log"))
            tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in logs[-3:])
            pytest.fail(f"the SLURM run failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}\n{tails}")
        check(res, f"the {name} run")
        work.rename(base / name)
        runs[name] = base / name
        runs[f"{name}_seconds"] = seconds
        runs[f"{name}_output"] = res.stdout + res.stderr
    return runs


# Outputs that record how fast, not what: compared by presence only (logs: progress rates and times; benchmarks:
# Snakemake's timings and memory; an atlas's cost.json), or without their timings (a training history's columns; an
# atlas's "cost" entry in its JSON and the cost summary its pages print; when a checksum sidecar's file was written).
TIMING_DIRS = ("logs", "benchmarks")
TIMING_FILES = ("cost.json",)
TIMING_COLUMNS = {"seconds", "images_per_second"}
TIMING_KEYS = {"cost", "mtime_ns"}


def output_files(root: Path) -> dict[str, Path]:
    """Every file a run wrote in its folder (relative path -> path), without Snakemake's own .snakemake/, the copied
    config/ and the links to the repository."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".snakemake", "config") or any(p.is_symlink() for p in [root / rel.parts[0], path]):
            continue
        if path.is_file():
            found[rel.as_posix()] = path
    return found


def is_timing_record(rel: str) -> bool:
    return any(f"/{d}/" in f"/{rel}" for d in TIMING_DIRS) or rel.rsplit("/", 1)[-1] in TIMING_FILES


def without_timings(value):
    """A JSON value without its TIMING_KEYS entries, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def cost_summaries_masked(path: Path) -> bytes:
    """The file's bytes with the cost summary of a cost.json beside it (an atlas page prints it) masked."""
    data, cost = path.read_bytes(), path.parent / "cost.json"
    if cost.exists():
        summary = str(json.loads(cost.read_text()).get("summary", ""))
        for text in {summary, html.escape(summary)} - {""}:
            data = data.replace(text.encode(), b"<cost>")
    return data


def same_content(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    if a.name == "metrics.csv":  # a training's history: loss and errors per epoch, and its speed
        ta, tb = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (a, b))
        keep = [c for c in ta.columns if c not in TIMING_COLUMNS]
        return list(ta.columns) == list(tb.columns) and ta[keep].equals(tb[keep])
    if a.suffix == ".json":
        return without_timings(json.loads(a.read_text())) == without_timings(json.loads(b.read_text()))
    return cost_summaries_masked(a) == cost_summaries_masked(b)


@pytest.mark.slow
def test_tiny_study_on_slurm_writes_what_the_local_run_writes(local_and_slurm_runs):
    local, slurm = output_files(local_and_slurm_runs["local"]), output_files(local_and_slurm_runs["slurm"])
    results = results_dir()
    assert any(rel.startswith(f"{results}/") for rel in local), sorted(local)[:10]
    assert sorted(slurm) == sorted(local)
    different = [rel for rel in local if not is_timing_record(rel) and not same_content(local[rel], slurm[rel])]
    assert different == []
    compared = [rel for rel in local if not is_timing_record(rel)]
    assert any(rel.endswith(".png") for rel in compared) and any(rel.endswith(".csv") for rel in compared)
    assert any(rel.endswith("final.pt") for rel in compared)  # trained weights, byte for byte


@pytest.mark.slow
def test_the_jobs_ran_as_slurm_jobs(local_and_slurm_runs):
    out = local_and_slurm_runs["slurm_output"]
    print(f"SLURM run: {local_and_slurm_runs['slurm_seconds']:.0f} s, local run: "
          f"{local_and_slurm_runs['local_seconds']:.0f} s")
    submitted = set(re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/rule_(\w+)/", out))
    assert {"generate_synthetic", "prepare_imagenet", "train_zf", "train_krizhevsky", "evaluate", "top9_projections",
            "features", "classify_frozen", "train_scratch", "plot_fig2_top9"} <= submitted, out[-3000:]
    assert "table2" not in submitted  # a local rule: runs in the main process
    assert "Falling back to 'sacct'" not in out  # tracked with squeue (tests/slurm/profile): there is no accounting
    # Every submitted job completed, as SLURM saw it (squeue lists a finished job for MinJobAge, 10 minutes).
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    listed = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i %T", "-j", ",".join(ids)],
                            capture_output=True, text=True).stdout.split()
    states = dict(zip(listed[::2], listed[1::2], strict=True))
    assert states and set(states) <= set(ids) and set(states.values()) == {"COMPLETED"}, states


# ---------------------------------------------------------------------------------------------------------
# What the jobs ask SLURM for, from the config: sbatch lines with device: cuda (recorded by a stand-in sbatch)


def sbatch_lines(log: Path) -> dict[str, list[str]]:
    """The recorded sbatch calls: the job's comment (rule_<rule>_wildcards_<values>) -> its arguments."""
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return {args[args.index("--comment") + 1]: args for args in calls}


def sbatch_option(args: list[str], *names: str) -> str | None:
    """The value of an sbatch option, given as `-t 60`, `--time 60` or `--time=60`."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def sbatch_time_minutes(args: list[str]) -> int:
    """The job's time limit (sbatch -t/--time, in minutes as the plugin writes it: from the job's `runtime`)."""
    value = sbatch_option(args, "-t", "--time")
    assert value is not None and value.isdigit(), args
    return int(value)


def sbatch_mem_mb(args: list[str]) -> int:
    """The job's memory (sbatch --mem, MB: from the job's `mem_mb`)."""
    value = sbatch_option(args, "--mem")
    assert value is not None and value.isdigit(), args
    return int(value)


@pytest.fixture(scope="module")
def gpu_study(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny study with one more architecture, zf_new (zf's entry under a new name, nothing else added anywhere), whose
    ImageNet is prepared (locally, `--until prepare_imagenet`), so that the trainings are ready to submit:
    (folder, the extra config file)."""
    require_plugin()
    cwd = tiny_workflow(tmp_path_factory.mktemp("slurm_gpu"))
    arch = yaml.safe_load(TINY.read_text())["architectures"]["zf"]
    extra = cwd / "new_arch.yaml"
    extra.write_text(yaml.safe_dump({"architectures": {"zf_new": {**arch, "seeds": [0]}}}))
    check(snakemake(cwd, "--cores", "2", "--configfile", str(extra), "--until", "prepare_imagenet"),
          "preparing the tiny ImageNet")
    return cwd, extra


def submit_with_fake_sbatch(cwd: Path, tmp: Path, *args: str) -> dict[str, list[str]]:
    """Run the SLURM profile with tests/slurm/fake_bin first on PATH (sbatch records its arguments and refuses the job;
    sinfo, squeue, sacct, scontrol answer as an empty cluster would), so that each ready job is submitted once and
    none runs: the sbatch lines as sbatch_lines() reads them."""
    fake = tmp / "fake_bin"
    shutil.copytree(FAKE_BIN, fake, dirs_exist_ok=True)
    for tool in fake.iterdir():
        tool.chmod(0o755)
    log = tmp / "sbatch.jsonl"
    log.unlink(missing_ok=True)
    env = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "FAKE_SBATCH_LOG": str(log)}
    res = snakemake(cwd, "--profile", SLURM_PROFILE, "--retries", "0", "--slurm-init-seconds-before-status-checks", "1",
                    *args, env=env, timeout=300)
    assert res.returncode != 0, "the stand-in sbatch refuses every job"
    assert log.exists(), f"nothing was submitted:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return sbatch_lines(log)


@pytest.mark.slow
def test_a_new_architecture_asks_slurm_for_a_gpu_with_no_profile_edit(gpu_study, tmp_path):
    """device: cuda without a GPU here: the jobs run on the cluster's nodes, so the run is allowed (common.smk
    check_device), and the sbatch lines show what each training asks for: --gpus=1 (resources.gpu_request: gpus) and
    the time limit (-t) and memory (--mem) that the config gives its rule. zf_new gets them as zf does, and the
    profile names neither."""
    cwd, extra = gpu_study
    profile = (REPO / SLURM_PROFILE / "config.yaml").read_text()
    assert "zf_new" not in profile and "train_" not in re.sub(r"(?m)^\s*#.*$", "", profile)
    cuda = ["--configfile", str(extra), "--config", "device=cuda"]
    lines = submit_with_fake_sbatch(cwd, tmp_path, *cuda)
    dry = snakemake(cwd, "-n", "--profile", SLURM_PROFILE, *cuda)
    check(dry, "the dry run")
    plan = planned_resources(dry)  # rule -> the resources the dry run printed
    print("\n".join(" ".join(["sbatch", *[a for a in args if not a.startswith("--wrap")]]) for args in lines.values()))
    trainings = {comment: args for comment, args in lines.items() if comment.startswith("rule_train_")}
    assert "rule_train_zf_new_wildcards_0" in trainings and "rule_train_zf_wildcards_0" in trainings, sorted(lines)
    for comment, args in trainings.items():
        rule = re.match(r"rule_(train_\w+?)_wildcards_", comment).group(1)
        assert "--gpus=1" in args and not any(a.startswith("--gres") for a in args), args
        assert sbatch_time_minutes(args) == int(plan[rule]["runtime"]), (rule, plan[rule])
        assert sbatch_mem_mb(args) == int(plan[rule]["mem_mb"]), (rule, plan[rule])
    # Jobs without a GPU step (data generation) ask for none.
    cpu_jobs = [args for comment, args in lines.items() if comment.startswith("rule_generate_synthetic")]
    assert cpu_jobs and not any(a.startswith(("--gpus", "--gres")) for args in cpu_jobs for a in args)


@pytest.mark.slow
def test_gres_clusters_get_gres_lines(gpu_study, tmp_path):
    """resources.gpu_request: gres (a cluster that wants --gres=gpu:N) and a GPU model: the same new architecture."""
    cwd, extra = gpu_study
    lines = submit_with_fake_sbatch(cwd, tmp_path, "--configfile", str(extra), "--config", "device=cuda",
                                    "resources={gpu_request: gres, gpu_model: a100}")
    args = lines["rule_train_zf_new_wildcards_0"]
    assert "--gres=gpu:a100:1" in args and not any(a.startswith("--gpus") for a in args), args


@pytest.mark.xfail(strict=True, reason="Snakemake 9 does not forward --replace-workflow-config to submitted jobs "
                   "(snakemake/spawn_jobs.py); tiny_workflow() works around it")
def test_replace_workflow_config_reaches_the_submitted_jobs(tmp_path):
    require_plugin()
    (tmp_path / "wf").mkdir()
    cwd = workflow_copy(tmp_path / "wf")
    lines = submit_with_fake_sbatch(cwd, tmp_path, "--configfile", "tests/config/tiny.yaml",
                                    "--replace-workflow-config")
    wrap = next(a for args in lines.values() for a in args if a.startswith("--wrap"))
    assert "--replace-workflow-config" in wrap

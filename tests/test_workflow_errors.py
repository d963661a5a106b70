"""Failures a user can cause in a workflow run end in one line naming the file or config key: a broken
config/config.yaml, device: cuda without a GPU, a damaged result. (The checks `make` runs first, a stale lock
and config files that do not load, are tests/test_preflight.py.)"""

from __future__ import annotations

import os

import pytest

from conftest import REPO, TINY_CONFIG, run_python, workflow_copy


def test_broken_workflow_config_yaml_names_its_line(tmp_path):
    cwd = workflow_copy(tmp_path, real_config=True)
    config = cwd / "config/config.yaml"
    config.write_text(config.read_text().replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2", 1))
    res = run_python(cwd, "-m", "snakemake", "-n")
    assert res.returncode != 0
    assert "config file config/config.yaml, line 8, column 1: expected ',' or ']'" in res.stdout + res.stderr
    assert "(while parsing a flow sequence from line 7)" in res.stdout + res.stderr


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
def test_cuda_without_gpu_stops_a_local_run_while_planning_but_not_a_clusterrun_python(tmp_path):
    (tmp_path / "work").mkdir()
    cwd = workflow_copy(tmp_path / "work")
    problem = ("config device is 'cuda' but PyTorch sees no CUDA GPU on this machine, where the jobs run: "
               "set device: auto (a GPU when there is one) or device: cpu, e.g. --config device=auto.")
    local = run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "--cores", "1", "results/tiny/data/synthetic/voc",
                       "--config", "device=cuda")
    out = local.stdout + local.stderr
    assert local.returncode != 0 and problem in out and "Traceback" not in out
    assert not (cwd / "results/tiny").exists()  # stopped before any job
    dry = run_python(cwd, "-m", "snakemake", "-n", *TINY_CONFIG, "--config", "device=cuda")
    assert dry.returncode == 0 and f"note (a run would stop here): {problem}" in dry.stdout + dry.stderr

    plugin = tmp_path / "plugins" / "snakemake_executor_plugin_slurm"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(FAKE_SLURM)
    path = os.pathsep.join(filter(None, [str(plugin.parent), os.environ.get("PYTHONPATH")]))  # the fake plugin first
    cluster = run_python(cwd, "-m", "snakemake", "-n", "--profile", "workflow/profiles/slurm", *TINY_CONFIG,
                         "--config", "device=cuda", env={"PYTHONPATH": path})
    assert cluster.returncode == 0, (cluster.stdout + cluster.stderr)[-3000:]
    assert "train_zf" in cluster.stdout and "CUDA" not in cluster.stdout + cluster.stderr


# ---------------------------------------------------------------------------------------------------------
# A damaged result stops the run before any job reruns on it (and deletes the good outputs after it)


def test_truncated_model_stops_planning_naming_the_file(tmp_path):
    from zfrepro.io import atomic_torch_save

    cwd = workflow_copy(tmp_path)
    model = atomic_torch_save(cwd / "results/tiny/models/zf/seed0/final.pt", {"w": list(range(1000))})
    assert run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "-n").returncode == 0
    model.write_bytes(model.read_bytes()[:-50])
    res = run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "results/tiny/models/zf/seed0/final.pt is damaged: it has" in out
    assert "delete it (rm results/tiny/models/zf/seed0/final.pt) and rerun" in out


@pytest.mark.parametrize("damage", ["flipped byte", "another seed's model copied over"])
def test_same_size_damage_stops_planning_before_any_output_is_deleted(tmp_path, damage):
    import shutil

    import torch

    from zfrepro.io import atomic_torch_save

    cwd = workflow_copy(tmp_path)
    models = cwd / "results/tiny/models/zf"
    seed0 = atomic_torch_save(models / "seed0/final.pt", {"w": torch.randn(1000)})
    seed1 = atomic_torch_save(models / "seed1/final.pt", {"w": torch.randn(1000)})
    metrics = cwd / "results/tiny/metrics/zf/seed0.json"  # a good output of the step after the model
    metrics.parent.mkdir(parents=True)
    metrics.write_text("{}")
    assert run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "-n").returncode == 0
    if damage == "flipped byte":
        data = bytearray(seed0.read_bytes())
        data[len(data) // 2] ^= 0xFF
        seed0.write_bytes(bytes(data))
    else:
        shutil.copy2(seed1, seed0)  # same size, a valid model, the wrong one
    for args in (["-n"], ["--cores", "1", "results/tiny/metrics/zf/seed0.json"]):
        res = run_python(cwd, "-m", "snakemake", *TINY_CONFIG, *args)
        assert res.returncode != 0
        assert res.stderr.strip().splitlines()[-1] == (
            "error: results/tiny/models/zf/seed0/final.pt is damaged: its content differs from what its step wrote "
            "(SHA-256 in results/tiny/models/zf/seed0/.final.pt.sha256.json; overwritten, or another file copied "
            "over it?); delete it (rm results/tiny/models/zf/seed0/final.pt) and rerun: the step that wrote it "
            "(snakemake results/tiny/models/zf/seed0/final.pt) writes it again, and the steps after it rerun")
        assert "Job stats" not in res.stdout + res.stderr  # nothing planned
    assert metrics.read_text() == "{}"  # the good output is still there


def test_generated_data_that_lost_a_file_stops_planning_and_its_readers(tmp_path):
    import json

    from zfrepro.data.datasets import open_voc
    from zfrepro.errors import DataError

    cwd = workflow_copy(tmp_path)
    voc = cwd / "results/tiny/data/synthetic/voc"
    made = run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "--cores", "1", str(voc.relative_to(cwd)))
    assert made.returncode == 0, made.stderr[-2000:]
    assert run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "-n").returncode == 0  # as written: fine
    lost = sorted((voc / "VOCdevkit/VOC2012/JPEGImages").iterdir())[3]
    lost.unlink()
    res = run_python(cwd, "-m", "snakemake", *TINY_CONFIG, "-n")
    assert res.returncode != 0
    listed = len(json.loads((voc / "synthetic.json").read_text())["files"])
    assert res.stderr.strip().splitlines()[-1] == (
        f"error: generated data results/tiny/data/synthetic/voc is not what the generator wrote: "
        f"{listed} files listed in results/tiny/data/synthetic/voc/synthetic.json, "
        f"1 missing ({lost.relative_to(voc).as_posix()}); regenerate it: delete the folder (rm -r "
        "results/tiny/data/synthetic/voc) and rerun (make reproduce, or your snakemake command): rule "
        "generate_synthetic writes it again, the same images from synthetic.seed.")
    with pytest.raises(DataError, match=r"is not what the generator wrote: .* 1 missing"):
        open_voc(voc, "train")  # what prepare-transfer reads: an error, not a split one image short


@pytest.mark.parametrize("given, expected", [
    ("training={epochs: x}", "error: config training.epochs: 'x' is not of type 'integer'. See config/README.md."),
    ("atlas={networks: [nope]}", "error: config atlas.networks names architecture 'nope', which is not defined under "
                                 "architectures"),
    ("transfer={arch: nope}", "error: config transfer.arch names architecture 'nope'"),
    ("tables={table2: {x: nope}}", "error: config tables.table2['x'] names architecture 'nope'"),
    ("data={source: real}", "error: config data.imagenet_root is not set but data.source is 'real'"),
])
def test_a_config_error_from_the_command_line_is_one_line(given, expected):
    res = run_python(REPO, "-m", "snakemake", "-n", *TINY_CONFIG, "--config", given)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[-1].startswith(expected)
    assert not [line for line in lines if line.startswith(("  File ", "Traceback", "KeyError", "WorkflowError"))]

"""A training on several GPUs asks SLURM for one node (issue 24): torchrun --standalone starts all its processes
on the node it runs on, so `--gpus=N` alone (which SLURM may spread over nodes) is not enough. Read off the sbatch
lines the stand-in sbatch records (tests/test_slurm.py's gpu_study and submit_with_fake_sbatch)."""

from __future__ import annotations

import pytest
from test_slurm import gpu_study, submit_with_fake_sbatch  # noqa: F401 (gpu_study is a fixture)


@pytest.mark.slow
def test_a_multi_gpu_training_asks_for_one_node(gpu_study, tmp_path):  # noqa: F811
    cwd, extra = gpu_study
    lines = submit_with_fake_sbatch(cwd, tmp_path, "--configfile", str(extra), "--config", "device=cuda",
                                    "gpus_per_training=2")
    trainings = {comment: args for comment, args in lines.items() if comment.startswith("rule_train_")}
    assert trainings, sorted(lines)
    for args in trainings.values():
        assert "--gpus=2" in args and "--nodes=1" in args, args
    others = [args for comment, args in lines.items() if not comment.startswith("rule_train_")]
    assert others and not any(a.startswith("--nodes") for args in others for a in args)

"""benchmarks/paper_cost.py: its plan of the paper configuration is the one the workflow makes (`snakemake -n`), and its
FLOP count is a hand computation of the layers."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import REPO, run_python, workflow_copy

sys.path.insert(0, str(REPO / "benchmarks"))
import paper_cost  # noqa: E402


def _dry_run(tmp_path) -> str:
    cwd = workflow_copy(tmp_path)
    roots = []
    for name in ("imagenet", "caltech101", "caltech256", "voc"):
        (tmp_path / "roots" / name).mkdir(parents=True)
        roots.append(f"{name}_root: {tmp_path / 'roots' / name}")
    res = run_python(cwd, "-m", "snakemake", "-n", "--configfile", "config/paper.yaml", "--config",
                     "data={" + ", ".join(roots) + "}")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def test_the_plan_is_the_workflows(tmp_path):
    text = _dry_run(tmp_path)
    counts = {parts[0]: int(parts[1]) for line in text.splitlines()
              if len(parts := line.split()) == 2 and parts[1].isdigit()}
    plan = paper_cost.plan(paper_cost.load_config(REPO / "config/paper.yaml"))
    imagenet = sum(n for rule, n in counts.items() if rule.startswith("train_") and rule != "train_scratch")
    assert imagenet == len(plan["imagenet_trainings"]) == 17  # 13 architectures + 4 more ZF seeds (Table 2)
    assert counts["train_scratch"] == len(plan["scratch_trainings"]) == 65  # 5 splits x (2 + 11 sizes)
    assert counts["evaluate"] == len(plan["evaluations"]) == 17
    assert counts["features"] == len(plan["features"]) == 4
    assert counts["mine_top9"] == len(plan["mining"]) == 2
    assert counts["overlap"] == len(plan["overlap"]) == 2
    assert counts["prepare_caltech"] + counts["prepare_voc"] + counts["prepare_imagenet"] == len(plan["prepare"])
    # Fig 4: the kept epochs and the final model are the evolution job's inputs
    evolution = re.search(r"rule evolution:\n\s+input: (.*)", text).group(1)
    checkpoints = re.findall(r"results/paper/models/zf/seed0/(?:epoch(\d+)|final)\.pt", evolution)
    assert len(checkpoints) == len(plan["evolution"]["checkpoints"]) == 9
    assert [int(e) for e in checkpoints if e] == plan["evolution"]["checkpoints"][:-1]
    # every scratch run trains n images per class of its dataset's classes
    assert {(s["dataset"], s["classes"]) for s in plan["scratch_trainings"]} == {("caltech101", 101),
                                                                               ("caltech256", 256)}
    assert sum(s["train_images"] for s in plan["scratch_trainings"]) == 5 * (101 * (15 + 30) + 256 * (
        1 + 2 + 3 + 4 + 6 + 8 + 10 + 15 + 30 + 45 + 60))


def test_krizhevsky_flops_are_the_hand_computed_ones():
    config = paper_cost.load_config(REPO / "config/paper.yaml")
    costs = paper_cost.model_costs(paper_cost.build(config, "krizhevsky", 1000), 224)
    # one column of Krizhevsky et al. at 224: (in, k, out, output side) of each convolution, then fc 9216-4096-4096-1000
    convs = [(3, 11, 96, 55), (96, 5, 256, 27), (256, 3, 384, 13), (384, 3, 384, 13), (384, 3, 256, 13)]
    macs = sum(c * k * k * o * s * s for c, k, o, s in convs) + 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    assert costs["forward"] == 2 * macs == 2_270_512_192
    assert costs["conv"] == 2 * (macs - (9216 * 4096 + 4096 * 4096 + 4096 * 1000))
    # forward + backward: twice the forward again, except the input gradient of conv1
    assert costs["train"] == 3 * 2 * macs - 2 * 3 * 11 * 11 * 96 * 55 * 55
    assert costs["params"] == pytest.approx(62.4e6, rel=0.01)


def test_jobs_are_scheduled_longest_first():
    assert paper_cost.makespan([1.0] * 17, 8) == 3.0
    assert paper_cost.makespan([5.0, 1.0, 1.0, 1.0], 2) == 5.0
    assert paper_cost.makespan([2.0, 2.0], 1) == 4.0

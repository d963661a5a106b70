"""config/arrangements.yaml: the default study with harder data and longer training (no run).

A full run takes about an hour on 2 cores, so the suite checks the configuration and its plan: it differs
from config/config.yaml only where its comments say, it passes the schema, and it plans the same rules.
"""

from __future__ import annotations

import json

import yaml
from snakemake.utils import update_config, validate

from conftest import REPO, planned_rules, run_python

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def _load(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def _complete(config: dict) -> dict:
    validate(config, SCHEMA)
    return json.loads(json.dumps(config))


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_arrangements_config_changes_only_data_and_training_length() -> None:
    default = _complete(_load("config/config.yaml"))
    claims = _load("config/config.yaml")
    update_config(claims, _load("config/arrangements.yaml"))
    claims = _complete(claims)
    changed = {key for key, value in _leaves(claims).items() if _leaves(default).get(key) != value}
    assert changed == {"results_dir", "synthetic.generator", "training.epochs", "training.lr_schedule.milestones",
                       "training.checkpoint_epochs"}
    assert claims["synthetic"]["generator"] == "arrangements"
    assert claims["results_dir"] != default["results_dir"]  # its own folder: the demo's results stay
    assert max(claims["training"]["checkpoint_epochs"]) < claims["training"]["epochs"]


def test_arrangements_config_plans_the_default_rules() -> None:
    def plan(*extra: str) -> tuple[set[str], str]:
        res = run_python(REPO, "-m", "snakemake", "-n", "-p", "--forceall", *extra, "--cores", "2")
        assert res.returncode == 0, res.stdout + res.stderr
        return planned_rules(res), res.stdout + res.stderr

    (default, default_text), (arranged, arranged_text) = plan(), plan("--configfile", "config/arrangements.yaml")
    assert "claims" in arranged and "generate_synthetic" in arranged
    assert arranged == default
    # the tables' footnotes and the figures' titles say which generated data they show
    assert "(synthetic.generator: arrangements), not the real datasets" in arranged_text
    assert "synthetic.generator: arrangements" not in default_text
    assert "(the default config), not the real datasets" in default_text

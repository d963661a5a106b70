"""zfrepro.workflow: what the Snakemake workflow computes, tested without running Snakemake."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from zfrepro import workflow as wf
from zfrepro.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> dict:
    """config/config.yaml completed by the schema's defaults, as the workflow sees it."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return cfg


def test_yaml_values_types_the_string_leaves_of_a_nested_config_value():
    given = {"training": {"epochs": "20", "lr": "0.01", "name": "zf", "radius": "null", "flag": "true",
                          "list": ["1", "a"], "mapping_text": "{a: 1}"}}
    assert wf.yaml_values(given) == {"training": {"epochs": 20, "lr": 0.01, "name": "zf", "radius": None,
                                                  "flag": True, "list": [1, "a"], "mapping_text": "{a: 1}"}}


def test_schema_message_names_the_misspelt_key_and_what_is_allowed():
    schema = {"type": "object", "properties": {"training": {"type": "object", "additionalProperties": False,
                                                            "properties": {"epochs": {}, "lr": {}}}}}
    problem = next(jsonschema.Draft7Validator(schema).iter_errors({"training": {"epoch": 3}}))
    assert wf.schema_message(problem) == ("config training.epoch: unknown key (misspelt?); allowed here: epochs, lr. "
                                          "See config/README.md.")


def test_schema_message_explains_yaml_exponents_read_as_text():
    schema = {"type": "object", "properties": {"lr": {"type": "number", "description": "learning rate"}}}
    problem = next(jsonschema.Draft7Validator(schema).iter_errors({"lr": "1e-5"}))
    message = wf.schema_message(problem)
    assert message.startswith("config lr: '1e-5' is not of type 'number' (learning rate)")
    assert "write it with a dot, e.g. 1.0e-5" in message


def test_the_default_config_has_no_problem(config):
    assert wf.config_problem(config) is None


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["data"].update(crop_size=c["data"]["image_size"] + 1), "config data.crop_size"),
    (lambda c: c["visualize"].update(arch="nope"), "config visualize.arch names architecture 'nope'"),
    (lambda c: c.update(gpus_per_training=2, device="cpu"), "config gpus_per_training is 2 but device is 'cpu'"),
    (lambda c: c["data"].update(source="real", imagenet_root=None), "config data.imagenet_root is not set"),
])
def test_config_problem_names_the_key(config, change, expected):
    change(config)
    assert wf.config_problem(config).startswith(expected)


def test_to_json_sorts_keys_and_makes_them_strings_unless_the_order_is_the_outputs():
    assert wf.to_json({"b": 1, "a": {3: 512}}) == '{"a":{"3":512},"b":1}'
    assert wf.to_json({"b": 1, "a": 2}, keep_order=True) == '{"b":1,"a":2}'
    assert json.loads(wf.to_json([{"x": None}])) == [{"x": None}]


def test_job_resources_take_the_rules_entry_over_default_over_the_fallback(config):
    config["resources"]["jobs"] = {"default": {"runtime": 30}, "evaluate": {"mem_mb": 9000}}
    assert wf.job_resources(config, "evaluate") == {"runtime": 30, "mem_mb": 9000}
    assert wf.job_resources(config, "train_zf") == {"runtime": 30, "mem_mb": 4000}


def test_gpus_are_asked_for_only_on_cuda_and_in_the_schedulers_form(config):
    assert wf.gpu_request(config, 1) == {}  # device cpu
    config.update(device="cuda")
    config["resources"].update(gpu_request="gpus", gpu_model=None)
    assert wf.gpu_request(config, 2) == {"gpu": 2}
    config["resources"].update(gpu_request="gres", gpu_model="a100")
    assert wf.gpu_request(config, 2) == {"gres": "gpu:a100:2"}
    assert wf.job_resources(config, "x", gpus=1)["gres"] == "gpu:a100:1"


def test_a_misspelt_rule_under_resources_jobs_is_named_with_the_closest_rule(config):
    config["resources"]["jobs"] = {"default": {}, "evalute": {"runtime": 5}}
    message = wf.unknown_job_rule(config, ["evaluate", "train_zf"])
    assert message.startswith("config resources.jobs.evalute: no rule of the workflow is called 'evalute'; "
                              "did you mean evaluate?")
    config["resources"]["jobs"] = {"evaluate": {}}
    assert wf.unknown_job_rule(config, ["evaluate"]) is None


def test_device_problem(config):
    assert wf.device_problem(config, 0) is None  # device cpu
    config.update(device="cuda", gpus_per_training=2)
    assert "sees no CUDA GPU" in wf.device_problem(config, 0)
    assert "set gpus_per_training: 1 or less" in wf.device_problem(config, 1)
    assert wf.device_problem(config, 2) is None


def test_the_command_line_is_read_by_snakemakes_own_parser_and_only_a_snakemake_one():
    args = wf.snakemake_arguments(["/x/.venv/bin/snakemake", "-n", "--cores", "2", "--executor", "slurm"])
    assert args.dryrun and args.executor == "slurm" and not args.lint
    assert wf.snakemake_arguments(["/x/snakemake/__main__.py", "--lint"]).lint
    assert wf.snakemake_arguments(["pytest", "-q"]) is None  # the Python API or a test: nothing to read
    assert wf.snakemake_arguments([]) is None


def test_jobs_run_here_unless_a_cluster_executor_or_a_lint_unlock_or_report():
    local = wf.snakemake_arguments(["snakemake", "--cores", "1"])
    assert wf.jobs_run_here(local)
    assert not wf.jobs_run_here(wf.snakemake_arguments(["snakemake", "--lint"]))
    assert not wf.jobs_run_here(wf.snakemake_arguments(["snakemake", "--unlock"]))
    assert not wf.jobs_run_here(None)


def test_one_path_function_per_kind_of_result_also_builds_wildcard_patterns(config):
    config["results_dir"] = "results/demo"
    assert wf.model_path(config, "zf", 1) == "results/demo/models/zf/seed1/final.pt"
    assert wf.model_path(config, "{arch}", "{seed}") == "results/demo/models/{arch}/seed{seed}/final.pt"
    assert wf.checkpoint_path(config, "zf", 0, 5) == "results/demo/models/zf/seed0/epoch5.pt"
    assert wf.training_metrics_path(config, "zf", "{seed}") == "results/demo/models/zf/seed{seed}/metrics.csv"
    assert wf.table_paths(config, "table2_imagenet") == ["results/demo/tables/table2_imagenet.csv",
                                                         "results/demo/tables/table2_imagenet.md"]
    assert wf.figure_paths(config, "fig5") == ["results/demo/figures/fig5.png", "results/demo/figures/fig5.pdf"]


def test_data_roots(config):
    config["results_dir"] = "results/demo"
    assert wf.imagenet_root(config) == "results/demo/data/synthetic/imagenet"
    assert wf.dataset_root(config, "voc") == "results/demo/data/synthetic/voc"
    config["data"].update(source="real", imagenet_root="~/imagenet", voc_root=None)
    assert wf.imagenet_root(config) == str(Path("~/imagenet").expanduser())
    with pytest.raises(ConfigError, match="config data.voc_root is not set"):
        wf.dataset_root(config, "voc")


def test_the_workflow_spells_no_model_path_itself():
    # one path function per kind: the rules and helpers call it instead of writing the pattern out
    spelled = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "workflow").rglob("*.smk")
               for i, line in enumerate(p.read_text().splitlines(), 1) if "models/" in line]
    assert not spelled, spelled


def test_common_smk_only_loads_and_checks_the_config():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    defined = [line.split("(")[0][4:] for line in text.splitlines() if line.startswith("def ")]
    assert defined == ["one_line_errors", "apply_typed_command_line_config", "validate_config", "check_config",
                       "check_device", "check_results_intact"]
    assert "_getframe" not in text and "args_to_api" not in text

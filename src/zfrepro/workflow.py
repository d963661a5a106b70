"""What the Snakemake workflow computes, as plain functions of the config (the .smk files wrap them): the
config's typed values and one-line messages, its checks across sections, JSON params, each job's resources,
whether the jobs run on this machine, and one path function per kind of result.

The workflow's .smk files hold rules; what they compute lives here, where a unit test reaches it
(tests/test_workflow_helpers.py). Snakemake is imported only inside the functions that ask it something.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from zfrepro.errors import ConfigError

# ---------------------------------------------------------------------------------------------- config values


def yaml_values(value: Any) -> Any:
    """Re-read the string leaves of a --config value as YAML scalars ('20' -> 20, 'null' -> None).

    Snakemake reads nested --config values (`training='{epochs: 20}'`) with YAML's BaseLoader, which keeps
    every leaf a string; the schema would then reject `epochs: '20'`."""
    if isinstance(value, dict):
        return {key: yaml_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [yaml_values(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, (bool, int, float, str)) else value
    return value


def schema_message(problem: Any) -> str:
    """One line for a jsonschema ValidationError: config <dotted key>: <what is wrong> [allowed keys or the
    option's description]. (Snakemake's own message prints the whole failing subschema.)"""
    key = ".".join(str(part) for part in problem.absolute_path) or "(top level)"
    message = problem.message
    if problem.validator == "additionalProperties" and isinstance(problem.instance, dict):
        allowed = sorted(problem.schema.get("properties", {}))
        unknown = [k for k in problem.instance if k not in allowed]
        if allowed and unknown:
            key = f"{key}.{unknown[0]}" if problem.absolute_path else str(unknown[0])
            message = f"unknown key (misspelt?); allowed here: {', '.join(allowed)}"
    elif problem.schema.get("description"):
        message += f" ({problem.schema['description'].strip()})"
    if isinstance(problem.instance, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", problem.instance):
        message += f"; YAML reads {problem.instance} as text: write it with a dot, e.g. 1.0e-5"
    return f"config {key}: {message}. See config/README.md."


def _undefined_arch(key: str, arch: str, config: Mapping) -> str:
    return (f"config {key} names architecture {arch!r}, which is not defined under architectures (defined: "
            f"{', '.join(config['architectures'])}); add it or fix the name.")


def architecture_names_problem(config: Mapping) -> str | None:
    """The first key that names an architecture not defined under architectures, as one line; None if all are.
    Checked before the study files are read: they look the names up while their rules are made."""
    archs = config["architectures"]
    for table in ("table2", "table3"):
        for label, refs in config["tables"][table].items():
            for ref in [refs] if isinstance(refs, str) else refs:
                if ref.split("/")[0] not in archs:
                    return _undefined_arch(f"tables.{table}[{label!r}]", ref.split("/")[0], config)
    for arch in config["atlas"]["networks"] or []:
        if arch not in archs:
            return _undefined_arch("atlas.networks", arch, config)
    for key in ("arch", "krizhevsky_arch", "no_renorm_arch"):
        if config["visualize"][key] not in archs and not (key == "no_renorm_arch" and config["visualize"][key] is None):
            return _undefined_arch(f"visualize.{key}", config["visualize"][key], config)
    transfer = config["transfer"]
    if transfer["enabled"] and transfer["arch"] not in archs:
        return _undefined_arch("transfer.arch", transfer["arch"], config)
    return None


def config_problem(config: Mapping) -> str | None:
    """The first problem the JSON schema cannot express (values that contradict each other across sections,
    a data root that a real run needs), as one line naming the key and what to do; None when there is none."""
    data = config["data"]
    if data["crop_size"] > data["image_size"]:
        return (f"config data.crop_size ({data['crop_size']}) is larger than data.image_size ({data['image_size']}): "
                "the crops are taken inside the resized image; lower data.crop_size.")
    for name in ("caltech101", "caltech256"):
        section = config["synthetic"][name]
        if section["min_per_class"] > section["max_per_class"]:
            return (f"config synthetic.{name}.min_per_class ({section['min_per_class']}) is larger than "
                    f"synthetic.{name}.max_per_class ({section['max_per_class']}); swap or fix them.")
    if problem := architecture_names_problem(config):
        return problem
    for arch, spec in config["architectures"].items():
        weights = spec.get("published")
        if weights and not os.path.isfile(os.path.expanduser(weights["file"])):
            return (f"config architectures.{arch}.published.file: {weights['file']} does not exist; "
                    f"`zfrepro fetch-weights {weights['name']}` downloads and verifies it (and prints its path), or "
                    "give the path of your copy.")
    if config["gpus_per_training"] > 1 and config["device"] != "cuda":
        return (f"config gpus_per_training is {config['gpus_per_training']} but device is {config['device']!r}: "
                "several GPUs per training need device: cuda (or set gpus_per_training: 1).")
    transfer = config["transfer"]
    try:
        if data["source"] == "real":
            imagenet_root(config)
            if transfer["enabled"]:
                for name in ("caltech101", "caltech256", "voc"):
                    dataset_root(config, name)
    except ConfigError as err:
        return str(err)
    return None


# ---------------------------------------------------------------------------------------------- JSON params


def string_keys(value: Any) -> Any:
    """JSON keys are strings; YAML lets `conv_maps: {3: 512}` have integer ones."""
    if isinstance(value, dict):
        return {str(key): string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [string_keys(item) for item in value]
    return value


def to_json(value: Any, keep_order: bool = False) -> str:
    """Compact JSON, key-sorted so equal settings give equal params (Snakemake reruns on params change);
    keep_order for mappings whose order is the output's (table rows, figure panels)."""
    return json.dumps(string_keys(value), sort_keys=not keep_order, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------- resources


JOB_RESOURCES_FALLBACK = {"runtime": 60, "mem_mb": 4000}


def gpu_request(config: Mapping, gpus: int) -> dict:
    """`gpus` GPUs as the scheduler wants them asked for (resources.gpu_request): Snakemake's `gpu` resource (which
    the SLURM plugin turns into --gpus, and which the local profile's gpu=1 limits) or a gres string."""
    if config["device"] != "cuda" or not gpus:
        return {}
    model = config["resources"]["gpu_model"]
    if config["resources"]["gpu_request"] == "gres":
        return {"gres": f"gpu:{model}:{gpus}" if model else f"gpu:{gpus}"}
    return {"gpu": gpus, **({"gpu_model": model} if model else {})}


def job_resources(config: Mapping, rule: str, gpus: int = 0) -> dict:
    """runtime (minutes) and mem_mb of `rule` from resources.jobs (its own entry over `default`), and its GPUs
    when the config asks for CUDA."""
    jobs = config["resources"]["jobs"]
    return {**JOB_RESOURCES_FALLBACK, **jobs.get("default", {}), **jobs.get(rule, {}), **gpu_request(config, gpus)}


def unknown_job_rule(config: Mapping, rules: Iterable[str]) -> str | None:
    """resources.jobs names rules: a misspelt one would silently fall back to `default`. The message, or None."""
    rules = set(rules)
    for name in config["resources"]["jobs"]:
        if name != "default" and name not in rules:
            close = difflib.get_close_matches(name, rules, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            return (f"config resources.jobs.{name}: no rule of the workflow is called {name!r}; {hint}the keys are "
                    "rule names (evaluate, prepare_imagenet, train_<arch>, ...; `snakemake --list-rules` lists "
                    "them) or default.")
    return None


# ---------------------------------------------------------------------------------------------- the device


def snakemake_arguments(argv: Sequence[str]) -> Any:
    """Snakemake's parsed command line for `argv` (sys.argv of the snakemake command), its profiles applied, by
    Snakemake's own parser (snakemake.cli.parse_args); None when `argv` is not a snakemake command line (the
    Python API, a test) or does not parse."""
    if not argv or not re.search(r"(^|[/\\])snakemake([/\\]__main__\.py)?$", argv[0]):
        return None
    from snakemake.cli import parse_args

    try:
        return parse_args(list(argv[1:]))[1]
    except (SystemExit, Exception):  # an unparsable command line: Snakemake reports it itself
        return None


def jobs_run_here(args: Any) -> bool:
    """Whether the jobs of this run (or dry run) would run on this machine: not under a cluster executor, whose
    nodes have GPUs the submit host may lack, nor for --unlock, --lint, --report."""
    if args is None or args.unlock or args.lint or args.report:
        return False
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    return ExecutorPluginRegistry().get_plugin(args.executor or "local").common_settings.local_exec


def device_problem(config: Mapping, visible_gpus: int) -> str | None:
    """device: cuda with fewer visible GPUs than a training asks for, as one line; None when it is fine."""
    if config["device"] != "cuda":
        return None
    if visible_gpus == 0:
        return ("config device is 'cuda' but PyTorch sees no CUDA GPU on this machine, where the jobs run: "
                "set device: auto (a GPU when there is one) or device: cpu, e.g. --config device=auto.")
    if visible_gpus < config["gpus_per_training"]:
        return (f"config gpus_per_training is {config['gpus_per_training']} but PyTorch sees {visible_gpus} CUDA "
                f"GPU(s) on this machine, where the jobs run: set gpus_per_training: {visible_gpus} or less.")
    return None


# ---------------------------------------------------------------------------------------------- paths


def result_path(config: Mapping, path: str) -> str:
    """`path` inside the configuration's results folder (results_dir): each configuration keeps its own, so the
    demo's results and the paper run's live side by side in one checkout."""
    return f"{config['results_dir']}/{path}"


def model_dir(config: Mapping, arch: str, seed: int | str) -> str:
    """The folder of one training (arch, seed); `seed` may be a wildcard such as "{seed}"."""
    return result_path(config, f"models/{arch}/seed{seed}")


def model_path(config: Mapping, arch: str, seed: int | str) -> str:
    """A trained network's final weights."""
    return f"{model_dir(config, arch, seed)}/final.pt"


def checkpoint_path(config: Mapping, arch: str, seed: int | str, epoch: int | str) -> str:
    """A kept epoch's weights (training.checkpoint_epochs)."""
    return f"{model_dir(config, arch, seed)}/epoch{epoch}.pt"


def training_metrics_path(config: Mapping, arch: str, seed: int | str) -> str:
    """The trainer's per-epoch metrics.csv."""
    return f"{model_dir(config, arch, seed)}/metrics.csv"


def table_paths(config: Mapping, name: str) -> list[str]:
    """<results_dir>/tables/<name>.csv and .md: every table is written as both."""
    return [result_path(config, f"tables/{name}.{ext}") for ext in ("csv", "md")]


def figure_paths(config: Mapping, name: str) -> list[str]:
    """<results_dir>/figures/<name>.png and .pdf."""
    return [result_path(config, f"figures/{name}.{ext}") for ext in ("png", "pdf")]


def imagenet_root(config: Mapping) -> str:
    """Where the ImageNet-layout folder is: generated by the workflow, or the user's data.imagenet_root."""
    if config["data"]["source"] == "synthetic":
        return result_path(config, "data/synthetic/imagenet")
    root = config["data"]["imagenet_root"]
    if not root:
        raise ConfigError(
            "config data.imagenet_root is not set but data.source is 'real': set it to the folder holding "
            "ImageNet 2012 train/ and val/ (or the official archives), e.g. "
            "--config data='{imagenet_root: /path/to/imagenet}', or use data.source: synthetic."
        )
    return os.path.expanduser(root)


def dataset_root(config: Mapping, dataset: str) -> str:
    """The folder of a transfer dataset: generated by the workflow, or the user's data.<dataset>_root."""
    if config["data"]["source"] == "synthetic":
        return result_path(config, f"data/synthetic/{dataset}")
    root = config["data"][f"{dataset}_root"]
    if not root:
        raise ConfigError(
            f"config data.{dataset}_root is not set but data.source is 'real' and transfer.enabled is true: "
            f"set it to the folder holding the dataset (see config/README.md), or set transfer.enabled: false."
        )
    return os.path.expanduser(root)


def generated_data_problem(config: Mapping) -> str | None:
    """One line if a generated dataset of this configuration lost, resized or gained a file since the generator
    wrote it (zfrepro.data.generated); None for real data, or when all are intact."""
    if config["data"]["source"] != "synthetic":
        return None
    from zfrepro.data.generated import generated_data_problem as problem_of
    from zfrepro.data.registry import DATASETS

    return next((p for d in DATASETS if (p := problem_of(result_path(config, f"data/synthetic/{d}")))), None)


def data_note(config: Mapping) -> str:
    """What the tables' footnotes and the figures' titles say about the data."""
    if config["data"]["source"] == "synthetic":
        generator = config["synthetic"]["generator"]
        which = "the default config" if generator == "parts" else f"synthetic.generator: {generator}"
        return f"generated data in the real datasets' layouts ({which}), not the real datasets"
    return "the real datasets (data.*_root)"

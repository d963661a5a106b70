# What every study file uses: loading and checking the config (a mistake becomes one message naming the key
# before any job runs), config values as JSON for the command line, and the two registries the study files
# fill: TARGETS (what `snakemake` with no target builds) and PLOTS (the figures; figures.smk makes their rules).
# Each study's own helpers live beside its rules (data.smk, train.smk, ..., transfer.smk).

import difflib
import json
import math
import os
import re
import sys

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate


# The rules call `zfrepro`: take the one installed beside the Python that runs Snakemake (.venv/bin for
# `.venv/bin/snakemake`), so the workflow runs without activating the environment. A conda environment
# of --software-deployment-method conda is activated inside each job and still comes first.
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ.update(PATH=os.pathsep.join([_BIN, os.environ.get("PATH", "")]))


# ---------------------------------------------------------------------------------------------------------
# Config loading and checks


def _yaml_values(value):
    """Re-read the string leaves of a --config value as YAML scalars ('20' -> 20, 'null' -> None)."""
    if isinstance(value, dict):
        return {key: _yaml_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_values(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, (bool, int, float, str)) else value
    return value


def apply_typed_command_line_config(config):
    """Merge the --config values into `config` again, typed.

    Snakemake reads nested --config values (`training='{epochs: 20}'`) with YAML's BaseLoader, which keeps
    every leaf a string; the schema would then reject `epochs: '20'`. Re-reading them makes the README's
    partial-rerun examples work. Values from --configfile are already typed and are not touched.
    """
    given = getattr(workflow.config_settings, "config", None) or {}
    update_config(config, _yaml_values(dict(given)))


def validate_config(config, schema):
    """Check the config against the JSON schema and fill in its defaults; on error, name the key.

    Snakemake's own message prints the whole failing (sub)schema, hundreds of lines for a top-level typo;
    this keeps the key, the problem and what is allowed.
    """
    try:
        validate(config, schema)
    except WorkflowError as err:
        problem = err.__context__
        if not hasattr(problem, "absolute_path"):
            raise
        raise WorkflowError(_schema_message(problem)) from None


def _schema_message(problem):
    """One line: config <dotted key>: <what is wrong> [allowed keys or the option's description]."""
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


def check_config(config):
    """Checks the JSON schema cannot express; each error names the key and says what to do."""
    data = config["data"]
    if data["crop_size"] > data["image_size"]:
        raise WorkflowError(
            f"config data.crop_size ({data['crop_size']}) is larger than data.image_size "
            f"({data['image_size']}): the crops are taken inside the resized image; lower data.crop_size."
        )
    for name in ("caltech101", "caltech256"):
        section = config["synthetic"][name]
        if section["min_per_class"] > section["max_per_class"]:
            raise WorkflowError(
                f"config synthetic.{name}.min_per_class ({section['min_per_class']}) is larger than "
                f"synthetic.{name}.max_per_class ({section['max_per_class']}); swap or fix them."
            )
    for table in ("table2", "table3"):
        for label, refs in config["tables"][table].items():
            for ref in [refs] if isinstance(refs, str) else refs:
                arch = ref.split("/")[0]
                if arch not in config["architectures"]:
                    raise WorkflowError(
                        f"config tables.{table}[{label!r}] names architecture {arch!r}, which is not defined "
                        f"under architectures (defined: {', '.join(config['architectures'])}); add it or fix "
                        "the name."
                    )
    for arch in config["atlas"]["networks"] or []:
        if arch not in config["architectures"]:
            raise WorkflowError(
                f"config atlas.networks names architecture {arch!r}, which is not defined under architectures "
                f"(defined: {', '.join(config['architectures'])}); add it or fix the name."
            )
    for key in ("arch", "krizhevsky_arch", "no_renorm_arch"):
        if config["visualize"][key] not in config["architectures"] and not (key == "no_renorm_arch"
                                                                             and config["visualize"][key] is None):
            raise WorkflowError(
                f"config visualize.{key} names architecture {config['visualize'][key]!r}, which is not defined "
                f"under architectures (defined: {', '.join(config['architectures'])}); add it or fix the name."
            )
    for arch, spec in config["architectures"].items():
        weights = spec.get("published")
        if weights and not os.path.isfile(os.path.expanduser(weights["file"])):
            raise WorkflowError(
                f"config architectures.{arch}.published.file: {weights['file']} does not exist; "
                f"`zfrepro fetch-weights {weights['name']}` downloads and verifies it (and prints its path), or give "
                "the path of your copy."
            )
    if config["gpus_per_training"] > 1 and config["device"] != "cuda":
        raise WorkflowError(
            f"config gpus_per_training is {config['gpus_per_training']} but device is {config['device']!r}: "
            "several GPUs per training need device: cuda (or set gpus_per_training: 1)."
        )
    transfer = config["transfer"]
    if transfer["enabled"] and transfer["arch"] not in config["architectures"]:
        raise WorkflowError(
            f"config transfer.arch names architecture {transfer['arch']!r}, which is not defined under "
            f"architectures (defined: {', '.join(config['architectures'])}); add it or fix the name."
        )
    if data["source"] == "real":
        imagenet_root()  # fail while building the DAG, not hours later inside a job
        if transfer["enabled"]:
            for name in ("caltech101", "caltech256", "voc"):
                dataset_root(name)
    check_device(config)
    check_job_resources(config)


def check_results_intact(root):
    """Stop before any job when a result's size differs from the one its step recorded (truncated, overwritten):
    Snakemake would see a new file and rerun every step after it on the damaged one, deleting their good outputs
    first. Only sizes are compared here (no reading); the loaders check the full SHA-256 (zfrepro.io)."""
    if not workflow.is_main_process:
        return
    from zfrepro.io import damaged_results

    problems = list(damaged_results(root))
    if problems:
        more = f" ({len(problems) - 1} more damaged file(s) under {root}/)" if len(problems) > 1 else ""
        raise WorkflowError(problems[0] + more)


def _command_line():
    """Snakemake's parsed command line (profile settings included); None when started through the Python API.

    While the Snakefile is parsed workflow.executor_plugin is still unset (and a dry run swaps in the dry-run
    executor later), so the --executor asked for is only known to the CLI's args_to_api.
    """
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "args_to_api" and frame.f_globals.get("__name__") == "snakemake.cli":
            return frame.f_locals.get("args")
        frame = frame.f_back
    return None


def jobs_run_here(args):
    """Whether the jobs of this run (or dry run) would run on this machine: not under a cluster executor, whose
    nodes have GPUs the submit host may lack, nor in a job's own Snakemake, nor for --unlock, --lint, --report."""
    if not workflow.is_main_process or args is None or args.unlock or args.lint or args.report:
        return False
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    return ExecutorPluginRegistry().get_plugin(args.executor or "local").common_settings.local_exec


def check_device(config):
    """device: cuda without a visible GPU would fail only inside the first job: a run stops while planning, a dry
    run prints a note and goes on (planning config/paper.yaml on a laptop is fine).

    torch is imported only for device: cuda (it adds about 1.5 s to every Snakemake start).
    """
    args = _command_line()
    if config["device"] != "cuda" or not jobs_run_here(args):
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        problem = ("config device is 'cuda' but PyTorch sees no CUDA GPU on this machine, where the jobs run: "
                   "set device: auto (a GPU when there is one) or device: cpu, e.g. --config device=auto.")
    elif visible < config["gpus_per_training"]:
        problem = (f"config gpus_per_training is {config['gpus_per_training']} but PyTorch sees {visible} CUDA "
                   f"GPU(s) on this machine, where the jobs run: set gpus_per_training: {visible} or less.")
    else:
        return
    if args.dryrun or args.touch:
        print(f"note (a run would stop here): {problem}", file=sys.stderr)
    else:
        raise WorkflowError(problem)


# ---------------------------------------------------------------------------------------------------------
# Parameters passed to the command line (JSON of config sections)


def _string_keys(value):
    """JSON keys are strings; YAML lets `conv_maps: {3: 512}` have integer ones."""
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


def to_json(value, keep_order=False):
    """Compact JSON, key-sorted so equal settings give equal params (Snakemake reruns on params change);
    keep_order for mappings whose order is the output's (table rows, figure panels)."""
    return json.dumps(_string_keys(value), sort_keys=not keep_order, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------------
# What each job asks a scheduler for (config `resources`): a cluster profile holds only site settings


JOB_RESOURCES_FALLBACK = {"runtime": 60, "mem_mb": 4000}


def job_resources(rule, gpus=0):
    """runtime (minutes) and mem_mb of `rule` from resources.jobs (its own entry over `default`), and its GPUs
    when the config asks for CUDA."""
    jobs = config["resources"]["jobs"]
    return {**JOB_RESOURCES_FALLBACK, **jobs.get("default", {}), **jobs.get(rule, {}), **gpu_request(gpus)}


def gpu_request(gpus):
    """`gpus` GPUs as the scheduler wants them asked for (resources.gpu_request): Snakemake's `gpu` resource (which
    the SLURM plugin turns into --gpus, and which the local profile's gpu=1 limits) or a gres string."""
    if config["device"] != "cuda" or not gpus:
        return {}
    model = config["resources"]["gpu_model"]
    if config["resources"]["gpu_request"] == "gres":
        return {"gres": f"gpu:{model}:{gpus}" if model else f"gpu:{gpus}"}
    return {"gpu": gpus, **({"gpu_model": model} if model else {})}


def check_job_resources(config):
    """resources.jobs names rules: a misspelt one would silently fall back to `default`."""
    rules = {rule.name for rule in workflow.rules}
    for name in config["resources"]["jobs"]:
        if name != "default" and name not in rules:
            close = difflib.get_close_matches(name, rules, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise WorkflowError(
                f"config resources.jobs.{name}: no rule of the workflow is called {name!r}; {hint}the keys are rule "
                "names (evaluate, prepare_imagenet, train_<arch>, ...; `snakemake --list-rules` lists them) or default."
            )


# ---------------------------------------------------------------------------------------------------------
# Where this configuration's results go, and the registries filled by the study files


def result_path(path):
    """`path` inside the configuration's results folder (results_dir): each configuration keeps its own, so the
    demo's results and the paper run's live side by side in one checkout."""
    return f"{config['results_dir']}/{path}"


TARGETS = []  # the files `rule all` asks for
PLOTS = {}  # figure name (zfrepro.report.plot.FIGURES) -> {"inputs": {...}, "options": {...}, "also": {...}}


def figure(name, inputs, options=None, also=None, target=True):
    """Register a paper figure: `zfrepro plot <name>` draws <results_dir>/figures/<name>.png (and .pdf) from `inputs`
    (name -> path or list of paths); `also`: further files the drawing writes (name -> path, passed as options).
    With `target`, `rule all` builds it."""
    PLOTS[name] = {"inputs": inputs, "options": {**(options or {}), **(also or {})}, "also": also or {}}
    if target:
        TARGETS.extend([result_path(f"figures/{name}.{ext}") for ext in ("png", "pdf")] + list((also or {}).values()))


def data_note():
    """What the tables' footnotes and the figures' titles say about the data."""
    if config["data"]["source"] == "synthetic":
        generator = config["synthetic"]["generator"]
        which = "the default config" if generator == "parts" else f"synthetic.generator: {generator}"
        return f"generated data in the real datasets' layouts ({which}), not the real datasets"
    return "the real datasets (data.*_root)"


def report_file(path, caption, name, kind):
    """`path` marked for the report with its caption (workflow/report/<caption>.rst), in the category of the paper's
    section it reproduces and labelled with the paper's item (zfrepro.report.sections, shared with the front page)."""
    from zfrepro.report.sections import report_place

    return report(path, caption=f"../report/{caption}.rst", **report_place(name, kind))


def table_files(name):
    """<results_dir>/tables/<name>.csv and .md: every table is written as both."""
    return [result_path(f"tables/{name}.{ext}") for ext in ("csv", "md")]

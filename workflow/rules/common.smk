# Loading and checking the config: --config values typed, the JSON schema (defaults filled in, a mistake named by
# its key), the checks across sections, the device, and the results already written. Every check is one message
# naming the key, before any job runs; what they compute is in zfrepro.workflow (unit-tested).

import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

import zfrepro.workflow


def apply_typed_command_line_config(config):
    """Merge the --config values into `config` again, typed (zfrepro.workflow.yaml_values): the README's
    partial-rerun examples pass nested values, which Snakemake keeps as strings. --configfile values are
    already typed and are not touched."""
    given = getattr(workflow.config_settings, "config", None) or {}
    update_config(config, zfrepro.workflow.yaml_values(dict(given)))


def validate_config(config, schema):
    """Check the config against the JSON schema and fill in its defaults; on error, one line naming the key."""
    try:
        validate(config, schema)
    except WorkflowError as err:
        problem = err.__context__
        if not hasattr(problem, "absolute_path"):
            raise
        raise WorkflowError(zfrepro.workflow.schema_message(problem)) from None


def check_config(config):
    """Checks the JSON schema cannot express, then the device; each error names the key and says what to do."""
    problem = zfrepro.workflow.config_problem(config) or zfrepro.workflow.unknown_job_rule(
        config, (rule.name for rule in workflow.rules))
    if problem:
        raise WorkflowError(problem)
    check_device(config)


def check_device(config):
    """device: cuda without a visible GPU would fail only inside the first job: a run stops while planning, a dry
    run prints a note and goes on (planning config/paper.yaml on a laptop is fine). Whether the jobs run here is
    asked of Snakemake's own command-line parser (zfrepro.workflow.snakemake_arguments); torch is imported only
    for device: cuda (it adds about 1.5 s to every Snakemake start)."""
    if config["device"] != "cuda" or not workflow.is_main_process:
        return
    args = zfrepro.workflow.snakemake_arguments(sys.argv)
    if not zfrepro.workflow.jobs_run_here(args):
        return
    import torch

    problem = zfrepro.workflow.device_problem(config, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if problem is None:
        return
    if args.dryrun or args.touch:
        print(f"note (a run would stop here): {problem}", file=sys.stderr)
    else:
        raise WorkflowError(problem)


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

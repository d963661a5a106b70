# Loading and checking the config: --config values typed, the JSON schema (defaults filled in, a mistake named by
# its key), the checks across sections, the device, and the results and generated data already written. Every
# check is one message naming the key or file, before any job runs; what they compute is in zfrepro.workflow and
# zfrepro.preflight (unit-tested).

import contextlib
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

import zfrepro.preflight
import zfrepro.workflow


@contextlib.contextmanager
def one_line_errors():
    """A mistake found while planning ends in its one line: as a WorkflowError, Snakemake would add the lines of
    the Snakefile and common.smk that raised it."""
    try:
        yield
    except WorkflowError as err:
        raise SystemExit(f"error: {err}") from None


def apply_typed_command_line_config(config):
    """Merge the --config values into `config` again, typed (zfrepro.workflow.yaml_values): the README's
    partial-rerun examples pass nested values, which Snakemake keeps as strings. --configfile values are
    already typed and are not touched."""
    given = getattr(workflow.config_settings, "config", None) or {}
    update_config(config, zfrepro.workflow.yaml_values(dict(given)))


def validate_config(config, schema):
    """Check the config against the JSON schema and fill in its defaults; on error, one line naming the key. Then
    what the study files read while their rules are made: results_dir a folder of its own (the workflow writes
    there, `make clean` deletes it) and every architecture a key names defined (else a KeyError traceback)."""
    try:
        validate(config, schema)
    except WorkflowError as err:
        problem = err.__context__
        if not hasattr(problem, "absolute_path"):
            raise
        raise WorkflowError(zfrepro.workflow.schema_message(problem)) from None
    problem = (zfrepro.preflight.results_dir_problem(config["results_dir"], os.getcwd(), workflow.basedir)
               or zfrepro.workflow.architecture_names_problem(config))
    if problem:
        raise WorkflowError(problem)


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


def check_results_intact(config):
    """Stop before any job when a result is not what its step wrote (its size, or the SHA-256 of a file whose
    modification time moved: zfrepro.io.damaged_results), or a generated dataset lost, resized or gained a file
    (zfrepro.data.generated): Snakemake would rerun every step after the damaged file on it, deleting their good
    outputs first, or see only the dataset's folder and say "Nothing to be done"."""
    if not workflow.is_main_process:
        return
    from zfrepro.io import damaged_results

    root = config["results_dir"]
    problems = list(damaged_results(root))
    if problems:
        more = f" ({len(problems) - 1} more damaged file(s) under {root}/)" if len(problems) > 1 else ""
        raise WorkflowError(problems[0] + more)
    if problem := zfrepro.workflow.generated_data_problem(config):
        raise WorkflowError(problem)

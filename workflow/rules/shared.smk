# What every study file uses besides the config: where results go (one path function per kind, from
# zfrepro.workflow), config values as JSON for the command line, each job's resources, and the two registries the
# study files fill: TARGETS (what `snakemake` with no target builds) and PLOTS (the figures; figures.smk makes
# their rules). Each study's own helpers live beside its rules (helpers/data.smk, helpers/train.smk, ...).

from snakemake.exceptions import WorkflowError

import zfrepro.workflow
from zfrepro.errors import ConfigError
from zfrepro.workflow import to_json


def result_path(path):
    return zfrepro.workflow.result_path(config, path)


def checkpoint_path(arch, seed, epoch):
    return zfrepro.workflow.checkpoint_path(config, arch, seed, epoch)


def training_metrics_path(arch, seed):
    return zfrepro.workflow.training_metrics_path(config, arch, seed)


def table_files(name):
    return zfrepro.workflow.table_paths(config, name)


def imagenet_root():
    try:
        return zfrepro.workflow.imagenet_root(config)
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


def dataset_root(dataset):
    try:
        return zfrepro.workflow.dataset_root(config, dataset)
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


def data_note():
    return zfrepro.workflow.data_note(config)


def job_resources(rule, gpus=0):
    return zfrepro.workflow.job_resources(config, rule, gpus)


def gpu_request(gpus):
    return zfrepro.workflow.gpu_request(config, gpus)


TARGETS = []  # the files `rule all` asks for
PLOTS = {}  # figure name (zfrepro.report.plot.FIGURES) -> {"inputs": {...}, "options": {...}, "also": {...}}


def figure(name, inputs, options=None, also=None, target=True):
    """Register a paper figure: `zfrepro plot <name>` draws <results_dir>/figures/<name>.png (and .pdf) from `inputs`
    (name -> path or list of paths); `also`: further files the drawing writes (name -> path, passed as options).
    With `target`, `rule all` builds it."""
    PLOTS[name] = {"inputs": inputs, "options": {**(options or {}), **(also or {})}, "also": also or {}}
    if target:
        TARGETS.extend(zfrepro.workflow.figure_paths(config, name) + list((also or {}).values()))


def report_file(path, caption, name, kind):
    """`path` marked for the report with its caption (workflow/report/<caption>.rst), in the category of the paper's
    section it reproduces and labelled with the paper's item (zfrepro.report.sections, shared with the front page)."""
    from zfrepro.report.sections import report_place

    return report(path, caption=f"../report/{caption}.rst", **report_place(name, kind))

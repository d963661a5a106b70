# Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks": the whole study as one DAG.
# Every rule calls the `zfrepro` command line; see README.md for how to run it and config/README.md for
# every option.

import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from zfrepro.preflight import config_file_problem

min_version("9.0")

# Snakemake's message for a YAML error names neither the file nor the line. (It may be absent when --configfile
# files are given, e.g. with --directory elsewhere; Snakemake allows that.)
if os.path.exists("config/config.yaml") and (problem := config_file_problem("config/config.yaml")):
    raise WorkflowError(problem)


# The rules call `zfrepro`: take the one installed beside the Python that runs Snakemake (.venv/bin for
# `.venv/bin/snakemake`), so the workflow runs without activating the environment. A conda environment
# of --software-deployment-method conda is activated inside each job and still comes first.
if os.environ.get("PATH", "").split(os.pathsep)[0] != os.path.dirname(sys.executable):
    os.environ.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


with one_line_errors():
    apply_typed_command_line_config(config)
    validate_config(config, "workflow/schemas/config.schema.yaml")  # also fills in defaults


include: "workflow/rules/shared.smk"


# One file per study, with its helpers beside its rules; each adds its results to TARGETS and its figures
# to PLOTS (shared.smk), and figures.smk makes one plot rule per figure.
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/visualize.smk"
include: "workflow/rules/atlas.smk"
include: "workflow/rules/correspondence.smk"
include: "workflow/rules/invariance.smk"
include: "workflow/rules/occlusion.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/overlap.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


# The report's first page: this run's front page (rule front_page) once written, else the workflow's description.
report: os.path.abspath(FRONT_PAGE) if os.path.exists(FRONT_PAGE) else "workflow/report/workflow.rst"


with one_line_errors():
    check_config(config)  # checks across sections, before any job runs
    check_results_intact(config)


# The mark `make clean` looks for: it deletes a results folder only if a run of this workflow wrote there.
onstart:
    zfrepro.preflight.mark_results_dir(config["results_dir"])


localrules:
    all,


rule all:
    input:
        TARGETS,
    default_target: True

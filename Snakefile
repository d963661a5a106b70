# Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks": the whole study as one DAG.
# Every rule calls the `zfrepro` command line; see README.md for how to run it and config/README.md for
# every option.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


apply_typed_command_line_config(config)
validate_config(config, "workflow/schemas/config.schema.yaml")  # also fills in defaults
check_config(config)


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/visualize.smk"
include: "workflow/rules/correspondence.smk"
include: "workflow/rules/invariance.smk"
include: "workflow/rules/occlusion.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/overlap.smk"


localrules:
    all,


rule all:
    input:
        final_targets(),
    default_target: True

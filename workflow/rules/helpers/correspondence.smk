# Helpers of correspondence.smk: its config values, paths and parameters.

import os
import sys


CORR = config["correspondence"]


def correspondence_parts_csv():
    """The parts CSV: correspondence.parts_csv, or the generated data's parts.csv; the paper config needs one."""
    if CORR["parts_csv"]:
        return os.path.expanduser(CORR["parts_csv"])
    if config["data"]["source"] == "synthetic":
        return os.path.join(imagenet_root(), "parts.csv")
    raise WorkflowError(
        "config correspondence.parts_csv is not set but data.source is 'real': make a CSV of the eye and nose "
        "boxes of a few validation images (README.md, section \"Running the paper's configuration\"; template: "
        "config/correspondence_parts.template.csv) and set correspondence.parts_csv to it."
    )


def correspondence_inputs(wildcards):
    """The user's parts CSV, or the generated ImageNet folder (a job's output) that holds parts.csv."""
    if CORR["parts_csv"]:
        return [correspondence_parts_csv()]
    correspondence_parts_csv()  # real data without a CSV: stop here with the message
    return imagenet_input(wildcards)


def correspondence_enabled():
    """Whether the default target includes Table 1 and Fig 8: not for real data without a parts CSV (a note says
    so), so the rest of the paper's study still runs; asking for them by name then stops with
    correspondence_parts_csv's message."""
    if config["data"]["source"] == "real" and not CORR["parts_csv"]:
        print("note: Table 1 and Fig 8 are left out: set correspondence.parts_csv (README.md, section \"Running the paper's configuration\")",
              file=sys.stderr)
        return False
    return True

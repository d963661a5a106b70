# Helpers of report.smk: the front page's path and inputs.

import os


FRONT_PAGE = result_path("report/front_page.rst")


def front_page_inputs():
    """{table name: csv} and {figure name: png} of everything `rule all` builds (the claims apart)."""
    csvs = [path for path in TARGETS if path.startswith(result_path("tables/")) and path.endswith(".csv")]
    tables = {os.path.basename(path)[: -len(".csv")]: path for path in csvs}
    tables.pop("claims", None)
    tables.pop("fig3_architecture", None)  # drawn as Fig 3 itself
    figures = {name: result_path(f"figures/{name}.png") for name in PLOTS}
    figures = {name: path for name, path in figures.items() if path in TARGETS}  # not a figure left out (Fig 8)
    return tables, figures


def run_summary():
    """What the run was, for the front page's first lines (zfrepro.report.front_page.describe_run)."""
    return {
        "source": config["data"]["source"],
        "published": {arch: published_weights(arch)["name"] for arch in imported_arch_names()},
        "widths": {arch: config["architectures"][arch].get("width", 1.0) for arch in trained_arch_names()},
        "crop_size": config["data"]["crop_size"],
    }

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

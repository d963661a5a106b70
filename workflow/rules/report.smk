# The report's front page: how many of the paper's claims this run reproduces, then every table beside the
# paper's values and a link to every figure, by the paper's sections. Included last: it reads the tables and
# figures the other study files registered. The Snakefile makes it the report's first page once it exists.

import os


include: "helpers/report.smk"


localrules:
    front_page,


FRONT_TABLES, FRONT_FIGURES = front_page_inputs()


rule front_page:
    input:
        claims=result_path("tables/claims.csv"),
        tables=list(FRONT_TABLES.values()),
        figures=list(FRONT_FIGURES.values()),
        pages=atlas_pages(),
        intro="workflow/report/workflow.rst",
    output:
        FRONT_PAGE,
    params:
        tables=to_json(FRONT_TABLES),
        figures=to_json(FRONT_FIGURES),
        pages=to_json({"atlas": atlas_pages()} if atlas_pages() else {}),
        run=to_json(run_summary()),
        base=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),  # report.html goes here
    log:
        result_path("logs/front_page/front_page.log"),
    resources:
        **job_resources("front_page"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro front-page --claims {input.claims:q} --tables {params.tables:q} --figures {params.figures:q}"
        " --pages {params.pages:q} --base {params.base:q} --run {params.run:q}"
        " --intro {input.intro:q} --out {output:q} > {log:q} 2>&1"


TARGETS.append(FRONT_PAGE)

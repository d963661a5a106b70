# Tables: the paper's published values beside the reproduced ones, as CSV and Markdown.


localrules:
    table2,


rule table2:
    input:
        [path for _, path in table2_rows()],
    output:
        csv=report(
            "results/tables/table2_imagenet.csv",
            caption="../report/table2.rst",
            category="Tables",
        ),
        md=report(
            "results/tables/table2_imagenet.md",
            caption="../report/table2.rst",
            category="Tables",
        ),
    params:
        metrics=[f"{label}={path}" for label, path in table2_rows()],
        crops=config["evaluation"]["table_crops"],
    log:
        "results/logs/table2/table2.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table2 --metrics {params.metrics:q} --crops {params.crops}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"

# Tables: the paper's published values beside the reproduced ones, as CSV and Markdown.


localrules:
    table2,
    table3,


rule table2:
    input:
        [predictions_path(*member) for _, _, members in table2_rows() for member in members],
    output:
        csv=report_file(result_path("tables/table2_imagenet.csv"), "table2", name="table2_imagenet", kind="table"),
        md=report_file(result_path("tables/table2_imagenet.md"), "table2", name="table2_imagenet", kind="table (Markdown)"),
    params:
        rows=to_json({label: {kind: [predictions_path(*m) for m in members]} for label, kind, members in table2_rows()},
                     keep_order=True),
        crops=config["evaluation"]["table_crops"],
    log:
        result_path("logs/table2/table2.log"),
    resources:
        **job_resources("table2"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table2 --rows {params.rows:q} --crops {params.crops}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table3:
    input:
        [metrics_path(arch, seed) for _, arch in table3_rows() for seed in arch_seeds(arch)],
    output:
        csv=report_file(result_path("tables/table3_architectures.csv"), "table3", name="table3_architectures", kind="table"),
        md=report_file(result_path("tables/table3_architectures.md"), "table3", name="table3_architectures", kind="table (Markdown)"),
    params:
        metrics=to_json({label: [metrics_path(arch, seed) for seed in arch_seeds(arch)] for label, arch in table3_rows()},
                        keep_order=True),
        crops=config["evaluation"]["table_crops"],
    log:
        result_path("logs/table3/table3.log"),
    resources:
        **job_resources("table3"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table3 --metrics {params.metrics:q} --crops {params.crops}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


TARGETS.extend(table_files("table2_imagenet") + (table_files("table3_architectures") if table3_rows() else []))

# Tables: the paper's published values beside the reproduced ones, as CSV and Markdown.


localrules:
    table2,
    table3,
    table4,
    table5,
    table6,
    table7,


rule table2:
    input:
        [predictions_path(*member) for _, members in table2_rows() for member in members],
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
        rows=[f"{label}=" + ",".join(predictions_path(*m) for m in members) for label, members in table2_rows()],
        crops=config["evaluation"]["table_crops"],
    log:
        "results/logs/table2/table2.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table2 --rows {params.rows:q} --crops {params.crops}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table3:
    input:
        rows=[metrics_path(arch, seeds()[0]) for _, arch in table3_rows()],
        other_seeds=table3_other_seeds(),
    output:
        csv=report(
            "results/tables/table3_architectures.csv",
            caption="../report/table3.rst",
            category="Tables",
        ),
        md=report(
            "results/tables/table3_architectures.md",
            caption="../report/table3.rst",
            category="Tables",
        ),
    params:
        metrics=[f"{label}={metrics_path(arch, seeds()[0])}" for label, arch in table3_rows()],
        crops=config["evaluation"]["table_crops"],
    log:
        "results/logs/table3/table3.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table3 --metrics {params.metrics:q} --seed-metrics {input.other_seeds:q} --crops {params.crops}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


# Transfer tables (Tables 4-7): the classifier results of transfer.smk beside the paper's numbers.


for _table, _dataset in (("table4", "caltech101"), ("table5", "caltech256")):

    rule:
        name:
            _table
        input:
            pretrained=frozen_csv(_dataset, "softmax", "fc7"),
            scratch=scratch_scores(_dataset),
            splits=f"results/transfer/splits/{_dataset}.json",
        output:
            csv=report(f"results/tables/{_table}_{_dataset}.csv", caption=f"../report/{_table}.rst",
                       category="Tables"),
            md=report(f"results/tables/{_table}_{_dataset}.md", caption=f"../report/{_table}.rst",
                      category="Tables"),
        params:
            table=_table,
            sizes=to_json(TR[_dataset]["train_sizes"]),
            note=data_note(),
        log:
            f"results/logs/tables/{_table}.log",
        conda:
            "../envs/zfrepro.yaml"
        shell:
            "zfrepro {params.table} --pretrained {input.pretrained:q} --scratch {input.scratch:q}"
            " --splits {input.splits:q} --sizes {params.sizes:q} --data-note {params.note:q}"
            " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table6:
    input:
        f"results/transfer/voc/softmax_{TR['voc']['layer']}.csv",
    output:
        csv=report("results/tables/table6_voc2012.csv", caption="../report/table6.rst", category="Tables"),
        md=report("results/tables/table6_voc2012.md", caption="../report/table6.rst", category="Tables"),
    params:
        layer=TR["voc"]["layer"],
        note=data_note(),
    log:
        "results/logs/tables/table6.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table6 --input {input:q} --layer {params.layer} --data-note {params.note:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table7:
    input:
        [frozen_csv(dataset, classifier, layer) for dataset in CALTECH
         for (classifier, layer), sizes in frozen_jobs(dataset).items() if table7_size(dataset) in sizes],
    output:
        csv=report("results/tables/table7_layers.csv", caption="../report/table7.rst", category="Tables"),
        md=report("results/tables/table7_layers.md", caption="../report/table7.rst", category="Tables"),
    params:
        sizes=to_json({dataset: table7_size(dataset) for dataset in CALTECH}),
        note=data_note(),
    log:
        "results/logs/tables/table7.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table7 --inputs {input:q} --sizes {params.sizes:q} --data-note {params.note:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"

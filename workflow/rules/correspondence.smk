# Correspondence (Table 1, Fig 8): mask the same part (eyes, nose) in several images of one class and
# compare how the features change. Computing, the table and the figure are separate rules.

import os


include: "helpers/correspondence.smk"


localrules:
    table1_correspondence,
    plot_fig8_correspondence,


rule correspondence:
    input:
        parts=correspondence_inputs,
        model=model_path(VIS["arch"]),
        mean=f"{PREPARED}/mean.pt",
        manifest=f"{PREPARED}/manifest.json",
    output:
        result_path("analysis/table1/correspondence.pt"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        parts_csv=lambda wildcards: correspondence_parts_csv(),
        images=CORR["images"],
        wnid=to_json(CORR["wnid"]),
        repeats=CORR["random_repeats"],
        layers=to_json(CORR["layers"], keep_order=True),
        seed=CORR["seed"],
    log:
        result_path("logs/correspondence/correspondence.log"),
    benchmark:
        result_path("benchmarks/correspondence/correspondence.tsv")
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("correspondence"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro correspondence --model {input.model:q} --data-dir {params.data_dir:q}"
        " --parts-csv {params.parts_csv:q} --images {params.images} --wnid {params.wnid:q}"
        " --random-repeats {params.repeats} --layers {params.layers:q} --seed {params.seed}"
        " --out {output:q} --threads {threads} > {log:q} 2>&1"


rule table1_correspondence:
    input:
        result_path("analysis/table1/correspondence.pt"),
    output:
        csv=report_file(result_path("tables/table1_correspondence.csv"), "table1_correspondence", name="table1_correspondence", kind="table"),
        md=report_file(result_path("tables/table1_correspondence.md"), "table1_correspondence", name="table1_correspondence", kind="table (Markdown)"),
    log:
        result_path("logs/table1_correspondence/table1_correspondence.log"),
    params:
        # its footnote states claim 8 by the scorecard's rule: the settings that rule reads, and only those (so
        # another claim's threshold does not rebuild Table 1)
        criteria=to_json({key: config["claims"][key] for key in ("confidence", "bootstrap", "correspondence_gap")}),
    resources:
        **job_resources("table1_correspondence"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table1 --input {input:q} --criteria {params.criteria:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


CORRESPONDENCE_ENABLED = correspondence_enabled()  # also read by claims.smk (claim 8)
figure("fig8_correspondence", {"data": result_path("analysis/table1/correspondence.pt")}, target=CORRESPONDENCE_ENABLED)
TARGETS.extend(table_files("table1_correspondence") if CORRESPONDENCE_ENABLED else [])

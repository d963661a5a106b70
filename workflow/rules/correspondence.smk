# Correspondence (Table 1, Fig 8): mask the same part (eyes, nose) in several images of one class and
# compare how the features change. Computing, the table and the figure are separate rules.

# CORR, correspondence_parts_csv(), correspondence_inputs() and correspondence_targets() are in common.smk.


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
        "results/analysis/table1/correspondence.pt",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        parts_csv=lambda wildcards: correspondence_parts_csv(),
        images=CORR["images"],
        wnid=f"--wnid {CORR['wnid']}" if CORR["wnid"] else "",
        repeats=CORR["random_repeats"],
        layers=CORR["layers"],
        seed=CORR["seed"],
    log:
        "results/logs/correspondence/correspondence.log",
    benchmark:
        "results/benchmarks/correspondence/correspondence.tsv"
    threads: config["threads"]["evaluate"]
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro correspondence --model {input.model:q} --data-dir {params.data_dir:q}"
        " --parts-csv {params.parts_csv:q} --images {params.images} {params.wnid}"
        " --random-repeats {params.repeats} --layers {params.layers} --seed {params.seed}"
        " --out {output:q} --threads {threads} > {log:q} 2>&1"


rule table1_correspondence:
    input:
        "results/analysis/table1/correspondence.pt",
    output:
        csv=report("results/tables/table1_correspondence.csv", caption="../report/table1_correspondence.rst",
                   category="Tables"),
        md=report("results/tables/table1_correspondence.md", caption="../report/table1_correspondence.rst",
                  category="Tables"),
    log:
        "results/logs/table1_correspondence/table1_correspondence.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table1 --input {input:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule plot_fig8_correspondence:
    input:
        "results/analysis/table1/correspondence.pt",
    output:
        png=report("results/figures/fig8_correspondence.png", caption="../report/fig8_correspondence.rst",
                   category="Figures"),
        pdf="results/figures/fig8_correspondence.pdf",
    log:
        "results/logs/plot/fig8_correspondence.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro plot fig8 --input {input:q} --out {output.png:q} > {log:q} 2>&1"

# Figure 5 (invariance, claim 6): feature distances and p(true class) of chosen validation images under
# vertical translation, scaling and rotation. Computing and plotting are separate rules, so restyling never
# recomputes. Settings: config["invariance"]; the network is the one of the deconvnet figures.

INV = config["invariance"]


rule invariance:
    input:
        model=model_path(config["visualize"]["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
        manifest=f"{PREPARED}/manifest.json",
    output:
        data="results/analysis/fig5/invariance.pt",
        csv=report("results/tables/fig5_invariance.csv", caption="../report/fig5_invariance.rst",
                   category="Figures", subcategory="Fig 5"),
        md="results/tables/fig5_invariance.md",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        images=to_json(INV["images"]),
        translations=" ".join(str(v) for v in INV["translations"]),
        scales=" ".join(str(v) for v in INV["scales"]),
        rotations=" ".join(str(v) for v in INV["rotations"]),
        layers=" ".join(INV["layers"]),
        device=config["device"],
    log:
        "results/logs/invariance/invariance.log",
    benchmark:
        "results/benchmarks/invariance/invariance.tsv"
    threads: config["threads"]["evaluate"]
    resources:
        **gpu_resources(),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro invariance --model {input.model:q} --data-dir {params.data_dir:q} --images {params.images:q}"
        " --translations {params.translations} --scales {params.scales} --rotations {params.rotations}"
        " --layers {params.layers} --device {params.device} --out {output.data:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} --threads {threads} > {log:q} 2>&1"


rule plot_fig5_invariance:
    input:
        "results/analysis/fig5/invariance.pt",
    output:
        png=report("results/figures/fig5_invariance.png", caption="../report/fig5_invariance.rst",
                   category="Figures"),
        pdf="results/figures/fig5_invariance.pdf",
    log:
        "results/logs/plot/fig5_invariance.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro plot fig5 --input {input:q} --out {output.png:q} > {log:q} 2>&1"

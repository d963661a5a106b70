# The deconvnet figures: mined activations (computed once, cached under results/analysis/) projected to
# pixel space, then drawn. Computing and plotting are separate rules, so restyling never recomputes.


rule mine_top9:
    input:
        model="results/models/{arch}/seed{seed}/final.pt",
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        "results/analysis/top9/{arch}/seed{seed}.pt",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        k=config["visualize"]["top_k"],
        batch_size=config["visualize"]["batch_size"],
    log:
        "results/logs/mine_top9/{arch}_seed{seed}.log",
    benchmark:
        "results/benchmarks/mine_top9/{arch}_seed{seed}.tsv"
    wildcard_constraints:
        arch=arch_regex(),
        seed=r"\d+",
    threads: config["threads"]["evaluate"]
    resources:
        **gpu_resources(),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro mine --model {input.model:q} --data-dir {params.data_dir:q} --split val --k {params.k}"
        " --batch-size {params.batch_size} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule top9_projections:
    input:
        model=model_path(VIS["arch"]),
        top9=top9_path(VIS["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        "results/analysis/fig2/top9_projections.pt",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        maps=VIS["fig2_maps_per_layer"],
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
    log:
        "results/logs/top9_projections/top9_projections.log",
    threads: config["threads"]["evaluate"]
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro top9-projections --model {input.model:q} --top9 {input.top9:q} --data-dir {params.data_dir:q}"
        " --maps {params.maps} --seed {params.seed} --norm {params.norm} --out {output:q}"
        " --threads {threads} > {log:q} 2>&1"


rule evolution:
    input:
        checkpoints=evolution_checkpoints(),
        train=f"{PREPARED}/train.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        "results/analysis/fig4/evolution.pt",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        checkpoints=[f"{epoch}={path}" for epoch, path in evolution_checkpoint_pairs()],
        maps=VIS["fig4_maps_per_layer"],
        train_images=VIS["fig4_train_images"] or "all",
        size=VIS["fig4_display_size"],
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
    log:
        "results/logs/evolution/evolution.log",
    benchmark:
        "results/benchmarks/evolution/evolution.tsv"
    threads: config["threads"]["evaluate"]
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro evolution --checkpoints {params.checkpoints:q} --data-dir {params.data_dir:q}"
        " --maps {params.maps} --train-images {params.train_images} --display-size {params.size}"
        " --seed {params.seed} --norm {params.norm} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule unpooling:
    input:
        model=model_path(VIS["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        "results/analysis/fig1/unpooling.pt",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        layer=VIS["fig1_layer"],
        image=VIS["fig1_image"],
        window=VIS["fig1_window"],
    log:
        "results/logs/unpooling/unpooling.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro unpooling --model {input.model:q} --data-dir {params.data_dir:q} --layer {params.layer}"
        " --image {params.image} --window {params.window} --out {output:q} > {log:q} 2>&1"


rule filters:
    input:
        models=[model_path(arch) for arch in fig6_models().values()],
        top9=[top9_path(arch) for arch in fig6_projected().values()],
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        data="results/analysis/fig6/filters.pt",
        csv=report("results/tables/fig6_filter_stats.csv", caption="../report/fig6_filter_stats.rst",
                   category="Figures", subcategory="Fig 6"),
        md="results/tables/fig6_filter_stats.md",
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        filters=[f"{panel}={model_path(arch)}" for panel, arch in fig6_models().items()],
        projections=[f"{panel}={model_path(arch)}" for panel, arch in fig6_projected().items()],
        top9=[f"{panel}={top9_path(arch)}" for panel, arch in fig6_projected().items()],
        maps=VIS["fig6_layer2_maps"],
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
    log:
        "results/logs/filters/filters.log",
    threads: config["threads"]["evaluate"]
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro filters --filters {params.filters:q} --projections {params.projections:q} --top9 {params.top9:q}"
        " --data-dir {params.data_dir:q}"
        " --maps {params.maps} --seed {params.seed} --norm {params.norm} --out {output.data:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} --threads {threads} > {log:q} 2>&1"


rule fig3_architecture:
    input:
        model_path(VIS["arch"]),
    output:
        png=report("results/figures/fig3_architecture.png", caption="../report/fig3_architecture.rst",
                   category="Figures", subcategory="Fig 3"),
        pdf="results/figures/fig3_architecture.pdf",
        csv=report("results/tables/fig3_architecture.csv", caption="../report/fig3_architecture.rst",
                   category="Figures", subcategory="Fig 3"),
    log:
        "results/logs/fig3_architecture/fig3_architecture.log",
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro plot fig3 --input {input:q} --out {output.png:q} --out-csv {output.csv:q} > {log:q} 2>&1"


# figure name -> (plot kind, the analysis file it draws)
FIGURE_INPUTS = {
    "fig1_deconvnet": ("fig1", "results/analysis/fig1/unpooling.pt"),
    "fig2_top9": ("fig2", "results/analysis/fig2/top9_projections.pt"),
    "fig4_evolution": ("fig4", "results/analysis/fig4/evolution.pt"),
    "fig6_filters": ("fig6", "results/analysis/fig6/filters.pt"),
}


# One plotting rule per figure (plot_fig1_deconvnet, ...): each has its own report caption.
for _figure, (_kind, _data) in FIGURE_INPUTS.items():

    rule:
        name:
            f"plot_{_figure}"
        input:
            _data,
        output:
            png=report(f"results/figures/{_figure}.png", caption=f"../report/{_figure}.rst", category="Figures"),
            pdf=f"results/figures/{_figure}.pdf",
        params:
            kind=_kind,
        log:
            f"results/logs/plot/{_figure}.log",
        conda:
            "../envs/zfrepro.yaml"
        shell:
            "zfrepro plot {params.kind} --input {input:q} --out {output.png:q} > {log:q} 2>&1"

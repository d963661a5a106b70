# The deconvnet figures: mined activations (computed once, cached under results/analysis/) projected to
# pixel space, then drawn. Computing and plotting are separate rules, so restyling never recomputes.

import os


include: "helpers/visualize.smk"


rule mine_top9:
    input:
        model=model_path("{arch}", "{seed}"),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        result_path("analysis/top9/{arch}/seed{seed}.pt"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        k=config["visualize"]["top_k"],
        batch_size=config["visualize"]["batch_size"],
        device=config["device"],
    log:
        result_path("logs/mine_top9/{arch}_seed{seed}.log"),
    benchmark:
        result_path("benchmarks/mine_top9/{arch}_seed{seed}.tsv")
    wildcard_constraints:
        arch=arch_regex(),
        seed=r"\d+",
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("mine_top9", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro mine --model {input.model:q} --data-dir {params.data_dir:q} --split val --k {params.k}"
        " --batch-size {params.batch_size} --device {params.device} --out {output:q} --threads {threads}"
        " > {log:q} 2>&1"


rule top9_projections:
    input:
        model=model_path(VIS["arch"]),
        top9=top9_path(VIS["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        result_path("analysis/fig2/top9_projections.pt"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        maps=VIS["fig2_maps_per_layer"],
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
    log:
        result_path("logs/top9_projections/top9_projections.log"),
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("top9_projections"),
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
        result_path("analysis/fig4/evolution.pt"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        checkpoints=to_json(dict(evolution_checkpoint_pairs()), keep_order=True),
        maps=VIS["fig4_maps_per_layer"],
        train_images=to_json(VIS["fig4_train_images"]),
        size=VIS["fig4_display_size"],
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
        device=config["device"],
    log:
        result_path("logs/evolution/evolution.log"),
    benchmark:
        result_path("benchmarks/evolution/evolution.tsv")
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("evolution", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro evolution --checkpoints {params.checkpoints:q} --data-dir {params.data_dir:q}"
        " --maps {params.maps} --train-images {params.train_images:q} --display-size {params.size}"
        " --seed {params.seed} --norm {params.norm} --device {params.device} --out {output:q} --threads {threads}"
        " > {log:q} 2>&1"


rule convergence:
    input:
        checkpoints=[path for kept in convergence_checkpoints().values() for path in kept.values()],
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        data=result_path("analysis/fig4/convergence.pt"),
        csv=report_file(result_path("tables/fig4_convergence.csv"), "fig4_convergence", name="fig4_convergence", kind="table"),
        md=result_path("tables/fig4_convergence.md"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        checkpoints=to_json(convergence_checkpoints(), keep_order=True),
        images=to_json(VIS["fig4_cka_images"]),
        seed=VIS["sample_seed"],
        arch=VIS["arch"],
        device=config["device"],
    log:
        result_path("logs/convergence/convergence.log"),
    benchmark:
        result_path("benchmarks/convergence/convergence.tsv")
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("convergence", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro convergence --checkpoints {params.checkpoints:q} --data-dir {params.data_dir:q}"
        " --images {params.images:q} --seed {params.seed} --arch {params.arch} --device {params.device}"
        " --out {output.data:q} --out-csv {output.csv:q} --out-md {output.md:q} --threads {threads} > {log:q} 2>&1"


rule unpooling:
    input:
        model=model_path(VIS["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        result_path("analysis/fig1/unpooling.pt"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        layer=VIS["fig1_layer"],
        image=VIS["fig1_image"],
        window=VIS["fig1_window"],
    log:
        result_path("logs/unpooling/unpooling.log"),
    resources:
        **job_resources("unpooling"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro unpooling --model {input.model:q} --data-dir {params.data_dir:q} --layer {params.layer}"
        " --image {params.image} --window {params.window} --out {output:q} > {log:q} 2>&1"


rule filters:
    input:
        models=[model_path(arch) for arch in fig6_models().values()],
        checkpoints=[path for kept in fig6_checkpoints().values() for path in kept.values()],
        top9=[top9_path(arch) for arch in fig6_projected().values()],
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        data=result_path("analysis/fig6/filters.pt"),
        csv=report_file(result_path("tables/fig6_filter_stats.csv"), "fig6_filter_stats", name="fig6_filter_stats", kind="table"),
        md=result_path("tables/fig6_filter_stats.md"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        filters=to_json({panel: model_path(arch) for panel, arch in fig6_models().items()}, keep_order=True),
        projections=to_json({panel: model_path(arch) for panel, arch in fig6_projected().items()}, keep_order=True),
        top9=to_json({panel: top9_path(arch) for panel, arch in fig6_projected().items()}, keep_order=True),
        checkpoints=to_json(fig6_checkpoints(), keep_order=True),
        mid_band=to_json(VIS["fig6_mid_band"]),
        maps=VIS["fig6_layer2_maps"],
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
    log:
        result_path("logs/filters/filters.log"),
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("filters"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro filters --filters {params.filters:q} --projections {params.projections:q} --top9 {params.top9:q}"
        " --checkpoints {params.checkpoints:q} --mid-band {params.mid_band:q} --data-dir {params.data_dir:q}"
        " --maps {params.maps} --seed {params.seed} --norm {params.norm} --out {output.data:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} --threads {threads} > {log:q} 2>&1"


figure("fig1_deconvnet", {"data": result_path("analysis/fig1/unpooling.pt")})
figure("fig2_top9", {"data": result_path("analysis/fig2/top9_projections.pt")})
figure("fig3_architecture", {"model": model_path(VIS["arch"])}, also={"table": result_path("tables/fig3_architecture.csv")})
if not published_weights(VIS["arch"]):  # Fig 4 is the network's training: imported weights come without it
    figure("fig4_evolution", {"data": result_path("analysis/fig4/evolution.pt")})
figure("fig6_filters", {"data": result_path("analysis/fig6/filters.pt")})
TARGETS.extend(table_files("fig6_filter_stats") + (table_files("fig4_convergence") if convergence_checkpoints() else []))

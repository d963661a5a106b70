# The feature atlas: every feature map of layers 1-5 with its 9 strongest patches and their deconvnet projections
# (Fig 2 for every map), each map's top 9 at the kept epochs (Fig 4 for any map), and the networks' layer 1-2 maps
# side by side (Fig 6 for every map). Static HTML folders built from the cached mining result, linked from the
# report's front page: a pure HTML report cannot hold folders (Snakemake asks for a zip), so they stay beside it.

import os


include: "helpers/atlas.smk"


rule atlas:
    input:
        model=model_path("{arch}", "{seed}"),
        top9=result_path("analysis/top9/{arch}/seed{seed}.pt"),
        checkpoints=lambda wildcards: list(atlas_checkpoints(wildcards.arch, int(wildcards.seed)).values()),
        val=f"{PREPARED}/val.pt",
        train=f"{PREPARED}/train.pt",
        mean=f"{PREPARED}/mean.pt",
    output:
        directory(result_path("atlas/{arch}_seed{seed}")),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        checkpoints=lambda wildcards: to_json(atlas_checkpoints(wildcards.arch, int(wildcards.seed))),
        evolution_maps=to_json(ATLAS["evolution_maps"]),
        maps_per_layer=f"--maps-per-layer {ATLAS['maps_per_layer']}" if ATLAS["maps_per_layer"] else "",
        evolution_images=to_json(VIS["fig4_train_images"]),
        seed=VIS["sample_seed"],
        norm=VIS["norm"],
        device=config["device"],
    log:
        result_path("logs/atlas/{arch}_seed{seed}.log"),
    benchmark:
        result_path("benchmarks/atlas/{arch}_seed{seed}.tsv")
    wildcard_constraints:
        arch=arch_regex(),
        seed=r"\d+",
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("atlas", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro atlas --model {input.model:q} --top9 {input.top9:q} --data-dir {params.data_dir:q}"
        " --checkpoints {params.checkpoints:q} --evolution-maps {params.evolution_maps:q}"
        " --evolution-split train --evolution-images {params.evolution_images:q} --seed {params.seed}"
        " --norm {params.norm} --device {params.device} --title '{wildcards.arch} seed {wildcards.seed}'"
        " {params.maps_per_layer} --out-dir {output:q} --threads {threads} > {log:q} 2>&1"


rule atlas_compare:
    input:
        [atlas_path(arch) for arch in atlas_networks()],
    output:
        directory(atlas_compare_path()),
    params:
        atlases=lambda wildcards, input: to_json(list(input)),
        layers=to_json(ATLAS["compare_layers"]),
    log:
        result_path("logs/atlas/compare.log"),
    resources:
        **job_resources("atlas_compare"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro atlas-compare --atlases {params.atlases:q} --layers {params.layers:q}"
        " --out-dir {output:q} > {log:q} 2>&1"


TARGETS.extend(atlas_pages())

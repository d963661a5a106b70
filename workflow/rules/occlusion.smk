# Figure 7: occlusion sensitivity. A grey square (the mean pixel) slides over chosen validation images of
# the Figs 1-4 network (visualize.arch); the maps are computed once under results/analysis/fig7/ and drawn
# by a separate rule, so restyling never recomputes them.

import os


OCC = config["occlusion"]


rule occlusion:
    input:
        model=model_path(VIS["arch"]),
        top9=top9_path(VIS["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
        manifest=f"{PREPARED}/manifest.json",
    output:
        result_path("analysis/fig7/occlusion.pt"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        images=to_json(OCC["images"]),
        size=OCC["size"],
        stride=OCC["stride"],
        layer=OCC["layer"],
        top_projections=OCC["top_projections"],
        batch_size=OCC["batch_size"],
        norm=VIS["norm"],
        sample=OCC["sample"],
        device=config["device"],
    log:
        result_path("logs/occlusion/occlusion.log"),
    benchmark:
        result_path("benchmarks/occlusion/occlusion.tsv")
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("occlusion", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro occlusion --model {input.model:q} --data-dir {params.data_dir:q} --top9 {input.top9:q}"
        " --images {params.images:q} --size {params.size} --stride {params.stride} --layer {params.layer}"
        " --top-projections {params.top_projections} --batch-size {params.batch_size} --norm {params.norm}"
        " --sample {params.sample} --device {params.device} --out {output:q} --threads {threads} > {log:q} 2>&1"


figure("fig7_occlusion", {"data": result_path("analysis/fig7/occlusion.pt")})

# Figure 5 (invariance, claim 6): feature distances and p(true class) of chosen validation images under
# vertical translation, scaling and rotation. Computing and plotting are separate rules, so restyling never
# recomputes. Settings: config["invariance"]; the network is the one of the deconvnet figures.

import os


INV = config["invariance"]


rule invariance:
    input:
        model=model_path(config["visualize"]["arch"]),
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
        manifest=f"{PREPARED}/manifest.json",
    output:
        data=result_path("analysis/fig5/invariance.pt"),
        csv=report_file(result_path("tables/fig5_invariance.csv"), "fig5_invariance", name="fig5_invariance", kind="table"),
        md=result_path("tables/fig5_invariance.md"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.mean),
        images=to_json(INV["images"]),
        translations=to_json(INV["translations"]),
        scales=to_json(INV["scales"]),
        rotations=to_json(INV["rotations"]),
        layers=to_json(INV["layers"]),
        sample=INV["sample"],
        device=config["device"],
    log:
        result_path("logs/invariance/invariance.log"),
    benchmark:
        result_path("benchmarks/invariance/invariance.tsv")
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("invariance", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro invariance --model {input.model:q} --data-dir {params.data_dir:q} --images {params.images:q}"
        " --translations {params.translations:q} --scales {params.scales:q} --rotations {params.rotations:q}"
        " --layers {params.layers:q} --sample {params.sample} --device {params.device} --out {output.data:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} --threads {threads} > {log:q} 2>&1"


figure("fig5_invariance", {"data": result_path("analysis/fig5/invariance.pt")})
TARGETS.extend(table_files("fig5_invariance"))

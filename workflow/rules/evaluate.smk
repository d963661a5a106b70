# Evaluation: train top-1 (fixed subset), val top-1/top-5, centre crop and 10 crops, per model; the validation
# softmax outputs are kept so that Table 2's ensembles average them without running the models again.

import os


include: "helpers/evaluate.smk"


rule evaluate:
    input:
        model=model_path("{arch}", "{seed}"),
        train=f"{PREPARED}/train.pt",
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
        manifest=f"{PREPARED}/manifest.json",
    output:
        metrics=result_path("metrics/{arch}/seed{seed}.json"),
        predictions=result_path("predictions/{arch}/seed{seed}.pt"),
    params:
        evaluation=evaluation_params_json(),
        device=config["device"],
        data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
    log:
        result_path("logs/evaluate/{arch}_seed{seed}.log"),
    benchmark:
        result_path("benchmarks/evaluate/{arch}_seed{seed}.tsv")
    wildcard_constraints:
        arch=arch_regex(),
        seed=r"\d+",
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("evaluate", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro evaluate --data-dir {params.data_dir:q} --model {input.model:q}"
        " --params {params.evaluation:q} --out {output.metrics:q} --out-predictions {output.predictions:q}"
        " --device {params.device}"
        " --threads {threads} > {log:q} 2>&1"


TARGETS.extend(metrics_path(arch, seed) for arch, seed in trained_models())

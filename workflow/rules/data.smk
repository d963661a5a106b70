# Data: generate the embedded default datasets (real on-disk layouts), then index, decode and
# mean-normalise ImageNet into results/data/imagenet/ (without the Caltech duplicates when
# transfer.overlap.drop_from_pretraining). The transfer sets are prepared in transfer.smk.

import os


include: "helpers/data.smk"


rule generate_synthetic:
    input:
        lambda wildcards: synthetic_duplicates_source(wildcards.dataset),
    output:
        directory(result_path("data/synthetic/{dataset}")),
    params:
        generator=lambda wildcards: synthetic_params_json(wildcards.dataset),
        seed=config["synthetic"]["seed"],
        imagenet=lambda wildcards, input: to_json(input[0] if input else None),
    log:
        result_path("logs/generate_synthetic/{dataset}.log"),
    benchmark:
        result_path("benchmarks/generate_synthetic/{dataset}.tsv")
    wildcard_constraints:
        dataset="|".join(DATASETS),
    threads: config["threads"]["prepare"]
    resources:
        **job_resources("generate_synthetic"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro generate --dataset {wildcards.dataset} --out {output:q} --params {params.generator:q}"
        " --seed {params.seed} --imagenet-root {params.imagenet:q} --threads {threads} > {log:q} 2>&1"


rule prepare_imagenet:
    input:
        imagenet=imagenet_input,
        exclude=pretraining_exclusions(),
    output:
        train=f"{PREPARED}/train.pt",
        val=f"{PREPARED}/val.pt",
        mean=f"{PREPARED}/mean.pt",
        manifest=f"{PREPARED}/manifest.json",
    params:
        root=lambda wildcards: imagenet_root(),
        data=data_params_json(),
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
        exclude=lambda wildcards, input: to_json(list(input.exclude)),
    log:
        result_path("logs/prepare_imagenet/imagenet.log"),
    benchmark:
        result_path("benchmarks/prepare_imagenet/imagenet.tsv")
    threads: config["threads"]["prepare"]
    resources:
        **job_resources("prepare_imagenet"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro prepare --root {params.root:q} --out-dir {params.out_dir:q}"
        " --params {params.data:q} --exclude {params.exclude:q} --threads {threads} > {log:q} 2>&1"

# Training: one rule per configured architecture, named train_<arch>, because the epoch checkpoints a
# model keeps (training.checkpoint_epochs within its own, possibly overridden, training.epochs) are
# declared outputs and Snakemake outputs cannot depend on a wildcard.

import os


include: "helpers/train.smk"


for _arch in trained_arch_names():

    rule:
        name:
            f"train_{_arch}"
        input:
            train=f"{PREPARED}/train.pt",
            val=f"{PREPARED}/val.pt",
            mean=f"{PREPARED}/mean.pt",
            manifest=f"{PREPARED}/manifest.json",
        output:
            final=model_path(_arch, "{seed}"),
            metrics=training_metrics_path(_arch, "{seed}"),
            checkpoints=[
                checkpoint_path(_arch, "{seed}", epoch) for epoch in checkpoint_epochs(_arch)
            ],
        params:
            arch=_arch,
            arch_params=to_json(arch_params(_arch)),
            train_params=to_json(train_params(_arch)),
            device=config["device"],
            launcher=train_launcher(),
            data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
            out_dir=lambda wildcards, output: os.path.dirname(output.final),
        log:
            result_path(f"logs/train/{_arch}_seed{{seed}}.log"),
        benchmark:
            result_path(f"benchmarks/train/{_arch}_seed{{seed}}.tsv")
        wildcard_constraints:
            seed=r"\d+",
        threads: config["threads"]["train"]
        resources:
            **training_resources(_arch),
        conda:
            "../envs/zfrepro.yaml"
        shell:
            "{params.launcher} train --data-dir {params.data_dir:q} --arch {params.arch}"
            " --arch-params {params.arch_params:q} --train-params {params.train_params:q}"
            " --seed {wildcards.seed} --out-dir {params.out_dir:q} --device {params.device}"
            " --threads {threads} > {log:q} 2>&1"


# The training curves of every trained network (all its seeds), from the trainers' metrics.csv.
if trained_arch_names():
    figure(
        "training_curves",
        {arch: [training_metrics_path(arch, seed) for a, seed in trained_models() if a == arch]
         for arch in trained_arch_names()},
        options={"data_note": data_note()},
    )

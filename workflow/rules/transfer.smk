# Transfer (section 5): layers 1-7 of the ImageNet network (transfer.arch) fixed, a new classifier trained on
# Caltech-101, Caltech-256 and PASCAL VOC 2012 (Tables 4-7, Fig 9), beside the same network trained from
# scratch on each split ("non-pretrained"). Features are extracted once per (model, dataset, layer) and
# cached under results/features/; every classifier reads them from there.

import os


include: "helpers/transfer.smk"


rule prepare_caltech:
    input:
        lambda wildcards: dataset_input(wildcards.dataset),
    output:
        split=result_path("data/{dataset}/all.pt"),
        manifest=result_path("data/{dataset}/manifest.json"),
    params:
        root=lambda wildcards: dataset_root(wildcards.dataset),
        data=data_params_json(),
        background=lambda wildcards: to_json(TR[wildcards.dataset]["background"]),
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    log:
        result_path("logs/prepare_transfer/{dataset}.log"),
    benchmark:
        result_path("benchmarks/prepare_transfer/{dataset}.tsv")
    wildcard_constraints:
        dataset="|".join(CALTECH),
    threads: config["threads"]["prepare"]
    resources:
        **job_resources("prepare_caltech"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro prepare-transfer --dataset {wildcards.dataset} --root {params.root:q}"
        " --out-dir {params.out_dir:q} --params {params.data:q} --background {params.background}"
        " --threads {threads} > {log:q} 2>&1"


rule prepare_voc:
    input:
        lambda wildcards: dataset_input("voc"),
    output:
        train=result_path("data/voc/train.pt"),
        val=result_path("data/voc/val.pt"),
        manifest=result_path("data/voc/manifest.json"),
    params:
        root=lambda wildcards: dataset_root("voc"),
        data=data_params_json(),
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    log:
        result_path("logs/prepare_transfer/voc.log"),
    benchmark:
        result_path("benchmarks/prepare_transfer/voc.tsv")
    threads: config["threads"]["prepare"]
    resources:
        **job_resources("prepare_voc"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro prepare-transfer --dataset voc --root {params.root:q} --out-dir {params.out_dir:q}"
        " --params {params.data:q} --threads {threads} > {log:q} 2>&1"


rule transfer_splits:
    input:
        split=result_path("data/{dataset}/all.pt"),
        manifest=result_path("data/{dataset}/manifest.json"),
    output:
        result_path("transfer/splits/{dataset}.json"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        sizes=lambda wildcards: to_json(transfer_sizes(wildcards.dataset)),
        splits=TR["splits"],
        test=lambda wildcards: TR[wildcards.dataset]["test_per_class"],
        seed=TR["seed"],
        key=lambda wildcards: f"transfer.{wildcards.dataset}.train_sizes"
        + (" / transfer.fig9_sizes" if wildcards.dataset == "caltech256" else ""),
    log:
        result_path("logs/transfer_splits/{dataset}.log"),
    wildcard_constraints:
        dataset="|".join(CALTECH),
    resources:
        **job_resources("transfer_splits"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro transfer-splits --data-dir {params.data_dir:q} --sizes {params.sizes:q} --splits {params.splits}"
        " --test-per-class {params.test} --seed {params.seed} --key {params.key:q} --out {output:q} > {log:q} 2>&1"


rule features:
    input:
        model=model_path("{arch}", "{seed}"),
        split=result_path("data/{dataset}/{split}.pt"),
        mean=f"{PREPARED}/mean.pt",
    output:
        expand(result_path("features/{{arch}}/seed{{seed}}/{{dataset}}/{{split}}/{layer}.pt"), layer=feature_layers()),
    params:
        layers=to_json(feature_layers()),
        max_dim=TR["max_feature_dim"],
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        result_path("logs/features/{arch}_seed{seed}_{dataset}_{split}.log"),
    benchmark:
        result_path("benchmarks/features/{arch}_seed{seed}_{dataset}_{split}.tsv")
    wildcard_constraints:
        arch=arch_regex(),
        seed=r"\d+",
        dataset="|".join(TRANSFER_DATASETS),
        split="all|train|val",
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("features", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro features --model {input.model:q} --split-file {input.split:q} --mean {input.mean:q}"
        " --layers {params.layers:q} --max-feature-dim {params.max_dim} --batch-size {params.batch_size}"
        " --device {params.device} --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule classify_frozen:
    input:
        features=lambda wildcards: features_path(wildcards.dataset, "all", wildcards.layer),
        splits=result_path("transfer/splits/{dataset}.json"),
    output:
        result_path("transfer/pretrained/{dataset}/{classifier}_{layer}.csv"),
    params:
        kind="{classifier}",
        params=lambda wildcards: to_json(TR[wildcards.classifier]),
        sizes=lambda wildcards: to_json(frozen_jobs(wildcards.dataset)[(wildcards.classifier, wildcards.layer)]),
    log:
        result_path("logs/classify_frozen/{dataset}_{classifier}_{layer}.log"),
    benchmark:
        result_path("benchmarks/classify_frozen/{dataset}_{classifier}_{layer}.tsv")
    wildcard_constraints:
        dataset="|".join(CALTECH),
        classifier="softmax|svm",
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("classify_frozen"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro classify --features {input.features:q} --splits {input.splits:q} --kind {params.kind}"
        " --params {params.params:q} --sizes {params.sizes:q} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule train_scratch:
    input:
        split=result_path("data/{dataset}/all.pt"),
        manifest=result_path("data/{dataset}/manifest.json"),
        splits=result_path("transfer/splits/{dataset}.json"),
    output:
        final=result_path("transfer/scratch/{dataset}/n{n}_split{s}/final.pt"),
        metrics=result_path("transfer/scratch/{dataset}/n{n}_split{s}/metrics.csv"),
        score=result_path("transfer/scratch/{dataset}/n{n}_split{s}/score.json"),
    params:
        data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        arch=TR["arch"],
        arch_params=to_json(arch_params(TR["arch"])),
        train_params=to_json(scratch_train_params()),
        device=config["device"],
        out_dir=lambda wildcards, output: os.path.dirname(output.final),
    log:
        result_path("logs/train_scratch/{dataset}_n{n}_split{s}.log"),
    benchmark:
        result_path("benchmarks/train_scratch/{dataset}_n{n}_split{s}.tsv")
    wildcard_constraints:
        dataset="|".join(CALTECH),
        n=r"\d+",
        s=r"\d+",
    threads: config["threads"]["train"]
    resources:
        **job_resources("train_scratch", gpus=1),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro scratch --data-dir {params.data_dir:q} --splits-file {input.splits:q} --split {wildcards.s}"
        " --n {wildcards.n} --arch {params.arch} --arch-params {params.arch_params:q}"
        " --train-params {params.train_params:q} --device {params.device} --out-dir {params.out_dir:q}"
        " --threads {threads} > {log:q} 2>&1"


rule voc_ap:
    input:
        train=features_path("voc", "train", TR["voc"]["layer"]),
        val=features_path("voc", "val", TR["voc"]["layer"]),
        val_split=result_path("data/voc/val.pt"),
    output:
        result_path(f"transfer/voc/softmax_{TR['voc']['layer']}.csv"),
    params:
        params=to_json(TR["softmax"]),
    log:
        result_path("logs/voc_ap/voc.log"),
    threads: config["threads"]["evaluate"]
    resources:
        **job_resources("voc_ap"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro voc-ap --train-features {input.train:q} --val-features {input.val:q} --val-split {input.val_split:q}"
        " --params {params.params:q} --out {output:q} --threads {threads} > {log:q} 2>&1"


# Transfer tables (Tables 4-7): the classifier results above beside the paper's numbers.


localrules:
    table4,
    table5,
    table6,
    table7,


for _table, _dataset in (("table4", "caltech101"), ("table5", "caltech256")):

    rule:
        name:
            _table
        input:
            pretrained=frozen_csv(_dataset, "softmax", "fc7"),
            scratch=scratch_scores(_dataset),
            splits=result_path(f"transfer/splits/{_dataset}.json"),
        output:
            csv=report_file(result_path(f"tables/{_table}_{_dataset}.csv"), _table, name=f"{_table}_{_dataset}", kind="table"),
            md=report_file(result_path(f"tables/{_table}_{_dataset}.md"), _table, name=f"{_table}_{_dataset}", kind="table (Markdown)"),
        params:
            table=_table,
            scratch=to_json(scratch_scores(_dataset)),
            sizes=to_json(TR[_dataset]["train_sizes"]),
            note=data_note(),
        log:
            result_path(f"logs/tables/{_table}.log"),
        resources:
            **job_resources(_table),
        conda:
            "../envs/zfrepro.yaml"
        shell:
            "zfrepro {params.table} --pretrained {input.pretrained:q} --scratch {params.scratch:q}"
            " --splits {input.splits:q} --sizes {params.sizes:q} --data-note {params.note:q}"
            " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table6:
    input:
        result_path(f"transfer/voc/softmax_{TR['voc']['layer']}.csv"),
    output:
        csv=report_file(result_path("tables/table6_voc2012.csv"), "table6", name="table6_voc2012", kind="table"),
        md=report_file(result_path("tables/table6_voc2012.md"), "table6", name="table6_voc2012", kind="table (Markdown)"),
    params:
        layer=TR["voc"]["layer"],
        note=data_note(),
    log:
        result_path("logs/tables/table6.log"),
    resources:
        **job_resources("table6"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table6 --input {input:q} --layer {params.layer} --data-note {params.note:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table7:
    input:
        [frozen_csv(dataset, classifier, layer) for dataset in CALTECH
         for (classifier, layer), sizes in frozen_jobs(dataset).items() if table7_size(dataset) in sizes],
    output:
        csv=report_file(result_path("tables/table7_layers.csv"), "table7", name="table7_layers", kind="table"),
        md=report_file(result_path("tables/table7_layers.md"), "table7", name="table7_layers", kind="table (Markdown)"),
    params:
        inputs=lambda wildcards, input: to_json(list(input)),
        sizes=to_json({dataset: table7_size(dataset) for dataset in CALTECH}),
        note=data_note(),
    log:
        result_path("logs/tables/table7.log"),
    resources:
        **job_resources("table7"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro table7 --inputs {params.inputs:q} --sizes {params.sizes:q} --data-note {params.note:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


figure("fig9_caltech256", {"pretrained": frozen_csv("caltech256", "softmax", "fc7"),
                           "scratch": scratch_scores("caltech256")},
       options={"data_note": data_note()}, target=TR["enabled"])
TARGETS.extend(transfer_targets())

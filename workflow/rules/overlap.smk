# Overlap (section 5): Caltech images that are also ImageNet training images, found by the normalised
# correlation of downsampled greyscale images as the paper did. Reported always (when enabled); with
# transfer.overlap.drop_from_pretraining the ImageNet preparation leaves them out (data.smk).

OVERLAP = config["transfer"]["overlap"]


rule overlap:
    input:
        caltech=lambda wildcards: dataset_input(wildcards.dataset),
        imagenet=imagenet_input,
    output:
        csv=result_path("analysis/overlap/{dataset}.csv"),
        summary=result_path("analysis/overlap/{dataset}.json"),
    params:
        root=lambda wildcards: dataset_root(wildcards.dataset),
        imagenet_root=lambda wildcards: imagenet_root(),
        size=OVERLAP["size"],
        threshold=OVERLAP["threshold"],
    log:
        result_path("logs/overlap/{dataset}.log"),
    benchmark:
        result_path("benchmarks/overlap/{dataset}.tsv")
    wildcard_constraints:
        dataset="|".join(CALTECH),
    threads: config["threads"]["prepare"]
    resources:
        **job_resources("overlap"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro overlap --dataset {wildcards.dataset} --root {params.root:q} --imagenet-root {params.imagenet_root:q}"
        " --size {params.size} --threshold {params.threshold} --threads {threads} --out {output.csv:q}"
        " > {log:q} 2>&1"


rule overlap_table:
    input:
        csv=expand(result_path("analysis/overlap/{dataset}.csv"), dataset=CALTECH),
        summary=expand(result_path("analysis/overlap/{dataset}.json"), dataset=CALTECH),
    output:
        csv=report_file(result_path("tables/overlap.csv"), "overlap", name="overlap", kind="table"),
        md=report_file(result_path("tables/overlap.md"), "overlap", name="overlap", kind="table (Markdown)"),
    params:
        threshold=OVERLAP["threshold"],
        drop=to_json(OVERLAP["drop_from_pretraining"]),
        inputs=lambda wildcards, input: to_json(list(input.csv)),
    log:
        result_path("logs/overlap/table.log"),
    resources:
        **job_resources("overlap_table"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro overlap-table --inputs {params.inputs:q} --threshold {params.threshold} --drop {params.drop}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"

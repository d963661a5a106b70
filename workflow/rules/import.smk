# Published weights instead of training: an architecture with `published: {name, file}` gets one rule,
# import_<arch>, that converts the file into the checkpoint a training would have written (same path), recording
# the file's SHA-1, its source and the input preprocessing it expects. Nothing here downloads: the file is the
# user's (`zfrepro fetch-weights NAME` fetches and verifies it when asked).


for _arch in imported_arch_names():

    rule:
        name:
            f"import_{_arch}"
        input:
            weights=os.path.expanduser(published_weights(_arch)["file"]),
            val=f"{PREPARED}/val.pt",  # its classes, in order, are the network's outputs (checked on import)
        output:
            final=model_path(_arch, "{seed}"),
        params:
            arch=_arch,
            name=published_weights(_arch)["name"],
            crop=config["data"]["crop_size"],
            image_size=config["data"]["image_size"],
        log:
            result_path(f"logs/import/{_arch}_seed{{seed}}.log"),
        wildcard_constraints:
            seed=r"\d+",
        resources:
            **job_resources(f"import_{_arch}"),
        conda:
            "../envs/zfrepro.yaml"
        shell:
            "zfrepro import-weights --published {params.name} --weights {input.weights:q} --arch {params.arch}"
            " --seed {wildcards.seed} --input-size {params.crop} --image-size {params.image_size}"
            " --classes-of {input.val:q} --out {output.final:q}"
            " > {log:q} 2>&1"

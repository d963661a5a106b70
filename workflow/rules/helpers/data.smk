# Helpers of data.smk: its config values, paths and parameters.

import zfrepro.data.registry


DATASETS = list(zfrepro.data.registry.DATASETS)
PREPARED = result_path("data/imagenet")


def synthetic_params_json(dataset):
    """The generator's parameters: synthetic.<dataset> plus the shared image size and generator (every dataset
    takes its classes from the generator, so changing it regenerates all four). Keys of synthetic.<dataset> left
    null are left out (null = the generator's behaviour without the key), so adding such a key to the schema
    changes no job's params and reruns nothing."""
    section = config["synthetic"]
    given = {key: value for key, value in section[dataset].items() if value is not None}
    return to_json({"image_size": section["image_size"], "generator": section["generator"], **given})


def data_params_json():
    """The data section without the other datasets' roots, so changing those does not re-prepare ImageNet."""
    other_roots = {"caltech101_root", "caltech256_root", "voc_root"}
    return to_json({key: value for key, value in config["data"].items() if key not in other_roots})


def imagenet_input(wildcards):
    """The generated ImageNet folder is a job's output; a real one is outside the workflow (a param)."""
    return [imagenet_root()] if config["data"]["source"] == "synthetic" else []


def synthetic_duplicates_source(dataset):
    """A generated Caltech set with imagenet_duplicates copies files of the generated ImageNet: its input."""
    if dataset in zfrepro.data.registry.CALTECH and config["synthetic"][dataset]["imagenet_duplicates"] > 0:
        return [imagenet_root()]
    return []


def pretraining_exclusions():
    """The overlap CSVs whose ImageNet images are left out of pretraining (transfer.overlap.drop_from_pretraining)."""
    overlap = config["transfer"]["overlap"]
    if config["transfer"]["enabled"] and overlap["enabled"] and overlap["drop_from_pretraining"]:
        return [result_path(f"analysis/overlap/{dataset}.csv") for dataset in zfrepro.data.registry.CALTECH]
    return []


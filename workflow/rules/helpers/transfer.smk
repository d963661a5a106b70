# Helpers of transfer.smk: its config values, paths and parameters.

import zfrepro.data.registry


TR = config["transfer"]
CALTECH = list(zfrepro.data.registry.CALTECH)
TRANSFER_DATASETS = list(zfrepro.data.registry.TRANSFER)


def dataset_input(dataset):
    """A generated dataset folder is a job's output; a real one is outside the workflow (a param)."""
    return [dataset_root(dataset)] if config["data"]["source"] == "synthetic" else []


def transfer_sizes(dataset):
    """Training images per class used for a Caltech set: the table sizes, plus Fig 9's for Caltech-256."""
    sizes = set(TR[dataset]["train_sizes"]) | (set(TR["fig9_sizes"]) if dataset == "caltech256" else set())
    return sorted(sizes)


def table7_size(dataset):
    """Table 7 uses 30 (Caltech-101) and 60 (Caltech-256) per class: the largest table size of each set."""
    return max(TR[dataset]["train_sizes"])


def feature_layers():
    """Every layer whose frozen features some table needs (one forward pass extracts them all)."""
    return sorted(set(TR["table7_layers"]) | {"fc7", TR["voc"]["layer"]})


def features_path(dataset, split, layer):
    arch, seed = TR["arch"], first_seed(TR["arch"])
    return result_path(f"features/{arch}/seed{seed}/{dataset}/{split}/{layer}.pt")


def frozen_csv(dataset, classifier, layer):
    return result_path(f"transfer/pretrained/{dataset}/{classifier}_{layer}.csv")


def frozen_jobs(dataset):
    """(classifier, layer, sizes) of the frozen-feature classifiers of a Caltech set (Tables 4, 5, 7, Fig 9)."""
    jobs = {("softmax", "fc7"): transfer_sizes(dataset)}
    for layer in TR["table7_layers"]:
        jobs.setdefault(("svm", layer), [table7_size(dataset)])
        if layer in ("conv5", "fc7"):  # the paper's softmax rows of Table 7: layers 5 and 7
            jobs.setdefault(("softmax", layer), [table7_size(dataset)])
    return jobs


def scratch_dir(dataset, n, split):
    return result_path(f"transfer/scratch/{dataset}/n{n}_split{split}")


def scratch_scores(dataset):
    return [f"{scratch_dir(dataset, n, s)}/score.json" for n in transfer_sizes(dataset)
            for s in range(TR["splits"])]


def scratch_train_params():
    """The transfer network's training section with transfer.scratch.training over it; no epoch snapshots."""
    return {**train_params(TR["arch"]), **TR["scratch"]["training"], "checkpoint_epochs": []}


def transfer_targets():
    if not TR["enabled"]:
        return []
    tables = ["table4_caltech101", "table5_caltech256", "table6_voc2012", "table7_layers"]  # Fig 9 below
    tables += ["overlap"] if TR["overlap"]["enabled"] else []
    return [path for name in tables for path in table_files(name)]

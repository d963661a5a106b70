# Helpers of train.smk: its config values, paths and parameters.

import math
import re


def arch_names():
    return list(config["architectures"])


def published_weights(arch):
    """architectures.<arch>.published ({name, file}) for an architecture imported instead of trained, else None."""
    return config["architectures"][arch].get("published")


def trained_arch_names():
    """The architectures this study trains (the others import published weights: import.smk)."""
    return [arch for arch in arch_names() if not published_weights(arch)]


def imported_arch_names():
    return [arch for arch in arch_names() if published_weights(arch)]


def arch_regex():
    """Wildcard constraint: {arch} matches only configured architecture names."""
    return "|".join(re.escape(name) for name in arch_names())


def seeds():
    return list(config["seeds"])


def arch_seeds(arch):
    """The seeds `arch` is trained with: architectures.<arch>.seeds, else the top-level `seeds`."""
    return list(config["architectures"][arch].get("seeds", config["seeds"]))


def first_seed(arch):
    """The seed of `arch` that stands for it where one model is used (figures, transfer)."""
    return arch_seeds(arch)[0]


def arch_params(arch):
    """architectures.<arch> without its training overrides (those go into --train-params) and seeds."""
    return {key: value for key, value in config["architectures"][arch].items() if key not in ("training", "seeds")}


def train_params(arch):
    """The training section with architectures.<arch>.training merged over it, key by key."""
    return {**config["training"], **config["architectures"][arch].get("training", {})}


def checkpoint_epochs(arch):
    """The epochs whose epoch{E}.pt the trainer keeps for this architecture (those within its epochs); none for
    imported weights, which come without their training's history."""
    if published_weights(arch):
        return []
    tp = train_params(arch)
    return sorted(e for e in tp["checkpoint_epochs"] if e <= tp["epochs"])


IMAGENET_TRAIN_IMAGES = 1281167  # ILSVRC-2012's training set


def training_images_per_epoch():
    """resources.train.images_per_epoch, else what the data give: the generated classes x train_per_class, or
    ImageNet's 1.28 million."""
    given = config["resources"]["train"]["images_per_epoch"]
    if given:
        return given
    if config["data"]["source"] == "synthetic":
        imagenet = config["synthetic"]["imagenet"]
        return imagenet["classes"] * imagenet["train_per_class"]
    return IMAGENET_TRAIN_IMAGES


def training_resources(arch):
    """A training job's time limit from the work it has to do (resources.train): startup_minutes + margin x its
    epochs x images per epoch / (expected images per second x GPUs); its memory and GPUs. So a new architecture
    or more epochs need no profile edit. A resources.jobs.train_<arch> entry overrides the computed values."""
    res = config["resources"]["train"]
    gpus = config["gpus_per_training"]
    per_second = res["images_per_second"]["cuda" if config["device"] == "cuda" else "cpu"] * gpus
    seconds = train_params(arch)["epochs"] * training_images_per_epoch() / per_second
    computed = {"runtime": res["startup_minutes"] + math.ceil(res["margin"] * seconds / 60), "mem_mb": res["mem_mb"]}
    # Several GPUs: torchrun --standalone starts every process on one node, so the GPUs must all be on it
    # (sbatch --nodes=1; without it SLURM may spread --gpus=N over nodes).
    one_node = {"nodes": 1} if config["device"] == "cuda" and gpus > 1 else {}
    return {**computed, **config["resources"]["jobs"].get(f"train_{arch}", {}), **gpu_request(gpus), **one_node}


def train_launcher():
    """How a training job starts: one process, or one per GPU under torchrun (data-parallel, DDP)."""
    n = config["gpus_per_training"]
    if n == 1:
        return "zfrepro"
    return f"torchrun --standalone --nproc-per-node {n} -m zfrepro.cli"


def model_ref(ref):
    """[(arch, seed)] of a table entry: `arch` (every seed it is trained with) or `arch/seedN` (that one)."""
    arch, _, seed = ref.partition("/")  # the schema has checked the form
    return [(arch, int(seed.removeprefix("seed")))] if seed else [(arch, s) for s in arch_seeds(arch)]


def table2_rows():
    """(row label, kind, [(arch, seed), ...]) for every Table 2 row. kind "seeds": one convnet (a bare
    architecture name), its error the mean over the seeds it is trained with; "ensemble": a list of convnets
    whose softmax outputs are averaged."""
    rows = []
    for label, refs in config["tables"]["table2"].items():
        if isinstance(refs, str) and "/" not in refs:
            rows.append((label, "seeds", model_ref(refs)))
        else:
            refs = [refs] if isinstance(refs, str) else refs
            rows.append((label, "ensemble", [m for ref in refs for m in model_ref(ref)]))
    return rows


def table3_rows():
    """(row label, architecture) for every Table 3 row; each is evaluated at every seed it is trained with."""
    return list(config["tables"]["table3"].items())


def trained_models():
    """Every (arch, seed) the study trains: each architecture at its seeds, plus Table 2's ensemble members."""
    models = {(arch, seed) for arch in arch_names() for seed in arch_seeds(arch)}
    models |= {member for _, _, members in table2_rows() for member in members}
    return sorted(models)


def model_path(arch, seed=None):
    return zfrepro.workflow.model_path(config, arch, first_seed(arch) if seed is None else seed)

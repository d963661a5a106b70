# Helpers of train.smk: its config values, paths and parameters.


def arch_names():
    return list(config["architectures"])


def arch_regex():
    """Wildcard constraint: {arch} matches only configured architecture names."""
    return "|".join(re.escape(name) for name in arch_names())


def seeds():
    return list(config["seeds"])


def arch_params(arch):
    """architectures.<arch> without its training overrides (those go into --train-params)."""
    return {key: value for key, value in config["architectures"][arch].items() if key != "training"}


def train_params(arch):
    """The training section with architectures.<arch>.training merged over it, key by key."""
    return {**config["training"], **config["architectures"][arch].get("training", {})}


def checkpoint_epochs(arch):
    """The epochs whose epoch{E}.pt the trainer keeps for this architecture (those within its epochs)."""
    tp = train_params(arch)
    return sorted(e for e in tp["checkpoint_epochs"] if e <= tp["epochs"])


def gpu_resources(gpus=1):
    """`gpus` GPUs per job when the config asks for CUDA, so Snakemake (and SLURM) schedule them; none else."""
    return {"gpu": gpus} if config["device"] == "cuda" else {}


def train_launcher():
    """How a training job starts: one process, or one per GPU under torchrun (data-parallel, DDP)."""
    n = config["gpus_per_training"]
    if n == 1:
        return "zfrepro"
    return f"torchrun --standalone --nproc-per-node {n} -m zfrepro.cli"


def model_ref(ref):
    """(arch, seed) of a table entry: `arch` (the first seed of `seeds`) or `arch/seedN`."""
    arch, _, seed = ref.partition("/")  # the schema has checked the form
    return arch, int(seed.removeprefix("seed")) if seed else seeds()[0]


def table2_rows():
    """(row label, [(arch, seed), ...]) for every Table 2 row; several convnets make an ensemble."""
    return [(label, [model_ref(ref) for ref in ([refs] if isinstance(refs, str) else refs)])
            for label, refs in config["tables"]["table2"].items()]


def table3_rows():
    """(row label, architecture) for every Table 3 row; each is evaluated at the first seed."""
    return list(config["tables"]["table3"].items())


def trained_models():
    """Every (arch, seed) the study trains: all architectures at all `seeds`, plus ensemble members."""
    models = {(arch, seed) for arch in arch_names() for seed in seeds()}
    models |= {member for _, members in table2_rows() for member in members}
    return sorted(models)


def model_path(arch, seed=None):
    return f"results/models/{arch}/seed{seeds()[0] if seed is None else seed}/final.pt"

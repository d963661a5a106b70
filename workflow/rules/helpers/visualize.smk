# Helpers of visualize.smk: its config values, paths and parameters.


VIS = config["visualize"]


def top9_path(arch, seed=None):
    return f"results/analysis/top9/{arch}/seed{seeds()[0] if seed is None else seed}.pt"


def evolution_checkpoint_pairs():
    """(epoch, checkpoint) of the Fig 4 network: its kept epochs, and the last epoch's final model."""
    arch = VIS["arch"]
    pairs = [(epoch, f"results/models/{arch}/seed{seeds()[0]}/epoch{epoch}.pt") for epoch in checkpoint_epochs(arch)]
    last = train_params(arch)["epochs"]
    if last not in dict(pairs):
        pairs.append((last, model_path(arch)))
    return pairs


def evolution_checkpoints():
    return [path for _, path in evolution_checkpoint_pairs()]


def fig6_models():
    """Fig 6 panel -> architecture whose layer-1 filters it shows: (a) no renormalisation, (b), (c)."""
    return {"a": VIS["no_renorm_arch"], "b": VIS["krizhevsky_arch"], "c": VIS["arch"]}


def fig6_projected():
    """Fig 6 panel -> architecture whose layer-2 projections it shows: (d) Krizhevsky, (e) ZF."""
    return {"d": VIS["krizhevsky_arch"], "e": VIS["arch"]}

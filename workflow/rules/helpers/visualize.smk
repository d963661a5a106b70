# Helpers of visualize.smk: its config values, paths and parameters.


VIS = config["visualize"]


def top9_path(arch, seed=None):
    return result_path(f"analysis/top9/{arch}/seed{first_seed(arch) if seed is None else seed}.pt")


def evolution_checkpoint_pairs():
    """(epoch, checkpoint) of the Fig 4 network: its kept epochs, and the last epoch's final model."""
    arch = VIS["arch"]
    pairs = [(epoch, checkpoint_path(arch, first_seed(arch), epoch)) for epoch in checkpoint_epochs(arch)]
    last = train_params(arch)["epochs"]
    if last not in dict(pairs):
        pairs.append((last, model_path(arch)))
    return pairs


def evolution_checkpoints():
    return [path for _, path in evolution_checkpoint_pairs()]


def convergence_checkpoints():
    """{seed: {epoch: checkpoint}} of every trained seed of the Fig 4 network, its kept epochs then the final
    model (claim 9 compares each kept epoch with the last); empty when it keeps no epoch before the last."""
    arch = VIS["arch"]
    kept = [epoch for epoch in checkpoint_epochs(arch) if epoch < train_params(arch)["epochs"]]
    if not kept:
        return {}
    last = train_params(arch)["epochs"]
    return {seed: {**{epoch: checkpoint_path(arch, seed, epoch) for epoch in kept},
                   last: model_path(arch, seed)}
            for a, seed in trained_models() if a == arch}


def fig6_models():
    """Fig 6 panel -> architecture whose layer-1 filters it shows: (a) no renormalisation (unless
    visualize.no_renorm_arch is null: published networks have no such twin), (b), (c)."""
    panels = {"a": VIS["no_renorm_arch"], "b": VIS["krizhevsky_arch"], "c": VIS["arch"]}
    return {panel: arch for panel, arch in panels.items() if arch is not None}


def fig6_checkpoints():
    """Fig 6 filters panel -> {epoch: epochE.pt} of its network's kept epochs (claim 1 follows the filters over
    training; the final model is the panel's own)."""
    return {panel: {epoch: checkpoint_path(arch, first_seed(arch), epoch)
                    for epoch in checkpoint_epochs(arch)}
            for panel, arch in fig6_models().items()}


def fig6_projected():
    """Fig 6 panel -> architecture whose layer-2 projections it shows: (d) Krizhevsky, (e) ZF."""
    return {"d": VIS["krizhevsky_arch"], "e": VIS["arch"]}

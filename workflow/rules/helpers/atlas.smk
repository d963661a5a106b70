# Helpers of atlas.smk: which networks get an atlas, and their checkpoints.


ATLAS = config["atlas"]


def atlas_networks():
    """The architectures with an atlas: atlas.networks, else the Fig 2 network and the Krizhevsky of Fig 6."""
    if not ATLAS["enabled"]:
        return []
    return ATLAS["networks"] or list(dict.fromkeys([VIS["arch"], VIS["krizhevsky_arch"]]))


def atlas_path(arch):
    return result_path(f"atlas/{arch}_seed{first_seed(arch)}")


def atlas_compare_path():
    return result_path("atlas/compare_" + "_".join(atlas_networks()))


def atlas_checkpoints(arch, seed):
    """{epoch: epochE.pt} of the kept epochs before the last (the atlas adds the final model's own epoch)."""
    last = train_params(arch)["epochs"]
    return {e: checkpoint_path(arch, seed, e) for e in checkpoint_epochs(arch) if e < last}


def atlas_pages():
    """The atlas folders the study builds (one per network), and the comparison page when there are two or more."""
    pages = [atlas_path(arch) for arch in atlas_networks()]
    return pages + ([atlas_compare_path()] if len(pages) > 1 else [])

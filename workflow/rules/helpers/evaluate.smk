# Helpers of evaluate.smk: its config values, paths and parameters.


def evaluation_params_json():
    """The evaluation section minus table_crops (a table choice: changing it must not re-evaluate)."""
    return to_json({k: v for k, v in config["evaluation"].items() if k != "table_crops"})


def metrics_path(arch, seed):
    return result_path(f"metrics/{arch}/seed{seed}.json")


def predictions_path(arch, seed):
    return result_path(f"predictions/{arch}/seed{seed}.pt")

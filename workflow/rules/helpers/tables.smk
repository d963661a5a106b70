# Helpers of tables.smk: its config values, paths and parameters.


def table3_other_seeds():
    """Metrics of Table 3's architectures at their other trained seeds (the footnote's noise scale)."""
    archs = {arch for _, arch in table3_rows()}
    return [metrics_path(arch, seed) for arch, seed in trained_models() if arch in archs and seed != seeds()[0]]

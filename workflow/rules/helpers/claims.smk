# Helpers of claims.smk: the result files each claim reads, by name (zfrepro.report.claims documents them).


def claims_inputs():
    """{name: path or mapping of paths} for `zfrepro claims --inputs`; None (or absent) where a study is not run,
    so its claims say "not run" with the key that runs them."""
    metrics = {}
    for arch, seed in trained_models():
        metrics.setdefault(arch, {})[seed] = metrics_path(arch, seed)
    transfer = table7 = None
    if TR["enabled"]:
        transfer = {dataset: {"pretrained": frozen_csv(dataset, "softmax", "fc7"), "scratch": scratch_scores(dataset),
                              "sizes": TR[dataset]["train_sizes"],
                              **({"fig9_sizes": TR["fig9_sizes"]} if dataset == "caltech256" else {})}
                    for dataset in CALTECH}
        table7 = {dataset: {"size": table7_size(dataset),
                            "svm": {layer: frozen_csv(dataset, "svm", layer) for layer in TR["table7_layers"]}}
                  for dataset in CALTECH}
    return {
        "crops": config["evaluation"]["table_crops"],
        "metrics": metrics,
        "table2": {label: members[0][0] for label, kind, members in table2_rows() if kind == "seeds"},
        "table3": dict(table3_rows()),
        "fig6": result_path("analysis/fig6/filters.pt"),
        "convergence": result_path("analysis/fig4/convergence.pt") if convergence_checkpoints() else None,
        "invariance": result_path("analysis/fig5/invariance.pt"),
        "occlusion": result_path("analysis/fig7/occlusion.pt"),
        "correspondence": result_path("analysis/table1/correspondence.pt") if CORRESPONDENCE_ENABLED else None,
        "transfer": transfer,
        "table7": table7,
        # architectures imported from published weights (arch -> registry name): they have no training, so the
        # claims about training (filters without renormalisation, removals, convergence) cannot run on them
        "published": {arch: published_weights(arch)["name"] for arch in imported_arch_names()},
    }


def claims_input_files():
    """Every file of claims_inputs(), as the rule's input list."""
    given = claims_inputs()
    files = [path for seeds in given["metrics"].values() for path in seeds.values()]
    files += [given[name] for name in ("fig6", "convergence", "invariance", "occlusion", "correspondence")
              if given[name]]
    for spec in (given["transfer"] or {}).values():
        files += [spec["pretrained"], *spec["scratch"]]
    for spec in (given["table7"] or {}).values():
        files += list(spec["svm"].values())
    return files

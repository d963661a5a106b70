# Figures: one plot rule per figure the study files registered with figure(...) (plot_fig1_deconvnet, ...),
# each drawing its PNG and PDF from the cached analysis data with `zfrepro plot`, so restyling a figure never
# recomputes it. Each figure has its own report caption, workflow/report/<figure>.rst.


for _name, _plot in PLOTS.items():

    rule:
        name:
            f"plot_{_name}"
        input:
            **_plot["inputs"],
        output:
            png=report_file(result_path(f"figures/{_name}.png"), _name, name=_name, kind="figure"),
            pdf=result_path(f"figures/{_name}.pdf"),
            **{key: report_file(path, _name, name=_name, kind="table")
               for key, path in _plot["also"].items()},
        params:
            figure=_name,
            inputs=to_json(_plot["inputs"], keep_order=True),
            options=to_json(_plot["options"]),
        log:
            result_path(f"logs/plot/{_name}.log"),
        resources:
            **job_resources(f"plot_{_name}"),
        conda:
            "../envs/zfrepro.yaml"
        shell:
            "zfrepro plot {params.figure} --inputs {params.inputs:q} --options {params.options:q}"
            " --out {output.png:q} > {log:q} 2>&1"

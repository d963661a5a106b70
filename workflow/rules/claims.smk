# The claims scorecard: each of the paper's 11 claims measured on this run's results, with its noise and a
# verdict against the criterion declared in the config (`claims`). It reads the results the other studies
# wrote (metrics, analysis data, transfer scores) and is the first item of the report.


include: "helpers/claims.smk"


localrules:
    claims,


rule claims:
    input:
        claims_input_files(),
    output:
        csv=report_file(result_path("tables/claims.csv"), "claims", name="claims", kind="table"),
        md=report_file(result_path("tables/claims.md"), "claims", name="claims", kind="table (Markdown)"),
    params:
        inputs=to_json(claims_inputs()),
        criteria=to_json(config["claims"]),
    log:
        result_path("logs/claims/claims.log"),
    resources:
        **job_resources("claims"),
    conda:
        "../envs/zfrepro.yaml"
    shell:
        "zfrepro claims --inputs {params.inputs:q} --criteria {params.criteria:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


TARGETS.extend(table_files("claims"))

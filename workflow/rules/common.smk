# Helpers shared by the rules: config sections as JSON for the command line, the targets, and checks
# that turn a config mistake into one message naming the key before any job runs.

import json
import os
import re
import sys

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

DATASETS = ["imagenet", "caltech101", "caltech256", "voc"]
PREPARED = "results/data/imagenet"

# The rules call `zfrepro`: take the one installed beside the Python that runs Snakemake (.venv/bin for
# `.venv/bin/snakemake`), so the workflow runs without activating the environment. A conda environment
# of --software-deployment-method conda is activated inside each job and still comes first.
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ.update(PATH=os.pathsep.join([_BIN, os.environ.get("PATH", "")]))


# ---------------------------------------------------------------------------------------------------------
# Config loading and checks


def _yaml_values(value):
    """Re-read the string leaves of a --config value as YAML scalars ('20' -> 20, 'null' -> None)."""
    if isinstance(value, dict):
        return {key: _yaml_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_values(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, (bool, int, float, str)) else value
    return value


def apply_typed_command_line_config(config):
    """Merge the --config values into `config` again, typed.

    Snakemake reads nested --config values (`training='{epochs: 20}'`) with YAML's BaseLoader, which keeps
    every leaf a string; the schema would then reject `epochs: '20'`. Re-reading them makes the README's
    partial-rerun examples work. Values from --configfile are already typed and are not touched.
    """
    given = getattr(workflow.config_settings, "config", None) or {}
    update_config(config, _yaml_values(dict(given)))


def validate_config(config, schema):
    """Check the config against the JSON schema and fill in its defaults; on error, name the key.

    Snakemake's own message prints the whole failing (sub)schema, hundreds of lines for a top-level typo;
    this keeps the key, the problem and what is allowed.
    """
    try:
        validate(config, schema)
    except WorkflowError as err:
        problem = err.__context__
        if not hasattr(problem, "absolute_path"):
            raise
        raise WorkflowError(_schema_message(problem)) from None


def _schema_message(problem):
    """One line: config <dotted key>: <what is wrong> [allowed keys or the option's description]."""
    key = ".".join(str(part) for part in problem.absolute_path) or "(top level)"
    message = problem.message
    if problem.validator == "additionalProperties" and isinstance(problem.instance, dict):
        allowed = sorted(problem.schema.get("properties", {}))
        unknown = [k for k in problem.instance if k not in allowed]
        if allowed and unknown:
            key = f"{key}.{unknown[0]}" if problem.absolute_path else str(unknown[0])
            message = f"unknown key (misspelt?); allowed here: {', '.join(allowed)}"
    elif problem.schema.get("description"):
        message += f" ({problem.schema['description'].strip()})"
    if isinstance(problem.instance, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", problem.instance):
        message += f"; YAML reads {problem.instance} as text: write it with a dot, e.g. 1.0e-5"
    return f"config {key}: {message}. See config/README.md."


def check_config(config):
    """Checks the JSON schema cannot express; each error names the key and says what to do."""
    data = config["data"]
    if data["crop_size"] > data["image_size"]:
        raise WorkflowError(
            f"config data.crop_size ({data['crop_size']}) is larger than data.image_size "
            f"({data['image_size']}): the crops are taken inside the resized image; lower data.crop_size."
        )
    for name in ("caltech101", "caltech256"):
        section = config["synthetic"][name]
        if section["min_per_class"] > section["max_per_class"]:
            raise WorkflowError(
                f"config synthetic.{name}.min_per_class ({section['min_per_class']}) is larger than "
                f"synthetic.{name}.max_per_class ({section['max_per_class']}); swap or fix them."
            )
    for table in ("table2", "table3"):
        for label, refs in config["tables"][table].items():
            for ref in [refs] if isinstance(refs, str) else refs:
                arch = ref.split("/")[0]
                if arch not in config["architectures"]:
                    raise WorkflowError(
                        f"config tables.{table}[{label!r}] names architecture {arch!r}, which is not defined "
                        f"under architectures (defined: {', '.join(config['architectures'])}); add it or fix "
                        "the name."
                    )
    for key in ("arch", "krizhevsky_arch", "no_renorm_arch"):
        if config["visualize"][key] not in config["architectures"]:
            raise WorkflowError(
                f"config visualize.{key} names architecture {config['visualize'][key]!r}, which is not defined "
                f"under architectures (defined: {', '.join(config['architectures'])}); add it or fix the name."
            )
    if config["gpus_per_training"] > 1 and config["device"] != "cuda":
        raise WorkflowError(
            f"config gpus_per_training is {config['gpus_per_training']} but device is {config['device']!r}: "
            "several GPUs per training need device: cuda (or set gpus_per_training: 1)."
        )
    transfer = config["transfer"]
    if transfer["enabled"] and transfer["arch"] not in config["architectures"]:
        raise WorkflowError(
            f"config transfer.arch names architecture {transfer['arch']!r}, which is not defined under "
            f"architectures (defined: {', '.join(config['architectures'])}); add it or fix the name."
        )
    if data["source"] == "real":
        imagenet_root()  # fail while building the DAG, not hours later inside a job
        if transfer["enabled"]:
            for name in ("caltech101", "caltech256", "voc"):
                dataset_root(name)
    check_device(config)


def check_results_intact(root="results"):
    """Stop before any job when a result's size differs from the one its step recorded (truncated, overwritten):
    Snakemake would see a new file and rerun every step after it on the damaged one, deleting their good outputs
    first. Only sizes are compared here (no reading); the loaders check the full SHA-256 (zfrepro.io)."""
    if not workflow.is_main_process:
        return
    from zfrepro.io import damaged_results

    problems = list(damaged_results(root))
    if problems:
        more = f" ({len(problems) - 1} more damaged file(s) under {root}/)" if len(problems) > 1 else ""
        raise WorkflowError(problems[0] + more)


def _command_line():
    """Snakemake's parsed command line (profile settings included); None when started through the Python API.

    While the Snakefile is parsed workflow.executor_plugin is still unset (and a dry run swaps in the dry-run
    executor later), so the --executor asked for is only known to the CLI's args_to_api.
    """
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "args_to_api" and frame.f_globals.get("__name__") == "snakemake.cli":
            return frame.f_locals.get("args")
        frame = frame.f_back
    return None


def jobs_run_here(args):
    """Whether the jobs of this run (or dry run) would run on this machine: not under a cluster executor, whose
    nodes have GPUs the submit host may lack, nor in a job's own Snakemake, nor for --unlock, --lint, --report."""
    if not workflow.is_main_process or args is None or args.unlock or args.lint or args.report:
        return False
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    return ExecutorPluginRegistry().get_plugin(args.executor or "local").common_settings.local_exec


def check_device(config):
    """device: cuda without a visible GPU would fail only inside the first job: a run stops while planning, a dry
    run prints a note and goes on (planning config/paper.yaml on a laptop is fine).

    torch is imported only for device: cuda (it adds about 1.5 s to every Snakemake start).
    """
    args = _command_line()
    if config["device"] != "cuda" or not jobs_run_here(args):
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        problem = ("config device is 'cuda' but PyTorch sees no CUDA GPU on this machine, where the jobs run: "
                   "set device: auto (a GPU when there is one) or device: cpu, e.g. --config device=auto.")
    elif visible < config["gpus_per_training"]:
        problem = (f"config gpus_per_training is {config['gpus_per_training']} but PyTorch sees {visible} CUDA "
                   f"GPU(s) on this machine, where the jobs run: set gpus_per_training: {visible} or less.")
    else:
        return
    if args.dryrun or args.touch:
        print(f"note (a run would stop here): {problem}", file=sys.stderr)
    else:
        raise WorkflowError(problem)


# ---------------------------------------------------------------------------------------------------------
# Parameters passed to the command line (JSON of config sections)


def _string_keys(value):
    """JSON keys are strings; YAML lets `conv_maps: {3: 512}` have integer ones."""
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


def to_json(value):
    """Compact, key-sorted JSON, so equal settings give equal params (Snakemake reruns on params change)."""
    return json.dumps(_string_keys(value), sort_keys=True, separators=(",", ":"))


def synthetic_params_json(dataset):
    """The generator's parameters: synthetic.<dataset> plus the shared image size."""
    section = config["synthetic"]
    return to_json({"image_size": section["image_size"], **section[dataset]})


def data_params_json():
    """The data section without the other datasets' roots, so changing those does not re-prepare ImageNet."""
    other_roots = {"caltech101_root", "caltech256_root", "voc_root"}
    return to_json({key: value for key, value in config["data"].items() if key not in other_roots})


def arch_params(arch):
    """architectures.<arch> without its training overrides (those go into --train-params)."""
    return {key: value for key, value in config["architectures"][arch].items() if key != "training"}


def train_params(arch):
    """The training section with architectures.<arch>.training merged over it, key by key."""
    return {**config["training"], **config["architectures"][arch].get("training", {})}


def evaluation_params_json():
    """The evaluation section minus table_crops (a table choice: changing it must not re-evaluate)."""
    return to_json({k: v for k, v in config["evaluation"].items() if k != "table_crops"})


def imagenet_root():
    """Where the ImageNet-layout folder is: generated by the workflow, or the user's data.imagenet_root."""
    if config["data"]["source"] == "synthetic":
        return "results/data/synthetic/imagenet"
    root = config["data"]["imagenet_root"]
    if not root:
        raise WorkflowError(
            "config data.imagenet_root is not set but data.source is 'real': set it to the folder holding "
            "ImageNet 2012 train/ and val/ (or the official archives), e.g. "
            "--config data='{imagenet_root: /path/to/imagenet}', or use data.source: synthetic."
        )
    return os.path.expanduser(root)


def imagenet_input(wildcards):
    """The generated ImageNet folder is a job's output; a real one is outside the workflow (a param)."""
    return [imagenet_root()] if config["data"]["source"] == "synthetic" else []


def synthetic_duplicates_source(dataset):
    """A generated Caltech set with imagenet_duplicates copies files of the generated ImageNet: its input."""
    if dataset in ("caltech101", "caltech256") and config["synthetic"][dataset]["imagenet_duplicates"] > 0:
        return [imagenet_root()]
    return []


def pretraining_exclusions():
    """The overlap CSVs whose ImageNet images are left out of pretraining (transfer.overlap.drop_from_pretraining)."""
    overlap = config["transfer"]["overlap"]
    if config["transfer"]["enabled"] and overlap["enabled"] and overlap["drop_from_pretraining"]:
        return [f"results/analysis/overlap/{dataset}.csv" for dataset in ("caltech101", "caltech256")]
    return []


# ---------------------------------------------------------------------------------------------------------
# What to train and what to build


def arch_names():
    return list(config["architectures"])


def arch_regex():
    """Wildcard constraint: {arch} matches only configured architecture names."""
    return "|".join(re.escape(name) for name in arch_names())


def seeds():
    return list(config["seeds"])


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


def metrics_path(arch, seed):
    return f"results/metrics/{arch}/seed{seed}.json"


def predictions_path(arch, seed):
    return f"results/predictions/{arch}/seed{seed}.pt"


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


def table3_other_seeds():
    """Metrics of Table 3's architectures at their other trained seeds (the footnote's noise scale)."""
    archs = {arch for _, arch in table3_rows()}
    return [metrics_path(arch, seed) for arch, seed in trained_models() if arch in archs and seed != seeds()[0]]


def trained_models():
    """Every (arch, seed) the study trains: all architectures at all `seeds`, plus ensemble members."""
    models = {(arch, seed) for arch in arch_names() for seed in seeds()}
    models |= {member for _, members in table2_rows() for member in members}
    return sorted(models)


# ---------------------------------------------------------------------------------------------------------
# The deconvnet figures

VIS = config["visualize"]
FIGURES = ["fig1_deconvnet", "fig2_top9", "fig3_architecture", "fig4_evolution", "fig6_filters", "fig7_occlusion"]


def model_path(arch, seed=None):
    return f"results/models/{arch}/seed{seeds()[0] if seed is None else seed}/final.pt"


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


# ---------------------------------------------------------------------------------------------------------
# The correspondence study (Table 1, Fig 8)

CORR = config["correspondence"]


def correspondence_parts_csv():
    """The parts CSV: correspondence.parts_csv, or the generated data's parts.csv; the paper config needs one."""
    if CORR["parts_csv"]:
        return os.path.expanduser(CORR["parts_csv"])
    if config["data"]["source"] == "synthetic":
        return os.path.join(imagenet_root(), "parts.csv")
    raise WorkflowError(
        "config correspondence.parts_csv is not set but data.source is 'real': make a CSV of the eye and nose "
        "boxes of a few validation images (README.md, 'The parts CSV'; template: "
        "config/correspondence_parts.template.csv) and set correspondence.parts_csv to it."
    )


def correspondence_inputs(wildcards):
    """The user's parts CSV, or the generated ImageNet folder (a job's output) that holds parts.csv."""
    if CORR["parts_csv"]:
        return [correspondence_parts_csv()]
    correspondence_parts_csv()  # real data without a CSV: stop here with the message
    return imagenet_input(wildcards)


def correspondence_targets():
    """Table 1 and Fig 8 for `rule all`; none (with a note) for real data without a parts CSV, so the rest
    of the paper's study still runs. Asking for them by name then stops with correspondence_parts_csv's message."""
    if config["data"]["source"] == "real" and not CORR["parts_csv"]:
        print("note: Table 1 and Fig 8 are left out: set correspondence.parts_csv (README.md, 'The parts CSV')",
              file=sys.stderr)
        return []
    return [f"results/tables/table1_correspondence.{ext}" for ext in ("csv", "md")] + [
        f"results/figures/fig8_correspondence.{ext}" for ext in ("png", "pdf")]


def final_targets():
    """Everything `snakemake` with no target builds: tables, figures and every architecture's metrics."""
    names = ["table2_imagenet", "fig6_filter_stats"] + (["table3_architectures"] if table3_rows() else [])
    tables = [f"results/tables/{name}.{ext}" for name in names for ext in ("csv", "md")]
    tables += ["results/tables/fig3_architecture.csv"]
    figures = [f"results/figures/{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")]
    metrics = [metrics_path(arch, seed) for arch, seed in trained_models()]
    invariance = [f"results/{kind}/fig5_invariance.{ext}" for kind, ext in
                  (("figures", "png"), ("figures", "pdf"), ("tables", "csv"), ("tables", "md"))]
    return tables + figures + invariance + metrics + correspondence_targets() + transfer_targets()


# ---------------------------------------------------------------------------------------------------------
# Transfer to Caltech-101, Caltech-256 and PASCAL VOC 2012 (Tables 4-7, Fig 9)

TR = config["transfer"]
CALTECH = ["caltech101", "caltech256"]
TRANSFER_DATASETS = CALTECH + ["voc"]


def dataset_root(dataset):
    """The folder of a transfer dataset: generated by the workflow, or the user's data.<dataset>_root."""
    if config["data"]["source"] == "synthetic":
        return f"results/data/synthetic/{dataset}"
    root = config["data"][f"{dataset}_root"]
    if not root:
        raise WorkflowError(
            f"config data.{dataset}_root is not set but data.source is 'real' and transfer.enabled is true: "
            f"set it to the folder holding the dataset (see config/README.md), or set transfer.enabled: false."
        )
    return os.path.expanduser(root)


def dataset_input(dataset):
    """A generated dataset folder is a job's output; a real one is outside the workflow (a param)."""
    return [dataset_root(dataset)] if config["data"]["source"] == "synthetic" else []


def transfer_model():
    return model_path(TR["arch"])


def transfer_sizes(dataset):
    """Training images per class used for a Caltech set: the table sizes, plus Fig 9's for Caltech-256."""
    sizes = set(TR[dataset]["train_sizes"]) | (set(TR["fig9_sizes"]) if dataset == "caltech256" else set())
    return sorted(sizes)


def table7_size(dataset):
    """Table 7 uses 30 (Caltech-101) and 60 (Caltech-256) per class: the largest table size of each set."""
    return max(TR[dataset]["train_sizes"])


def feature_layers():
    """Every layer whose frozen features some table needs (one forward pass extracts them all)."""
    return sorted(set(TR["table7_layers"]) | {"fc7", TR["voc"]["layer"]})


def features_path(dataset, split, layer):
    arch, seed = TR["arch"], seeds()[0]
    return f"results/features/{arch}/seed{seed}/{dataset}/{split}/{layer}.pt"


def frozen_csv(dataset, classifier, layer):
    return f"results/transfer/pretrained/{dataset}/{classifier}_{layer}.csv"


def frozen_jobs(dataset):
    """(classifier, layer, sizes) of the frozen-feature classifiers of a Caltech set (Tables 4, 5, 7, Fig 9)."""
    jobs = {("softmax", "fc7"): transfer_sizes(dataset)}
    for layer in TR["table7_layers"]:
        jobs.setdefault(("svm", layer), [table7_size(dataset)])
        if layer in ("conv5", "fc7"):  # the paper's softmax rows of Table 7: layers 5 and 7
            jobs.setdefault(("softmax", layer), [table7_size(dataset)])
    return jobs


def scratch_dir(dataset, n, split):
    return f"results/transfer/scratch/{dataset}/n{n}_split{split}"


def scratch_scores(dataset):
    return [f"{scratch_dir(dataset, n, s)}/score.json" for n in transfer_sizes(dataset)
            for s in range(TR["splits"])]


def scratch_train_params():
    """The transfer network's training section with transfer.scratch.training over it; no epoch snapshots."""
    return {**train_params(TR["arch"]), **TR["scratch"]["training"], "checkpoint_epochs": []}


def data_note():
    """What the transfer tables' footnotes say about the data."""
    if config["data"]["source"] == "synthetic":
        return "generated data in the real datasets' layouts (the default config), not the real datasets"
    return "the real datasets (data.*_root)"


def transfer_targets():
    if not TR["enabled"]:
        return []
    tables = ["table4_caltech101", "table5_caltech256", "table6_voc2012", "table7_layers"]  # Fig 9 below
    tables += ["overlap"] if TR["overlap"]["enabled"] else []
    return [f"results/tables/{name}.{ext}" for name in tables for ext in ("csv", "md")] + [
        f"results/figures/fig9_caltech256.{ext}" for ext in ("png", "pdf")]

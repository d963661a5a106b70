"""The `zfrepro` command line: what every Snakemake rule calls. One subcommand per step."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from zfrepro.errors import ConfigError, ZFError
from zfrepro.io import load_result
from zfrepro.options import parse_json

# (module, subcommand, stem, help): the module defines configure_<stem>_parser and <stem>_command.
ANALYSIS_COMMANDS = [
    ("analysis.correspondence", "correspondence", "correspondence",
     "Table 1 data: feature changes when the same part is masked in several images"),
    ("analysis.correspondence", "table1", "table1", "Table 1: the correspondence measure beside the paper's"),
    ("analysis.invariance", "invariance", "invariance",
     "Fig 5 data: feature distances and p(true) under translation, scale and rotation"),
    ("analysis.occlusion", "occlusion", "occlusion",
     "Fig 7 data: occlusion sensitivity of the strongest layer-5 map and the output"),
    ("transfer.transfer", "prepare-transfer", "prepare_transfer",
     "decode Caltech-101/256 (all.pt) or VOC 2012 (train.pt, val.pt) for the transfer experiments"),
    ("transfer.transfer", "transfer-splits", "transfer_splits",
     "random nested train/test splits of a prepared Caltech set (JSON)"),
    ("transfer.transfer", "scratch", "scratch",
     "the non-pretrained baseline for one split and size: train the network from scratch on it, score it"),
    ("transfer.transfer", "features", "features",
     "frozen features of chosen layers of the ImageNet model for a prepared split ({layer}.pt)"),
    ("analysis.overlap", "overlap", "overlap",
     "Caltech images also in the ImageNet training set (normalized correlation of thumbnails, paper 5)"),
    ("analysis.overlap", "overlap-table", "overlap_table",
     "Overlap table: duplicates found beside the paper's 44 (Caltech-101) and 243 (Caltech-256)"),
    ("transfer.classifiers", "classify", "classify",
     "Tables 4, 5, 7, Fig 9: a linear classifier on frozen features, per split and training size (CSV)"),
    ("transfer.classifiers", "voc-ap", "voc_ap",
     "Table 6 data: softmax on frozen VOC features, per-class AP on the val split"),
    ("report.transfer_tables", "table4", "table4", "Table 4: Caltech-101 accuracy beside the paper's"),
    ("report.transfer_tables", "table5", "table5", "Table 5: Caltech-256 accuracy beside the paper's"),
    ("report.transfer_tables", "table6", "table6", "Table 6: PASCAL VOC 2012 per-class AP beside the paper's"),
    ("report.transfer_tables", "table7", "table7", "Table 7: accuracy per layer (SVM, softmax) beside the paper's"),
]


def _named_paths(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, path = item.rpartition("=")
        if not sep or not name:
            raise ConfigError(f"{option} expects NAME=PATH, got {item!r}")
        pairs[name] = path
    return pairs


def cmd_generate(args: argparse.Namespace) -> None:
    from zfrepro.data.synthetic import generate

    generate(args.dataset, Path(args.out), parse_json(args.params, dict, "--params"), args.seed, workers=args.threads,
             imagenet_root=Path(args.imagenet_root) if args.imagenet_root else None)


def cmd_prepare(args: argparse.Namespace) -> None:
    from zfrepro.analysis.overlap import excluded_paths
    from zfrepro.data.prepare import prepare_imagenet

    prepare_imagenet(Path(args.root), Path(args.out_dir), parse_json(args.params, dict, "--params"), args.threads,
                     exclude=excluded_paths(args.exclude))


def cmd_train(args: argparse.Namespace) -> None:
    from zfrepro.model.train import TrainConfig, train

    train(
        data_dir=args.data_dir,
        arch=args.arch,
        arch_params=parse_json(args.arch_params, dict, "--arch-params"),
        cfg=TrainConfig.from_dict(parse_json(args.train_params, dict, "--train-params")),
        seed=args.seed,
        out_dir=args.out_dir,
        device=args.device,
        threads=args.threads,
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from zfrepro.io import atomic_torch_save, atomic_write_json
    from zfrepro.model.evaluate import evaluate

    params = parse_json(args.params, dict, "--params")
    metrics, predictions = evaluate(args.model, args.data_dir, train_subset=params.get("train_subset", 1000),
                                    batch_size=params.get("batch_size", 256), device=args.device,
                                    threads=args.threads)
    atomic_torch_save(args.out_predictions, predictions)
    atomic_write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))


def cmd_table2(args: argparse.Namespace) -> None:
    from zfrepro.report.tables import table2, table2_footnote, write_table

    rows = {name: paths.split(",") for name, paths in _named_paths(args.rows, "--rows").items()}
    df = table2(rows, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 2: ImageNet classification error (%)",
                table2_footnote(rows, args.crops))
    print(df.to_string(index=False))


def cmd_table3(args: argparse.Namespace) -> None:
    from zfrepro.report.tables import table3, table3_footnote, write_table

    rows = _named_paths(args.metrics, "--metrics")
    df = table3(rows, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 3: ImageNet error (%) of architecture changes",
                table3_footnote(rows, args.crops, args.seed_metrics))
    print(df.to_string(index=False))


def cmd_mine(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.mining import mine_top9
    from zfrepro.analysis.projections import open_inputs
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, args.threads))
    model, ckpt, split, mean = open_inputs(args.model, args.data_dir, args.split)
    result = mine_top9(model, split, mean, ckpt["crop_size"], k=args.k, batch_size=args.batch_size)
    atomic_torch_save(args.out, {**result, "split": args.split, "model": str(args.model)})


def _target(text: str):
    from zfrepro.analysis.deconvnet import Target

    try:
        image, layer, channel, y, x = text.split(":")
        return Target(int(image), layer, int(channel), int(y), int(x))
    except ValueError as err:
        raise ConfigError(f"--target expects IMAGE:LAYER:CHANNEL:Y:X (e.g. 12:conv3:40:5:7), got {text!r}") from err


def cmd_project(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.deconvnet import project
    from zfrepro.analysis.projections import open_inputs
    from zfrepro.data.preprocess import center_crop
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, args.threads))
    model, ckpt, split, mean = open_inputs(args.model, args.data_dir, args.split)
    targets = [_target(t) for t in args.target]
    images = sorted({t.image for t in targets})
    local = {image: i for i, image in enumerate(images)}
    x = center_crop(next(split.batches(images, len(images)))[0], mean, ckpt["crop_size"])
    targets = [type(t)(local[t.image], t.layer, t.channel, t.y, t.x) for t in targets]
    projections = project(model, x, targets, norm=args.norm)
    silent = [text for text, p in zip(args.target, projections, strict=True) if not p.any()]
    if silent:  # a zero activation projects to nothing: say so rather than leave a blank image unexplained
        print(f"note: these activations are zero, their projections are blank: {' '.join(silent)}", file=sys.stderr)
    atomic_torch_save(args.out, {"projections": projections, "targets": args.target, "images": images,
                                 "split": args.split, "norm": args.norm})
    if args.png:
        from zfrepro.report import figures

        figures.fig6_filters({}, {"projections": projections}, args.png,
                             titles={"projections": "deconvnet projections"})


def cmd_top9_projections(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.projections import top9_figure_data
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, args.threads))
    data = top9_figure_data(args.model, args.data_dir, load_result(args.top9), args.maps, args.seed, args.norm)
    atomic_torch_save(args.out, data)


def cmd_evolution(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.projections import evolution_data
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, args.threads))
    checkpoints = {int(epoch): path for epoch, path in _named_paths(args.checkpoints, "--checkpoints").items()}
    data = evolution_data(checkpoints, args.data_dir, args.maps, args.train_images, args.seed, args.display_size,
                          args.norm)
    atomic_torch_save(args.out, data)


def cmd_unpooling(args: argparse.Namespace) -> None:
    from zfrepro.analysis.projections import unpooling_data
    from zfrepro.io import atomic_torch_save

    atomic_torch_save(args.out, unpooling_data(args.model, args.data_dir, args.layer, args.image, args.window))


def cmd_filters(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.filters import filter_stats, filter_stats_table
    from zfrepro.analysis.projections import layer2_projections
    from zfrepro.io import atomic_torch_save
    from zfrepro.model.evaluate import load_model
    from zfrepro.report.tables import write_table

    torch.set_num_threads(max(1, args.threads))
    weights, stats = {}, []
    for panel, path in _named_paths(args.filters, "--filters").items():  # Fig 6 (a), (b), (c): layer-1 filters
        model, ckpt = load_model(path)
        weights[panel] = model.conv_layers()["conv1"].weight.detach().clone()
        radius = ckpt.get("training", {}).get("filter_radius")  # the radius this network was trained with
        stats.append(filter_stats(weights[panel], f"({panel}) {ckpt['arch']}", radius=radius))
    top9 = _named_paths(args.top9, "--top9")
    projections = {panel: layer2_projections(path, args.data_dir, load_result(top9[panel]), args.maps, args.seed,
                                             args.norm)
                   for panel, path in _named_paths(args.projections, "--projections").items()}  # Fig 6 (d), (e)
    atomic_torch_save(args.out, {"filters": weights, "projections": projections})
    write_table(filter_stats_table(stats), args.out_csv, args.out_md, "Fig 6: layer-1 filter statistics",
                "Claims 1 and 2 of the paper: with filter renormalisation no layer-1 filter dominates; the 7x7 "
                "stride-2 first layer has fewer dead filters than 11x11 stride 4. Norms are RMS values of each "
                "filter; definitions of every column in src/zfrepro/filters.py.")


def cmd_plot(args: argparse.Namespace) -> None:
    from zfrepro.report import figures

    if args.figure == "fig3":
        from zfrepro.model.evaluate import load_model

        model, _ = load_model(args.input)
        figures.fig3_architecture(model.spec, args.out, args.out_csv)
        return
    if args.figure == "fig9":  # several inputs: the pretrained CSV (--input) and the from-scratch scores
        from zfrepro.report.figures_transfer import fig9

        fig9(args.input, args.scratch, args.out, args.data_note)
        return
    data = load_result(args.input)
    if args.figure == "fig1":
        figures.fig1_deconvnet(data["pooled"], data["switches"], data["unpooled"], data["pool_input"], data["ops"],
                               args.out, window=data["window"])
    elif args.figure == "fig2":
        figures.fig2_top9(data["layers"], args.out)
    elif args.figure == "fig4":
        figures.fig4_evolution(data["projections"], data["epochs"], data["labels"], args.out)
    elif args.figure == "fig5":
        from zfrepro.report.figures_invariance import fig5_invariance

        fig5_invariance(data, args.out)
    elif args.figure == "fig6":
        figures.fig6_filters(data["filters"], data["projections"], args.out)
    elif args.figure == "fig7":
        from zfrepro.report.figures_occlusion import fig7_occlusion

        fig7_occlusion(data, args.out)
    elif args.figure == "fig8":
        from zfrepro.report.figures_correspondence import fig8_correspondence

        fig8_correspondence(data["display"], data["columns"], args.out, title=data["class_name"])


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the `command` about to run, only that analysis module is imported
    (every workflow job is one command, and importing scikit-learn and the rest each time costs seconds)."""
    parser = argparse.ArgumentParser(prog="zfrepro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--threads", type=int, default=1, help="torch threads and data-loading workers")
        p.set_defaults(func=func)
        return p

    p = add("generate", cmd_generate, "write a generated dataset in the real dataset's on-disk layout")
    p.add_argument("--dataset", required=True, choices=["imagenet", "caltech101", "caltech256", "voc"])
    p.add_argument("--out", required=True)
    p.add_argument("--params", required=True, help="JSON: image_size and the synthetic.<dataset> section")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--imagenet-root", help="the generated ImageNet, needed when imagenet_duplicates > 0 (Caltech)")

    p = add("prepare", cmd_prepare, "validate, decode and index ImageNet; compute the mean image")
    p.add_argument("--dataset", default="imagenet", choices=["imagenet"])
    p.add_argument("--root", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--params", required=True, help="JSON: the data section of the config")
    p.add_argument("--exclude", nargs="*", default=[],
                   help="overlap CSVs: their imagenet_path images are left out of the training split")

    p = add("train", cmd_train, "train one architecture with one seed (resumes after an interruption)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--arch-params", required=True, help="JSON: architectures.<arch>")
    p.add_argument("--train-params", required=True, help="JSON: the training section (with overrides)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = add("evaluate", cmd_evaluate, "train/val top-1 and top-5 error, centre crop and 10 crops")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--params", required=True, help="JSON: the evaluation section of the config")
    p.add_argument("--out", required=True, help="the metrics JSON")
    p.add_argument("--out-predictions", required=True,
                   help="a .pt file with the validation softmax outputs (centre crop and ten crops), for ensembles")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = add("table2", cmd_table2, "Table 2: our single models and ensembles beside the paper's")
    p.add_argument("--rows", nargs="+", required=True,
                   help="ROW_NAME=predictions.pt[,predictions.pt...], one per row; several files = an ensemble")
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)

    p = add("table3", cmd_table3, "Table 3: architecture changes beside the paper's")
    p.add_argument("--metrics", nargs="+", required=True, help="ROW_NAME=metrics.json, one per row")
    p.add_argument("--seed-metrics", nargs="*", default=[],
                   help="metrics of the same architectures at other seeds: the footnote gives their spread")
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)

    p = add("project", cmd_project, "project chosen activations of a trained model to pixel space (deconvnet)")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--target", nargs="+", required=True,
                   help="IMAGE:LAYER:CHANNEL:Y:X, the split's image index and a position of the layer's output map")
    p.add_argument("--norm", default="identity", choices=["identity", "gradient"])
    p.add_argument("--out", required=True, help="a .pt file with the projections [K, 3, H, W]")
    p.add_argument("--png", help="also draw them as a grid (PNG and PDF)")

    p = add("mine", cmd_mine, "one pass over a split: the top-k activations of every feature map of layers 1-5")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", required=True)

    def add_projection_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", required=True)
        p.add_argument("--maps", type=int, required=True, help="feature maps per layer")
        p.add_argument("--seed", type=int, default=0, help="seed of the random choice of maps")
        p.add_argument("--norm", default="identity", choices=["identity", "gradient"])
        p.add_argument("--out", required=True)

    p = add("top9-projections", cmd_top9_projections, "Fig 2 data: mined activations projected, with patches")
    p.add_argument("--model", required=True)
    p.add_argument("--top9", required=True)
    add_projection_args(p)

    p = add("evolution", cmd_evolution, "Fig 4 data: the strongest activation of chosen maps at every epoch")
    p.add_argument("--checkpoints", nargs="+", required=True, help="EPOCH=epochE.pt, one per epoch")
    p.add_argument("--train-images", type=lambda v: None if v == "all" else int(v), default=None,
                   help="training images searched (an integer, or 'all')")
    p.add_argument("--display-size", type=int, default=48)
    add_projection_args(p)

    p = add("unpooling", cmd_unpooling, "Fig 1 data: one real map, its pooling switches and the unpooled map")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--layer", default="conv1")
    p.add_argument("--image", type=int, default=0)
    p.add_argument("--window", type=int, default=6)
    p.add_argument("--out", required=True)

    p = add("filters", cmd_filters, "Fig 6 data: layer-1 filters, their statistics, layer-2 projections")
    p.add_argument("--filters", nargs="+", required=True, help="PANEL=final.pt whose layer-1 filters to show")
    p.add_argument("--projections", nargs="+", required=True, help="PANEL=final.pt whose layer-2 maps to project")
    p.add_argument("--top9", nargs="+", required=True, help="PANEL=top9.pt, the mined activations of each")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    add_projection_args(p)

    p = add("plot", cmd_plot, "draw a figure (PNG and PDF) from its computed data")
    p.add_argument("figure", choices=["fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "fig9"])
    p.add_argument("--input", required=True,
                   help="the analysis file (fig3: a model checkpoint; fig9: the Caltech-256 softmax fc7 CSV)")
    p.add_argument("--scratch", nargs="*", default=[], help="fig9 only: the from-scratch score.json files")
    p.add_argument("--data-note", default="", help="fig9 only: what data the curves come from")
    p.add_argument("--out", required=True, help="the PNG; the PDF is written beside it")
    p.add_argument("--out-csv", help="fig3 only: the architecture as a table")

    # The analyses define their own options next to their code (module, subcommand, help).
    for module, name, stem, help in ANALYSIS_COMMANDS:
        if command is not None and name != command:
            add(name, None, help)  # listed, not configured: its module is not needed for this command
            continue
        mod = importlib.import_module(f"zfrepro.{module}")
        getattr(mod, f"configure_{stem}_parser")(add(name, getattr(mod, f"{stem}_command"), help))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(command).parse_args(argv)
    try:
        args.func(args)
    except ZFError as err:
        print(f"zfrepro {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

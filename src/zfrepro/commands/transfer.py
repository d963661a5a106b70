"""Commands of the transfer experiments: prepare, split, extract features, train from scratch, classify, and
Tables 4-7.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from zfrepro.options import json_arg, json_list_of, parse_json


def configure_prepare_transfer_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro prepare-transfer`."""
    from zfrepro.transfer.prepare import DATASETS

    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--root", required=True, help="the dataset folder (data.<dataset>_root)")
    p.add_argument("--out-dir", required=True, help="where all.pt (VOC: train.pt, val.pt) and manifest.json go")
    p.add_argument("--params", required=True, help="JSON: the data section of the config")
    p.add_argument("--background", type=json_arg(bool), default=False,
                   help="Caltech: keep the BACKGROUND_Google (101) or clutter (256) class as the last class")


def prepare_transfer_command(args: argparse.Namespace) -> None:
    from zfrepro.transfer.prepare import prepare_transfer

    torch.set_num_threads(max(1, args.threads))
    manifest = prepare_transfer(args.dataset, args.root, args.out_dir, parse_json(args.params, dict, "--params"),
                                max(1, args.threads), background=args.background)
    skipped = sum(len(v) for v in manifest["skipped"].values())
    print(f"{args.dataset}: {len(manifest['classes'])} classes, images {manifest['counts']}, modes "
          f"{manifest['mode']}, {skipped} skipped -> {args.out_dir}")


def configure_transfer_splits_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro transfer-splits`."""
    p.add_argument("--data-dir", required=True, help="prepared folder with all.pt and manifest.json")
    p.add_argument("--sizes", required=True, help="JSON list: training images per class")
    p.add_argument("--splits", type=int, required=True, help="number of random splits")
    p.add_argument("--test-per-class", type=int, required=True, help="test images per class (at most)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--key", required=True, help="the config key of the sizes, named in errors")
    p.add_argument("--out", required=True, help="the splits JSON file")


def transfer_splits_command(args: argparse.Namespace) -> None:
    from zfrepro.io import atomic_write_json, load_json_result, load_result
    from zfrepro.transfer.splits import make_splits

    torch.set_num_threads(max(1, args.threads))
    data_dir = Path(args.data_dir)
    data = load_result(data_dir / "all.pt", mmap=True)
    manifest = load_json_result(data_dir / "manifest.json")
    splits = make_splits(data["labels"], data["classes"], parse_json(args.sizes, list, "--sizes"), args.splits,
                         args.test_per_class, args.seed, args.key, dataset=manifest.get("dataset"))
    atomic_write_json(args.out, splits)
    first = splits["splits"][0]
    print(f"{splits['dataset']}: {len(splits['splits'])} splits of {len(splits['classes'])} classes, train "
          f"{ {n: len(v) for n, v in first['train'].items()} } test {len(first['test'])} images -> {args.out}")


def configure_scratch_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro scratch`."""
    p.add_argument("--data-dir", required=True, help="prepared folder with all.pt and manifest.json")
    p.add_argument("--splits-file", required=True)
    p.add_argument("--split", type=int, required=True, help="which split (0-based; also the training seed)")
    p.add_argument("--n", type=int, required=True, help="training images per class")
    p.add_argument("--arch", required=True, help="the transfer network's name (transfer.arch)")
    p.add_argument("--arch-params", required=True, help="JSON: architectures.<arch>")
    p.add_argument("--train-params", required=True, help="JSON: the training section with transfer.scratch.training")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out-dir", required=True, help="final.pt, metrics.csv and score.json go here")


def scratch_command(args: argparse.Namespace) -> None:
    from zfrepro.transfer.scratch import run_scratch

    score = run_scratch(args.data_dir, args.splits_file, args.split, args.n, args.arch,
                        parse_json(args.arch_params, dict, "--arch-params"),
                        parse_json(args.train_params, dict, "--train-params"), args.out_dir, args.device,
                        max(1, args.threads))
    print(f"{score['dataset']} n={args.n} split {args.split}: mean per-class accuracy {score['accuracy']:.2f}% "
          f"on {score['test_images']} test images -> {args.out_dir}")


def configure_classify_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro classify` (Tables 4, 5, 7 and Figure 9: frozen-feature classifiers)."""
    from zfrepro.transfer.classifiers import CLASSIFIER_PARAMS

    p.add_argument("--features", required=True, help="feature file of the whole dataset (.../all/{layer}.pt)")
    p.add_argument("--splits", required=True, help="the dataset's splits JSON (results/transfer/splits/...)")
    p.add_argument("--kind", required=True, choices=sorted(CLASSIFIER_PARAMS))
    p.add_argument("--params", default="{}", help="JSON: transfer.softmax (C, max_iter) or transfer.svm (C)")
    p.add_argument("--sizes", default=None, help="JSON list of training images per class (default: all sizes)")
    p.add_argument("--out", required=True, help="CSV, one row per (size, split)")


def classify_command(args: argparse.Namespace) -> None:
    from zfrepro.io import atomic_write_text
    from zfrepro.transfer.classifiers import limit_threads, score_frozen

    with limit_threads(getattr(args, "threads", 1)):
        sizes = None if args.sizes is None else parse_json(args.sizes, list, "--sizes")
        df = score_frozen(args.features, args.splits, args.kind, parse_json(args.params, dict, "--params"), sizes)
    atomic_write_text(args.out, df.to_csv(index=False))
    print(df.groupby("train_per_class")["accuracy"].agg(["mean", "std", "count"]).round(2).to_string())


def configure_voc_ap_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro voc-ap` (Table 6)."""
    p.add_argument("--train-features", required=True, help="features of the VOC train split")
    p.add_argument("--val-features", required=True, help="features of the VOC val split")
    p.add_argument("--val-split", default=None,
                   help="prepared VOC val split (val.pt with difficult_only); omitted: the flags of the val features, "
                        "if any")
    p.add_argument("--params", default="{}", help="JSON: transfer.softmax (C, max_iter)")
    p.add_argument("--out", required=True, help="CSV, one row per class")


def voc_ap_command(args: argparse.Namespace) -> None:
    from zfrepro.io import atomic_write_text
    from zfrepro.transfer.classifiers import limit_threads, voc_average_precision

    with limit_threads(getattr(args, "threads", 1)):
        df = voc_average_precision(args.train_features, args.val_features,
                                   parse_json(args.params, dict, "--params"), args.val_split)
    atomic_write_text(args.out, df.to_csv(index=False))
    print(df.round(2).to_string(index=False))
    print(f"mean AP over classes with positives: {df['ap'].mean():.2f}")


def _write(df: pd.DataFrame, footnote: str, args: argparse.Namespace, title: str) -> None:
    from zfrepro.report.write import write_table

    write_table(df, args.out_csv, args.out_md, title, footnote)
    print(df.to_string(index=False))


def _outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-note", required=True,
                   help="what our data is, for the footnote (e.g. 'generated data, not the real images')")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def _caltech_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pretrained", required=True, help="frozen-feature softmax results (classify CSV)")
    p.add_argument("--scratch", type=json_list_of(str), default=[],
                   help="JSON list: from-scratch score.json files (none: row left blank)")
    p.add_argument("--splits", default=None, help="the dataset's splits JSON (classes, test size for the footnote)")
    p.add_argument("--sizes", default=None,
                   help="JSON list of training sizes shown (default: the paper's and all of ours)")
    _outputs(p)


def _sizes(args: argparse.Namespace) -> list[int] | None:
    return None if args.sizes is None else parse_json(args.sizes, list, "--sizes")


def configure_table4_parser(p: argparse.ArgumentParser) -> None:
    _caltech_parser(p)


def table4_command(args: argparse.Namespace) -> None:
    from zfrepro.report.transfer_tables import table4

    df, footnote = table4(args.pretrained, args.scratch, args.data_note, args.splits, _sizes(args))
    _write(df, footnote, args, "Table 4: Caltech-101 mean per-class accuracy (%)")


def configure_table5_parser(p: argparse.ArgumentParser) -> None:
    _caltech_parser(p)


def table5_command(args: argparse.Namespace) -> None:
    from zfrepro.report.transfer_tables import table5

    df, footnote = table5(args.pretrained, args.scratch, args.data_note, args.splits, _sizes(args))
    _write(df, footnote, args, "Table 5: Caltech-256 mean per-class accuracy (%)")


def configure_table6_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="per-class VOC AP (voc-ap CSV)")
    p.add_argument("--layer", default="fc7", help="the layer whose features the softmax used")
    _outputs(p)


def table6_command(args: argparse.Namespace) -> None:
    from zfrepro.report.transfer_tables import table6

    df, footnote = table6(args.input, args.data_note, args.layer)
    _write(df, footnote, args, "Table 6: PASCAL VOC 2012 average precision (%), val split")


def configure_table7_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=json_list_of(str), required=True,
                   help="JSON list: classify CSVs of Caltech-101 and -256, any layers")
    p.add_argument("--sizes", default=None,
                   help='JSON {"caltech101": 30, "caltech256": 60}: training size per dataset (default: largest)')
    _outputs(p)


def table7_command(args: argparse.Namespace) -> None:
    from zfrepro.report.transfer_tables import table7

    sizes = None if args.sizes is None else parse_json(args.sizes, dict, "--sizes")
    df, footnote = table7(args.inputs, args.data_note, sizes)
    _write(df, footnote, args, "Table 7: accuracy (%) of linear classifiers on each layer's frozen features")


# Defined beside the code they run (whose modules are being reworked on other branches); reached
# through this layer like every command, and imported only when run.
def configure_features_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.transfer.features import configure_features_parser as configure

    configure(p)


def features_command(args: argparse.Namespace) -> None:
    from zfrepro.transfer.features import features_command as command

    command(args)

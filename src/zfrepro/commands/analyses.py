"""Commands of the other analyses: invariance (Fig 5), occlusion (Fig 7), correspondence (Fig 8, Table 1), the
Caltech/ImageNet overlap and its table.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch

from zfrepro.errors import ConfigError
from zfrepro.options import json_arg, json_list_of, parse_json


def configure_invariance_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro invariance` (Fig 5 data)."""
    from zfrepro.analysis.invariance import DEFAULT_LAYERS

    p.add_argument("--model", required=True, help="a trained checkpoint (final.pt)")
    p.add_argument("--data-dir", required=True, help="the prepared data (val.pt, mean.pt, manifest.json)")
    p.add_argument("--images", required=True,
                   help='JSON list of {"wnid": ..., "nth": ...}: the nth validation image of each class')
    p.add_argument("--translations", type=json_list_of(float), required=True,
                   help="vertical shifts in pixels at a 224 crop (scaled by crop/224, rounded)")
    p.add_argument("--scales", type=json_list_of(float), required=True, help="JSON list: zoom ratios >= 1")
    p.add_argument("--rotations", type=json_list_of(float), required=True, help="JSON list: angles in degrees")
    p.add_argument("--layers", type=json_list_of(str), default=list(DEFAULT_LAYERS),
                   help="JSON list: layers whose feature distances to keep")
    p.add_argument("--sample", type=int, default=0,
                   help="more validation images measured for claim 6's statistics (not drawn)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", required=True, help="the .pt file with the curves")
    p.add_argument("--out-csv", help="also write the claim-6 summary as CSV")
    p.add_argument("--out-md", help="also write the claim-6 summary as Markdown")


def invariance_command(args: argparse.Namespace) -> None:
    """Compute Fig 5's curves, save them, print (and optionally write) the claim-6 summary."""
    from zfrepro.analysis.invariance import SUMMARY_FOOTNOTE, invariance_data, summarize
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, getattr(args, "threads", 1)))
    images = parse_json(args.images, list, "--images")
    data = invariance_data(args.model, args.data_dir, images, args.translations, args.scales, args.rotations,
                           args.layers, args.device, args.sample)
    atomic_torch_save(args.out, data)
    table = summarize(data)
    if args.out_csv or args.out_md:
        from zfrepro.report.write import write_table

        if not (args.out_csv and args.out_md):
            raise ConfigError("--out-csv and --out-md go together (the table is written in both forms)")
        write_table(table, args.out_csv, args.out_md, "Fig 5: invariance summary (claim 6)", SUMMARY_FOOTNOTE)
    names = ", ".join(f"{w} ({n})" for w, n in zip(data["wnids"], data["class_names"], strict=True))
    print(f"images: {names}")
    print(f"p(true) of the originals: {[round(float(p), 3) for p in data['p_original']]}")
    print(table.to_string(index=False))


def configure_correspondence_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.analysis.parts_csv import PARTS_CSV_HELP

    p.add_argument("--model", required=True, help="trained checkpoint (final.pt)")
    p.add_argument("--data-dir", required=True, help="prepared data folder (mean.pt, manifest.json)")
    p.add_argument("--parts-csv", required=True, help=PARTS_CSV_HELP)
    p.add_argument("--images", type=int, default=5, help="images per analysis (paper: 5)")
    p.add_argument("--wnid", type=json_arg(str, type(None)), default=None,
                   help="JSON: the class folder to use, or null for the first with enough images")
    p.add_argument("--random-repeats", type=int, default=50, help="repetitions of the random boxes")
    p.add_argument("--layers", type=json_list_of(str), default=["conv5", "fc7"],
                   help="JSON list: layers whose features are compared")
    p.add_argument("--seed", type=int, default=0, help="seed of the random boxes")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, help="the analysis file (.pt)")


def correspondence_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.correspondence import correspondence
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, getattr(args, "threads", 1)))
    data = correspondence(args.model, args.data_dir, args.parts_csv, images=args.images, wnid=args.wnid,
                          random_repeats=args.random_repeats, layers=tuple(args.layers), seed=args.seed,
                          batch_size=args.batch_size, log=lambda text: print(text, file=sys.stderr))
    atomic_torch_save(args.out, data)


def configure_table1_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="the correspondence analysis file (.pt)")
    p.add_argument("--criteria", type=json_arg(dict), default={},
                   help="JSON: the config's claims section (the footnote states claim 8 by the scorecard's rule)")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def table1_command(args: argparse.Namespace) -> None:
    from zfrepro.io import load_result
    from zfrepro.report.correspondence_table import claim8, table1, table1_footnote
    from zfrepro.report.write import write_table

    data = load_result(args.input)
    df = table1(data)
    write_table(df, args.out_csv, args.out_md, "Table 1: correspondence measure Delta (mean +- sd)",
                table1_footnote(data, args.criteria))
    print(df.to_string(index=False))
    print(claim8(data, args.criteria))


def configure_overlap_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro overlap`."""
    from zfrepro.analysis.overlap import DATASETS, DEFAULT_BATCH, DEFAULT_SIZE, DEFAULT_THRESHOLD

    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--root", required=True, help="the Caltech root (all its images count, background included)")
    p.add_argument("--imagenet-root", required=True, help="ImageNet root; its train split is searched")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help="thumbnail side in pixels")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="least correlation of a duplicate")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="ImageNet thumbnails per matrix product")
    p.add_argument("--out", required=True, help="the CSV of duplicates; the counts go to a .json beside it")


def overlap_command(args: argparse.Namespace) -> None:
    """Find the Caltech images that are ImageNet training images; write the CSV and its summary JSON."""
    from zfrepro.analysis.overlap import check_settings, find_duplicates, planted_pairs, summary_path
    from zfrepro.data.datasets import image_list, open_caltech101, open_caltech256, open_imagenet
    from zfrepro.io import atomic_write_json, atomic_write_text

    threads = max(1, getattr(args, "threads", 1))
    torch.set_num_threads(threads)
    check_settings(args.size, args.threshold, args.batch)
    caltech = (open_caltech101(args.root, include_background=True) if args.dataset == "caltech101"
               else open_caltech256(args.root, include_clutter=True))
    queries = image_list(caltech)[0]
    references = image_list(open_imagenet(args.imagenet_root, "train"))[0]
    found = find_duplicates(queries, references, args.size, args.threshold, args.batch, threads)
    planted = planted_pairs(args.root, args.imagenet_root)
    summary: dict[str, Any] = {
        "dataset": args.dataset, "caltech_root": os.path.abspath(args.root),
        "imagenet_root": os.path.abspath(args.imagenet_root), "size": args.size, "threshold": args.threshold,
        "caltech_images": len(queries), "imagenet_train_images": len(references), "duplicates": len(found),
        **{k: v for k, v in found.attrs.items() if k not in ("queries", "references")}, "planted": planted,
    }
    atomic_write_text(args.out, found.to_csv(index=False))
    atomic_write_json(summary_path(args.out), summary)
    note = "" if planted is None else f"; planted {len(planted)}"
    print(f"{args.dataset}: {len(found)} of {len(queries)} images have a match >= {args.threshold} among "
          f"{len(references)} ImageNet training images{note}; best below: {summary['best_below_threshold']}")


def configure_overlap_table_parser(p: argparse.ArgumentParser) -> None:
    """Options of `zfrepro overlap-table`."""
    from zfrepro.analysis.overlap import DEFAULT_THRESHOLD

    p.add_argument("--inputs", type=json_list_of(str), required=True,
                   help="JSON list: overlap CSVs (each with its .json beside it)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="least correlation of a duplicate")
    p.add_argument("--drop", type=json_arg(bool), default=False,
                   help="whether the duplicates are dropped from pretraining (stated in the footnote)")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def overlap_table_command(args: argparse.Namespace) -> None:
    """Write the overlap table (ours beside the paper's counts) as CSV and Markdown."""
    from zfrepro.analysis.overlap import DEFAULT_SIZE, PAPER_DUPLICATES, check_settings
    from zfrepro.report.overlap_table import overlap_footnote, overlap_table
    from zfrepro.report.write import write_table

    check_settings(DEFAULT_SIZE, args.threshold)
    table = overlap_table(args.inputs, PAPER_DUPLICATES, args.threshold)
    write_table(table, args.out_csv, args.out_md, "Caltech images found in the ImageNet training set (paper 5)",
                overlap_footnote(table, args.drop))
    print(table.to_string(index=False))


# Defined beside the code they run (whose modules are being reworked on other branches); reached
# through this layer like every command, and imported only when run.
def configure_occlusion_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.analysis.occlusion import configure_occlusion_parser as configure

    configure(p)


def occlusion_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.occlusion import occlusion_command as command

    command(args)

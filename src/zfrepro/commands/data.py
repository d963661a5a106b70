"""Commands that make the data: generate a synthetic dataset, prepare ImageNet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zfrepro.options import json_arg, json_list_of


def configure_generate_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.data.synthetic.vocabulary import DATASETS

    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--out", required=True)
    p.add_argument("--params", required=True, type=json_arg(dict),
                   help="JSON: image_size, generator (parts | arrangements) and the synthetic.<dataset> section")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--imagenet-root", type=json_arg(str, type(None)), default=None,
                   help="JSON: the generated ImageNet (a string), needed when imagenet_duplicates > 0; or null")


def generate_command(args: argparse.Namespace) -> None:
    from zfrepro.data.synthetic.writers import generate

    generate(args.dataset, Path(args.out), args.params, args.seed, workers=args.threads,
             imagenet_root=Path(args.imagenet_root) if args.imagenet_root else None)


def configure_prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="the ImageNet folder (data.imagenet_root, or the generated one)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--params", required=True, type=json_arg(dict), help="JSON: the data section of the config")
    p.add_argument("--exclude", type=json_list_of(str), default=[],
                   help="JSON list of overlap CSVs: their imagenet_path images are left out of the training split")


def prepare_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.overlap import excluded_paths
    from zfrepro.data.prepare import prepare_imagenet

    prepare_imagenet(Path(args.root), Path(args.out_dir), args.params, args.threads,
                     exclude=excluded_paths(args.exclude))

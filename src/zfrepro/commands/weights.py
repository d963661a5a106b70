"""Commands of published networks: fetching their weights (only when asked) and importing them into this
project's checkpoint (zfrepro.model.fetch_weights, zfrepro.model.import_weights)."""

from __future__ import annotations

import argparse
import json

from zfrepro.model.fetch_weights import CACHE_ENV, fetch_weights
from zfrepro.model.import_weights import import_weights


def configure_fetch_weights_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the published network (zfnet, zfnetb, alexnet, alexnetb, torchvision-alexnet)")
    p.add_argument("--cache-dir", help=f"where to keep it (default ${CACHE_ENV} or ~/.cache/zfrepro/weights)")
    p.add_argument("--url", help="download from this mirror instead of the published URL (same file)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")


def fetch_weights_command(args: argparse.Namespace) -> None:
    print(fetch_weights(args.name, args.cache_dir, args.url, args.timeout))


def configure_import_weights_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--published", required=True, help="the published network's name (zfrepro.model.published)")
    p.add_argument("--weights", required=True, help="the weights file (.pth) as released")
    p.add_argument("--arch", help="the architecture's name in the config (default: the published name)")
    p.add_argument("--seed", type=int, default=0, help="the seed in the checkpoint's path (models/ARCH/seedN)")
    p.add_argument("--input-size", type=int, help="the crop size (default: the one the network was trained at)")
    p.add_argument("--image-size", type=int, help="the data's image size, checked against the network's")
    p.add_argument("--classes-of", help="a prepared split (val.pt) whose classes are the network's outputs, in order")
    p.add_argument("--out", required=True, help="the checkpoint to write (final.pt)")


def import_weights_command(args: argparse.Namespace) -> None:
    classes = None
    if args.classes_of:
        from zfrepro.data.splits import PreparedSplit

        classes = list(PreparedSplit(args.classes_of).classes)
    record = import_weights(args.published, args.weights, args.out, args.arch, args.seed, args.input_size, classes,
                            args.image_size)
    if not record["checksum_matches_published"]:
        print(f"note: {args.weights} is not the published file of {args.published} (its {record['hash_algorithm']} "
              f"differs from {record['published_checksum']}); recorded in the checkpoint", flush=True)
    print(json.dumps(record, indent=2))


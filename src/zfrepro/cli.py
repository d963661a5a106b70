"""The `zfrepro` command line: what every Snakemake rule calls. One subcommand per step."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import ConfigError, ZFError


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"could not parse JSON parameters {text!r}: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"JSON parameters must be an object, got {text!r}")
    return value


def _named_paths(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, path = item.rpartition("=")
        if not sep or not name:
            raise ConfigError(f"--metrics expects NAME=PATH, got {item!r}")
        pairs[name] = path
    return pairs


def cmd_generate(args: argparse.Namespace) -> None:
    from .synthetic import generate

    generate(args.dataset, Path(args.out), _json(args.params), args.seed, workers=args.threads)


def cmd_prepare(args: argparse.Namespace) -> None:
    from .prepare import prepare_imagenet

    prepare_imagenet(Path(args.root), Path(args.out_dir), _json(args.params), args.threads)


def cmd_train(args: argparse.Namespace) -> None:
    from .train import TrainConfig, train

    train(
        data_dir=args.data_dir,
        arch=args.arch,
        arch_params=_json(args.arch_params),
        cfg=TrainConfig.from_dict(_json(args.train_params)),
        seed=args.seed,
        out_dir=args.out_dir,
        device=args.device,
        threads=args.threads,
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate
    from .io import atomic_write_json

    params = _json(args.params)
    metrics = evaluate(args.model, args.data_dir, train_subset=params.get("train_subset", 1000),
                       batch_size=params.get("batch_size", 256), device=args.device, threads=args.threads)
    atomic_write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))


def cmd_table2(args: argparse.Namespace) -> None:
    from .tables import table2, table2_footnote, write_table

    rows = _named_paths(args.metrics)
    df = table2(rows, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 2: ImageNet classification error (%)",
                table2_footnote(rows, args.crops))
    print(df.to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
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

    p = add("prepare", cmd_prepare, "validate, decode and index ImageNet; compute the mean image")
    p.add_argument("--dataset", default="imagenet", choices=["imagenet"])
    p.add_argument("--root", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--params", required=True, help="JSON: the data section of the config")

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
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = add("table2", cmd_table2, "Table 2: our single-model errors beside the paper's")
    p.add_argument("--metrics", nargs="+", required=True, help="ROW_NAME=metrics.json, one per row")
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ZFError as err:
        print(f"zfrepro {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

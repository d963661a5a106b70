"""Commands of training and evaluation, and the ImageNet tables (Tables 2 and 3) made from them.

train and evaluate are defined beside the trainer and the evaluator, and listed here so that every command
is reached through this layer.
"""

from __future__ import annotations

import argparse

from zfrepro.options import json_arg


def configure_table2_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", required=True, type=json_arg(dict),
                   help='JSON: {row label: {"seeds": [predictions.pt, ...]} (one convnet, mean over seeds) or '
                        '{"ensemble": [predictions.pt, ...]} (softmax outputs averaged)}')
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def table2_command(args: argparse.Namespace) -> None:
    from zfrepro.report.tables import table2, table2_footnote
    from zfrepro.report.write import write_table

    df = table2(args.rows, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 2: ImageNet classification error (%)",
                table2_footnote(args.rows, args.crops))
    print(df.to_string(index=False))


def configure_table3_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", required=True, type=json_arg(dict),
                   help="JSON: {row label: [metrics.json of each seed, ...]}")
    p.add_argument("--crops", default="ten", choices=["center", "ten"])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def table3_command(args: argparse.Namespace) -> None:
    from zfrepro.report.tables import table3, table3_footnote
    from zfrepro.report.write import write_table

    df = table3(args.metrics, args.crops)
    write_table(df, args.out_csv, args.out_md, "Table 3: ImageNet error (%) of architecture changes",
                table3_footnote(args.metrics, args.crops))
    print(df.to_string(index=False))


# Defined beside the code they run (whose modules are being reworked on other branches); reached
# through this layer like every command, and imported only when run.
def configure_evaluate_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.model.evaluate import configure_evaluate_parser as configure

    configure(p)


def evaluate_command(args: argparse.Namespace) -> None:
    from zfrepro.model.evaluate import evaluate_command as command

    command(args)


def configure_train_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.model.train import configure_train_parser as configure

    configure(p)


def train_command(args: argparse.Namespace) -> None:
    from zfrepro.model.train import train_command as command

    command(args)

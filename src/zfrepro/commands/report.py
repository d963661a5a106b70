"""Commands of the report: the claims scorecard, the figures, the front page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zfrepro.options import json_arg


def configure_claims_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", required=True, type=json_arg(dict),
                   help="JSON: the result files each claim reads (see workflow/rules/claims.smk)")
    p.add_argument("--criteria", type=json_arg(dict), default={}, help="JSON: the config's claims section")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def claims_command(args: argparse.Namespace) -> None:
    from zfrepro.io import atomic_write_text
    from zfrepro.report.claims import scorecard, scorecard_markdown

    df = scorecard(args.inputs, args.criteria)
    atomic_write_text(args.out_csv, df.to_csv(index=False))
    atomic_write_text(args.out_md, scorecard_markdown(df, args.criteria))
    print(df[["claim", "verdict", "value", "low", "high", "quantity"]].to_string(index=False))
    for path in (args.out_csv, args.out_md):
        print(f"wrote {Path(path)}")


def configure_plot_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.report.plot import FIGURES

    p.add_argument("figure", choices=sorted(FIGURES))
    p.add_argument("--inputs", required=True, type=json_arg(dict),
                   help='JSON: the figure\'s named inputs, e.g. {"data": "results/analysis/fig5/invariance.pt"}')
    p.add_argument("--options", type=json_arg(dict), default={}, help="JSON: the figure's options, if any")
    p.add_argument("--out", required=True, help="the PNG; the PDF is written beside it")


def plot_command(args: argparse.Namespace) -> None:
    from zfrepro.report.plot import FIGURES

    FIGURES[args.figure](args.inputs, args.options, Path(args.out))


def configure_front_page_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--claims", default=None, help="the scorecard claims.csv (omit when the claims were not run)")
    p.add_argument("--tables", type=json_arg(dict), required=True, help='JSON: {table name: csv path}')
    p.add_argument("--figures", type=json_arg(dict), required=True, help='JSON: {figure name: png path}')
    p.add_argument("--pages", type=json_arg(dict), default={},
                   help="JSON: {item name: [folder of HTML pages]} (the feature atlas)")
    p.add_argument("--base", type=Path, default=Path("."),
                   help="the folder the report is written to (--pages are linked relative to it)")
    p.add_argument("--title", default="Zeiler & Fergus (2014), reproduced")
    p.add_argument("--intro", type=Path, default=None, help="an RST file whose text opens the page")
    p.add_argument("--run", type=json_arg(dict), default=None,
                   help='JSON: what the run was, said first: {"source": data.source, "published": {arch: weights '
                        'name}, "widths": {arch: width}, "crop_size": n}')
    p.add_argument("--out", type=Path, required=True)


def front_page_command(args: argparse.Namespace) -> int:
    from zfrepro.io import atomic_write_text
    from zfrepro.report.front_page import front_page

    intro = args.intro.read_text() if args.intro else ""
    text = front_page(Path(args.claims) if args.claims else None, {k: Path(v) for k, v in args.tables.items()},
                      {k: Path(v) for k, v in args.figures.items()}, args.title, intro,
                      {k: [Path(p) for p in v] for k, v in args.pages.items()}, args.base, args.run)
    # Snakemake renders the page with Jinja before docutils: keep the run's text literal
    atomic_write_text(args.out, "{% raw %}\n" + text + "{% endraw %}\n")
    print(f"wrote {args.out} ({len(args.tables)} tables, {len(args.figures)} figures)")
    return 0

"""The report's front page: what this run reproduced, before any folder of files.

Written by the workflow from the run's own tables (`zfrepro front-page`), as reStructuredText that Snakemake shows
as the report's first page (the Snakefile's `report:` points to it once it exists). It says, in order:

1. what the run was (generated demo data at a fraction of the paper's width; published networks on real
   images; the full protocol), from the configuration's data source, widths and published weights (`describe_run`);
2. how many of the paper's 11 claims hold on this run (and how many are inconclusive, untestable at this scale or
   not run), with each claim's verdict, value, the smallest difference the run detects and the paper's value
   (claims.csv), then what each untestable claim needs and why each claim not run was not;
3. section by section of the paper, every table with the paper's values beside ours (the paper_* and ours_*
   columns every table writes) and a link to the table and to each figure of that section.

Links are Snakemake report references (`name.png`_, resolved by Snakemake to the file's page in the report).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import pandas as pd

from zfrepro.report import sections
from zfrepro.report.scorecard.statistics import NOT_RUN, UNTESTABLE, VERDICTS

WIDTH_NAMES = {Fraction(1, 2): "half", Fraction(1, 4): "quarter", Fraction(1, 8): "an eighth of the paper's"}


def _number(value) -> float | None:
    """`value` as a number when it is one (a CSV column that mixes numbers and text reads as text)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _cell(value) -> str:
    """A table cell as text: whole numbers as they are, others to 4 significant digits, missing values a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    number = _number(value) if not isinstance(value, bool) else None
    if number is not None:
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    text = " ".join(str(value).split())
    # a cell that starts like a list item ("(a) 5 convnets", "1. ...") would become a list in RST
    return "\\" + text if re.match(r"(\(?[A-Za-z0-9]{1,3}[.)]|[-*+])\s", text) else text


def _list_table(frame: pd.DataFrame) -> list[str]:
    """An RST list-table of `frame` (header row = its columns)."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [list(frame.columns), *frame.itertuples(index=False)]:
        cells = [_cell(v) for v in row]
        lines.append(f"   * - {cells[0]}")
        lines.extend(f"     - {cell}" for cell in cells[1:])
    return [*lines, ""]


def paper_beside_ours(table: pd.DataFrame) -> pd.DataFrame | None:
    """The columns of a table that compare: its label columns, then each paper_X beside ours_X (with ± its sd when
    ours_X_sd exists); columns of ours without a paper counterpart are left out (seeds, members, ...), except a bare
    `ours` (Table 6). None when the table has no paper values."""
    paper = [c for c in table.columns if c.startswith("paper_")]
    if not paper:
        return None
    first = next(i for i, c in enumerate(table.columns) if c.startswith(("paper_", "ours")))
    labels = list(table.columns[:first])  # the row's labels: the columns before the first compared one
    out = table[labels].copy()
    for column in table.columns:
        if column.startswith("paper_"):
            out[column.replace("_", " ")] = table[column]
            ours = "ours_" + column.removeprefix("paper_")
            if ours in table.columns:
                out[ours.replace("_", " ")] = _with_sd(table, ours)
        elif column == "ours":
            out["ours"] = table[column]
    return out


def _with_sd(table: pd.DataFrame, column: str) -> pd.Series:
    sd = f"{column}_sd"
    if sd not in table.columns:
        return table[column]
    return pd.Series([_cell(v) if (isinstance(s, float) and math.isnan(s)) else f"{_cell(v)} ± {_cell(s)}"
                      for v, s in zip(table[column], table[sd], strict=True)], index=table.index)


def _width(widths: Mapping[str, float]) -> str:
    """The trained networks' width in words: "quarter width", "full width", "widths 0.25-0.5"."""
    values = sorted(set(float(w) for w in widths.values()))
    if len(values) != 1:
        return f"widths {values[0]:g}-{values[-1]:g} of the paper's"
    if values[0] == 1:
        return "the paper's full width"
    name = WIDTH_NAMES.get(Fraction(values[0]).limit_denominator(64))
    return f"{name} width" if name else f"{values[0]:g} of the paper's width"


def describe_run(run: Mapping) -> str:
    """What the run was, from its configuration: `source` (data.source), `published` ({arch: weights name}),
    `widths` ({arch: width} of the trained networks), `crop_size`."""
    published, widths = run.get("published") or {}, run.get("widths") or {}
    crop = run.get("crop_size")
    crops = f" at {crop}-pixel crops" if crop else ""
    real = run.get("source") == "real"
    if published:
        names = ", ".join(f"{arch} ({name})" for arch, name in published.items())
        text = (f"**Published networks on real images**: {names} imported from their released weights, nothing "
                f"trained, evaluated and analysed on ImageNet's validation images{crops}."
                if real else
                f"**Published networks' architectures on generated data**: {names} imported from the configured "
                f"weights files, analysed on the workflow's generated images{crops}: a test of the pipeline, not of "
                "the paper.")
        if widths:
            text += f" Trained here as well: {', '.join(widths)} ({_width(widths)})."
        return text + (" Claims about training (filters without renormalisation, removed or widened layers, "
                       "convergence, training from scratch) cannot run on published weights.")
    if not real:
        return (f"**Generated demo data at {_width(widths)}**: networks trained on the workflow's generated "
                f"images{crops}, a demonstration of the method at a laptop's scale. Its verdicts are about these data "
                "and networks, not about ImageNet; a claim whose paper-sized effect is smaller than the run can "
                "detect reads *untestable at this scale*.")
    if all(float(w) == 1 for w in widths.values()):
        return f"**The full protocol**: networks at the paper's width trained on ImageNet{crops}."
    return f"**Real images at {_width(widths)}**: networks trained on ImageNet{crops} at a reduced width."


def _claims_section(claims: pd.DataFrame) -> list[str]:
    counts = claims["verdict"].value_counts()
    summary = ", ".join(f"{v}: **{counts.get(v, 0)}**" for v in VERDICTS)
    lines = ["What this run reproduced", "-" * 24, "",
             f"Of the paper's {len(claims)} claims, measured on this run with the criteria the configuration declared "
             f"before it: {summary} (the scorecard, `claims.csv`_; an inconclusive claim's difference is within the "
             "noise though a paper-sized one would have shown, an untestable one's could not have shown at this "
             "scale, and the scorecard's *cause* column says what limits a verdict other than holds).", ""]
    shown = pd.DataFrame({
        "claim": claims["claim"],
        "verdict": claims["verdict"],
        "measured": claims["quantity"],
        "value [95% interval]": [_value_interval(v, lo, hi)
                                 for v, lo, hi in zip(claims["value"], claims["low"], claims["high"], strict=True)],
        "threshold": claims["threshold"],
    })
    if "mde" in claims.columns:  # scorecards before the minimum detectable effect have neither column
        shown["detectable (80% power)"] = claims["mde"]
        shown["paper"] = claims["paper_value"]
    lines += _list_table(shown)
    for verdict, column, what in ((UNTESTABLE, "needs", "needs"), (NOT_RUN, "cause", "not run")):
        if column not in claims.columns:
            continue
        for _, row in claims[claims["verdict"] == verdict].iterrows():
            lines += [f"- Claim {row['claim']} {what}: {_cell(row[column])}", ""]
    return lines


def _value_interval(value, low, high) -> str:
    if _number(value) is None:
        return _cell(value)
    if _number(low) is None or _number(high) is None:
        return _cell(value)
    return f"{_cell(value)} [{_cell(low)}, {_cell(high)}]"


def front_page(claims: Path | None, tables: dict[str, Path], figures: dict[str, Path], title: str,
               intro: str = "", pages: dict[str, list[Path]] | None = None, base: Path | None = None,
               run: Mapping | None = None) -> str:
    """The front page as reStructuredText. `pages`: folders of HTML pages by item name (the feature atlas), linked
    by their index.html's path relative to `base`, the folder of the report (a pure HTML report cannot hold
    folders, so they stay beside it). `run`: what the run was (describe_run), said first."""
    pages = pages or {}
    lines = [title, "=" * len(title), ""]
    if run is not None:
        lines += ["What this run was", "-" * 17, "", describe_run(run), ""]
    if claims is not None:  # the answer first
        lines += _claims_section(pd.read_csv(claims))
    if intro:
        lines += ["About this run", "-" * 14, "", intro.strip(), ""]
    lines += ["Section by section: the paper beside this run", "-" * 45, "",
              "Every table with the paper's values beside this run's (mean ± seed-to-seed sd where a network was "
              "trained with several seeds), and every figure, grouped by the paper's sections as in the report's "
              "categories.", ""]
    for category in sections.CATEGORIES[1:]:
        names = [n for n in dict.fromkeys([*figures, *tables, *pages]) if sections.item(n).category == category]
        if not names:
            continue
        heading = category.split(" ", 1)[1]
        lines += [heading, "~" * len(heading), ""]
        for name in sorted(names, key=list(sections.ITEMS).index):
            found = sections.item(name)
            if name in figures:
                lines += [f"- **{found.paper}**, {found.title}: `{Path(figures[name]).name}`_", ""]
            if name in pages:
                links = ", ".join(f"`{Path(path).name} <{os.path.relpath(Path(path) / 'index.html', base or '.')}>`__"
                                  for path in pages[name])
                lines += [f"- **{found.paper}**, {found.title}: {links} (folders beside the report)", ""]
            if name in tables:
                table = pd.read_csv(tables[name])
                compared = paper_beside_ours(table)
                lines += [f"- **{found.paper}**, {found.title}: `{Path(tables[name]).name}`_"
                          + ("" if compared is not None else " (no published values to compare)"), ""]
                if compared is not None:
                    lines += ["  " + line if line else "" for line in _list_table(compared)]
    return "\n".join(lines).rstrip() + "\n"

"""config/README.md cannot drift from the files it describes: every option row's `default` and `paper.yaml`
columns are read back and compared with config/config.yaml and config/paper.yaml as the workflow sees them
(merged, completed by the schema's defaults)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "config" / "README.md"
HEADER = re.compile(r"^\| key \|")
SECTION = re.compile(r"^## `([a-z_]+)`")
MISSING = object()


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _effective(*files: str) -> dict:
    from snakemake.utils import validate

    config: dict = {}
    for name in files:
        config = _merge(config, yaml.safe_load((REPO / name).read_text()))
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def _lookup(config: dict, dotted: str):
    value = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _cell(text: str | None):
    """The value a cell states: one backticked YAML value, possibly followed by words without code (e.g.
    "`0.01` (paper)"); None for prose, several values, or an elided list."""
    match = re.fullmatch(r"`([^`]+)`(?:\s[^`]*)?", (text or "").strip())
    if not match or "..." in match.group(1):
        return None
    try:
        return yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None


def _states(stated, actual) -> bool:
    """A stated mapping may give only the keys a user sets (the schema fills in the rest)."""
    if isinstance(stated, dict) and isinstance(actual, dict):
        return all(k in actual and _states(v, actual[k]) for k, v in stated.items())
    return stated == actual


def rows() -> list[tuple[int, str, str | None, str | None]]:
    """(line, dotted key, default cell, paper.yaml cell) of every option table of config/README.md; a cell is
    None where the table has no such column."""
    out, section, columns = [], "", []
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("## "):
            found = SECTION.match(line)
            section = found.group(1) if found else ""
            continue
        if HEADER.match(line):
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
            continue
        if not line.startswith("| `") or not columns:
            columns = columns if line.startswith("|") else []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        key = re.fullmatch(r"`([^`]+)`", cells[0])
        if not key or " " in key.group(1):
            continue  # e.g. "`a` / `b`": two keys in one row
        named = dict(zip(columns, cells, strict=False))
        out.append((number, f"{section}.{key.group(1)}" if section else key.group(1), named.get("default"),
                    named.get("paper.yaml")))
    return out


def test_the_readme_has_option_rows_in_every_section():
    keys = [key for _, key, _, _ in rows()]
    assert len(keys) > 100
    for top in ("resources", "data", "synthetic", "training", "transfer", "claims"):
        assert any(k.startswith(top + ".") for k in keys), top


@pytest.mark.parametrize("column, files", [(2, ("config/config.yaml",)),
                                           (3, ("config/config.yaml", "config/paper.yaml"))])
def test_every_stated_value_is_the_configurations(column, files):
    config = _effective(*files)
    wrong = []
    for number, key, default, paper in rows():
        stated = _cell(default if column == 2 else paper)
        if stated is None:
            continue
        actual = _lookup(config, key)
        if actual is MISSING:
            continue  # a row about an option's parts (e.g. `lr_schedule.kind`) or one not in this file
        if not _states(stated, actual):
            wrong.append(f"config/README.md:{number} {key}: states {stated!r}, {files[-1]} gives {actual!r}")
    assert not wrong, "\n".join(wrong)


def test_every_option_row_names_a_key_of_the_schema():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())

    def known(dotted: str) -> bool:
        node = schema
        for part in dotted.split("."):
            props = node.get("properties", {})
            if part in props:
                node = props[part]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            elif node.get("additionalProperties") is not False and not props:
                return True  # a free mapping (e.g. per-rule resources)
            else:
                return False
        return True

    unknown = [f"config/README.md:{n} {key}" for n, key, _, _ in rows() if not known(key)]
    assert not unknown, "\n".join(unknown)

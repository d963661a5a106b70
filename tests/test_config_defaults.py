"""The schema's defaults and config/config.yaml agree: a key left out of a config means the default study's value."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _resolve(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        node = {**_lookup(schema, node["$ref"]), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _lookup(schema: dict, ref: str) -> dict:
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _disagreements(value, node: dict, schema: dict, key: str = "") -> list[str]:
    """Dotted keys of config.yaml whose value differs from the default the schema states for them."""
    node = _resolve(node, schema)
    out = []
    # An object's default of {} only lets its properties' own defaults fill in; those are compared below.
    if "default" in node and node["default"] != value and not (node["default"] == {} and isinstance(value, dict)):
        out.append(f"{key}: config/config.yaml has {value!r}, the schema's default is {node['default']!r}")
    if isinstance(value, dict):
        for name, item in value.items():
            child = node.get("properties", {}).get(name)
            if child is not None:
                out += _disagreements(item, child, schema, f"{key}.{name}" if key else name)
    return out


def test_schema_defaults_equal_the_default_config():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert _disagreements(config, schema, schema) == []


def test_the_check_sees_a_disagreement():
    schema = {"properties": {"training": {"properties": {"lr": {"type": "number", "default": 0.01}}}}}
    assert _disagreements({"training": {"lr": 0.02}}, schema, schema) == [
        "training.lr: config/config.yaml has 0.02, the schema's default is 0.01"]

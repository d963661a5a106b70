"""Command-line option values given as JSON (config sections, image lists), with errors naming the option."""

from __future__ import annotations

import json
from typing import Any

from .errors import ConfigError


def parse_json(text: str, kind: type, option: str) -> Any:
    """`text` parsed as JSON and checked to be a `kind` (dict or list); a ConfigError names `option` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option}: could not parse JSON {text!r}: {err}") from err
    if not isinstance(value, kind):
        raise ConfigError(f"{option}: expected a JSON {'object' if kind is dict else 'list'}, got {text!r}")
    return value

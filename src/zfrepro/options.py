"""Command-line option values: JSON (config sections, image lists) and the device, with errors naming the option."""

from __future__ import annotations

import json
from typing import Any

import torch

from zfrepro.errors import ConfigError


def parse_json(text: str, kind: type, option: str) -> Any:
    """`text` parsed as JSON and checked to be a `kind` (dict or list); a ConfigError names `option` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option}: could not parse JSON {text!r}: {err}") from err
    if not isinstance(value, kind):
        raise ConfigError(f"{option}: expected a JSON {'object' if kind is dict else 'list'}, got {text!r}")
    return value


def resolve_device(device: str) -> torch.device:
    """The `device` option: auto -> cuda when visible, else cpu; a ConfigError when cuda is absent."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is visible; set device: auto or cpu")
    return torch.device(device)

"""Command-line option values and the device.

One encoding: an option whose value is not a single number, word or path (a list, a mapping, a boolean, a
value that may be null, a config section) takes JSON, so rules pass `to_json(...)` and never build flags.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zfrepro.errors import ConfigError

if TYPE_CHECKING:
    import torch


def parse_json(text: str, kind: type, option: str) -> Any:
    """`text` parsed as JSON and checked to be a `kind` (dict or list); a ConfigError names `option` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option}: could not parse JSON {text!r}: {err}") from err
    if not isinstance(value, kind):
        raise ConfigError(f"{option}: expected a JSON {'object' if kind is dict else 'list'}, got {text!r}")
    return value


_KIND_NAMES = {dict: "object", list: "list", bool: "true or false", str: "string", int: "integer", float: "number",
               type(None): "null"}


def json_arg(*kinds: type) -> Callable[[str], Any]:
    """An argparse `type`: the value parsed as JSON, one of `kinds`; argparse reports a bad one in one line."""

    def parse(text: str) -> Any:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"not JSON ({err.msg}): {text!r}") from None
        if isinstance(value, int) and not isinstance(value, bool) and float in kinds:
            value = float(value)  # JSON has one number type; 2 is a fine float
        if not any(type(value) is kind for kind in kinds):
            expected = " or ".join(_KIND_NAMES.get(kind, kind.__name__) for kind in kinds)
            raise argparse.ArgumentTypeError(f"expected JSON {expected}, got {text!r}")
        return value

    parse.__name__ = "JSON"  # argparse names the type in its message: "invalid JSON value"
    return parse


def json_list_of(kind: type) -> Callable[[str], list]:
    """An argparse `type`: a JSON list whose items are all `kind` (numbers may be integers)."""
    whole = json_arg(list)

    def parse(text: str) -> list:
        items = whole(text)
        ok = (int, float) if kind is float else (kind,)
        if any(isinstance(item, bool) or not isinstance(item, ok) for item in items):
            raise argparse.ArgumentTypeError(f"expected a JSON list of {_KIND_NAMES.get(kind, kind.__name__)}s, "
                                             f"got {text!r}")
        return [kind(item) for item in items]

    parse.__name__ = "JSON"
    return parse


def resolve_device(device: str) -> torch.device:
    """The `device` option: auto -> cuda when visible, else cpu; a ConfigError when cuda is absent. On CUDA it
    also allows TF32 and cuDNN autotuning, for the float32 analyses that call it (training sets its own)."""
    import torch  # here: the option parsers above are used by commands that never load torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is visible; set device: auto or cpu")
    if device == "cuda":
        # The analyses run in float32: TF32 tensor cores for their matrix products and convolutions (10-bit
        # mantissas, ample for rankings and softmax outputs), and cuDNN's autotuned kernels for their fixed shapes.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return torch.device(device)

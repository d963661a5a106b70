"""Option values: JSON parsed and type-checked, the device resolved, and errors that name the option."""

from __future__ import annotations

import pytest
import torch

from zfrepro.errors import ConfigError
from zfrepro.options import parse_json, resolve_device


def test_json_options_name_the_option():
    assert parse_json('{"a": 1}', dict, "--params") == {"a": 1}
    assert parse_json('[{"wnid": "n1", "nth": 0}]', list, "--images") == [{"wnid": "n1", "nth": 0}]
    with pytest.raises(ConfigError, match="--params: could not parse JSON"):
        parse_json("{a: 1", dict, "--params")
    with pytest.raises(ConfigError, match="--images: expected a JSON list"):
        parse_json('{"a": 1}', list, "--images")


def test_resolve_device_names_the_option_when_cuda_is_absent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device: cuda"):
        resolve_device("cuda")

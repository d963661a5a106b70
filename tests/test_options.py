"""JSON option values: parsed, type-checked, and errors that name the option."""

from __future__ import annotations

import pytest

from zfrepro.errors import ConfigError
from zfrepro.options import parse_json


def test_json_options_name_the_option():
    assert parse_json('{"a": 1}', dict, "--params") == {"a": 1}
    assert parse_json('[{"wnid": "n1", "nth": 0}]', list, "--images") == [{"wnid": "n1", "nth": 0}]
    with pytest.raises(ConfigError, match="--params: could not parse JSON"):
        parse_json("{a: 1", dict, "--params")
    with pytest.raises(ConfigError, match="--images: expected a JSON list"):
        parse_json('{"a": 1}', list, "--images")

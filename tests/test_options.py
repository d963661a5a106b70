"""zfrepro.options: JSON option values parsed and type-checked (hand-written cases of each rule), the device
resolved, and errors that name the option."""

from __future__ import annotations

import argparse

import pytest
import torch

from zfrepro.errors import ConfigError
from zfrepro.options import json_arg, json_list_of, parse_json, resolve_device


def test_json_options_name_the_option():
    assert parse_json('{"a": 1}', dict, "--params") == {"a": 1}
    assert parse_json('[{"wnid": "n1", "nth": 0}]', list, "--images") == [{"wnid": "n1", "nth": 0}]
    with pytest.raises(ConfigError, match="--params: could not parse JSON"):
        parse_json("{a: 1", dict, "--params")
    with pytest.raises(ConfigError, match="--images: expected a JSON list"):
        parse_json('{"a": 1}', list, "--images")


# ---------------------------------------------------------------------------------------------- json_arg


@pytest.mark.parametrize(
    ("kinds", "text", "expected"),
    [
        ((dict,), '{"a": [1, 2]}', {"a": [1, 2]}),
        ((list,), "[]", []),
        ((bool,), "true", True),
        ((bool,), "false", False),
        ((str,), '"conv5"', "conv5"),
        ((int,), "3", 3),
        ((float,), "2.5", 2.5),
        ((str, type(None)), "null", None),
        ((int, type(None)), "null", None),
        ((int, type(None)), "7", 7),
    ],
)
def test_json_arg_accepts_values_of_its_kinds(kinds, text, expected):
    value = json_arg(*kinds)(text)
    assert value == expected and type(value) is type(expected)


def test_json_arg_takes_an_integer_where_a_number_is_expected():
    # JSON has one number type: `2` is a fine float and comes back as one.
    value = json_arg(float)("2")
    assert value == 2.0 and type(value) is float
    assert type(json_arg(int, float)("2")) is float


@pytest.mark.parametrize(
    ("kinds", "text", "message"),
    [
        ((float,), "true", "expected JSON number, got 'true'"),  # bool is an int subclass in Python, not in JSON
        ((int,), "false", "expected JSON integer, got 'false'"),
        ((int,), "2.5", "expected JSON integer, got '2.5'"),
        ((int,), "2.0", "expected JSON integer, got '2.0'"),
        ((str,), "null", "expected JSON string, got 'null'"),  # null only where it is allowed
        ((dict,), "null", "expected JSON object, got 'null'"),
        ((bool,), '"true"', "expected JSON true or false, got '\"true\"'"),
        ((dict,), "[1]", "expected JSON object, got '[1]'"),
        ((str, type(None)), "3", "expected JSON string or null, got '3'"),
    ],
)
def test_json_arg_rejects_other_kinds_naming_what_it_expected(kinds, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        json_arg(*kinds)(text)
    assert str(err.value) == message


def test_json_arg_rejects_text_that_is_not_json():
    with pytest.raises(argparse.ArgumentTypeError, match=r"^not JSON \(Expecting value\): 'conv5'$"):
        json_arg(str)("conv5")  # a bare word: strings are quoted in JSON


def test_argparse_reports_a_bad_json_value_in_one_line_naming_the_option(capsys):
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--scale", type=json_arg(float))
    parser.add_argument("--layers", type=json_list_of(str))
    assert parser.parse_args(["--scale", "1", "--layers", '["conv1"]']) == argparse.Namespace(scale=1.0,
                                                                                             layers=["conv1"])
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--scale", "true"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "prog: error: argument --scale: expected JSON number, got 'true'"


# ---------------------------------------------------------------------------------------------- json_list_of


def test_json_list_of_floats_takes_integers_and_returns_floats():
    value = json_list_of(float)("[1, 2.5, -3]")
    assert value == [1.0, 2.5, -3.0] and all(type(v) is float for v in value)
    assert json_list_of(float)("[]") == []


def test_json_list_of_keeps_items_of_its_kind():
    assert json_list_of(str)('["conv5", "fc7"]') == ["conv5", "fc7"]
    assert json_list_of(int)("[0, 1]") == [0, 1]


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (float, "[1, true]", "expected a JSON list of numbers, got '[1, true]'"),  # a bool is no number
        (int, "[false]", "expected a JSON list of integers, got '[false]'"),
        (int, "[1, 1.5]", "expected a JSON list of integers, got '[1, 1.5]'"),
        (str, '["conv5", null]', "expected a JSON list of strings, got '[\"conv5\", null]'"),  # no null items
        (float, "[null]", "expected a JSON list of numbers, got '[null]'"),
        (str, '[["conv5"]]', "expected a JSON list of strings, got '[[\"conv5\"]]'"),
    ],
)
def test_json_list_of_rejects_items_of_other_kinds(kind, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        json_list_of(kind)(text)
    assert str(err.value) == message


def test_json_list_of_rejects_what_is_not_a_list():
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected JSON list, got 'null'$"):
        json_list_of(str)("null")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected JSON list, got '\"conv5\"'$"):
        json_list_of(str)('"conv5"')


# ---------------------------------------------------------------------------------------------- device


def test_resolve_device_names_the_option_when_cuda_is_absent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device: cuda"):
        resolve_device("cuda")

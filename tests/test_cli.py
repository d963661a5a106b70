"""zfrepro.cli: the command list matches the modules that implement it, `--help` shows every command, and bad
input ends in one error line (exit 2) instead of a traceback."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zfrepro.cli import COMMANDS, build_parser, main
from zfrepro.commands.training import table2_command


@pytest.mark.parametrize(("name", "module"), [(name, module) for name, module, _ in COMMANDS])
def test_every_command_module_defines_its_parser_and_command(name, module):
    mod = importlib.import_module(f"zfrepro.{module}")
    stem = name.replace("-", "_")
    assert callable(getattr(mod, f"configure_{stem}_parser", None)), f"zfrepro.{module}.configure_{stem}_parser"
    assert callable(getattr(mod, f"{stem}_command", None)), f"zfrepro.{module}.{stem}_command"


def test_command_names_are_unique():
    names = [name for name, _, _ in COMMANDS]
    assert len(names) == len(set(names))


def test_help_lists_every_command_with_its_help():
    # The installed console script, as users and the workflow's rules call it; wide COLUMNS: one line per command.
    script = Path(sys.executable).parent / "zfrepro"
    res = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "300"})
    assert res.returncode == 0, res.stderr
    choices = re.search(r"\{([a-z0-9,-]+)\}", res.stdout).group(1).split(",")
    assert choices == [name for name, _, _ in COMMANDS]  # in the order of the study
    for name, _, help in COMMANDS:
        assert re.search(rf"^ +{re.escape(name)} +{re.escape(help)}$", res.stdout, re.MULTILINE), name


def _modules_after(code: str) -> set[str]:
    """The zfrepro, matplotlib and scikit-learn modules a fresh interpreter holds after running `code`."""
    show = ("import sys; "
            "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('zfrepro', 'matplotlib', 'sklearn')))")
    res = subprocess.run([sys.executable, "-c", f"{code}; {show}"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return set(res.stdout.split())


def test_a_command_imports_only_what_its_own_module_needs():
    # Every workflow job is one command: importing every command's module (matplotlib, scikit-learn, ...) each
    # time would cost seconds.
    loaded = _modules_after("from zfrepro.cli import build_parser; build_parser('table2')")
    assert loaded == _modules_after("import zfrepro.commands.training") | {"zfrepro.cli"}
    assert not {m for m in loaded if m.startswith(("matplotlib", "sklearn"))}
    # the command module reaches the rooms below only when its command runs
    assert not {m for m in loaded if m.startswith(("zfrepro.report", "zfrepro.model", "zfrepro.analysis"))}


def test_build_parser_wires_each_command_to_its_function():
    parser = build_parser()
    args = parser.parse_args(["table2", "--rows", '{"1 convnet as per Fig 3": ["a.pt"]}', "--out-csv", "t.csv",
                              "--out-md", "t.md"])

    assert args.func is table2_command and args.rows == {"1 convnet as per Fig 3": ["a.pt"]}
    assert args.threads == 1  # every command takes --threads


def test_a_json_option_of_the_wrong_kind_is_one_argparse_error_naming_the_option(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["table2", "--rows", "[1]", "--out-csv", str(tmp_path / "t.csv"), "--out-md", str(tmp_path / "t.md")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert errors == ["zfrepro table2: error: argument --rows: expected JSON object, got '[1]'"]
    assert "Traceback" not in err and not (tmp_path / "t.csv").exists()


def test_a_json_option_that_is_not_json_names_the_option(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["table2", "--rows", "{rows}", "--out-csv", str(tmp_path / "t.csv"), "--out-md", str(tmp_path / "t.md")])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("zfrepro table2: error: argument --rows: not JSON (") and last.endswith("'{rows}'")


def test_main_turns_a_zferror_into_exit_2_and_one_line(capsys, tmp_path):
    # An unknown Table 2 row is a ConfigError raised inside the command, after parsing succeeded.
    code = main(["table2", "--rows", '{"my model": ["x.pt"]}', "--out-csv", str(tmp_path / "t.csv"),
                 "--out-md", str(tmp_path / "t.md")])
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("zfrepro table2: error: tables.table2: 'my model' is not a row of the paper's Table 2")
    assert captured.out == "" and not (tmp_path / "t.csv").exists()


def test_main_returns_0_when_the_command_succeeds(tmp_path):
    # `table3` from a hand-written metrics file: a command that needs no trained model.
    metrics = tmp_path / "zf.json"
    metrics.write_text(json.dumps({
        "arch": "zf", "seed": 0, "epochs": 1, "num_classes": 3, "chance_top1_error": 66.7,
        "train_subset_images": 12, "val_images": 24, "parameters": 1,
        "train": {"top1_error": 10.0, "top5_error": 0.0},
        "val": {"center": {"top1_error": 20.0, "top5_error": 0.0}, "ten": {"top1_error": 25.0, "top5_error": 0.0}},
    }))
    code = main(["table3", "--metrics", json.dumps({"our model (Fig 3)": str(metrics)}),
                 "--out-csv", str(tmp_path / "t3.csv"), "--out-md", str(tmp_path / "t3.md")])
    assert code == 0
    assert (tmp_path / "t3.md").read_text().startswith("# Table 3")


def test_a_full_disk_anywhere_in_a_command_is_one_line(monkeypatch, capsys):
    import argparse
    import errno

    import zfrepro.cli

    def full(args):  # a command whose own write (not through zfrepro.io) finds the disk full
        raise OSError(errno.ENOSPC, "No space left on device", "results/demo/data/synthetic/voc/x.jpg")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=full, command="table2")
    monkeypatch.setattr(zfrepro.cli, "build_parser", lambda command=None: parser)
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "zfrepro table2: error: no space left on device writing results/demo/data/synthetic/voc/x.jpg: free space "
        "and rerun; nothing finished was lost (every result is written whole or not at all)\n")

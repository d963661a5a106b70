"""Checks run before Snakemake, so that two mistakes end in one line instead of a traceback.

- The `--configfile` files: Snakemake loads them before the Snakefile runs, and says "Config file is not
  valid JSON or YAML" without the file or the line, or prints a traceback for a missing file.
- A lock left in .snakemake/locks by a killed run: every later run stops with a LockException. When no
  snakemake or zfrepro process works in the folder any more, `snakemake --unlock` removes it.

`make reproduce`, `make report` and `make dry-run` run `python -m zfrepro.preflight [--if-running note] -- ARGS`
with their Snakemake arguments; the Snakefile uses config_file_problem for config/config.yaml. `--results-dir`
prints the configuration's results folder instead (where `make` writes the report).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

CONFIGFILE_OPTIONS = ("--configfile", "--configfiles")  # nargs="+" in Snakemake
DIRECTORY_OPTIONS = ("--directory", "-d")
CONFIG_OPTIONS = ("--config", "-C")  # nargs="*" in Snakemake: key=value pairs
DEFAULT_CONFIG = "config/config.yaml"
DEFAULT_RESULTS_DIR = "results/demo"  # the schema's default (workflow/schemas/config.schema.yaml)
WORKER = re.compile(r"snakemake|zfrepro")  # a workflow run, or a job it started (these can outlive it)


def config_file_problem(path: str | os.PathLike) -> str | None:
    """One line naming the file (and the line and column of a YAML error) and what to do; None if it loads.

    Loads the file as Snakemake does: JSON, else YAML, and it must be a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"config file {path} not found (relative to {os.getcwd()}): check the path, e.g. config/paper.yaml."
    except (OSError, UnicodeDecodeError) as err:
        return f"config file {path} cannot be read ({getattr(err, 'strerror', None) or err}): give a YAML file."
    try:
        loaded = json.loads(text)
    except ValueError:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            return _yaml_message(path, err)
    if not isinstance(loaded, dict):
        return (f"config file {path} holds {type(loaded).__name__ if loaded is not None else 'nothing'}, not "
                "`key: value` settings at the top level: see config/README.md.")
    return None


def _yaml_message(path, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return f"config file {path} is not valid YAML ({err}): fix it (config/README.md describes the keys)."
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}"
    problem = getattr(err, "problem", None) or "syntax error"
    context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and start is not None and start.line != mark.line:
        problem += f" ({context} from line {start.line + 1})"
    return (f"config file {where}: {problem}; fix the YAML there (indent with spaces, not tabs; close every [ and "
            "{; quote text that contains ': ').")


def option_values(args: list[str], names: tuple[str, ...], many: bool = False) -> list[str]:
    """The values of an option among Snakemake's arguments: `--opt a` (`many`: up to the next option) or `--opt=a`."""
    values, taking = [], False
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq and name in names:
            values.append(value)
            taking = False
        elif arg in names:
            taking = True
        elif arg.startswith("-"):
            taking = False
        elif taking:
            values.append(arg)
            taking = many
    return values


def results_dir(args: list[str]) -> str:
    """The results_dir a Snakemake run with `args` uses, merged as Snakemake merges it: config/config.yaml (unless
    --replace-workflow-config), then each --configfile, then `--config results_dir=...`; else the schema default."""
    value = DEFAULT_RESULTS_DIR
    files = [] if "--replace-workflow-config" in args else [DEFAULT_CONFIG]
    for path in [*files, *option_values(args, CONFIGFILE_OPTIONS, many=True)]:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue  # main() reports a broken --configfile first
        if isinstance(loaded, dict) and loaded.get("results_dir"):
            value = str(loaded["results_dir"])
    for pair in option_values(args, CONFIG_OPTIONS, many=True):
        key, eq, given = pair.partition("=")
        if eq and key == "results_dir":
            value = given
    return value


def lock_files(workdir: Path) -> list[Path]:
    """Snakemake's lock files (<n>.input.lock, <n>.output.lock); the empty folder is always there."""
    return sorted(p for p in (workdir / ".snakemake" / "locks").glob("*.lock") if p.is_file())


def _ancestors() -> set[int]:
    """This process and its parents (make, the recipe's shell): their command lines mention zfrepro too."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            break
        pid = int(re.search(r"^PPid:\s*(\d+)", status, re.M).group(1))
    return pids


def workers(workdir: Path) -> list[tuple[int, str]] | None:
    """(pid, command line) of processes working in `workdir` (or below it) that mention snakemake or zfrepro.

    None where /proc is absent (macOS). Other users' processes are not readable and are not listed.
    """
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return None
    root, skip, found = workdir.resolve(), _ancestors(), []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone, a zombie, or another user's
            continue
        if (cwd == root or root in cwd.parents) and WORKER.search(command):
            found.append((int(entry.name), command))
    return sorted(found)


def check_lock(workdir: Path, stop_if_running: bool = True) -> int:
    """Remove a stale lock, or say (one line) what still runs; 1 when the caller should stop."""
    if not lock_files(workdir):
        return 0
    locks = workdir.resolve() / ".snakemake" / "locks"
    running = workers(workdir)
    if running is None:
        print(f"note: {locks} holds a lock; if no Snakemake run is going on in {workdir} (a killed run leaves "
              "one), type `make unlock` (or `snakemake --unlock`).", file=sys.stderr)
        return 0
    if running:
        pids = " ".join(str(pid) for pid, _ in running)
        who = f"pid {pids} still works" if len(running) == 1 else f"pids {pids} still work"
        print(f"{'error' if stop_if_running else 'note'}: {locks} holds a lock and {who} in this folder "
              f"({running[-1][1][:100]}): let it finish or stop it (kill {pids}), then run again; if it is not a run "
              "of this workflow, type `make unlock`.", file=sys.stderr)
        return 1 if stop_if_running else 0
    directory = [] if workdir.resolve() == Path.cwd().resolve() else ["--directory", str(workdir)]
    res = subprocess.run([sys.executable, "-m", "snakemake", "--unlock", *directory],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        return 1
    print(f"Removed the lock a killed run left in {locks} (no snakemake or zfrepro process works here): "
          "ran `snakemake --unlock`.", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-running", choices=["stop", "note"], default="stop",
                        help="when a process still works in the folder: stop (exit 1) or only print a note")
    parser.add_argument("--results-dir", action="store_true",
                        help="only print the results folder of the configuration these arguments select")
    parser.add_argument("snakemake_args", nargs="*", help="the Snakemake arguments, after --")
    args = parser.parse_args(argv)
    if args.results_dir:
        print(results_dir(args.snakemake_args))
        return 0
    for path in option_values(args.snakemake_args, CONFIGFILE_OPTIONS, many=True):
        problem = config_file_problem(path)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
    directory = option_values(args.snakemake_args, DIRECTORY_OPTIONS)
    return check_lock(Path(directory[-1] if directory else "."), stop_if_running=args.if_running == "stop")


if __name__ == "__main__":
    sys.exit(main())

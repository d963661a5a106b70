"""Checks run before Snakemake, so that two mistakes end in one line instead of a traceback.

- The `--configfile` files: Snakemake loads them before the Snakefile runs, and says "Config file is not
  valid JSON or YAML" without the file or the line, or prints a traceback for a missing file.
- A lock left in .snakemake/locks by a killed run: every later run stops with a LockException. When no
  snakemake or zfrepro process works in the folder any more, `snakemake --unlock` removes it.

- A `--config` item that is not `key=value`: Snakemake answers it with a traceback.

`make reproduce`, `make report` and `make dry-run` run `python -m zfrepro.preflight [--if-running note] -- ARGS`
with their Snakemake arguments; the Snakefile uses config_file_problem for config/config.yaml and
results_dir_problem for the results_dir key. `--results-dir` prints the configuration's results folder instead
(where `make` writes the report); `--clean` and `--unlock` are `make clean` and `make unlock`.

Deleting is only ever of what the workflow wrote: `--clean` removes a results folder only when results_dir is a
folder of its own (not the checkout, an ancestor of it, one of the repository's folders, the home folder or a
system folder) and carries the mark every run writes there (RESULTS_MARK); `--unlock` removes a lock only when no
process works in the folder, unless forced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
RESULTS_MARK = ".zfrepro-results"  # written by every run into its results folder (Snakefile, onstart)
# The repository's own folders: results written there would mix with the code (and `make clean` delete it).
REPOSITORY_FOLDERS = ("src", "config", "workflow", "tests", "docs", "benchmarks", ".git", ".venv", ".ci", ".snakemake")
# System folders: never a results folder, nor anything inside the first group.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr",
                "/System", "/Library", "/Applications", "/private")
SYSTEM_FOLDERS = ("/", "/home", "/media", "/mnt", "/opt", "/root", "/srv", "/tmp", "/var", "/var/tmp", "/Users",
                  "/Volumes")


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


def results_dir_problem(value: str, workdir: str | os.PathLike = ".", repo: str | os.PathLike | None = None
                        ) -> str | None:
    """One line if `value` (config results_dir, relative to `workdir`) is not a folder of its own that the workflow
    may fill and `make clean` delete: the checkout or an ancestor of it, a folder of the repository (`repo`, the
    folder holding the Snakefile; `workdir` by default) or inside one, results/ itself, the home folder, or a
    system folder; None if it is fine."""
    if not str(value).strip():
        return "config results_dir is empty: give a folder of its own, e.g. results/mine."
    here = Path(workdir).resolve()
    target = (here / Path(value).expanduser()).resolve()
    checkouts = {here, Path(repo).resolve() if repo is not None else here}
    what = None
    for root in checkouts:
        if target == root or target in root.parents:
            what = "the checkout itself" if target == root else f"a folder that holds the checkout {root}"
        elif target == root / "results":
            what = "the folder that holds every configuration's results folder"
        else:
            for name in REPOSITORY_FOLDERS:
                folder = root / name
                if target == folder or folder in target.parents:
                    what = f"the repository's own folder {name}/" + ("" if target == folder else " (inside it)")
    home = Path.home().resolve()
    if what is None and (target == home or target in home.parents):
        what = "the home folder" if target == home else "a folder that holds the home folder"
    if what is None:
        for folder in map(Path, SYSTEM_TREES):
            if target == folder.resolve() or folder.resolve() in target.parents:
                what = f"the system folder {folder}" + ("" if target == folder.resolve() else " (inside it)")
        if target in {Path(folder).resolve() for folder in SYSTEM_FOLDERS}:
            what = f"the system folder {target}"
    if what is None:
        return None
    return (f"config results_dir {value!r} is {what}: the workflow writes every output there and `make clean` "
            "deletes it; give a folder of its own, e.g. results/mine.")


def mark_results_dir(root: str | os.PathLike) -> None:
    """Write the mark `make clean` looks for (RESULTS_MARK) into a results folder, when a run starts there."""
    mark = Path(root) / RESULTS_MARK
    if not mark.exists():
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text("A results folder of the zfrepro workflow: `make clean` deletes it (with the configuration "
                        "that names it as results_dir).\n")


def config_pair_problem(args: list[str]) -> str | None:
    """One line for a `--config` item that is not key=value (Snakemake answers it with a traceback)."""
    for pair in option_values(args, CONFIG_OPTIONS, many=True):
        key, eq, _ = pair.partition("=")
        if not eq or not key.strip():
            return (f"--config {pair!r} is not key=value: write e.g. --config results_dir=results/mine "
                    "(nested keys as YAML: --config training='{epochs: 20}').")
    return None


def clean(args: list[str], workdir: Path = Path(".")) -> int:
    """`make clean`: delete the configuration's results folder, if it is a folder of its own, carries the mark a run
    of this workflow wrote there and no process works in the checkout; say what is removed."""
    value = results_dir(args)
    if problem := results_dir_problem(value, workdir):
        print(f"make clean: error: {problem} Nothing was removed.", file=sys.stderr)
        return 1
    folder = workdir / value
    if not folder.exists():
        print(f"make clean: {folder} does not exist: nothing to remove.", file=sys.stderr)
        return 0
    if not folder.is_dir() or not (folder / RESULTS_MARK).is_file():
        print(f"make clean: error: {folder} has no {RESULTS_MARK}, the mark every run of this workflow writes in its "
              "results folder, so it is not removed: it was not written by this workflow (or by a version before "
              "the mark); delete it by hand if you mean to.", file=sys.stderr)
        return 1
    running = workers(workdir)
    if running:
        pids = " ".join(str(pid) for pid, _ in running)
        print(f"make clean: error: pid(s) {pids} still work in this folder ({running[-1][1][:100]}): let them finish "
              f"or stop them (kill {pids}), then clean; nothing was removed.", file=sys.stderr)
        return 1
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    print(f"make clean: removing {folder} ({len(files)} files, {size / 1e6:.1f} MB): the results of this "
          "configuration.", file=sys.stderr)
    shutil.rmtree(folder)
    return 0


def unlock(workdir: Path, force: bool = False) -> int:
    """`make unlock`: remove Snakemake's lock only when no process works in the folder (else name them), or when
    forced."""
    if not lock_files(workdir):
        print(f"make unlock: no lock in {workdir.resolve() / '.snakemake' / 'locks'}: nothing to do.", file=sys.stderr)
        return 0
    running = workers(workdir)
    if running and not force:
        pids = " ".join(str(pid) for pid, _ in running)
        print(f"make unlock: error: the lock is kept: pid(s) {pids} still work in this folder "
              f"({running[-1][1][:100]}), and removing their lock lets a second run overwrite what they write. Let "
              f"them finish or stop them (kill {pids}); if you are sure they are not a run of this workflow, "
              "`make unlock FORCE=1`.", file=sys.stderr)
        return 1
    return _snakemake_unlock(workdir, forced=bool(running))


def _snakemake_unlock(workdir: Path, forced: bool = False) -> int:
    """Run `snakemake --unlock` in `workdir` and say so in one line."""
    directory = [] if workdir.resolve() == Path.cwd().resolve() else ["--directory", str(workdir)]
    res = subprocess.run([sys.executable, "-m", "snakemake", "--unlock", *directory],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        return 1
    locks = workdir.resolve() / ".snakemake" / "locks"
    what = ("in {} (forced, although processes still work here)" if forced else
            "a killed run left in {} (no snakemake or zfrepro process works here)").format(locks)
    print(f"Removed the lock {what}: ran `snakemake --unlock`.", file=sys.stderr)
    return 0


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
              "one), type `make unlock`.", file=sys.stderr)
        return 0
    if running:
        pids = " ".join(str(pid) for pid, _ in running)
        who = f"pid {pids} still works" if len(running) == 1 else f"pids {pids} still work"
        print(f"{'error' if stop_if_running else 'note'}: {locks} holds a lock and {who} in this folder "
              f"({running[-1][1][:100]}): let it finish or stop it (kill {pids}), then run again; if you are sure it "
              "is not a run of this workflow, type `make unlock FORCE=1`.", file=sys.stderr)
        return 1 if stop_if_running else 0
    return _snakemake_unlock(workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-running", choices=["stop", "note"], default="stop",
                        help="when a process still works in the folder: stop (exit 1) or only print a note")
    parser.add_argument("--results-dir", action="store_true",
                        help="only print the results folder of the configuration these arguments select")
    parser.add_argument("--clean", action="store_true",
                        help="delete the configuration's results folder (make clean), if the workflow wrote it")
    parser.add_argument("--unlock", action="store_true",
                        help="remove Snakemake's lock (make unlock), only when no process works in the folder")
    parser.add_argument("--force", action="store_true", help="with --unlock: remove the lock even then")
    parser.add_argument("snakemake_args", nargs="*", help="the Snakemake arguments, after --")
    args = parser.parse_args(argv)
    directory = option_values(args.snakemake_args, DIRECTORY_OPTIONS)
    workdir = Path(directory[-1] if directory else ".")
    if args.results_dir:
        print(results_dir(args.snakemake_args))
        return 0
    if args.clean:
        return clean(args.snakemake_args, workdir)
    if args.unlock:
        return unlock(workdir, force=args.force)
    if problem := config_pair_problem(args.snakemake_args):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    for path in option_values(args.snakemake_args, CONFIGFILE_OPTIONS, many=True):
        problem = config_file_problem(path)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
    return check_lock(workdir, stop_if_running=args.if_running == "stop")


if __name__ == "__main__":
    sys.exit(main())

"""The package's layers point one way, without cycles, and no private name crosses a module (benchmarks included).

Rooms, lowest first: the base helpers (errors, io, progress, options, parallel) <- data <- model <- analysis and
transfer (side by side) <- report <- commands (with cli and preflight on top). Every import is read with ast,
those inside functions too, since a lazy import hides a back-import or a cycle as well as a top-level one does.
A violation names its file and line.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "zfrepro"
BENCHMARKS = REPO / "benchmarks"

RANK = {"errors": 0, "io": 0, "progress": 0, "options": 0, "parallel": 0,
        "data": 1, "model": 2, "analysis": 3, "transfer": 3, "report": 4, "commands": 5}
TOP = 6  # cli, preflight, workflow, __main__ and anything not listed: they may import every room


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    names: tuple[str, ...]  # the names taken from it (from-imports)
    path: Path
    line: int


def module_names(package: Path, benchmarks: Path | None) -> dict[str, Path]:
    """{dotted module name: file}: the package's modules, and each benchmark script under its own name (the
    scripts import each other by plain name, from their folder)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    if benchmarks is not None:
        for path in sorted(benchmarks.glob("*.py")):
            out[f"benchmarks:{path.stem}"] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(modules: dict[str, Path]) -> Iterator[Import]:
    """Every import statement of every module, resolved to the modules it reaches."""
    for mod, path in modules.items():
        benchmark = mod.startswith("benchmarks:")
        package_parts = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _resolve(f"benchmarks:{alias.name}" if benchmark else alias.name, modules) or \
                        _resolve(alias.name, modules)
                    if target:
                        yield Import(mod, target, (), path, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package_parts[: len(package_parts) - node.level + 1] + ([base] if base else []))
                if benchmark and _resolve(f"benchmarks:{base}", modules):
                    base = f"benchmarks:{base}"
                target = _resolve(base, modules)
                names = tuple(a.name for a in node.names)
                # `from pkg import module` reaches the module itself
                submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
                for sub in submodules:
                    yield Import(mod, sub, (), path, node.lineno)
                if target:
                    rest = tuple(n for n in names if f"{base}.{n}" not in modules)
                    if rest or not submodules:
                        yield Import(mod, target, rest, path, node.lineno)


def room(mod: str) -> str:
    if mod.startswith("benchmarks:"):
        return "benchmarks"
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(mod: str) -> int:
    return RANK.get(room(mod), TOP)


def _own_package(imp: Import, modules: dict[str, Path]) -> bool:
    """A module importing its own package's __init__ (or an __init__ its submodules): not an edge of the
    layering, as import_layers.py treats it."""
    a, b = imp.source, imp.target
    return (modules[b].name == "__init__.py" and a.startswith(b + ".")) or \
        (modules[a].name == "__init__.py" and b.startswith(a + "."))


def back_imports(modules: dict[str, Path]) -> list[str]:
    out = []
    for imp in imports(modules):
        if imp.source == imp.target or _own_package(imp, modules) or room(imp.target) == "benchmarks":
            continue
        if rank(imp.target) > rank(imp.source):
            out.append(f"{imp.path.relative_to(REPO) if imp.path.is_relative_to(REPO) else imp.path}:{imp.line} "
                       f"{imp.source} imports {imp.target} (room {room(imp.source) or 'top'} -> "
                       f"{room(imp.target) or 'top'}, up the layers)")
    return out


def cycles(modules: dict[str, Path]) -> list[str]:
    """Strongly connected sets of modules (Tarjan), each named with the file and line of one of its imports."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for imp in imports(modules):
        if imp.source != imp.target and not _own_package(imp, modules):
            edges[imp.source].setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in modules:
        if v not in index:
            visit(v)
    out = []
    for component in found:
        where = [f"{e.path.name}:{e.line} imports {e.target}" for m in component for t, e in edges[m].items()
                 if t in component]
        out.append(f"cycle: {' <-> '.join(component)} ({'; '.join(where)})")
    return out


def private_names(modules: dict[str, Path]) -> list[str]:
    """`from module import _name` from another module, and `module._name` on an imported module."""
    out = []
    for imp in imports(modules):
        for name in imp.names:
            if name.startswith("_") and not name.startswith("__") and imp.source != imp.target:
                out.append(f"{imp.path}:{imp.line} {imp.source} uses the private name {imp.target}.{name}")
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        aliases = {}  # local name -> module, for `import a.b as m` and `from a import b` (b a module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname and a.name in modules:
                        aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    if f"{node.module}.{a.name}" in modules:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                out.append(f"{path}:{node.lineno} {mod} uses the private name {aliases[node.value.id]}.{node.attr}")
    return out


def violations(package: Path = PACKAGE, benchmarks: Path | None = BENCHMARKS) -> list[str]:
    modules = module_names(package, benchmarks)
    return back_imports(modules) + cycles(modules) + private_names(modules)


# ---------------------------------------------------------------------------------------------- the tree as it is


def test_the_package_and_benchmarks_have_no_back_import_cycle_or_private_name():
    found = violations()
    assert not found, "\n".join(found)


def test_every_room_of_the_package_is_ranked():
    rooms = {room(m) for m in module_names(PACKAGE, None)} - {""}
    top_level_files = {"cli", "preflight", "workflow", "__main__"}  # above every room
    assert rooms - set(RANK) <= top_level_files, rooms - set(RANK)


def test_imports_inside_functions_are_read():
    # the commands reach the rooms below inside each command: they must be seen
    lazy = [i for i in imports(module_names(PACKAGE, None)) if i.source == "zfrepro.commands.report"]
    assert any(i.target == "zfrepro.report.claims" for i in lazy)


# ---------------------------------------------------------------------------------------------- planted violations


@pytest.fixture
def copy(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "src" / "zfrepro"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    benchmarks = tmp_path / "benchmarks"
    shutil.copytree(BENCHMARKS, benchmarks, ignore=shutil.ignore_patterns("__pycache__"))
    return package, benchmarks


def _plant(path: Path, code: str) -> int:
    """Append `code` to `path`; the line number of its first line."""
    text = path.read_text()
    path.write_text(text + "\n" + code)
    return text.count("\n") + 2


def test_a_planted_back_import_inside_a_function_fails_naming_its_file_and_line(copy):
    package, benchmarks = copy
    line = _plant(package / "data" / "prepare.py", "def _planted():\n    from zfrepro.report import paper\n")
    found = violations(package, benchmarks)
    assert [v for v in found if "up the layers" in v] == \
        [f"{package / 'data' / 'prepare.py'}:{line + 1} zfrepro.data.prepare imports zfrepro.report.paper "
         "(room data -> report, up the layers)"]


def test_a_planted_import_of_the_commands_from_a_room_fails(copy):
    package, benchmarks = copy
    _plant(package / "report" / "tables.py", "import zfrepro.commands.training\n")
    assert any("zfrepro.report.tables imports zfrepro.commands.training" in v for v in violations(package, benchmarks))


def test_a_planted_cycle_fails(copy):
    package, benchmarks = copy
    # transfer.splits is imported by transfer.features; a function-level import back closes a cycle
    line = _plant(package / "transfer" / "splits.py", "def _planted():\n    from zfrepro.transfer import features\n")
    found = [v for v in violations(package, benchmarks) if v.startswith("cycle")]
    assert len(found) == 1 and "zfrepro.transfer.features <-> zfrepro.transfer.splits" in found[0]
    assert f"splits.py:{line + 1} imports zfrepro.transfer.features" in found[0]


def test_a_planted_cycle_between_benchmarks_fails(copy):
    package, benchmarks = copy
    _plant(benchmarks / "data_sources.py", "def _planted():\n    import data_path\n")
    found = [v for v in violations(package, benchmarks) if v.startswith("cycle")]
    assert len(found) == 1 and "benchmarks:data_path" in found[0] and "benchmarks:data_sources" in found[0]


@pytest.mark.parametrize("code", ["from zfrepro.model.spec import _trace\n",
                                  "import zfrepro.model.spec as spec\nspec._trace\n"])
def test_a_planted_private_name_fails(copy, code):
    package, benchmarks = copy
    _plant(package / "analysis" / "mining.py", code)
    found = violations(package, benchmarks)
    assert len(found) == 1 and "uses the private name zfrepro.model.spec._trace" in found[0]

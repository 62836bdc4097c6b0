"""The rooms of ivr/ are a contract: layers, no cycles, small modules, one exception tree, a wheel
that carries every room. Each test names what broke and where."""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ivr"
MAX_LINES = 400
ROOMS = ("core", "store", "web", "outbound", "phone", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Every ivr module `name` imports, at the top or inside a function; `from pkg import mod` names mod."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 parents
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                found.add(target)
    return found


def _external_imports(name: str) -> set[str]:
    """Every dotted non-ivr module `name` imports, anywhere in it."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in found if n != "ivr" and not n.startswith("ivr.")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_rooms_are_there():
    missing = [room for room in ROOMS if not (PACKAGE / room / "__init__.py").is_file()]
    assert missing == []
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "errors.py", "hooks.py", "settings.py", "testing.py"]


def test_the_layer_contracts_hold():
    """import-linter's contracts in pyproject.toml: rooms as layers, a core without I/O, YAML only in the loader."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is missing: pip install -r requirements.txt")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[result.stdout.find("Contracts") :] + result.stderr


def test_no_import_cycles_counting_imports_inside_functions():
    graph = {name: _imports(name) for name in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: a two-module loop and a three-module loop are both reported."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(graph) == [["a", "b"], ["c", "d", "e"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines; split it by concept"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("ivr.core")))
def test_the_core_reaches_no_network_or_process(name):
    io = {"twilio.rest", "twilio.http", "urllib.request", "http.client", "http.server", "socketserver"}
    reached = {m for m in _external_imports(name) if any(m == f or m.startswith(f + ".") for f in io)}
    assert reached == set(), f"{name} imports {sorted(reached)}"


def test_every_exception_class_lives_in_errors():
    strays = []
    for name in MODULES:
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and name != "ivr.errors"
            ):
                strays.append(f"{name}.{attr}")
    assert strays == []


def test_the_wheel_carries_every_room_and_the_static_files(tmp_path):
    """`pip install .` packages each subpackage, the flow schema and the browser phone's files."""
    source = tmp_path / "src"
    source.mkdir()
    shutil.copytree(PACKAGE, source / "ivr", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "dist").glob("ivr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ivr/{room}/__init__.py" for room in ROOMS}
    expected |= {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    expected |= {"ivr/core/loader/flow.schema.json"}
    expected |= {f"ivr/web/static/phone/{f}" for f in ("index.html", "phone.css", "phone.js")}
    expected |= {f"ivr/web/static/reports/{f}" for f in ("reports.css", "reports.js")}
    expected |= {
        f"ivr/web/templates/reports/{f}"
        for f in ("flow.html", "index.html", "layout.html", "login.html", "window.html")
    }
    assert expected - names == set()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ivr = ivr.cli:main" in text and "ivr.testing = ivr.testing" in text

"""The package's shape holds: imports flow one way (cli → committee → steps → exchange → standards →
common), there is no import cycle anywhere, tongban's own imports stand at the top of each file, and
no module grows past the size a reader can hold (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tongban"

# Lower index = lower layer; a module may import only from its own layer or below.
LAYERS = ("common", "standards", "exchange", "steps", "committee", "top")
TOP = {"cli", "pipeline", "airflow_env", "sample", "serve", "__init__"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found.update({module_name(p): p for p in (ROOT / "bench").rglob("*.py")})
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "tongban":
        return len(LAYERS)  # bench: above everything
    if len(parts) == 1 or parts[1] in TOP:
        return LAYERS.index("top")
    return LAYERS.index(parts[1])


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported tongban/bench module, line, at top level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.append((name, node.lineno, id(node) in top))
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: {dep for dep, _, _ in imports_of(p, known) if dep != m and not m.startswith(dep + ".")}
            for m, p in mods.items()}


def test_imports_flow_one_way():
    mods = modules()
    known = set(mods)
    back = []
    for m, p in mods.items():
        for dep, line, _ in imports_of(p, known):
            if layer_of(dep) > layer_of(m):
                back.append(f"{p.relative_to(ROOT)}:{line} imports {dep} (a layer above it)")
    assert back == []


def test_only_the_cli_imports_serve():
    """The served exchange (issue 16) sits at the top beside cli: only cli registers its commands."""
    mods = modules()
    known = set(mods)
    found = [f"{p.relative_to(ROOT)}:{line} imports {dep}"
             for m, p in mods.items() if not m.startswith("tongban.cli") and not m.startswith("tongban.serve")
             for dep, line, _ in imports_of(p, known) if dep.startswith("tongban.serve")]
    assert found == []


def test_no_import_cycles():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(edges.get(m, ())):
            if state.get(dep) == 1:
                cycles.append(" → ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert cycles == []


def test_own_imports_stand_at_the_top():
    mods = modules()
    known = set(mods)
    inner = [f"{p.relative_to(ROOT)}:{line} imports {dep} inside a function"
             for m, p in mods.items() if m.startswith("tongban")
             for dep, line, top in imports_of(p, known) if not top and dep.startswith("tongban")]
    assert inner == []


def test_the_graph_sees_a_back_arrow(tmp_path):
    """Positive control: the checker flags an import from a higher layer and a cycle."""
    assert layer_of("tongban.common.config") < layer_of("tongban.steps.gate") < layer_of("tongban.cli")
    p = tmp_path / "x.py"
    p.write_text("from tongban.steps.gate import run_gate\ndef f():\n    from tongban.common import pii\n")
    found = imports_of(p, set(modules()))
    assert ("tongban.steps.gate", 1, True) in found and ("tongban.common.pii", 3, False) in found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (split it by what it does)"


HEAVY = ("great_expectations", "dbt", "pandera", "pandas", "duckdb", "duckdb_engine", "fastexcel", "pyarrow")


def test_lazy_heavy_imports_say_why():
    """A heavy third-party library imported inside a function carries a comment saying why it is lazy."""
    silent = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top and node.col_offset > 0:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] in HEAVY for n in names) and "#" not in lines[node.lineno - 1]:
                    silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert silent == []

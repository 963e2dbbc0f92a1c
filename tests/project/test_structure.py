"""The package's shape is a contract a newcomer relies on: one folder per stage, a few
top-level modules, no import cycle, and a module map in docs/design.md that names every
module. Read from the source tree (no server), so a new module fails here until it is
placed and documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "edms_pgdump"
DESIGN = ROOT / "docs" / "design.md"

# The only modules that live at the top of the package: the public surface and what
# every stage shares. Everything else sits in the folder of its stage.
TOP_LEVEL = {"__init__", "__main__", "api", "results", "options", "errors", "mapping", "db"}
STAGES = {
    "catalog", "plan", "sqlgen", "program", "export", "load", "archive",
    "analysis", "runbook", "django", "demo", "cli",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_imports(path: Path) -> set[str]:
    """Modules of this package that importing ``path`` (or calling into it) imports.
    Imports under ``if TYPE_CHECKING:`` are for the type checker only and are skipped;
    imports inside functions count, so a cycle cannot hide behind a local import."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("edms_pgdump"):
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    found.add(sub if sub in MODULES else child.module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("edms_pgdump"))
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycle() -> None:
    graph = {name: _runtime_imports(path) - {name} for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    """Guard against a finder that never finds anything."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_sits_in_its_stage_folder(name: str) -> None:
    parts = name.split(".")[1:]
    if len(parts) == 0:
        return
    if len(parts) == 1:
        assert parts[0] in TOP_LEVEL | STAGES, (
            f"{name} is a top-level module; move it into the folder of its stage ({', '.join(sorted(STAGES))})"
        )
    else:
        assert parts[0] in STAGES, f"{name}: {parts[0]}/ is not a stage folder; add it to docs/design.md and here"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_folder_says_what_it_does(stage: str) -> None:
    init = PACKAGE / stage / "__init__.py"
    assert init.exists(), f"edms_pgdump/{stage}/ has no __init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc and len(doc) > 40, f"edms_pgdump/{stage}/__init__.py needs a docstring saying what the stage does"


def _mapped_paths() -> set[str]:
    """Module paths named in the module map's table: `catalog/read.py`, `api.py`, …"""
    text = DESIGN.read_text()
    start = text.index("## Module map")
    end = text.find("\n## ", start + 1)
    table = text[start : end if end != -1 else None]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {m for row in rows for m in re.findall(r"`([\w/]+\.py)`", row.split(" | ")[0])}


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
)
def test_every_module_is_in_the_design_module_map(path: str) -> None:
    assert path in _mapped_paths(), f"docs/design.md's module map does not name `{path}`; add a row for it"


def test_the_module_map_names_no_module_that_is_gone() -> None:
    missing = sorted(p for p in _mapped_paths() if not (PACKAGE / p).exists())
    assert missing == [], f"docs/design.md's module map names modules that do not exist: {missing}"

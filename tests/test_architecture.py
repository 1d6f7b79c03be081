"""The tree keeps its shape: layers only import downward, no module imports itself back round
a circle, and no module grows into a second job unnoticed.

The layers are declared once, in ``pyproject.toml`` (``[tool.importlinter]``), and checked by
import-linter; lazy imports inside functions count, ``if TYPE_CHECKING:`` imports do not.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "flows")
LIMIT = 400  # lines; a module above it must be one cohesive thing, named here with the reason
COHESIVE: dict[str, str] = {
    "bot.storage.models": "one Base and MetaData: Alembic, the erasure sweep and the privacy tests walk it whole",
    "bot.outbox.dispatcher": "one Dispatcher whose claim, send and record share its tick lock and held chats",
    "bot.worktime": "one calendar: office hours per weekday, national holidays and local days, cached together",
    "bot.catalog": "the catalog's one schema, loader and read-back; split, a field would be checked in one place only",
    "bot.channels.telegram.staffroom": "the staff room's handlers: topics, case buttons, /kasus and /balas together",
}


def test_layers_only_import_downward() -> None:
    # In a subprocess: import-linter reconfigures logging (disabling loggers already created),
    # which would silence later tests' log assertions.
    code = (f"import sys; from importlinter import cli; sys.exit(cli.lint_imports("
            f"config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, no_logo=True))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_circle() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    cycles = _cycles(graph)
    described = []
    for component in cycles:
        chain = graph.find_shortest_chain(importer=component[0], imported=component[1]) or ()
        back = graph.find_shortest_chain(importer=component[1], imported=component[0]) or ()
        described.append(" -> ".join(chain) + " | " + " -> ".join(back))
    assert not cycles, "import circles:\n" + "\n".join(described)


def test_the_circle_check_sees_a_lazy_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")  # e.g. an import inside a function
    assert _cycles(graph) == [["a.x", "a.y", "a.z"]]


def _modules() -> dict[str, tuple[int, str]]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text(encoding="utf-8")
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name] = (source.count("\n"), ast.get_docstring(ast.parse(source)) or "")
    return found


def test_no_module_grows_past_the_limit_unnoticed() -> None:
    big = {name: lines for name, (lines, _) in _modules().items() if lines > LIMIT and name not in COHESIVE}
    assert not big, f"over {LIMIT} lines (split it, or name it in COHESIVE with the reason): {big}"
    stale = [name for name in COHESIVE if name not in _modules()]
    assert not stale, f"COHESIVE names modules that no longer exist: {stale}"


def test_every_module_says_why_it_exists() -> None:
    missing = [name for name, (lines, doc) in _modules().items()
               if not doc and not (name.endswith("__init__") and lines == 0)]
    assert not missing, f"modules without a docstring: {missing}"


def _docstring_or_dunder(node: ast.stmt) -> bool:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    return isinstance(node, ast.Assign) and all(
        isinstance(t, ast.Name) and t.id.startswith("__") for t in node.targets)


def test_packages_are_folders_not_hiding_places() -> None:
    """A package's ``__init__`` says what it holds; code lives in named modules."""
    heavy = []
    for package in PACKAGES:
        for init in (ROOT / package).rglob("__init__.py"):
            tree = ast.parse(init.read_text(encoding="utf-8"))
            body = [n for n in tree.body if not _docstring_or_dunder(n)]
            if body:
                heavy.append(os.fspath(init.relative_to(ROOT)))
    assert not heavy, f"code in package __init__ files: {heavy}"

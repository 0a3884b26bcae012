"""Imports only run down the layers, and no import circle exists.

Read from the code's own import statements (every one: module level, inside functions and
under TYPE_CHECKING), so a new upward import fails here with the two file names and the line.
The layers, top down (docs/architecture.md draws them):

5. entry points: the CLI, `rejse up`, the worker process and the composition root
4. edges: `api/`, `workflows/`, `activities/`; none of them imports another
3. domain: the domain packages and the services they share (runtime, scheduler, keys, ...)
2. models and database: `rejse/models/`, `rejse/db.py`, migrations
1. leaf helpers: settings, contracts, durations, signatures, ids, errors, logging, ...
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rejse", "api", "workflows", "activities")

ENTRY, EDGE, DOMAIN, MODELS, LEAF = 5, 4, 3, 2, 1
LAYER_NAMES = {
    5: "an entry point",
    4: "an edge",
    3: "a domain module",
    2: "a models/db module",
    1: "a leaf helper",
}

# First match wins: a module's dotted name, or a package prefix ending in ".".
LAYERS: list[tuple[str, int]] = [
    ("rejse.__main__", ENTRY),
    ("rejse.cli", ENTRY),
    ("rejse.up", ENTRY),
    ("rejse.worker", ENTRY),
    ("rejse.wiring", ENTRY),
    ("api.", EDGE),
    ("workflows.", EDGE),
    ("activities.", EDGE),
    ("rejse.models.", MODELS),
    ("rejse.migrations.", MODELS),
    ("rejse.db", MODELS),
    ("rejse.migrate", MODELS),
    ("rejse.settings", LEAF),
    ("rejse.contracts", LEAF),
    ("rejse.durations", LEAF),
    ("rejse.signatures", LEAF),
    ("rejse.ids", LEAF),
    ("rejse.errors", LEAF),
    ("rejse.logging", LEAF),
    ("rejse.roles", LEAF),
    ("rejse.metrics", LEAF),
    ("rejse.quiet_hours", LEAF),
    ("rejse.crontab", LEAF),
    ("rejse.outbound", LEAF),
    ("rejse.binaries", LEAF),
    ("rejse.stats", LEAF),
    ("rejse", LEAF),  # the package's face: `__version__`
    ("rejse.", DOMAIN),
]


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module names
    imported: str
    path: Path
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(root: Path) -> list[Import]:
    known = modules(root)
    out = []
    for importer, path in known.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importer's package
                    package = importer if is_package else importer.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}".strip(".")
                # `from pkg import mod` names the submodule when there is one
                names = [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                target = _resolve(name, known)
                if target is not None and target != importer:
                    out.append(Import(importer, target, path, node.lineno))
    return out


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or (prefix.endswith(".") and module.startswith(prefix)):
            return layer
        if module == prefix.rstrip("."):  # a package's own __init__
            return layer
    raise AssertionError(f"module {module} has no layer: add it to LAYERS")


def _top(module: str) -> str:
    return module.split(".")[0]


def upward_imports(root: Path) -> list[str]:
    problems = []
    for imp in imports(root):
        here, there = layer_of(imp.importer), layer_of(imp.imported)
        where = f"{imp.path.relative_to(root)}:{imp.line}"
        target = modules(root)[imp.imported].relative_to(root)
        if there > here:
            problems.append(
                f"{where} imports {target}: {LAYER_NAMES[here]} must not import "
                f"{LAYER_NAMES[there]}"
            )
        elif here == there == EDGE and _top(imp.importer) != _top(imp.imported):
            problems.append(
                f"{where} imports {target}: api/, workflows/ and activities/ meet only in the "
                "domain below them"
            )
    return list(dict.fromkeys(problems))  # one line per import statement and target


def circles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in modules(root)}
    for imp in imports(root):
        graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_only_run_down_the_layers():
    problems = upward_imports(ROOT)
    assert not problems, "\n".join(problems)


def test_no_import_circle():
    found = circles(ROOT)
    assert not found, "\n".join(" <-> ".join(group) for group in found)


def test_every_module_has_a_layer():
    for module in modules(ROOT):
        layer_of(module)


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_planted_upward_import_is_named_with_both_files(tmp_path):
    root = _plant(
        tmp_path,
        {
            "rejse/wiring.py": "",
            "rejse/journeys/__init__.py": "",
            "rejse/journeys/service.py": "def f():\n    from rejse import wiring\n",
            "rejse/durations.py": "from rejse.journeys import service\n",
            "api/app.py": "import workflows.journey\n",
            "workflows/journey.py": "",
        },
    )
    problems = upward_imports(root)
    assert any(
        p.startswith("rejse/journeys/service.py:2 imports rejse/wiring.py") for p in problems
    ), problems
    assert any(
        p.startswith("rejse/durations.py:1 imports rejse/journeys/service.py") for p in problems
    )
    assert any(p.startswith("api/app.py:1 imports workflows/journey.py") for p in problems)
    assert len(problems) == 3


def test_a_planted_circle_is_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "rejse/events/__init__.py": "",
            "rejse/events/processor.py": "from rejse.profiles import service\n",
            "rejse/profiles/__init__.py": "",
            "rejse/profiles/service.py": "from rejse.events.processor import x\n",
        },
    )
    assert circles(root) == [["rejse.events.processor", "rejse.profiles.service"]]

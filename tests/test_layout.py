"""The layout's rules, read from the source with `ast` (docs/architecture.md, "Layout"):

- no import cycle between modules (imports inside functions and under TYPE_CHECKING count: they are still
  dependencies);
- `handlers -> bot -> actions`, never back; in bot/ only the composition root (`bot.app`) imports handlers;
- foundation packages (core, store, slack, runbook) never import a concept package, and concept packages never
  import the tools (sandbox, demo, cli) or the composition root;
- a concept package imports another only along an edge declared in CONCEPT_EDGES, and those edges have no cycle;
- outside a package, only the modules its `__init__` names in `__all__` are imported;
- no module imports another module's private name, and a handler touches no private attribute;
- no module of bot/, handlers/ or actions/ is longer than 400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
GENERATED = ("bot/migrations/",)  # written by Alembic

FOUNDATION = {"core", "store", "slack", "runbook"}
CONCEPTS = {"incidents", "alerts", "steps", "decision", "executions", "escalation", "comms", "reports", "drills"}
TOOLS = {"sandbox", "demo", "cli"}
COMPOSITION_ROOT = "bot.app"

# Where one concept still reads another directly (a class it calls, a view it composes); everything else between
# concepts goes through the outbox's events. A new edge is a design decision: add it here, or use an event.
CONCEPT_EDGES: dict[str, set[str]] = {
    "decision": {"steps"},  # an approved decision completes the decision step in the same click
    "executions": {"steps"},  # a passed metric gate ticks its own item
    "comms": {"reports"},  # a draft states facts of the incident's history
    "incidents": {"steps", "reports"},  # the war room posts the steps; resolving writes the report
    "alerts": {"incidents", "steps"},  # an alert declares; "all resolved" offers the lead the next phase
    "drills": {"incidents", "reports"},  # a drill is an incident, scored from its history
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (a `from package import module` names the module)
    name: str | None  # the name taken from it, if any
    line: int


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("bot", "handlers", "actions"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(GENERATED):
                continue
            name = rel[:-3].replace("/", ".").removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _owner(dotted: str) -> str | None:
    """The module a dotted name lives in (`bot.core.timers.TimerService` -> `bot.core.timers`)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _imports(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _owner(alias.name)) and target != module:
                    yield Import(module, target, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:  # `from package import module`
                    yield Import(module, full, None, node.lineno)
                elif (target := _owner(base)) and target != module:
                    yield Import(module, target, alias.name, node.lineno)


IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _package(module: str) -> str | None:
    """`bot.decision.approvals` -> `decision`; None for modules directly in bot/."""
    parts = module.split(".")
    if parts[0] != "bot" or len(parts) < 2:
        return None
    return parts[1] if len(parts) > 2 or MODULES[module].name == "__init__.py" else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_every_module_and_its_imports() -> None:
    # Guards the rules below against passing on an empty graph.
    assert {"bot.app", "bot.core.timers", "bot.decision.approvals", "handlers.checklists", "actions.shell"} <= set(
        MODULES)
    assert "handlers" in {i.target for i in IMPORTS if i.source == "bot.app"}
    assert len(IMPORTS) > 500


def test_no_module_imports_itself_back_through_others() -> None:
    graph: dict[str, set[str]] = {}
    for imp in IMPORTS:
        graph.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_handlers_then_bot_then_actions_and_never_back() -> None:
    back = [imp for imp in IMPORTS
            if imp.source.startswith("actions") and not imp.target.startswith("actions")
            or imp.source.startswith("bot") and imp.target.startswith("handlers") and imp.source != COMPOSITION_ROOT]
    assert back == []


def test_foundation_concepts_and_tools_depend_downward_only() -> None:
    wrong = []
    for imp in IMPORTS:
        src, dst = _package(imp.source), _package(imp.target)
        if not imp.target.startswith("bot") or src == dst:
            continue
        if src in FOUNDATION and (dst in CONCEPTS or dst in TOOLS or imp.target == COMPOSITION_ROOT):
            wrong.append(imp)
        if src in CONCEPTS and (dst in TOOLS or imp.target == COMPOSITION_ROOT):
            wrong.append(imp)
    assert wrong == []


def test_concepts_meet_only_along_declared_edges() -> None:
    undeclared = sorted({(_package(i.source), _package(i.target)) for i in IMPORTS
                         if _package(i.source) in CONCEPTS and _package(i.target) in CONCEPTS
                         and _package(i.source) != _package(i.target)
                         and _package(i.target) not in CONCEPT_EDGES.get(_package(i.source) or "", set())})
    assert undeclared == []
    assert _cycles(CONCEPT_EDGES) == []


def _public(package_module: str) -> set[str] | None:
    """The names a package's `__init__` lists in `__all__`: its public modules, and names it re-exports."""
    tree = ast.parse(MODULES[package_module].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {elt.value for elt in node.value.elts if isinstance(elt, ast.Constant)}  # type: ignore[attr-defined]
    return None


PACKAGES = sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and m.count(".") == 1)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_names_its_public_surface(package: str) -> None:
    public = _public(package)
    assert public, f"{package}/__init__.py lists no __all__"
    bound = {alias.asname or alias.name for node in ast.parse(MODULES[package].read_text()).body
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    for name in public:
        assert f"{package}.{name}" in MODULES or name in bound, f"{package}.__all__ names {name}, which it lacks"


def test_outside_a_package_only_its_public_modules_are_imported() -> None:
    reaching = []
    for imp in IMPORTS:
        for package in PACKAGES:
            inside = imp.source == package or imp.source.startswith(package + ".")
            if inside or not imp.target.startswith(package + "."):
                continue
            module = imp.target[len(package) + 1:].split(".")[0]
            if module not in (_public(package) or set()):
                reaching.append(imp)
    assert reaching == []


def _home(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_package_imports_a_private_name_of_another() -> None:
    # A package's own modules may share its private helpers (bot/alerts/_read.py); nobody outside may.
    private = [imp for imp in IMPORTS if _home(imp.source) != _home(imp.target)
               and ((imp.name or "").startswith("_") or imp.target.rpartition(".")[2].startswith("_"))]
    assert private == []


def _private_attributes(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append((node.lineno, node.attr))
    return found


def test_handlers_touch_no_private_attribute() -> None:
    touched = {m: _private_attributes(p.read_text()) for m, p in MODULES.items() if m.startswith("handlers")}
    assert {m: found for m, found in touched.items() if found} == {}


def test_the_private_attribute_reader_tells_another_object_from_self() -> None:
    assert _private_attributes("bot.comms._get(x)\nself._mine = 1\nbot.__class__") == [(1, "_get")]


def test_no_module_is_longer_than_400_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_one_extension_mechanism_the_event_bus() -> None:
    # Packages extend each other by subscribing to events (durable rows, or inline for `declared` and `acted`),
    # not by appending to hook lists on the services (the old `on_declare`, `on_act`).
    services = next(node for node in ast.parse(MODULES["bot.core.services"].read_text()).body
                    if isinstance(node, ast.ClassDef) and node.name == "Services")
    fields = [node.target.id for node in services.body if isinstance(node, ast.AnnAssign)
              and isinstance(node.target, ast.Name)]
    assert "events" in fields and "timers" in fields
    assert [f for f in fields if f.startswith("on_")] == []
    appended = [(m, node.lineno) for m, p in MODULES.items() for node in ast.walk(ast.parse(p.read_text()))
                if isinstance(node, ast.Attribute) and node.attr == "append" and isinstance(node.value, ast.Attribute)
                and node.value.attr.startswith("on_")]
    assert appended == []

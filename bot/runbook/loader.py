"""Load a runbook YAML file into the validated model, or refuse it with every problem named by path.

Each problem reads `FILE: path.inside[3].key: what is wrong (line N)`. Schema errors come from pydantic;
cross-references, windows, numbering, templates and scripts are checked afterwards in bot/runbook/checks.py,
since they need the whole document.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.runbook.checks import check_runbook, format_path
from bot.runbook.model import Runbook

DEFAULT_RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "bookedbarber-v2.yml"

Loc = Sequence[str | int]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RunbookError(Exception):
    """The runbook was refused; `problems` holds one formatted line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_runbook(path: str | Path) -> Runbook:
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError([f"{shown}: cannot read the file: {exc}"]) from exc
    data, root = parse_yaml(text, shown)
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        raise RunbookError([_format_error(shown, root, err) for err in exc.errors(include_url=False)]) from None
    problems = check_runbook(runbook, path)
    if problems:
        raise RunbookError([format_problem(shown, root, loc, msg) for loc, msg in problems])
    return runbook


# --- YAML -----------------------------------------------------------------------------------------


def parse_yaml(text: str, shown: str) -> tuple[dict[str, Any], yaml.Node]:
    """The document as data plus its node tree (for line numbers); refuses syntax errors, duplicate keys,
    an empty document and a top level that is not a mapping."""
    # One parse gives both the node tree and the data; libyaml's loader when present (5x faster).
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise RunbookError([f"{shown}: {where}YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise RunbookError([f"{shown}: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    if root is None or data is None:
        raise RunbookError([f"{shown}: the file is empty (expected a runbook mapping)"])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise RunbookError([f"{shown}: (top level): expected a mapping of runbook keys, found a {kind} (line 1)"])
    duplicates = list(_duplicate_keys(root, ()))
    if duplicates:
        raise RunbookError([f"{shown}: {format_path(loc)}: duplicate key {str(key.value)!r} (line "
                            f"{key.start_mark.line + 1})" for loc, key in duplicates])
    return data, root


def _duplicate_keys(node: yaml.Node, loc: tuple[str | int, ...]) -> Iterator[tuple[Loc, yaml.Node]]:
    # PyYAML silently keeps the last of two equal keys; in a procedure that hides a whole block.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield (*loc, key), key_node
            seen.add(key)
            yield from _duplicate_keys(value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            yield from _duplicate_keys(child, (*loc, i))


def _node_at(root: yaml.Node, loc: Loc) -> yaml.Node:
    """The deepest node along `loc`: the key itself when the path ends at a key (its line is the one to
    show, also for a block value that starts below it); a missing key points at its parent."""
    node = shown = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if found is None:
                break
            shown, node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            shown = node = node.value[part]
        else:
            break
    return shown


# --- formatting -----------------------------------------------------------------------------------


def format_problem(shown: str, root: yaml.Node | None, loc: Loc, message: str) -> str:
    line = f" (line {_node_at(root, loc).start_mark.line + 1})" if root is not None else ""
    return f"{shown}: {format_path(loc)}: {message}{line}"


def _format_error(shown: str, root: yaml.Node, err: ErrorDetails) -> str:
    # Pydantic adds union/validator tags such as "function-after[...]" to some locations; they are not keys.
    loc = [p for p in err["loc"] if isinstance(p, int) or not any(c in p for c in "[(")]
    kind, msg = err["type"], str(err["msg"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        msg = "unknown key" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif not isinstance(err.get("input"), dict | list):
        msg = f"{msg} (got {err.get('input')!r})"
    return format_problem(shown, root, loc, msg)


def _allowed_keys(loc: Loc) -> list[str]:
    """The field names of the model found at `loc`, to suggest the right key after a typo."""
    annotation: Any = Runbook
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            args = get_args(annotation)
            annotation = args[0] if args else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation

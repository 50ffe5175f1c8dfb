"""Typed action parameters: definitions, validation of user-typed values, and argv rendering.

A value typed in Slack is untrusted. It is checked against its definition (type, pattern, choices, range)
and then substituted as one whole argument: an argv template token is either exactly "{name}" or literal
text, so no value is ever spliced into a larger string or seen by a shell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from actions.redact import MASK, Redactor

ParamType = Literal["string", "int", "float", "bool", "choice", "list[int]"]
PARAM_TYPES: tuple[str, ...] = ("string", "int", "float", "bool", "choice", "list[int]")

# The runbook schema (bot/runbook/model.py) spells the types differently; both spellings are accepted.
TYPE_ALIASES: dict[str, str] = {"integer": "int", "number": "float", "boolean": "bool", "int_list": "list[int]"}

ParamValue = str | int | float | bool | list[int]

# Characters a shell (or a careless script) would interpret. A string parameter without a pattern may not
# contain them; a runbook that wants them must say so with an explicit pattern.
SHELL_METACHARACTERS = frozenset(";&|$`<>(){}[]*?!~#\\'\"\n\r\t")
MAX_VALUE_LENGTH = 256

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ParamError(ValueError):
    """A parameter value or definition broke a rule; `param` and `rule` say which."""

    def __init__(self, param: str, rule: str, message: str) -> None:
        super().__init__(f"parameter {param!r}: {message} [{rule}]")
        self.param = param
        self.rule = rule
        self.message = message


class TemplateError(ValueError):
    """An argv template is malformed or names an unknown parameter."""


@dataclass(frozen=True)
class ParamDef:
    """One parameter of an action, as the runbook defines it."""

    name: str
    type: ParamType = "string"
    pattern: str | None = None  # must match the whole value (re.fullmatch)
    choices: tuple[str, ...] | None = None
    min: float | None = None  # for int/float, and for each element of list[int]
    max: float | None = None
    default: Any = None
    default_from_file: str | None = None  # path relative to the base dir; contents stripped
    default_now: str | None = None  # strftime format applied to `now`
    secret: bool = False
    required: bool = True
    description: str = ""
    _compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", TYPE_ALIASES.get(str(self.type), str(self.type)))
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(str(c) for c in self.choices) or None)
        if not _NAME_RE.fullmatch(self.name):
            raise ParamError(self.name, "definition", "name must be an identifier")
        if self.type not in PARAM_TYPES:
            raise ParamError(self.name, "definition", f"unknown type {self.type!r}")
        if self.type == "choice" and not self.choices:
            raise ParamError(self.name, "definition", "a choice parameter needs choices")
        sources = [self.default is not None, self.default_from_file is not None, self.default_now is not None]
        if sum(sources) > 1:
            raise ParamError(self.name, "definition", "give at most one of default, default_from_file, default_now")
        if self.pattern is not None:
            try:
                object.__setattr__(self, "_compiled", re.compile(self.pattern))
            except re.error as exc:
                raise ParamError(self.name, "definition", f"invalid pattern: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ParamDef:
        """Build from a runbook's mapping, e.g. `ParamDef.from_mapping(param.model_dump())`."""
        known = {
            "name",
            "type",
            "pattern",
            "choices",
            "min",
            "max",
            "default",
            "default_from_file",
            "default_now",
            "secret",
            "required",
            "description",
        }
        unknown = set(data) - known
        if unknown:
            raise ParamError(str(data.get("name", "?")), "definition", f"unknown keys {sorted(unknown)}")
        return cls(**data)

    @property
    def has_default(self) -> bool:
        return self.default is not None or self.default_from_file is not None or self.default_now is not None


def resolve_params(
    defs: Sequence[ParamDef],
    given: Mapping[str, str],
    base_dir: str | Path,
    now: datetime,
) -> dict[str, ParamValue]:
    """Check user-typed values against their definitions and fill in defaults.

    Refuses unknown names, values breaking a rule, and missing required parameters, raising ParamError.
    Defaults (including those read from files) go through the same checks as typed values.
    """
    by_name = {d.name: d for d in defs}
    if len(by_name) != len(defs):
        raise ParamError("?", "definition", "duplicate parameter names")
    for name in given:
        if name not in by_name:
            raise ParamError(name, "unknown", f"no such parameter (known: {', '.join(sorted(by_name)) or 'none'})")
    values: dict[str, ParamValue] = {}
    for d in defs:
        typed = given.get(d.name)
        # An empty field (a Slack modal left blank) means "use the default" when there is one.
        if typed is not None and (typed != "" or not d.has_default):
            if typed == "":
                if d.required:
                    raise ParamError(d.name, "required", "a value is required")
                continue
            raw, source = typed, "value"
        else:
            default = _default_text(d, Path(base_dir), now)
            if default is None:
                if d.required:
                    raise ParamError(d.name, "required", "a value is required")
                continue
            raw, source = default, "default"
        values[d.name] = check_value(d, raw, source=source)
    return values


def check_value(d: ParamDef, raw: Any, *, source: str = "value") -> ParamValue:
    """Parse and check one raw value (normally a string typed by a person) against its definition."""
    if isinstance(raw, bool | int | float) and d.type != "string":
        raw = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if isinstance(raw, list) and d.type == "list[int]":
        raw = ",".join(str(x) for x in raw)
    if not isinstance(raw, str):
        raise ParamError(d.name, "type", f"expected text, got {type(raw).__name__}")
    what = "default" if source == "default" else "value"
    if "\x00" in raw:
        raise ParamError(d.name, "nul", f"{what} contains a NUL byte")
    if len(raw) > MAX_VALUE_LENGTH:
        raise ParamError(d.name, "length", f"{what} longer than {MAX_VALUE_LENGTH} characters")
    if d._compiled is not None and not d._compiled.fullmatch(raw):
        # What a person reads on the form: plain words, never the regex (it stays in the runbook).
        raise ParamError(d.name, "pattern", f"{what} is not in the expected form"
                         + (f" ({d.description})" if d.description else ""))
    if d.type == "string":
        return _check_string(d, raw, what)
    if d.type == "choice":
        assert d.choices is not None
        if raw not in d.choices:
            raise ParamError(d.name, "choices", f"{what} must be one of {', '.join(d.choices)}")
        return raw
    if d.type == "bool":
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ParamError(d.name, "type", f"{what} must be true or false")
    if d.type == "int":
        return int(_check_range(d, _parse_int(d, raw.strip(), what), what))
    if d.type == "float":
        text = raw.strip()
        if not _FLOAT_RE.fullmatch(text):
            raise ParamError(d.name, "type", f"{what} must be a number")
        return _check_range(d, float(text), what)
    # list[int]: "25,50,75,100" (spaces around commas tolerated)
    items = [p.strip() for p in raw.split(",")]
    if not raw.strip() or any(not p for p in items):
        raise ParamError(d.name, "type", f"{what} must be a comma-separated list of integers")
    return [int(_check_range(d, _parse_int(d, p, what), what)) for p in items]


def _check_string(d: ParamDef, raw: str, what: str) -> str:
    # Built-in checks hold whatever the pattern says: a pattern adds a rule, it never lifts one.
    if raw.startswith("-"):
        # A value that looks like an option could be read as one by the script.
        raise ParamError(d.name, "option-like", f"{what} may not start with '-'")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ParamError(d.name, "control", f"{what} contains control characters")
    if raw.strip() in (".", ".."):
        # In a URL path httpx (and every server) normalises "." and ".." away: /services/../rollback is /rollback.
        raise ParamError(d.name, "dot-segment", f"{what} may not be '.' or '..'")
    if d._compiled is None:
        # Without a pattern the runbook did not think about this value's shape: keep it boring.
        bad = sorted(set(raw) & SHELL_METACHARACTERS)
        if bad:
            raise ParamError(d.name, "metacharacters", f"{what} contains forbidden characters {''.join(bad)!r}")
    if d.choices is not None and raw not in d.choices:
        raise ParamError(d.name, "choices", f"{what} must be one of {', '.join(d.choices)}")
    return raw


def _parse_int(d: ParamDef, text: str, what: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise ParamError(d.name, "type", f"{what} must be an integer, got {text!r}")
    return int(text)


def _check_range(d: ParamDef, number: float, what: str) -> float:
    if d.min is not None and number < d.min:
        raise ParamError(d.name, "min", f"{what} {number:g} is below the minimum {d.min:g}")
    if d.max is not None and number > d.max:
        raise ParamError(d.name, "max", f"{what} {number:g} is above the maximum {d.max:g}")
    return number


def _default_text(d: ParamDef, base_dir: Path, now: datetime) -> str | None:
    if d.default_from_file is not None:
        path = (base_dir / d.default_from_file).resolve()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ParamError(d.name, "default_from_file", f"cannot read default from {path}: {exc.strerror}") from exc
    if d.default_now is not None:
        return now.strftime(d.default_now)
    if d.default is None:
        return None
    if isinstance(d.default, bool):
        return "true" if d.default else "false"
    if isinstance(d.default, list | tuple):
        return ",".join(str(x) for x in d.default)
    return str(d.default)


def format_value(value: ParamValue) -> str:
    """The argv form of a resolved value: bools as true/false, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def placeholder(token: str) -> str | None:
    """The parameter name if `token` is exactly "{name}", else None."""
    m = _PLACEHOLDER_RE.fullmatch(token)
    return m.group(1) if m else None


def check_argv_template(template: Sequence[str], param_names: Iterable[str]) -> None:
    """Refuse templates that splice values into text or name parameters that do not exist."""
    names = set(param_names)
    if not template:
        raise TemplateError("argv template is empty")
    for i, token in enumerate(template):
        if not isinstance(token, str):
            raise TemplateError(f"argv token {i} is not a string")
        name = placeholder(token)
        if name is not None:
            if name not in names:
                raise TemplateError(f"argv token {token!r} names an unknown parameter")
        elif "{" in token or "}" in token:
            raise TemplateError(f"argv token {token!r} mixes text and a placeholder; use a separate '{{name}}' argument")


def render_argv(template: Sequence[str], values: Mapping[str, ParamValue]) -> list[str]:
    """Substitute each "{name}" token with its value as one whole argument; literals pass unchanged."""
    check_argv_template(template, values.keys())
    return [format_value(values[name]) if (name := placeholder(t)) else t for t in template]


def secret_values(defs: Sequence[ParamDef], values: Mapping[str, ParamValue]) -> list[str]:
    """Values of parameters marked secret, in argv form, to feed a Redactor."""
    return [format_value(values[d.name]) for d in defs if d.secret and d.name in values]


def public_params(
    defs: Sequence[ParamDef], values: Mapping[str, ParamValue], redactor: Redactor | None = None
) -> dict[str, ParamValue]:
    """Parameters as they may be stored and shown: secret ones masked, others passed through the redactor."""
    secret = {d.name for d in defs if d.secret}
    out: dict[str, ParamValue] = {}
    for name, value in values.items():
        if name in secret:
            out[name] = MASK
        elif redactor is not None and isinstance(value, str):
            out[name] = redactor.redact(value)
        else:
            out[name] = value
    return out

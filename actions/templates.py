"""str.format-style templates filled from resolved parameters only.

Only plain "{name}" fields are allowed: no attribute access, indexing, conversions or format specs, so a
template cannot reach into Python objects. "{{" and "}}" are literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from actions.params import ParamValue, TemplateError, format_value, placeholder

_formatter = string.Formatter()


def fill(template: str, values: Mapping[str, ParamValue], *, escape: Callable[[str], str] | None = None) -> str:
    """Fill every "{name}" field of `template`; `escape` is applied to each substituted value."""
    out: list[str] = []
    try:
        parsed = list(_formatter.parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template {template!r}: {exc}") from exc
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        if spec or conversion or placeholder("{" + field + "}") is None:
            raise TemplateError(f"template field {{{field}}} must be a plain parameter name")
        if field not in values:
            raise TemplateError(f"template field {{{field}}} names an unknown parameter")
        text = format_value(values[field])
        out.append(escape(text) if escape else text)
    return "".join(out)


def fill_url(template: str, values: Mapping[str, ParamValue]) -> str:
    """Fill a URL; values are percent-encoded so "../admin" or "?x=1" stay inside their path segment. A whole
    value of "." or ".." is refused: percent-encoding leaves dots alone, and URL normalisation would remove the
    segment (and the one before it)."""
    def escape(v: str) -> str:
        if v.strip() in (".", ".."):
            raise TemplateError(f"a URL value may not be {v!r}")
        return quote(v, safe="")

    return fill(template, values, escape=escape)


def fill_json(template: Any, values: Mapping[str, ParamValue]) -> Any:
    """Fill the strings of a JSON-like template. A string that is exactly "{name}" becomes the typed value
    (so an integer parameter stays a JSON number); keys are literal."""
    if isinstance(template, str):
        name = placeholder(template)
        if name is not None:
            if name not in values:
                raise TemplateError(f"template field {template} names an unknown parameter")
            return values[name]
        return fill(template, values)
    if isinstance(template, Mapping):
        return {str(k): fill_json(v, values) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [fill_json(v, values) for v in template]
    return template

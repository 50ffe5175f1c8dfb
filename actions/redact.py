"""Secret redaction for action output and stored parameters.

Known secret values (settings' tokens, parameters marked secret) are replaced wherever they appear;
common token shapes are replaced even when nobody told us about them. Redaction errs on the side
of hiding: a false positive costs a readable line, a false negative leaks a credential into Slack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"

# Secrets shorter than this are not replaced: masking every "abc" in the output would make it unreadable
# and such values are not credentials worth the name.
MIN_SECRET_LENGTH = 4

# Patterns whose whole match is a credential.
_WHOLE_TOKEN_PATTERNS: tuple[str, ...] = (
    r"\bxox[abposr]-[A-Za-z0-9-]+",  # Slack bot/user/app-level/refresh tokens
    r"\bxapp-[A-Za-z0-9-]+",  # Slack app-level tokens
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{20,}\b",  # GitHub classic tokens (ghp_, gho_, ghu_, ghs_, ghr_)
    r"\bgithub_pat_[A-Za-z0-9_]{20,}\b",  # GitHub fine-grained tokens
    r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{8,}\b",  # Stripe secret and restricted keys
)

# Patterns (case-insensitive) that keep a readable prefix and mask the value: (prefix, value). Each starts at
# its keyword (what precedes it is kept as it is anyway). Blanks are `[^\S\n]` and quoted values stop at a
# newline, so no match crosses a line: a chunk of many lines is redacted in one go as its lines would be one by one.
_PREFIXED_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\bBearer[^\S\n]+", r"[A-Za-z0-9._~+/=-]{8,}"),
    (r"\bBasic[^\S\n]+", r"[A-Za-z0-9+/=]{8,}"),
    # password=..., passwd: "...", pwd='...' (DB_PASSWORD=... too)
    (r"""(?:password|passwd|pwd)["']?[^\S\n]*[=:][^\S\n]*""", r"""(?:"[^"\n]*"|'[^'\n]*'|[^\s,;&]+)"""),
    # user:password@ in URLs (scheme://user:)
    (r"(?<=[a-z0-9+.-])://[^/\s:@]+:", r"[^@\s/]+(?=@)"),
    # long hex/base64-ish values after a secret/token/key keyword (SLACK_BOT_TOKEN=..., "api_key": "...")
    (r"""(?:secret|token|key)[\w.-]*["']?[^\S\n]*[=:][^\S\n]*["']?""", r"[A-Za-z0-9+/_.=-]{16,}"),
)

# Every shape in one alternation. Only the prefixes are capturing groups (p0, p1, ...): `lastgroup` names the
# one that matched, or None for a whole token.
_SHAPES = re.compile(
    "|".join(
        [*_WHOLE_TOKEN_PATTERNS]
        + [f"(?i:(?P<p{i}>{prefix}){value})" for i, (prefix, value) in enumerate(_PREFIXED_PATTERNS)]
    )
)
# Where a shape can begin: the literal each alternative starts with, lower case. Python's regex engine tries every
# alternative at every position (~20 ms for 128 KiB of output); a plain literal alternation searched in the
# lower-cased text runs at C speed, and the shapes are tried only at the few positions it finds.
_SHAPE_STARTS = re.compile(r"xox|xapp-|akia|asia|gh[pousr]_|github_pat_|[rs]k_|bearer|basic|passw|pwd|://|secret|token|key")


def _mask_shape(match: re.Match[str]) -> str:
    prefix = match.lastgroup
    return MASK if prefix is None else match.group(prefix) + MASK


def _redact_shapes(text: str) -> str:
    """The same as `_SHAPES.sub(_mask_shape, text)`, trying the shapes only where one can begin."""
    lower = text.lower()
    if len(lower) != len(text):  # a character whose lower case is longer: positions would not line up
        return _SHAPES.sub(_mask_shape, text)
    parts: list[str] = []
    done = 0  # text[:done] is settled
    search = _SHAPE_STARTS.search
    candidate = search(lower)
    while candidate is not None:
        start = candidate.start()
        match = _SHAPES.match(text, start)
        if match is None:
            candidate = search(lower, start + 1)  # +1, not the literal's end: literals may overlap (xoxapp-)
            continue
        parts.append(text[done:start])
        parts.append(_mask_shape(match))
        done = match.end()
        candidate = search(lower, done)
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


# Keys of JSON-like values whose value is a credential whatever it looks like.
_SENSITIVE_KEY = re.compile(r"(?i)pass(word|wd)?$|secret|token|api[_-]?key|authorization|private[_-]?key|credential")

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)


class Redactor:
    """Replaces known secret values and common token shapes with "[REDACTED]"."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first so a secret containing another secret is masked whole.
        ordered = sorted(values, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None
        self.secrets: frozenset[str] = frozenset(values)

    def with_secrets(self, more: Iterable[str]) -> Redactor:
        """A redactor that also knows `more` (e.g. an action's secret parameters)."""
        return Redactor([*self.secrets, *more])

    def redact(self, text: str) -> str:
        """Redact a text that may span several lines (whole PEM blocks included)."""
        text = _PEM_BLOCK.sub(MASK, text)
        return self._redact_inline(text)

    def redact_value(self, value: Any) -> Any:
        """Redact strings inside a JSON-like value (dicts, lists, scalars) for storage."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {
                k: MASK if _SENSITIVE_KEY.search(str(k)) and value[k] is not None else self.redact_value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value

    def stream(self) -> LineRedactor:
        """A per-stream redactor for line-by-line output (remembers whether it is inside a PEM block)."""
        return LineRedactor(self)

    def _redact_inline(self, text: str) -> str:
        # Known values first, in a pass of their own: in one alternation a shape starting earlier (a "Bearer "
        # prefix) could swallow the first half of a known value and leave the rest showing.
        if self._known is not None:
            text = self._known.sub(MASK, text)
        return _redact_shapes(text)


class LineRedactor:
    """Redacts lines of a stream; lines between PEM BEGIN/END PRIVATE KEY markers are masked whole."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._in_pem = False

    def __call__(self, line: str) -> str:
        if self._in_pem:
            if _PEM_END.search(line):
                self._in_pem = False
            return MASK
        if _PEM_BEGIN.search(line):
            self._in_pem = not _PEM_END.search(line)
            return MASK
        return self._redactor._redact_inline(line)

    def lines(self, lines: list[str]) -> list[str]:
        """Redact a batch of consecutive lines, as calling this once per line would, in one pass when possible."""
        if not lines:
            return []
        text = "\n".join(lines)
        if self._in_pem or "PRIVATE KEY" in text:  # rare: walk the block markers line by line
            return [self(line) for line in lines]
        redacted = self._redactor._redact_inline(text)
        # (A known secret spanning lines comes back as one masked line: fewer lines, none of it shown.)
        return lines if redacted == text else redacted.split("\n")

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

# Patterns that keep a readable prefix (group 1) and mask the value (group 2).
_PREFIXED_PATTERNS: tuple[str, ...] = (
    r"(?i)(\bBearer\s+)([A-Za-z0-9._~+/=-]{8,})",
    r"(?i)(\bBasic\s+)([A-Za-z0-9+/=]{8,})",
    # password=..., passwd: "...", pwd='...'
    r"""(?i)(\b[\w.-]*(?:password|passwd|pwd)["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)""",
    # user:password@ in URLs
    r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(?=@)",
    # long hex/base64-ish values after a secret/token/key keyword (SLACK_BOT_TOKEN=..., "api_key": "...")
    r"""(?i)(\b[\w.-]*(?:secret|token|key)[\w.-]*["']?\s*[=:]\s*["']?)([A-Za-z0-9+/_.=-]{16,})""",
)

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
        self._whole = re.compile("|".join(_WHOLE_TOKEN_PATTERNS))
        self._prefixed = tuple(re.compile(p) for p in _PREFIXED_PATTERNS)
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
        if self._known is not None:
            text = self._known.sub(MASK, text)
        text = self._whole.sub(MASK, text)
        for pattern in self._prefixed:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text


class LineRedactor:
    """Redacts one line at a time; lines between PEM BEGIN/END PRIVATE KEY markers are masked whole."""

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

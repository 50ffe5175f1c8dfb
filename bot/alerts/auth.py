"""Who may post alerts: a shared bearer token, or the source's own HMAC signature of the raw body.

Compare secrets in constant time only. Error reasons go back to the sender, so they never contain a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

MAX_BODY_BYTES = 1 << 20  # larger bodies are refused (413) before they are parsed
PAGERDUTY_SIGNATURE_HEADER = "X-PagerDuty-Signature"
# Grafana's optional webhook HMAC (grafana/alerting http/hmac.go); also offered for the generic endpoint.
HMAC_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"

Method = Literal["bearer", "pagerduty_signature", "hmac_signature"]


class AlertAuthError(Exception):
    """The request is not authenticated; `reason` is safe to send back (answer 401)."""

    status = 401

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- bearer ----------------------------------------------------------------------------------------------------


def bearer_token_ok(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` (scheme case-insensitive) carries exactly `token`."""
    if not authorization or not token:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and _equal(credentials.strip(), token)


# --- PagerDuty v3 ----------------------------------------------------------------------------------------------


def pagerduty_sign(body: bytes, secret: str) -> str:
    """The `X-PagerDuty-Signature` value PagerDuty sends for `body` signed with `secret`."""
    return f"v1={_hex_hmac(secret, body)}"


def pagerduty_signature_ok(body: bytes, header: str | None, secrets: str | Sequence[str]) -> bool:
    """True when any `v1=<hex>` in the comma-separated header is HMAC-SHA256(secret, raw body) for any secret.

    PagerDuty sends several signatures while a secret is rotated; other versions than v1 are ignored.
    """
    if not header:
        return False
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [_hex_hmac(key, body) for key in keys if key]
    ok = False
    for part in header.split(","):
        version, _, signature = part.strip().partition("=")
        if version != "v1" or not signature:
            continue
        for want in expected:
            ok |= _equal(signature.strip().lower(), want)  # no early exit: time does not depend on which matched
    return ok


# --- Grafana-style HMAC (also for the generic endpoint) ---------------------------------------------------------


def hmac_sign(body: bytes, secret: str, timestamp: str | None = None) -> str:
    """Lowercase hex HMAC-SHA256 of `[timestamp + ":"] + body`, as Grafana's webhook HMAC option signs."""
    message = f"{timestamp}:".encode() + body if timestamp is not None else body
    return _hex_hmac(secret, message)


def hmac_signature_ok(body: bytes, signature: str | None, secret: str, timestamp: str | None = None) -> bool:
    if not signature or not secret:
        return False
    return _equal(signature.strip().lower(), hmac_sign(body, secret, timestamp))


# --- the policy ------------------------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup (aiohttp's headers already are; a plain dict in tests is not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


@dataclass(frozen=True)
class AlertAuth:
    """The credentials the alert endpoints accept; a request passes with any one configured method.

    A signature that is present but wrong is refused even when a bearer token would pass: it means a forged
    body or a misconfigured sender, and either should be seen. With nothing configured every request is refused.
    """

    token: str | None = None
    pagerduty_secrets: tuple[str, ...] = ()
    hmac_secret: str | None = None
    hmac_header: str = HMAC_SIGNATURE_HEADER
    hmac_timestamp_header: str | None = None  # when set, the signed timestamp must be within max_skew_seconds
    max_skew_seconds: float = 300

    def __repr__(self) -> str:  # never show secrets
        return (f"AlertAuth(token={'set' if self.token else None}, pagerduty_secrets={len(self.pagerduty_secrets)}, "
                f"hmac_secret={'set' if self.hmac_secret else None})")

    def check(self, source: str, headers: Mapping[str, str], body: bytes, now: datetime | None = None) -> Method:
        """Return how the request authenticated, or raise AlertAuthError saying why it did not."""
        if not (self.token or self.pagerduty_secrets or self.hmac_secret):
            raise AlertAuthError("alert webhooks are disabled: no alert token or signing secret is configured")
        if source == "pagerduty" and self.pagerduty_secrets:
            signature = _header(headers, PAGERDUTY_SIGNATURE_HEADER)
            if signature is not None:
                if pagerduty_signature_ok(body, signature, self.pagerduty_secrets):
                    return "pagerduty_signature"
                raise AlertAuthError(f"{PAGERDUTY_SIGNATURE_HEADER} does not match the body")
        if source in ("grafana", "generic") and self.hmac_secret:
            signature = _header(headers, self.hmac_header)
            if signature is not None:
                self._check_hmac(headers, body, signature, self.hmac_secret, now)
                return "hmac_signature"
        authorization = _header(headers, "Authorization")
        if self.token and authorization is not None:
            if bearer_token_ok(authorization, self.token):
                return "bearer"
            raise AlertAuthError("the bearer token is not valid")
        raise AlertAuthError(f"missing credentials: {' or '.join(self._accepted(source))}")

    def _check_hmac(self, headers: Mapping[str, str], body: bytes, signature: str, secret: str,
                    now: datetime | None) -> None:
        timestamp = None
        if self.hmac_timestamp_header:
            timestamp = _header(headers, self.hmac_timestamp_header)
            if timestamp is None:
                raise AlertAuthError(f"missing {self.hmac_timestamp_header}")
            try:
                signed_at = float(timestamp)
            except ValueError:
                raise AlertAuthError(f"{self.hmac_timestamp_header} is not a Unix time") from None
            if now is not None and abs(now.timestamp() - signed_at) > self.max_skew_seconds:
                raise AlertAuthError(f"{self.hmac_timestamp_header} is more than {self.max_skew_seconds:g} s "
                                     "away from now (a replay, or a clock out of sync)")
        if not hmac_signature_ok(body, signature, secret, timestamp):
            raise AlertAuthError(f"{self.hmac_header} does not match the body")

    def _accepted(self, source: str) -> list[str]:
        accepted = ["Authorization: Bearer <token>"] if self.token else []
        if source == "pagerduty" and self.pagerduty_secrets:
            accepted.append(PAGERDUTY_SIGNATURE_HEADER)
        if source in ("grafana", "generic") and self.hmac_secret:
            accepted.append(self.hmac_header)
        return accepted or ["no credentials are configured for this source"]

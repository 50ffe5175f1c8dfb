"""Slack's v0 request signature: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, timestamp: str, body: bytes | str) -> str:
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes, content_type: str) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": sign(secret, str(timestamp), body),
            "Content-Type": content_type}

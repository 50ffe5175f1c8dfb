"""Alertmanager silences through its v2 API: create one for an incident's alert, expire it at resolution.

Idempotent, since a recorded side effect may run twice: `ensure` first looks for an active silence with the same
matchers and the same comment (which carries the incident link) and returns it instead of creating another;
expiring a silence already expired or gone counts as done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

# Labels that change while the alert stays the same one: a matcher on them would stop matching.
VOLATILE_LABELS = frozenset({"value", "unit"})


class AlertmanagerError(RuntimeError):
    """Alertmanager refused or could not be reached; the message is safe to show a person."""


@dataclass(frozen=True)
class Silence:
    id: str
    state: str  # active, pending, expired
    ends_at: str


def matchers(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Equality matchers on the alert's identifying labels (all of them but the volatile ones)."""
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True}
            for k, v in sorted(labels.items()) if k not in VOLATILE_LABELS]


class AlertmanagerSilences:
    def __init__(self, base_url: str, *, client: httpx.AsyncClient | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client
        self.timeout_s = timeout_s

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        client = self._client or httpx.AsyncClient()
        try:
            resp = await client.request(method, f"{self.base_url}/api/v2{path}", timeout=self.timeout_s, **kw)
        except httpx.HTTPError as exc:
            raise AlertmanagerError(f"Alertmanager at {self.base_url} could not be reached ({type(exc).__name__})") from exc
        finally:
            if self._client is None:
                await client.aclose()
        return resp

    async def ensure(self, labels: Mapping[str, str], *, created_by: str, comment: str, now: datetime,
                     duration: timedelta = timedelta(hours=1)) -> str:
        """The id of an active silence of these labels with this comment, created if there is none."""
        wanted = matchers(labels)
        if not wanted:
            raise AlertmanagerError("the alert has no labels to silence it by")
        existing = await self._request("GET", "/silences", params={"filter": [_filter(m) for m in wanted]})
        if existing.status_code == 200:
            for s in existing.json():
                if (s.get("status", {}).get("state") in ("active", "pending") and s.get("comment") == comment
                        and _same(s.get("matchers", []), wanted)):
                    return str(s["id"])
        body = {"matchers": wanted, "startsAt": now.isoformat(), "endsAt": (now + duration).isoformat(),
                "createdBy": created_by, "comment": comment}
        resp = await self._request("POST", "/silences", json=body)
        if resp.status_code != 200:
            raise AlertmanagerError(f"Alertmanager refused the silence ({resp.status_code}): {resp.text[:200]}")
        return str(resp.json()["silenceID"])

    async def expire(self, silence_id: str) -> bool:
        """Expire the silence; True when it is expired now (also when it already was, or is gone)."""
        resp = await self._request("DELETE", f"/silence/{silence_id}")
        if resp.status_code in (200, 404):
            return True
        if resp.status_code == 500 and "already expired" in resp.text:
            return True
        raise AlertmanagerError(f"Alertmanager refused to expire the silence ({resp.status_code}): {resp.text[:200]}")

    async def get(self, silence_id: str) -> Silence | None:
        resp = await self._request("GET", f"/silence/{silence_id}")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise AlertmanagerError(f"Alertmanager answered {resp.status_code}")
        body = resp.json()
        return Silence(str(body["id"]), str(body["status"]["state"]), str(body["endsAt"]))


def _filter(m: Mapping[str, Any]) -> str:
    escaped = str(m["value"]).replace("\\", "\\\\").replace('"', '\\"')
    return f'{m["name"]}="{escaped}"'


def _same(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def key(ms: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, bool, bool]]:
        return {(str(m["name"]), str(m["value"]), bool(m.get("isRegex")), bool(m.get("isEqual", True))) for m in ms}

    return key(a) == key(b)

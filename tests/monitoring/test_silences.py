"""Silences through a real Alertmanager's v2 API: created with matchers from the alert's labels, the Slack user as
creator and the incident link as comment; asking again returns the same silence; expiring works once and again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts.silences import AlertmanagerError, AlertmanagerSilences
from tests.support.prom import alertmanager, free_port

LABELS = {"alertname": "PaymentFailureRateHigh", "service": "payments", "severity": "critical", "value": "0.03"}
LINK = "https://example.slack.com/archives/C0INC/p1 (incident inc-20261201-2300-pay)"


async def test_silence_created_from_alert_labels_is_reused_then_expired(tmp_path: Path) -> None:
    async with alertmanager(tmp_path / "am", webhook_url="http://127.0.0.1:9/none") as am:
        silences = AlertmanagerSilences(am.url)
        now = datetime.now(UTC)
        sid = await silences.ensure(LABELS, created_by="Dana Lee", comment=LINK, now=now)
        [stored] = await am.silences()
        assert stored["id"] == sid and stored["status"]["state"] == "active"
        assert (stored["createdBy"], stored["comment"]) == ("Dana Lee", LINK)
        assert {(m["name"], m["value"], m["isEqual"], m["isRegex"]) for m in stored["matchers"]} == {
            ("alertname", "PaymentFailureRateHigh", True, False), ("service", "payments", True, False),
            ("severity", "critical", True, False)}  # the value label changes each evaluation: not matched on
        ends = datetime.fromisoformat(stored["endsAt"].replace("Z", "+00:00"))
        assert 3590 <= (ends - now).total_seconds() <= 3610
        # a retried side effect finds the same silence instead of adding one
        assert await silences.ensure(LABELS, created_by="Dana Lee", comment=LINK, now=now) == sid
        assert len(await am.silences()) == 1
        assert await silences.expire(sid)
        got = await silences.get(sid)
        assert got is not None and got.state == "expired"
        assert await silences.expire(sid)  # again: already expired counts as done


async def test_unreachable_alertmanager_says_so() -> None:
    silences = AlertmanagerSilences(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AlertmanagerError, match="could not be reached"):
        await silences.ensure(LABELS, created_by="x", comment="y", now=datetime.now(UTC))

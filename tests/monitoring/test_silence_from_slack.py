"""An Alertmanager alert opens an incident whose header lists the firing alert with its links and offers "Silence
for 1 h"; the Technical Lead's click creates the silence in a real Alertmanager (their name as creator, the incident
in the comment), someone outside the incident lead roles is refused and nothing is created, and resolution expires it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.incidents.header import SILENCE_ACTION
from tests.support.harness import Harness, harness
from tests.support.prom import alertmanager, wait_until

AUTH = {"Authorization": "Bearer test-alert-token"}
ALERT = {
    "version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "{}:{alertname=\"PaymentFailureRateHigh\"}",
    "groupLabels": {"alertname": "PaymentFailureRateHigh"}, "commonLabels": {}, "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "PaymentFailureRateHigh", "service": "payments",
                                               "severity": "critical", "value": "0.034", "unit": "ratio"},
                "annotations": {"summary": "payments failing", "runbook_url": "https://wiki.example/pay"},
                "startsAt": "2026-01-15T08:58:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x", "fingerprint": "pay0001"}],
}
LEAD, OUTSIDER = "U100TL01", "U700PM01"  # Technical Lead; Product Manager (not an incident lead)


def header(h: Harness, channel: str) -> dict[str, Any]:
    return next(m for m in h.messages(channel) if SILENCE_ACTION in json.dumps(m.get("blocks") or []))


async def test_silence_from_the_header_in_alertmanager_then_expired_at_resolution(tmp_path: Path) -> None:
    async with alertmanager(tmp_path / "am", webhook_url="http://127.0.0.1:9/none") as am, \
            harness(tmp_path, ROLLBOT_ALERTMANAGER_URL=am.url) as h:
        async with aiohttp.ClientSession() as s, s.post(f"{h.app_url}/alerts/alertmanager", json=ALERT,
                                                        headers=AUTH) as r:
            assert r.status == 202
        await h.settle()
        incident = await h.only_incident()
        assert incident.channel_id is not None
        head = header(h, incident.channel_id)
        text = json.dumps(head["blocks"])
        assert "Firing alerts (1)" in text and "*PaymentFailureRateHigh* \\u00b7 payments" in text
        assert "<http://prometheus:9090/graph?g0.expr=x|source>" in text and "<https://wiki.example/pay|runbook>" in text

        await h.click(OUTSIDER, incident.channel_id, head["ts"], action_id=SILENCE_ACTION)
        assert await am.silences() == []  # refused: nothing created

        # Alertmanager judges a silence's end against its own wall clock: bring the test's clock to it.
        h.clock.set(datetime.now(UTC))
        await h.click(LEAD, incident.channel_id, head["ts"], action_id=SILENCE_ACTION)
        [silence] = await wait_until(am.silences, "the silence in Alertmanager")
        assert silence["status"]["state"] == "active"
        assert silence["createdBy"] == h.sb.ws.users[LEAD].real_name
        assert incident.id in silence["comment"]
        assert {m["name"] for m in silence["matchers"]} == {"alertname", "service", "severity"}
        assert await h.bot.silences.active(incident.id) == [silence["id"]]

        assert await h.bot.silences.expire(incident.id) == 1  # what the `closed` listener does at resolution
        [expired] = await am.silences()
        assert expired["status"]["state"] == "expired"
        assert await h.bot.silences.active(incident.id) == []

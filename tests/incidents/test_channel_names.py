"""War-room channel names cannot collide: incidents with the same label in the same minute get distinct
names (a short suffix from the incident id), so each channel is created with one conversations.create."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.incidents.channel_naming import channel_name
from bot.incidents.service import new_incident_id
from bot.store.models import Incident
from tests.support.harness import harness

MINUTE = datetime(2026, 1, 15, 8, 58, tzinfo=UTC)


def incident(incident_id: str, declared_at: datetime) -> Incident:
    return Incident(id=incident_id, title="Payments failing", runbook="r", level="immediate", declared_by="U1",
                    declared_at=declared_at)


def test_fifty_same_minute_same_label_incidents_get_distinct_valid_names() -> None:
    incidents: dict[str, Incident] = {}
    second = 0
    while len(incidents) < 50:  # ids are primary keys: distinct, as the database guarantees
        at = MINUTE + timedelta(seconds=second % 3)  # many in the very same second too
        incident_id = new_incident_id(at.strftime("%Y%m%d-%H%M%S"))
        incidents.setdefault(incident_id, incident(incident_id, at))
        second += 1
    names = [channel_name(inc, "PaymentFailureRateHigh") for inc in incidents.values()]
    assert len(set(names)) == 50
    for name in names:
        assert re.fullmatch(r"inc-20260115-0858-paymentfailureratehigh-[0-9a-f]{6,}", name), name


def test_a_long_label_is_cut_but_the_suffix_stays() -> None:
    a, b = (incident(f"inc-20260115-085800-{x}", MINUTE) for x in ("aaaa", "bbbb"))
    names = [channel_name(inc, "x" * 200) for inc in (a, b)]
    assert all(len(n) <= 80 for n in names)
    assert names[0].endswith("-00aaaa") and names[1].endswith("-00bbbb")


def test_ids_of_another_shape_still_get_distinct_names() -> None:
    names = {channel_name(incident(f"imported-{i}", MINUTE), "manual") for i in range(50)}
    assert len(names) == 50


async def test_same_minute_incidents_each_create_their_channel_with_one_call(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        for _ in range(3):  # the fake clock does not move: all three in the same minute, same scenario
            delivery = await h.command("U500OC01", "start payment card payments failing")
            assert delivery["status"] == 200
        incidents = await h.incidents()
        assert len(incidents) == 3
        names = {inc.channel_name for inc in incidents}
        assert len(names) == 3 and all(inc.channel_id for inc in incidents)
        creates = [c for c in h.sb.calls if c["method"] == "conversations.create"]
        assert len(creates) == 3 and all(c["ok"] for c in creates)

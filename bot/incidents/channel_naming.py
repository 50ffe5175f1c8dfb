"""The incident channel's name: readable (date, time, label) and unique per incident, so creating it is one call."""

from __future__ import annotations

import hashlib
import re

from bot.incidents.service import slug
from bot.store.models import Incident

_ID_TAIL = re.compile(r"inc-\d{8}-\d{4}(\d{2})-([0-9a-f]+)")


def channel_suffix(incident_id: str) -> str:
    """A short part of the incident id that differs between incidents declared in the same minute.

    Ids are `inc-<date>-<hhmmss>-<random hex>` and unique, so their seconds and random part are unique within
    the minute the name already shows; any other id shape falls back to a hash of it.
    """
    tail = _ID_TAIL.fullmatch(incident_id)
    if tail is not None:
        return tail.group(1) + tail.group(2)
    return hashlib.sha256(incident_id.encode()).hexdigest()[:8]


def channel_name(incident: Incident, label: str) -> str:
    """`inc-<date>-<hhmm>-<label>-<suffix>`: unique per incident, so creating the channel takes one call even
    when fifty incidents with the same label open in the same minute."""
    prefix = "drill-" if incident.is_drill else "inc-"
    suffix = channel_suffix(incident.id)
    name = f"{prefix}{incident.declared_at:%Y%m%d-%H%M}-{slug(label)}"
    return f"{name[: 80 - len(suffix) - 1].rstrip('-_')}-{suffix}"

"""Every alert accounted for: one that opened nothing is posted to the triage channel with a Declare button.

The channel is ROLLBOT_TRIAGE_CHANNEL, else the channel `/rollback` was last used in (where the team runs it).
One post per alert and firing episode, keyed like the incidents' messages (claimed, the key in the message's
metadata, looked up after a lost answer), so repeats, retries and replicas never double it.
"""

from __future__ import annotations

import logging

from sqlmodel import col, select

from bot.alerts.triage_view import triage_blocks, triage_text
from bot.core.services import Services
from bot.store.models import Incident, ReceivedAlert

log = logging.getLogger(__name__)


async def triage_channel(svc: Services) -> str | None:
    if svc.settings.triage_channel:
        return svc.settings.triage_channel
    async with svc.db.session() as session:
        return (await session.exec(select(Incident.origin_channel_id).where(col(Incident.origin_channel_id).is_not(None))
                                   .order_by(col(Incident.declared_at).desc()))).first()


async def post_triage(svc: Services, received_id: int, reason: str) -> bool:
    """Post the stored alert `received_id` to triage once per firing episode; True when posted now."""
    async with svc.db.session() as session:
        row = await session.get(ReceivedAlert, received_id)
    if row is None or row.status != "firing":
        return False
    channel = await triage_channel(svc)
    if channel is None:
        log.warning("alert %s matched no trigger and no triage channel is known (set ROLLBOT_TRIAGE_CHANNEL)", row.name)
        return False
    started = (row.payload or {}).get("starts_at") or ""
    return await svc.slack.post_once(f"triage:{row.source}:{row.fingerprint}:{started}", channel,
                                     triage_text(row.payload, row.outcome),
                                     triage_blocks(row.id or 0, row.payload, row.outcome, reason))

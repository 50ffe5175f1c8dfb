"""A one-time DM to the person who must decide something (a comms draft, a gated action), pointing at the
message in the incident channel where they decide it: decisions reach their deciders, not a long thread.

Like a page: who is told is claimed once per `key`, ever, in the same transaction as one durable row per person
(a `decider_dm` timer), so a crash between the claim and the DM delays it, never loses it. The row is worked at
once (the fast path) and, if that never happened or failed, by the timer worker; the DM itself is keyed
(bot/slack/gateway.py), so a retried row or a lost answer finds the DM Slack already has instead of sending it
again."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError

from bot.core import timers
from bot.core.events import FAST_PATH_GRACE
from bot.core.once import claim_once
from bot.core.services import Services
from bot.slack.client import refused_for_good
from bot.store.models import Timer

log = logging.getLogger(__name__)

DECIDER_DM = "decider_dm"  # the timer kind of one owed DM


def register(svc: Services) -> None:
    """The timer worker sends owed DMs the fast path did not (a crash, a Slack failure)."""

    async def on_decider_dm(timer: Timer) -> None:
        await _send(svc, timer)

    svc.timers.on(DECIDER_DM, on_decider_dm, ordered=False)  # each DM its own delivery


async def tell_deciders(svc: Services, incident_id: str, key: str, roles: list[str], text: str,
                        exclude: frozenset[str] = frozenset()) -> list[str]:
    """DM the first holder of each role (once per `key`, ever; the requester of a gated action excluded).
    Returns who is owed the DM (sent now, or by the timer worker soon). The decision itself stays in the channel,
    where every holder can act on it."""
    users: list[str] = []
    for role in roles:
        holder = next((u for u in await svc.roles.members(role, incident_id) if u not in exclude), None)
        if holder is not None and holder not in users:
            users.append(holder)
    if not users:
        return []
    now = svc.clock.now()
    rows: list[str] = []
    async with svc.db.session() as session:
        if not await claim_once(session, f"{incident_id}:decider_dm:{key}", "decider_dm", now):
            return []
        for user in users:
            row = f"{incident_id}:{DECIDER_DM}:{key}:{user}"
            # Due after the fast path's grace: the worker takes it only if the send below never happened.
            await timers.schedule(session, key=row, kind=DECIDER_DM, due_at=now + FAST_PATH_GRACE,
                                  incident_id=incident_id,
                                  payload={"user": user, "text": text, "dm": f"decider:{incident_id}:{key}:{user}"})
            rows.append(row)
    await asyncio.gather(*(svc.timers.work_now(row) for row in rows))
    return users


async def _send(svc: Services, timer: Timer) -> None:
    user, text = str(timer.payload["user"]), str(timer.payload["text"])
    try:
        await svc.slack.dm(user, text, key=str(timer.payload["dm"]))  # sent once, even if an answer is lost
    except SlackApiError as exc:
        if not refused_for_good(exc):
            raise  # the row is retried
        # Refused for good (no such user, a bot): a DM is a pointer; the message in the channel is the decision.
        log.info("decider DM to %s refused: %s", user, exc.response.get("error"))

"""Every Slack Web API call goes through here: the prioritized call queue (rate-limit budgets, most urgent first,
re-renders of one message coalesced), retries on 429/5xx/connection errors, and idempotent posting keyed by
(incident, message key) so a retried or re-run operation updates instead of posting twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from bot.core.clock import utc
from bot.slack.client import KEYED_HEADER, answer_lost
from bot.slack.queue import Priority, slack_call
from bot.store.db import Database
from bot.store.models import Claim, SlackMessage

log = logging.getLogger(__name__)

Blocks = Sequence[Block | dict[str, Any]]
LOST_ANSWER_RETRIES = 2


# A keyed post carries this in its message metadata, with the key, so a post whose answer was lost is found again.
META_TYPE = "rollbot_message"
POST_CLAIM_STALE_S = 30.0  # a post claimed longer ago than this belongs to a worker that died: taken over
POST_WAIT_POLL_S = 0.25
POSTING = "posting"  # the claim's owner while a post is in flight
POSTED = "posted "  # then, for a post_once message: "posted <ts>"


def as_dicts(blocks: Blocks | None) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    return [b.to_dict() if isinstance(b, Block) else b for b in blocks]


# Messages whose unchanged re-render is not sent. Only those without inputs: re-sending a checklist's same blocks
# is what puts back a checkbox a refused click left ticked in the person's client.
SKIP_UNCHANGED = ("header",)


def _render_digest(text: str, blocks: Blocks | None) -> str:
    return hashlib.sha256(json.dumps([text, as_dicts(blocks)], sort_keys=True, default=str).encode()).hexdigest()


def priority_for_key(key: str) -> Priority:
    """How urgent a keyed message is, when its caller does not say: decisions and approvals first, header last."""
    if key.startswith(("decision", "approval")):
        return Priority.URGENT
    if key == "header":
        return Priority.REFRESH
    return Priority.STEP


class SlackGateway:
    def __init__(self, client: AsyncWebClient, db: Database, claim_stale_s: float = POST_CLAIM_STALE_S) -> None:
        self.client = client
        self.db = db
        self.claim_stale_s = claim_stale_s
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.bot_user_id: str | None = None
        self.team_id: str | None = None
        # A person's DM channel with the bot never changes: opened once, not once per page (tier 3, 50 a minute).
        self._dm_channels: dict[str, str] = {}
        # (channel, ts) -> digest of the last render sent (event set) or being sent of a SKIP_UNCHANGED message,
        # so a re-render that shows nothing new costs no chat.update. In memory: after a restart, or when another
        # replica edited it, the worst case is one edit that was not needed.
        self._rendered: dict[tuple[str, str], tuple[str, asyncio.Event]] = {}

    async def identify(self) -> dict[str, Any]:
        response = await self.client.auth_test()
        self.bot_user_id = response["user_id"]
        self.team_id = response.get("team_id")
        return response.data  # type: ignore[return-value]

    async def call(self, method: str, *, priority: Priority | None = None, **kwargs: Any) -> dict[str, Any]:
        with slack_call(priority):
            response = await self.client.api_call(method, json=kwargs)
        return response.data  # type: ignore[return-value]

    # --- messages keyed by incident -----------------------------------------------------------

    async def message_ref(self, incident_id: str, key: str) -> SlackMessage | None:
        async with self.db.session() as session:
            return (await session.exec(
                select(SlackMessage).where(SlackMessage.incident_id == incident_id, SlackMessage.key == key)
            )).first()

    async def put_message(
        self,
        incident_id: str,
        key: str,
        channel: str,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        priority: Priority | None = None,
    ) -> SlackMessage:
        """Post the message the first time, update it afterwards: re-rendering is always safe. Exactly one post
        per key across replicas and crashes: the first post is claimed in the database, carries the key in its
        metadata, and a post whose answer was lost (a timeout, a 5xx, a crash) is looked up in the conversation
        before anything posts again."""
        async with self._locks[(incident_id, key)]:  # saves a database round trip in-process; not for correctness
            ref = await self.message_ref(incident_id, key)
            if ref is None:
                return await self._post_keyed(incident_id, key, channel, text, blocks, thread_ts, priority)
        await self._update(ref, key, text, blocks, priority)
        return ref

    async def _post_keyed(self, incident_id: str, key: str, channel: str, text: str, blocks: Blocks | None,
                          thread_ts: str | None, priority: Priority | None, rerender: bool = True) -> SlackMessage:
        async def recorded() -> tuple[str, str] | None:
            ref = await self.message_ref(incident_id, key)
            return (ref.channel, ref.ts) if ref else None

        first = Priority.STEP if key == "header" else priority or priority_for_key(key)
        where, fresh = await self._post_once(f"post:{incident_id}:{key}", f"{incident_id}:{key}", channel, thread_ts,
                                             text, blocks, first, recorded)
        ref = await self._record(incident_id, key, where, thread_ts)
        if not fresh and rerender:  # found, not posted by us just now: it may show an older render
            await self._update(ref, key, text, blocks, priority)
        elif key in SKIP_UNCHANGED:
            posted = asyncio.Event()
            posted.set()
            self._rendered[where] = (_render_digest(text, blocks), posted)
        return ref

    async def _post_once(self, claim: str, meta_key: str, channel: str, thread_ts: str | None, text: str,
                         blocks: Blocks | None, priority: Priority,
                         recorded: Callable[[], Awaitable[tuple[str, str] | None]] | None) -> tuple[tuple[str, str], bool]:
        """Post a message once across workers and lost answers: (channel, ts) and whether we posted it now."""
        lost = 0
        while True:
            taken = await self._claim_post(claim)
            if taken is None:  # another worker is posting it right now: wait for its record, or for it to die
                await asyncio.sleep(POST_WAIT_POLL_S)
                where = await recorded() if recorded else await self.find_keyed(meta_key, channel, thread_ts)
                if where is not None:
                    return where, False
                continue
            if not taken:  # claimed before by a worker that is gone (or by us, before a lost answer): look first
                found = await self.find_keyed(meta_key, channel, thread_ts)
                if found is not None:
                    return found, False
            try:
                with slack_call(priority):
                    body = {"channel": channel, "text": text, "blocks": as_dicts(blocks), "thread_ts": thread_ts,
                            "unfurl_links": False,
                            "metadata": {"event_type": META_TYPE, "event_payload": {"key": meta_key}}}
                    response = await self.client.api_call("chat.postMessage", headers={KEYED_HEADER: "1"},
                                                          json={k: v for k, v in body.items() if v is not None})
            except Exception as exc:
                # Refused, or the answer was lost: nobody is posting it any more, so the next attempt goes at once,
                # looking in the conversation first (here, for a lost answer, as the SDK would have retried).
                await self._release(claim)
                lost += 1
                if answer_lost(exc) and lost <= LOST_ANSWER_RETRIES:
                    log.warning("post of %s: answer lost (%r); looking for it before posting again", meta_key, exc)
                    continue
                raise
            return (str(response["channel"]), str(response["ts"])), True

    async def _claim_post(self, claim: str) -> bool | None:
        """True: we claimed a first post. False: claimed before, now stale, taken over by us. None: someone
        else holds a fresh claim."""
        now = datetime.now(UTC)  # the claims' own clock: how long a post has been in flight, in real time
        async with self.db.session() as session:
            dialect = session.bind.dialect.name if session.bind else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            inserted = await session.exec(insert(Claim).values(  # type: ignore[call-overload]
                key=claim, owner=POSTING, at=now).on_conflict_do_nothing(index_elements=["key"]))
            if inserted.rowcount:
                return True
            held = await session.get(Claim, claim)
            if held is None:
                return None
            if (now - utc(held.at)).total_seconds() < self.claim_stale_s and held.owner == POSTING:
                return None
            result = await session.exec(update(Claim).where(  # type: ignore[call-overload]
                col(Claim.key) == claim, col(Claim.at) == held.at).values(at=now, owner=POSTING))
            return False if result.rowcount == 1 else None

    async def _release(self, claim: str) -> None:
        async with self.db.session() as session:
            await session.exec(update(Claim).where(  # type: ignore[call-overload]
                col(Claim.key) == claim).values(owner="not posting"))

    async def _record(self, incident_id: str, key: str, where: tuple[str, str], thread_ts: str | None) -> SlackMessage:
        async with self.db.session() as session:  # a worker that took over may have recorded it already
            dialect = session.bind.dialect.name if session.bind else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await session.exec(insert(SlackMessage).values(  # type: ignore[call-overload]
                incident_id=incident_id, key=key, channel=where[0], ts=where[1], thread_ts=thread_ts)
                .on_conflict_do_nothing(index_elements=["incident_id", "key"]))
        ref = await self.message_ref(incident_id, key)
        assert ref is not None
        return ref

    async def find_keyed(self, wanted: str, channel: str, thread_ts: str | None) -> tuple[str, str] | None:
        """The bot's message carrying this key in its metadata, if Slack has it (the newest 200 of the channel,
        or the thread)."""
        cursor: str | None = None
        for _ in range(2):
            try:
                with slack_call(Priority.URGENT):
                    if thread_ts:
                        page = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=100,
                                                                       include_all_metadata=True, cursor=cursor)
                    else:
                        page = await self.client.conversations_history(channel=channel, limit=100,
                                                                       include_all_metadata=True, cursor=cursor)
            except SlackApiError as exc:
                # A public channel the bot posts to without being in it (chat:write.public) cannot be read:
                # post again rather than never (a message doubled beats an alert lost).
                if exc.response.get("error") == "not_in_channel":
                    return None
                raise
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                if meta.get("event_type") == META_TYPE and (meta.get("event_payload") or {}).get("key") == wanted:
                    return channel, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return None

    async def update_message(self, incident_id: str, key: str, text: str, blocks: Blocks | None = None,
                             priority: Priority | None = None) -> bool:
        """Re-render a message already posted; False when it was never posted (nothing to update)."""
        ref = await self.message_ref(incident_id, key)
        if ref is None:
            return False
        await self._update(ref, key, text, blocks, priority)
        return True

    async def _update(self, ref: SlackMessage, key: str, text: str, blocks: Blocks | None,
                      priority: Priority | None) -> None:
        where = (ref.channel, ref.ts)
        sending: tuple[str, asyncio.Event] | None = None
        if key in SKIP_UNCHANGED:
            digest = _render_digest(text, blocks)
            while (last := self._rendered.get(where)) is not None and last[0] == digest:
                if last[1].is_set():
                    return  # Slack shows exactly this already
                await last[1].wait()  # the same render on its way: done when it is (sent again below if it failed)
            sending = (digest, asyncio.Event())
            self._rendered[where] = sending  # the newest request: a newer render replaces an older one queued
        # Marked with its message: renders of one message go out in order, a newer one replacing one still queued.
        try:
            with slack_call(priority or priority_for_key(key), where):
                await self.client.chat_update(channel=ref.channel, ts=ref.ts, text=text, blocks=as_dicts(blocks))
        except BaseException:
            if sending is not None and self._rendered.get(where) is sending:
                del self._rendered[where]  # not known to be shown: the next render is sent
            raise
        finally:
            if sending is not None:
                sending[1].set()

    async def reply(self, channel: str, thread_ts: str | None, text: str, blocks: Blocks | None = None,
                    priority: Priority | None = None, *, owed: tuple[str, str] | None = None) -> str:
        """A reply (or a channel message, without `thread_ts`). `owed=(incident_id, key)`: a reply a state change
        owes, posted once per key across retries, replicas and lost answers, like a keyed post (claimed, the key
        in its metadata, looked up in the thread before posting again); said once, never re-rendered."""
        if owed is not None:
            incident_id, key = owed
            async with self._locks[owed]:
                ref = await self.message_ref(incident_id, key)
                if ref is None:
                    ref = await self._post_keyed(incident_id, key, channel, text, blocks, thread_ts, priority,
                                                 rerender=False)
            return ref.ts
        with slack_call(priority):
            response = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=as_dicts(blocks), unfurl_links=False
            )
        return str(response["ts"])

    async def post_once(self, key: str, channel: str, text: str, blocks: Blocks | None = None,
                        priority: Priority = Priority.STEP) -> bool:
        """A channel message outside any incident (the triage post), posted once per key across retries,
        replicas and lost answers; True when posted now. With no incident to record it under, the claim itself
        says it was posted (a channel the bot posts to from outside cannot be searched for it)."""

        async def recorded() -> tuple[str, str] | None:
            async with self.db.session() as session:
                held = await session.get(Claim, key)
            return (channel, held.owner.removeprefix(POSTED)) if held and held.owner.startswith(POSTED) else None

        if await recorded() is not None:
            return False
        (_, ts), posted = await self._post_once(key, key, channel, None, text, blocks, priority, recorded)
        async with self.db.session() as session:
            await session.exec(update(Claim).where(  # type: ignore[call-overload]
                col(Claim.key) == key).values(owner=f"{POSTED}{ts}"))
        return posted

    async def ephemeral(self, channel: str, user: str, text: str, blocks: Blocks | None = None) -> None:
        try:
            with slack_call(Priority.URGENT):
                await self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=as_dicts(blocks))
        except SlackApiError as exc:  # the user may not be in that channel; an ephemeral is best effort
            log.warning("ephemeral to %s in %s failed: %s", user, channel, exc.response.get("error"))

    async def dm(self, user: str, text: str, blocks: Blocks | None = None,
                 priority: Priority = Priority.PAGE, key: str | None = None) -> tuple[str, str]:
        """A DM; with a `key` (a page) it is sent once across workers and lost answers, like a keyed post."""
        if key is not None:
            with slack_call(priority):
                channel = self._dm_channels.get(user) or (await self.client.conversations_open(users=user))["channel"]["id"]
            self._dm_channels[user] = channel
            where, _ = await self._post_once(f"dm:{key}", f"dm:{key}", channel, None, text, blocks, priority, None)
            return where
        with slack_call(priority):
            channel = self._dm_channels.get(user)
            if channel is not None:
                try:
                    response = await self.client.chat_postMessage(channel=channel, text=text, blocks=as_dicts(blocks))
                    return channel, str(response["ts"])
                except SlackApiError as exc:
                    if exc.response.get("error") not in ("channel_not_found", "is_archived"):
                        raise
                    self._dm_channels.pop(user, None)  # gone after all: open it again
            opened = await self.client.conversations_open(users=user)
            channel = opened["channel"]["id"]
            self._dm_channels[user] = channel
            response = await self.client.chat_postMessage(channel=channel, text=text, blocks=as_dicts(blocks))
        return channel, str(response["ts"])

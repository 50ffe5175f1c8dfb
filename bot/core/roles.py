"""Who holds a role right now: the roster's user IDs, Slack user-group members and email look-ups, cached briefly,
plus per-incident overrides. Always by immutable user ID, never by display name."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.core.coord import Coordinator
from bot.core.roster import Roster
from bot.slack.gateway import SlackGateway
from bot.store.db import Database
from bot.store.models import RoleOverride

log = logging.getLogger(__name__)
TIERS = ("primary", "secondary")


class RoleDirectory:
    def __init__(self, roster: Roster, slack: SlackGateway, db: Database, cache: Coordinator, ttl: float) -> None:
        self.roster = roster
        self.slack = slack
        self.db = db
        self.cache = cache
        self.ttl = ttl

    async def tier(self, role: str, tier: str) -> list[str]:
        resolved = await asyncio.gather(*(self._resolve(c) for c in self.roster.contacts(role, tier)))
        return list(dict.fromkeys(u for group in resolved for u in group))

    async def members(self, role: str, incident_id: str | None = None) -> list[str]:
        return (await self.holders([role], incident_id))[role]

    async def roles_of(self, user: str, roles: list[str], incident_id: str | None = None) -> list[str]:
        held = await self.holders(roles, incident_id)
        return [r for r in roles if user in held[r]]

    async def holders(self, roles: list[str], incident_id: str | None = None) -> dict[str, list[str]]:
        """Members of each role: roster tiers (resolved concurrently) plus this incident's overrides (one query)."""
        roles = list(dict.fromkeys(roles))
        tiers = await asyncio.gather(*(self.tier(r, t) for r in roles for t in TIERS))
        overrides = await self.overrides(incident_id) if incident_id else {}
        held: dict[str, list[str]] = {}
        for i, role in enumerate(roles):
            users = [u for tier in tiers[i * len(TIERS):(i + 1) * len(TIERS)] for u in tier]
            held[role] = list(dict.fromkeys(users + overrides.get(role, [])))
        return held

    async def resolve_contacts(self, contacts: list[object]) -> list[str]:
        """User ids behind a list of roster contacts (users, user groups, emails)."""
        resolved = await asyncio.gather(*(self._resolve(c) for c in contacts))
        return list(dict.fromkeys(u for group in resolved for u in group))

    async def warm(self, roles: list[str]) -> None:
        """Resolve every role once at start-up so the first incident does not wait on look-ups."""
        await self.holders(roles)

    async def overrides(self, incident_id: str) -> dict[str, list[str]]:
        async with self.db.session() as session:
            rows = await session.exec(select(RoleOverride.role, RoleOverride.user_id).where(
                RoleOverride.incident_id == incident_id))
            found: dict[str, list[str]] = {}
            for role, user in rows.all():
                found.setdefault(role, []).append(user)
            return found

    async def _resolve(self, contact: object) -> list[str]:
        user = getattr(contact, "user", None)
        if user:
            return [user]
        group = getattr(contact, "usergroup", None)
        email = getattr(contact, "email", None)
        key = f"roles:group:{group}" if group else f"roles:email:{email}"
        cached = await self.cache.cache_get(key)
        if cached is not None:
            return list(cached)
        try:
            if group:
                response = await self.slack.client.usergroups_users_list(usergroup=group)
                users = list(response["users"])
            else:
                response = await self.slack.client.users_lookupByEmail(email=email)
                users = [response["user"]["id"]]
        except SlackApiError as exc:
            log.warning("could not resolve %s: %s", key, exc.response.get("error"))
            users = []
        await self.cache.cache_set(key, users, self.ttl)
        return users

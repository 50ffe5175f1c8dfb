"""Per-incident role overrides: `/rollback role <role> @user` gives someone a role for this incident only, so they
can vote where the policy asks for that role.
"""

from __future__ import annotations

from bot.core import authz, timeline
from bot.core.errors import Refused
from bot.core.services import Services
from bot.decision.rendering import Renderer
from bot.decision.requests import Requests, insert
from bot.store.models import RoleOverride


class RoleOverrides:
    def __init__(self, svc: Services, requests: Requests, renderer: Renderer) -> None:
        self.svc = svc
        self.requests = requests
        self.renderer = renderer

    async def set_role(self, incident_id: str, role: str, target: str, by: str, follow_up: bool = True) -> tuple[str, bool]:
        """`/rollback role <role> @user`: allowed to the incident leads only (a role holder cannot hand out roles).
        Returns (message for `by`, whether anything changed); follow_up=False leaves `announce_role` to the caller."""
        await self.requests.require_open(incident_id)
        try:
            title = self.requests.title(role)
        except KeyError:
            raise Refused(f"Unknown role `{role}`.") from None
        now = self.svc.clock.now()
        await authz.require(self.svc, "/rollback role", by, authz.Subject(incident_id))
        async with self.svc.db.session() as session:
            inserted = await session.exec(insert(session)(RoleOverride).values(
                incident_id=incident_id, role=role, user_id=target, set_by=by, at=now).on_conflict_do_nothing(
                index_elements=["incident_id", "role", "user_id"]))  # type: ignore[call-overload]
            if not inserted.rowcount:
                return f"<@{target}> already holds {title} for this incident.", False
            timeline.record(session, incident_id, now, "role_override",
                            f"<@{by}> gave <@{target}> the role {title} for this incident", actor=by, role=role,
                            user=target)
        if follow_up:
            await self.announce_role(incident_id, role, target, by)
        return f"<@{target}> now holds {title} for this incident.", True

    async def announce_role(self, incident_id: str, role: str, target: str, by: str) -> None:
        """Say it in the war room and re-render the open approvals (their holders changed)."""
        incident = await self.svc.incident(incident_id)
        if incident.channel_id:
            await self.svc.slack.reply(incident.channel_id, None, f":bust_in_silhouette: <@{by}> gave <@{target}> "
                                       f"the role *{self.requests.title(role)}* for this incident.",
                                       owed=(incident_id, f"reply:role:{role}:{target}"))
        for request in await self.requests.pending(incident_id):
            await self.renderer.render(request.id)

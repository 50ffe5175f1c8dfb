"""The approval a destructive action needs before it runs: what `approval_needed` (bot/executions/service.py)
asks for. Votes on it and its typed phrase are bot/decision/votes.py and bot/decision/confirmation.py.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import select

from bot.core import timeline
from bot.core.errors import Refused
from bot.core.services import Services
from bot.decision.policy import Policy
from bot.decision.rendering import Renderer
from bot.decision.requests import Requests, insert
from bot.store.models import ApprovalRequest, Execution, Incident


class ActionApprovals:
    def __init__(self, svc: Services, requests: Requests, renderer: Renderer) -> None:
        self.svc = svc
        self.requests = requests
        self.renderer = renderer

    async def on_approval_needed(self, incident_id: str, execution_id: str, action_id: str, requested_by: str,
                                 **_: Any) -> None:
        await self.request_action(incident_id, execution_id, action_id, requested_by)

    async def request_action(self, incident_id: str, execution_id: str, action_id: str, requested_by: str) -> str:
        """A request with the action's own policy (and its typed phrase), posted as its own message in the incident
        channel. Idempotent per execution; returns the request id. Later emits `action_approved` or
        `action_declined` [incident_id, execution_id]."""
        action = self.svc.runbook.action(action_id)
        now = self.svc.clock.now()
        subject = f"execution:{execution_id}"
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or await session.get(Execution, execution_id) is None:
                raise Refused("No such execution.")
            model = action.approval or self.svc.runbook.level(incident.level).approval
            policy = Policy.from_model(model)
            request_id = f"apr-{secrets.token_hex(6)}"
            inserted = await session.exec(insert(session)(ApprovalRequest).values(
                id=request_id, incident_id=incident_id, subject=subject, policy=policy.to_dict(), status="pending",
                requested_by=requested_by, requested_at=now).on_conflict_do_nothing(
                index_elements=["incident_id", "subject"]))  # type: ignore[call-overload]
            if inserted.rowcount:
                phrase = " and the typed confirmation phrase" if action.confirmation else ""
                timeline.record(session, incident_id, now, "approval_requested",
                                f"{action.title} needs approval: {policy.words(self.requests.title)}{phrase}",
                                actor=requested_by, request=request_id, execution=execution_id, action=action.id)
            else:
                request_id = (await session.exec(select(ApprovalRequest.id).where(
                    ApprovalRequest.incident_id == incident_id, ApprovalRequest.subject == subject))).one()
        await self.renderer.render(request_id)
        return request_id

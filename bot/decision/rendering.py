"""An approval's Slack messages, read from the store: the request's own message (the war room's decision message,
or one per action approval, whose approvers are told by DM once) and the rollback decision's announcement.
The blocks themselves are bot/decision/views.py.
"""

from __future__ import annotations

from typing import Any

from bot.core.decider_dm import tell_deciders
from bot.core.errors import Refused
from bot.core.services import Services
from bot.decision.policy import Policy
from bot.decision.requests import (
    DECIDED,
    DECISION_KEY,
    ROLLBACK,
    Requests,
    confirmed_by,
    deciders,
    known,
    message_key,
    votes_of,
)
from bot.decision.views import ApprovalView, LevelChoice, RoleLine, VoteLine, approval_blocks, approval_text
from bot.runbook.procedure import procedure_for
from bot.slack.blocks import clock_time, escape, param_label
from bot.store.models import ApprovalRequest, Incident


class Renderer:
    def __init__(self, svc: Services, requests: Requests) -> None:
        self.svc = svc
        self.requests = requests
        self._rendering: set[str] = set()
        self._dirty: set[str] = set()

    async def render(self, request_id: str) -> None:
        """Re-render a request's message from the store. Concurrent calls coalesce: one render runs at a time per
        request and runs once more if anything changed meanwhile, so 50 clicks cause a few updates, not 50."""
        if request_id in self._rendering:
            self._dirty.add(request_id)
            return
        self._rendering.add(request_id)
        try:
            while True:
                self._dirty.discard(request_id)
                await self._render(request_id)
                if request_id not in self._dirty:
                    break
        finally:
            self._rendering.discard(request_id)

    async def _render(self, request_id: str) -> None:
        view, incident, key = await self.view(request_id)
        if not incident.channel_id:
            return
        # Every approval is its own message in the channel, where its deciders look (not in the header's
        # thread), and a gated action's approvers are told by DM once.
        await self.svc.slack.put_message(incident.id, key, incident.channel_id, approval_text(view),
                                         approval_blocks(view))
        if key != DECISION_KEY and view.status == "pending":
            async with self.svc.db.session() as session:
                request = await session.get(ApprovalRequest, request_id)
            if request is not None:
                await tell_deciders(self.svc, incident.id, key, list(Policy.from_dict(request.policy).roles),
                                    f"{'[DRILL] ' if incident.is_drill else ''}✋ Your approval is needed: "
                                    f"*{view.title}* in <#{incident.channel_id}>",
                                    exclude=frozenset({request.requested_by}))

    async def view(self, request_id: str) -> tuple[ApprovalView, Incident, str]:
        """Everything the approval message shows, read in one go."""
        title = self.requests.title
        async with self.svc.db.session() as session:
            request = await session.get(ApprovalRequest, request_id)
            if request is None:
                raise Refused("No such approval request.")
            incident = await session.get(Incident, request.incident_id)
            assert incident is not None
            votes = await votes_of(session, request_id)
            execution, action = await self.requests.action_of(session, request)
            confirmation = await confirmed_by(session, request) if action and action.confirmation else None
            policy = Policy.from_dict(request.policy)
            outcome = await self.requests.evaluate(session, request, policy)
        held = await self.svc.roles.holders(list(policy.roles), incident.id)
        runbook = self.svc.runbook
        filled = outcome.slots if request.status != "declined" else {}
        roles = tuple(RoleLine(r, title(r), tuple(held.get(r, [])), filled.get(r)) for r in policy.roles)
        votes_shown = tuple(VoteLine(v.user_id, v.vote, tuple(title(r) for r in v.roles if known(runbook, r)),
                                     v.at, v.reason) for v in votes)
        decided_by = tuple(u for u, _ in deciders(outcome)) if request.status in DECIDED else ()
        common: dict[str, Any] = dict(
            request_id=request.id, subject=request.subject, policy_kind=policy.kind, needs=policy.words(title),
            roles=roles, status=request.status, now=self.svc.clock.now(), requested_by=request.requested_by,
            votes=votes_shown, missing=tuple(title(r) for r in outcome.missing), deadline=request.deadline_at,
            decided_at=request.decided_at, reason=request.reason, decided_by=decided_by, is_drill=incident.is_drill)
        if request.subject == ROLLBACK:
            level = runbook.level(incident.level)
            levels = tuple(LevelChoice(lv.id, lv.title, lv.decision_minutes, Policy.from_model(lv.approval).words(
                title)) for lv in runbook.levels if lv.id != level.id)
            view = ApprovalView(title=level.title, description=level.description, levels=levels, **common)
        else:  # an action's approval (its execution row is there unless the store was edited by hand)
            details = tuple(f"{param_label(k)}: `{escape(str(v))}`" for k, v in execution.params.items()) \
                if execution else ()
            step = procedure_for(runbook, incident.scenario_id).step(execution.step_id) \
                if execution and execution.step_id else None
            view = ApprovalView(
                title=action.title if action else request.subject,
                description=f"Step {step.number}: {step.title}" if step else "", details=details,
                confirmation_prompt=action.confirmation.prompt if action and action.confirmation else "",
                confirmed_by=confirmation.user_id if confirmation else None,
                confirmed_at=confirmation.used_at if confirmation else None, **common)
        return view, incident, message_key(request)

    async def announce_decision(self, request: ApprovalRequest) -> None:
        """The rollback's approval or decline, said once in the war room."""
        incident = await self.svc.incident(request.incident_id)
        if not incident.channel_id:
            return
        async with self.svc.db.session() as session:
            outcome = await self.requests.evaluate(session, request, Policy.from_dict(request.policy))
        who = ", ".join(f"<@{u}>" + (f" ({self.requests.title(r)})" if r else "") for u, r in deciders(outcome))
        at = clock_time(request.decided_at) if request.decided_at else ""
        if request.status == "approved":
            text = f":white_check_mark: *Rollback approved* by {who} at {at}. The rollback clock has started."
        else:
            text = f":x: *Rollback declined* by {who} at {at}" + (f": {escape(request.reason)}" if request.reason else ".")
        await self.svc.slack.put_message(incident.id, "decision_result", incident.channel_id, text)

"""Approvals bound to roles: the rollback decision, and the approval a destructive action needs before it runs.

Each request is an ApprovalRequest row holding its policy; each vote a Vote row holding the roles its voter held
at that moment. `Approvals` is what the rest of the bot calls (bot/app.py builds it, handlers/approvals.py clicks
through it); the work is done by its parts, each in its own module:

- bot/decision/requests.py: reading a request, its votes and the action it gates, evaluating its ballot;
- bot/decision/votes.py: votes under the request's lock, the one write that decides, and what follows it;
- bot/decision/levels.py: the rollback request opened with the incident, its deadline, level changes;
- bot/decision/overrides.py: per-incident role overrides;
- bot/decision/confirmation.py: typed confirmation challenges;
- bot/decision/action_approvals.py: the request a destructive action asks for;
- bot/decision/rendering.py: the approval messages and the decision's announcement.
"""

from __future__ import annotations

from bot.core.room import Room
from bot.core.services import Services
from bot.decision.action_approvals import ActionApprovals
from bot.decision.confirmation import Challenge, Confirmations
from bot.decision.levels import Levels
from bot.decision.overrides import RoleOverrides
from bot.decision.rendering import Renderer
from bot.decision.requests import DUE_TIMER, FOLLOW_UP_TIMER, Requests, VoteResult, message_key
from bot.decision.views import ApprovalView
from bot.decision.votes import Votes
from bot.steps.checklists import Checklists
from bot.store.models import ApprovalRequest, Incident, Timer, Vote

# Other packages import this module only (bot/decision/__init__.py): what they need of the parts is here.
__all__ = ["Approvals", "Challenge", "VoteResult", "message_key"]


class Approvals:
    def __init__(self, svc: Services, warroom: Room, checklists: Checklists) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        self._requests = Requests(svc)
        self._renderer = Renderer(svc, self._requests)
        self._voting = Votes(svc, self._requests, self._renderer, warroom, checklists)
        self._levels = Levels(svc, self._requests, self._voting, self._renderer, warroom)
        self._overrides = RoleOverrides(svc, self._requests, self._renderer)
        self._confirmations = Confirmations(svc, self._requests, self._voting)
        self._actions = ActionApprovals(svc, self._requests, self._renderer)
        # The listener names and timer kinds are stored in outbox and timer rows: never renamed.
        svc.events.on("declared", self._levels.open_rollback_request, name="approvals.open_rollback_request",
                      inline=True)
        svc.events.on("war_room_ready", self._levels.on_war_room_ready, name="approvals.on_war_room_ready")
        svc.events.on("approval_needed", self._actions.on_approval_needed, name="approvals.request_action")
        svc.timers.on(DUE_TIMER, self._levels.on_decision_due)
        svc.timers.on(FOLLOW_UP_TIMER, self._voting.on_follow_up)

    # --- reading ---------------------------------------------------------------------------------------

    async def get(self, request_id: str) -> ApprovalRequest:
        return await self._requests.get(request_id)

    async def rollback_request(self, incident_id: str) -> ApprovalRequest | None:
        return await self._requests.rollback_request(incident_id)

    async def votes(self, request_id: str) -> list[Vote]:
        return await self._requests.votes(request_id)

    def title(self, role: str) -> str:
        return self._requests.title(role)

    async def check_voter(self, request: ApprovalRequest, user: str, choice: str, acting: bool = True) -> list[str]:
        """The policy's roles `user` holds now; Refused (audited) when none."""
        return await self._requests.check_voter(request, user, choice, acting)

    # --- votes and decisions -------------------------------------------------------------------------------

    async def vote(self, request_id: str, user: str, choice: str, reason: str | None = None,
                   follow_up: bool = True) -> VoteResult:
        """Cast `user`'s approve/decline; with follow_up=False the caller runs `follow_up(result)` itself."""
        return await self._voting.vote(request_id, user, choice, reason, follow_up)

    async def follow_up(self, result: VoteResult, user: str) -> None:
        await self._voting.follow_up(result, user)

    async def on_follow_up(self, timer: Timer) -> None:
        await self._voting.on_follow_up(timer)

    # --- the rollback's level and deadline, role overrides -------------------------------------------------

    async def on_decision_due(self, timer: Timer) -> None:
        await self._levels.on_decision_due(timer)

    async def change_level(self, incident_id: str, level_id: str | None, user: str) -> str:
        """Set the incident's level (None: re-open the vote at the current level after its deadline passed)."""
        return await self._levels.change_level(incident_id, level_id, user)

    async def set_role(self, incident_id: str, role: str, target: str, by: str, follow_up: bool = True) -> tuple[str, bool]:
        """`/rollback role <role> @user`: (message for `by`, whether anything changed)."""
        return await self._overrides.set_role(incident_id, role, target, by, follow_up)

    async def announce_role(self, incident_id: str, role: str, target: str, by: str) -> None:
        await self._overrides.announce_role(incident_id, role, target, by)

    # --- destructive actions -------------------------------------------------------------------------------

    async def request_action(self, incident_id: str, execution_id: str, action_id: str, requested_by: str) -> str:
        """What `approval_needed` asks for; idempotent per execution, returns the request id."""
        return await self._actions.request_action(incident_id, execution_id, action_id, requested_by)

    async def open_confirmation(self, request_id: str, user: str) -> Challenge:
        return await self._confirmations.open_confirmation(request_id, user)

    async def confirm(self, challenge_id: str, user: str, typed: str, follow_up: bool = True) -> VoteResult:
        return await self._confirmations.confirm(challenge_id, user, typed, follow_up)

    # --- rendering -----------------------------------------------------------------------------------------

    async def render(self, request_id: str) -> None:
        await self._renderer.render(request_id)

    async def view(self, request_id: str) -> tuple[ApprovalView, Incident, str]:
        return await self._renderer.view(request_id)

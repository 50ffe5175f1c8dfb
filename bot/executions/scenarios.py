"""Run scenario: the scenario's steps in order, each step's action started when its turn comes, pausing for the
steps people do by hand (a step without an action waits for its owner to mark it done).

Stateless by design: whether a scenario run is on is a claim in the store, and what to do next is derived
from the step states and executions every time, so a restart or a second replica carries on where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from sqlmodel import select

from bot.core import authz, timeline
from bot.core.errors import Refused
from bot.core.once import claim_once
from bot.core.services import Services
from bot.executions import store
from bot.executions.views import ScenarioStepLine, scenario_blocks, scenario_text
from bot.runbook.model import Phase
from bot.store.models import Claim, Execution


class Runs(Protocol):
    """What a scenario needs of the executions (bot/executions/service.py): to request a run and track work."""

    async def request(self, incident_id: str, step_id: str, task_id: str | None, action_id: str, user: str, *,
                      auto: bool = False) -> Any: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> Any: ...


log = logging.getLogger(__name__)
OPEN = ("pending", "active")


def run_key(incident_id: str) -> str:
    return f"{incident_id}:scenario_run"


class ScenarioRunner:
    def __init__(self, svc: Services, executions: Runs) -> None:
        self.svc = svc
        self.executions = executions
        svc.events.on("step_completed", self._on_change, name="scenario_runner.on_change")
        svc.events.on("execution_finished", self._on_change, name="scenario_runner.on_change")

    async def offer(self, incident_id: str, phase_id: str) -> None:
        """Post the scenario message with its Run scenario button (once: the message is keyed)."""
        await self.refresh(incident_id, phase_id)

    async def start(self, incident_id: str, user: str) -> bool:
        """Start the run (once per incident); False when it was already started."""
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        scenario, phase = snap.procedure.scenario, self._phase(snap.procedure.phases)
        if scenario is None or phase is None:
            raise Refused("This incident has no scenario to run.")
        if snap.incident.status != "open":
            raise Refused(f"The incident is {snap.incident.status}.")
        await authz.require(self.svc, "scenario_run", user, authz.Subject(incident_id, scenario_owner=scenario.owner))
        if snap.incident.decision != "approved":
            raise Refused("The scenario runs after the rollback decision is approved.")
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            if not await claim_once(session, run_key(incident_id), user, now):
                return False
            timeline.record(session, incident_id, now, "scenario_run_started",
                            f"Scenario run started: {scenario.title}", actor=user, scenario=scenario.id)
        await self.advance(incident_id)
        return True

    async def started_by(self, incident_id: str) -> str | None:
        async with self.svc.db.session() as session:
            claim = (await session.exec(select(Claim).where(Claim.key == run_key(incident_id)))).first()
        return claim.owner if claim else None

    async def advance(self, incident_id: str) -> None:
        """Start the next step's action if its turn has come; otherwise wait (a run, a person, a failure)."""
        user = await self.started_by(incident_id)
        if user is None:
            return
        async with self.svc.coord.lock(f"scenario:{incident_id}"):
            waiting = await self._next(incident_id, user)
        await self.refresh(incident_id, waiting_for=waiting)

    async def _next(self, incident_id: str, user: str) -> str:
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        phase = self._phase(snap.procedure.phases)
        if phase is None or snap.incident.status != "open":
            return ""
        for step in phase.steps:
            state = snap.steps.get(step.id)
            if state is None or state.status not in OPEN:
                continue
            task = step.tasks[0]
            if task.action is None:
                await self._note_once(incident_id, step.id, f"Scenario run waits for the "
                                      f"{self.svc.runbook.role(step.owner).title} to mark Step {step.number} done.")
                return f"Waiting for Step {step.number} ({step.title}), done by hand."
            async with self.svc.db.session() as session:
                latest = await store.latest(session, incident_id, step.id, task.action)
            if latest is None:
                try:
                    await self.executions.request(incident_id, step.id, task.id, task.action, user, auto=True)
                except Refused as exc:
                    await self._note_once(incident_id, step.id, f"Scenario run paused at Step {step.number}: {exc}")
                    return f"Paused at Step {step.number}: {exc}"
                return f"Running Step {step.number}: {step.title}."
            if latest.state in store.ACTIVE:
                return f"Step {step.number}: {latest.state.replace('_', ' ')}."
            if latest.state == "succeeded":
                return f"Step {step.number} succeeded; completing it."
            return f"Paused at Step {step.number}: its run {latest.state.replace('_', ' ')} — Retry or Skip it."
        return "Every scenario step is done."

    async def refresh(self, incident_id: str, phase_id: str | None = None, waiting_for: str = "") -> None:
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        scenario, phase = snap.procedure.scenario, self._phase(snap.procedure.phases)
        if scenario is None or phase is None or snap.incident.channel_id is None:
            return
        lines: list[ScenarioStepLine] = []
        async with self.svc.db.session() as session:
            for step in phase.steps:
                action = step.tasks[0].action
                latest: Execution | None = await store.latest(session, incident_id, step.id, action) if action else None
                lines.append(ScenarioStepLine(
                    number=step.number, title=step.title,
                    status=snap.steps[step.id].status if step.id in snap.steps else "pending",
                    action_title=self.svc.runbook.action(action).title if action else None,
                    execution_state=latest.state if latest else None))
        user = await self.started_by(incident_id)
        try:
            await self.svc.slack.put_message(
                incident_id, f"scenario:{phase.id}", snap.incident.channel_id,
                scenario_text(scenario.title, snap.incident.is_drill),
                scenario_blocks(scenario.title, phase.id, lines, started_by=user, is_drill=snap.incident.is_drill,
                                waiting_for=waiting_for))
        except Exception:
            log.warning("could not show the scenario run for %s", incident_id, exc_info=True)

    async def _on_change(self, incident_id: str, **_: Any) -> None:
        if await self.started_by(incident_id) is not None:
            self.executions.spawn(self.advance(incident_id))

    async def _note_once(self, incident_id: str, step_id: str, text: str) -> None:
        now = self.svc.clock.now()
        note = f"scenario_note:{step_id}:{text[:120]}"
        async with self.svc.db.session() as session:
            if not await claim_once(session, f"{incident_id}:{note}",
                                    self.svc.settings.replica_id, now):
                return
            timeline.record(session, incident_id, now, "scenario_waiting", text, step=step_id)
        ref = await self.svc.slack.message_ref(incident_id, f"step:{step_id}")
        if ref is not None:
            await self.svc.slack.reply(ref.channel, ref.ts, f":pause_button: {text}", owed=(incident_id, f"reply:{note}"))

    @staticmethod
    def _phase(phases: tuple[Phase, ...]) -> Phase | None:
        return next((p for p in phases if p.replaced_by_scenario), None)

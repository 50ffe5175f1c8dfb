"""Live checklists: ticks, step completion and skips, phase progression, and the step/phase/target timers.

Every change is a conditional write first; messages are re-rendered from the store afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import authz, timeline, timers
from bot.core.errors import Refused
from bot.core.once import claim_once
from bot.core.room import Room
from bot.core.services import Services
from bot.runbook.model import Phase, Step, item_id
from bot.runbook.procedure import Procedure, items_of, procedure_for
from bot.slack.blocks import clock_time, duration, escape, mentions
from bot.store.models import ChecklistItemState, Incident, StepState, Timer

log = logging.getLogger(__name__)
OPEN = ("pending", "active")
OVERDUE_KEY = "steps_overdue"  # the one overdue notice of an incident, in the header thread


__all__ = ["Checklists", "Refused", "TickResult", "apply_selection"]


@dataclass(frozen=True)
class TickResult:
    changed: list[tuple[str, bool]]  # (item id, now checked)
    step_completed: bool


async def apply_selection(session: AsyncSession, incident_id: str, step_id: str, shown: set[str], selected: set[str],
                          user: str, now: datetime) -> list[tuple[str, bool]]:
    """Store what one checkbox element now shows ticked (Slack sends the element's whole selection); returns the
    items that changed, as (item id, ticked)."""
    rows = {r.item_id: r for r in (await session.exec(select(ChecklistItemState).where(
        ChecklistItemState.incident_id == incident_id, ChecklistItemState.step_id == step_id,
        col(ChecklistItemState.item_id).in_(shown)))).all()}
    changed: list[tuple[str, bool]] = []
    for iid in sorted(shown):
        want = iid in selected
        row = rows.get(iid)
        if (row.checked if row else False) == want:
            continue
        if row is None:
            row = ChecklistItemState(incident_id=incident_id, step_id=step_id, item_id=iid)
            session.add(row)
        row.checked, row.by, row.at = want, user, now
        changed.append((iid, want))
    return changed


class Checklists:
    def __init__(self, svc: Services, warroom: Room) -> None:
        self.svc = svc
        self.warroom = warroom
        svc.events.on("declared", self._schedule_first_phase, name="checklists.schedule_first_phase", inline=True)
        svc.events.on("war_room_ready", self._tick_war_room_work, name="checklists.tick_war_room_work")
        svc.timers.on("step_due", self.on_step_due)
        svc.timers.on("phase_due", self.on_phase_due)
        svc.timers.on("target", self.on_target)
        svc.events.on("closed", self._cancel_timers, name="checklists.cancel_timers")
        svc.events.on("step_completed", self._on_step_completed, name="checklists.on_step_completed")

    # --- ticking ------------------------------------------------------------------------------

    async def _tick_war_room_work(self, incident_id: str, **_: Any) -> None:
        """Tasks the war room itself does (`ticked_by: war_room_ready`: the team paged, the channel open, the
        clock running) tick themselves once it is ready; a step whose every item is then ticked closes."""
        _incident, procedure = await self._incident(incident_id)
        bot = self.svc.slack.bot_user_id or "rollbot"
        for step in procedure.steps():
            for task in step.tasks:
                if task.ticked_by != "war_room_ready":
                    continue
                try:
                    await self.tick(incident_id, step.id, task.id,
                                    {item_id(task.id, i) for i in range(len(task.items))}, bot, authorize=False)
                except Refused:  # the step closed before the room was ready (a retry): nothing left to tick
                    continue
                self.warroom.request_refresh(incident_id, steps=[step.id], header=False)

    async def tick(self, incident_id: str, step_id: str, task_id: str, selected: set[str], user: str,
                   authorize: bool = True, only: set[str] | None = None) -> TickResult:
        """Apply a checkbox element's full selection (what Slack sends) for one task of one step. authorize=False
        for the bot's own ticks (a run's success ticks its task; the run itself was authorized). `only`: touch just
        these items of the task (a metric gate proves its one item and leaves the others as they are)."""
        incident, procedure = await self._incident(incident_id)
        step = self._step(procedure, step_id)
        if authorize:
            await authz.require(self.svc, "checklist_tick", user, authz.Subject(incident_id, step_owner=step.owner))
        task = next((t for t in step.tasks if t.id == task_id), None)
        if task is None:
            raise Refused(f"Step {step.number} has no task `{task_id}`.")
        task_items = {item_id(task.id, i) for i in range(len(task.items))}
        if only is not None:
            task_items &= only
        if not selected <= task_items:
            raise Refused("That checklist item is not part of this step.")
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            state = await self._step_state(session, incident_id, step_id)
            if state.status not in OPEN or incident.status != "open":
                raise Refused(f"Step {step.number} is already {state.status}.")
            changed = await apply_selection(session, incident_id, step_id, task_items, selected, user, now)
            texts = dict(items_of(step))
            for iid, want in changed:
                timeline.record(session, incident_id, now, "item_ticked" if want else "item_unticked",
                                f"Step {step.number}: {'☑' if want else '☐'} {texts[iid]}", actor=user,
                                step=step_id, item=iid)
        completed = False
        if changed and step.kind != "decision" and await self._all_ticked(incident_id, step):
            completed = await self.complete_step(incident_id, step_id, user, "done", "all items ticked",
                                                 authorize=False, refresh=False)
        return TickResult(changed=changed, step_completed=completed)

    async def _all_ticked(self, incident_id: str, step: Step) -> bool:
        wanted = {iid for iid, _ in items_of(step)}
        async with self.svc.db.session() as session:
            ticked = set((await session.exec(select(ChecklistItemState.item_id).where(
                ChecklistItemState.incident_id == incident_id, ChecklistItemState.step_id == step.id,
                ChecklistItemState.checked == True))).all())  # noqa: E712
        return wanted <= ticked

    # --- completing steps and phases -------------------------------------------------------------

    async def may_complete(self, incident_id: str, step: Step, user: str) -> bool:
        return bool(await authz.allowed(self.svc, "step_done", user, authz.Subject(incident_id, step_owner=step.owner)))

    async def complete_step(self, incident_id: str, step_id: str, user: str | None, status: str = "done",
                            reason: str | None = None, authorize: bool = True, refresh: bool = True) -> bool:
        """Mark a step done or skipped (once: a conditional update); advance the phase when it was the last."""
        incident, procedure = await self._incident(incident_id)
        step = self._step(procedure, step_id)
        if authorize:
            if user is None:
                raise Refused("Nobody to mark the step for.")
            await authz.require(self.svc, "step_skip" if status == "skipped" else "step_done", user,
                                authz.Subject(incident_id, step_owner=step.owner))
            if step.kind == "decision" and status == "done":
                raise Refused(f"Step {step.number} completes when the rollback decision is made.")
            if status == "skipped" and not (reason and reason.strip()):
                raise Refused("A skip needs a reason.")
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(StepState).where(  # type: ignore[call-overload]
                StepState.incident_id == incident_id, StepState.step_id == step_id,
                col(StepState.status).in_(OPEN)).values(status=status, completed_at=now, completed_by=user,
                                                        reason=reason))
            if result.rowcount != 1:
                return False
            late = now - (incident.declared_at + timedelta(minutes=step.window.end))
            verb = "skipped" if status == "skipped" else "done"
            text = f"Step {step.number}: {step.title} {verb}" + (f" — {escape(reason)}" if reason else "")
            if late.total_seconds() > 0:
                text += f" ({duration(late.total_seconds())} after its window)"
            timeline.record(session, incident_id, now, f"step_{verb}", text, actor=user, step=step_id,
                            late_seconds=max(0, late.total_seconds()))
            await timers.cancel(session, incident_id, key_prefix=f"{incident_id}:step_due:{step_id}")
            out = await self.svc.events.emit("step_completed", session, change=f"{incident_id}:{step_id}:{status}",
                                             incident_id=incident_id, step_id=step_id, status=status)
        await self.svc.events.deliver(out)
        advanced = await self.advance_if_phase_done(incident_id)
        if refresh or not advanced:
            await self.warroom.refresh(incident_id, steps=[step_id])
        return True

    async def advance_if_phase_done(self, incident_id: str) -> bool:
        incident, procedure = await self._incident(incident_id)
        if incident.status != "open" or incident.phase_id is None:
            return False
        phase = procedure.phase(incident.phase_id)
        async with self.svc.db.session() as session:
            states = (await session.exec(select(StepState).where(
                StepState.incident_id == incident_id,
                col(StepState.step_id).in_([s.id for s in phase.steps])))).all()
        if len(states) < len(phase.steps) or any(s.status in OPEN for s in states):
            return False
        return await self.start_phase(incident_id, procedure.next_phase(phase.id), from_phase=phase)

    async def start_phase(self, incident_id: str, phase: Phase | None, from_phase: Phase) -> bool:
        """Move the incident from `from_phase` to `phase` (None: the procedure is complete). Once only."""
        now = self.svc.clock.now()
        incident, procedure = await self._incident(incident_id)
        async with self.svc.db.session() as session:
            values: dict[str, object] = {"phase_id": phase.id if phase else from_phase.id}
            if phase is None:
                values["data"] = {**incident.data, "procedure_complete": True}
            stage = self._stage_after(procedure, incident, phase)
            if stage:
                values["stage"] = stage
            if from_phase.replaced_by_scenario:
                values["rollback_completed_at"] = now
            # The phase id does not change at the end, so that race is decided by a claim.
            final_key = f"{incident_id}:procedure_complete"
            if phase is None and not await claim_once(session, final_key, self.svc.settings.replica_id, now):
                return False
            result = await session.exec(update(Incident).where(  # type: ignore[call-overload]
                Incident.id == incident_id, Incident.phase_id == from_phase.id).values(**values))
            if result.rowcount != 1:
                return False
            timeline.record(session, incident_id, now, "phase_done",
                            f"Phase {from_phase.number}: {from_phase.title} complete", phase=from_phase.id)
            if phase is None:
                timeline.record(session, incident_id, now, "procedure_complete", "Every phase of the procedure is done")
            else:
                await session.exec(update(StepState).where(  # type: ignore[call-overload]
                    StepState.incident_id == incident_id, StepState.status == "pending",
                    col(StepState.step_id).in_([s.id for s in phase.steps])).values(status="active", started_at=now))
                timeline.record(session, incident_id, now, "phase_started",
                                f"Phase {phase.number}: {phase.title} started", phase=phase.id)
                await self._schedule_phase(session, incident, phase)
            # Written with the phase change; delivered below in the order the channel reads.
            events = self.svc.events
            completed = (await events.emit("moment", session, change=f"{incident_id}:rollback_completed",
                                           incident_id=incident_id, moment="rollback_completed")
                         if from_phase.replaced_by_scenario else None)
            started = (await events.emit("phase_started", session, change=f"{incident_id}:{phase.id}",
                                         incident_id=incident_id, phase_id=phase.id) if phase is not None
                       else await events.emit("procedure_complete", session, change=incident_id,
                                              incident_id=incident_id))
        if completed is not None:
            await events.deliver(completed)
        await self.warroom.refresh(incident_id, steps=[s.id for s in from_phase.steps])
        if phase is not None:
            snap = await self.svc.snapshot(incident_id)
            for step in phase.steps:  # in order: the channel reads top to bottom
                await self.warroom.post_step(snap, step.id)
            await events.deliver(started)
            # Its steps may all be closed already (actions that started by themselves ticked them): move on.
            await self.advance_if_phase_done(incident_id)
        else:
            await events.deliver(started)
        return True

    def _stage_after(self, procedure: Procedure, incident: Incident, phase: Phase | None) -> str | None:
        if incident.decision != "approved":
            return None
        phases = list(procedure.phases)
        execution = next((i for i, p in enumerate(phases) if p.replaced_by_scenario), None)
        if phase is None:
            return "stabilizing"
        index = phases.index(phase)
        if execution is None or index <= execution:
            return "rolling_back"
        return "stabilizing" if index == len(phases) - 1 else "validating"

    # --- timers -----------------------------------------------------------------------------------

    async def _schedule_first_phase(self, session: AsyncSession, incident: Incident) -> None:
        procedure = procedure_for(self.svc.runbook, incident.scenario_id)
        await self._schedule_phase(session, incident, procedure.phases[0])
        objectives = self.svc.runbook.objectives
        for minutes in sorted({objectives.target_minutes.start, objectives.target_minutes.end, objectives.rto_minutes}):
            await timers.schedule(session, key=f"{incident.id}:target:{minutes:g}", kind="target",
                                  due_at=incident.declared_at + timedelta(minutes=minutes), incident_id=incident.id,
                                  payload={"minutes": minutes})

    async def _schedule_phase(self, session: AsyncSession, incident: Incident, phase: Phase) -> None:
        for step in phase.steps:
            await timers.schedule(session, key=f"{incident.id}:step_due:{step.id}", kind="step_due",
                                  due_at=incident.declared_at + timedelta(minutes=step.window.end),
                                  incident_id=incident.id, payload={"step_id": step.id})
        await timers.schedule(session, key=f"{incident.id}:phase_due:{phase.id}", kind="phase_due",
                              due_at=incident.declared_at + timedelta(minutes=phase.window.end),
                              incident_id=incident.id, payload={"phase_id": phase.id})

    async def on_step_due(self, timer: Timer) -> None:
        assert timer.incident_id
        snap = await self.svc.snapshot(timer.incident_id)
        step = snap.procedure.step(timer.payload["step_id"])
        state = snap.steps.get(step.id)
        if state is None or state.status != "active" or snap.incident.status != "open":
            return
        async with self.svc.db.session() as session:
            timeline.record(session, snap.incident.id, snap.now, "step_overdue", f"Step {step.number} overdue",
                            step=step.id)
        await self.render_overdue(snap.incident.id)
        self.warroom.request_refresh(snap.incident.id, steps=[step.id])  # the badge; the notice above is the news

    async def render_overdue(self, incident_id: str, post: bool = True) -> None:
        """One overdue notice per incident in the header thread, edited in place as steps fall late or close
        (not one message per step). With post=False it is only updated, never first posted."""
        header = await self.svc.slack.message_ref(incident_id, "header")
        if header is None or (not post and await self.svc.slack.message_ref(incident_id, OVERDUE_KEY) is None):
            return
        snap = await self.svc.snapshot(incident_id)
        lines = []
        for step in snap.overdue_steps():
            late = (snap.now - snap.due_at(step)).total_seconds()
            owner = f"{self.svc.runbook.role(step.owner).title}: {mentions(snap.holders.get(step.owner, []))}"
            lines.append(f"• Step {step.number}: {step.title} is overdue by {duration(late)} "
                         f"(due {clock_time(snap.due_at(step))}) — {owner}")
        text = (":alarm_clock: *Overdue steps* (kept up to date)\n" + "\n".join(lines)) if lines else \
            f":white_check_mark: No step is overdue (as of {clock_time(snap.now)})."
        await self.svc.slack.put_message(incident_id, OVERDUE_KEY, header.channel, text, thread_ts=header.ts)

    async def _on_step_completed(self, incident_id: str, **_: object) -> None:
        await self.render_overdue(incident_id, post=False)

    async def on_phase_due(self, timer: Timer) -> None:
        assert timer.incident_id
        snap = await self.svc.snapshot(timer.incident_id, with_holders=False)
        phase = snap.procedure.phase(timer.payload["phase_id"])
        if snap.incident.status != "open" or snap.incident.phase_id != phase.id:
            return
        done = [s for s in phase.steps if snap.steps.get(s.id) and snap.steps[s.id].status not in OPEN]
        await self._reply_in_thread(snap.incident.id, f"reply:{timer.key}",
                                    f":hourglass: Phase {phase.number}: {phase.title} passed its window "
                                    f"({phase.window.end:g} min) with {len(done)}/{len(phase.steps)} steps done.")

    async def on_target(self, timer: Timer) -> None:
        assert timer.incident_id
        snap = await self.svc.snapshot(timer.incident_id, with_holders=False)
        if snap.incident.status != "open":
            return
        minutes = timer.payload["minutes"]
        rto = self.svc.runbook.objectives.rto_minutes
        phase = snap.procedure.phase(snap.incident.phase_id) if snap.incident.phase_id else None
        done, total = snap.done_count()
        what = "the RTO" if minutes == rto else f"the {minutes:g}-minute target"
        await self._reply_in_thread(snap.incident.id, f"reply:{timer.key}",
                                    f":stopwatch: {minutes:g} minutes elapsed — {what}. Now in "
                                    f"{f'Phase {phase.number}: {phase.title}' if phase else 'no phase'}, "
                                    f"steps {done}/{total} done.")
        await self.warroom.refresh(snap.incident.id)

    async def _reply_in_thread(self, incident_id: str, key: str, text: str) -> None:
        """In the header's thread, once per `key` (a retried timer finds the reply it posted)."""
        ref = await self.svc.slack.message_ref(incident_id, "header")
        if ref is not None:
            await self.svc.slack.reply(ref.channel, ref.ts, text, owed=(incident_id, key))

    async def _cancel_timers(self, incident_id: str, **_: object) -> None:
        async with self.svc.db.session() as session:
            await timers.cancel(session, incident_id, except_kinds=timers.AFTER_CLOSE)

    # --- helpers ----------------------------------------------------------------------------------

    async def _incident(self, incident_id: str) -> tuple[Incident, Procedure]:
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None:
            raise Refused("No such incident.")
        return incident, procedure_for(self.svc.runbook, incident.scenario_id)

    @staticmethod
    def _step(procedure: Procedure, step_id: str) -> Step:
        try:
            return procedure.step(step_id)
        except KeyError:
            raise Refused("That step is not part of this incident's procedure.") from None

    @staticmethod
    async def _step_state(session: AsyncSession, incident_id: str, step_id: str) -> StepState:
        state = (await session.exec(select(StepState).where(
            StepState.incident_id == incident_id, StepState.step_id == step_id))).first()
        if state is None:
            raise Refused("That step is not part of this incident's procedure.")
        return state

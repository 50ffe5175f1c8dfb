"""Simulated responders: people holding the runbook's roles, acting only through the sandbox as Slack users
would (clicking buttons and checkboxes, submitting modals, typing /rollback)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlmodel import select

from bot.app import Rollbot
from bot.core.clock import FakeClock
from bot.demo.printer import Printer
from bot.demo.sim import Simulation, Stuck
from bot.executions.requests import runs_without_form
from bot.runbook.model import Step
from bot.sandbox.server import SandboxServer
from bot.sandbox.workspace import Message
from bot.store.models import ApprovalRequest, Execution, Incident, StepState

BUSY = ("requested", "approved", "running")


StepStuck = Stuck  # a simulated person waited for something that can no longer happen
UNANSWERED = (0, 404)  # no answer in time (Bolt answers 404 when its listener did not ack within 3 s)
UNANSWERED_RETRIES = 3


class Unanswered(Stuck):
    """Slack told the person the app did not respond."""


class Responders:
    def __init__(self, sb: SandboxServer, bot: Rollbot, clock: FakeClock, printer: Printer, sim: Simulation) -> None:
        self.sb = sb
        self.bot = bot
        self.clock = clock
        self.sim = sim
        self.printer = printer
        self.incident_id: str | None = None
        self.handled: set[str] = set()
        # (what the person did, simulated seconds until the bot's work after it was done), in order.
        self.results: list[tuple[str, float]] = []

    # --- looking and waiting ---------------------------------------------------------------------------

    async def incident(self) -> Incident:
        assert self.incident_id
        got = await self.bot.incidents.get(self.incident_id)
        assert got is not None
        return got

    async def wait_for(self, check: Callable[[], Any], what: str, simulated_minutes: float = 30) -> Any:
        """Until `check()` holds; simulated time moves on meanwhile only when nothing else can happen."""
        def looking() -> Any:
            self.printer.poll()
            return check()
        return await self.sim.wait_for(looking, what, simulated_minutes)

    async def at_minute(self, minute: float, at_least_seconds: float = 0) -> None:
        """Act at `minute` after the incident opened (people take time to act), and no sooner than
        `at_least_seconds` from now."""
        inc = await self.incident()
        due = max(inc.declared_at + timedelta(minutes=minute), self.clock.now() + timedelta(seconds=at_least_seconds))
        await self.sim.until(due)
        self.printer.poll()

    def messages(self, channel_id: str, with_replies: bool = True) -> list[Message]:
        channel = self.sb.ws.channels[channel_id]
        return [m for m in channel.messages if with_replies or not m.thread_ts or m.thread_ts == m.ts]

    @staticmethod
    def buttons(message: Message) -> list[dict[str, Any]]:
        return [e for b in message.blocks or [] for e in b.get("elements") or []
                if isinstance(e, dict) and e.get("type") == "button"]

    async def holder(self, role: str, avoid: set[str] | None = None) -> str:
        members = await self.bot.svc.roles.members(role, self.incident_id)
        choices = [m for m in members if m not in (avoid or set())] or members
        if not choices:
            raise StepStuck(f"nobody holds {role}")
        return choices[0]

    # --- acting ----------------------------------------------------------------------------------------

    async def click(self, user: str, channel: str, ts: str, **how: Any) -> dict[str, Any]:
        started, seen = self.clock.now(), len(self.sb.calls)
        result = await self.sim.deliver(self.sb.click(user, channel, ts, **how))
        if result["status"] != 200:
            raise (Unanswered if result["status"] in UNANSWERED else StepStuck)(
                f"click {how} answered {result['status']}")
        await self.sim.after_work()  # people look again only after Slack shows the result of their click
        self.noted(f"click {how.get('action_id')}", started, seen, user, (channel, ts))
        return result

    def noted(self, what: str, started: datetime, seen: int, user: str, message: tuple[str, str] | None,
              answered: bool = False) -> None:
        """How long until the person saw a result: the clicked message re-rendered, or an ephemeral or a modal
        for them, whichever came first after they acted; else (nothing to re-render) until the bot's work was
        done."""
        shown = next((c["at"] for c in self.sb.calls[seen:] if c["ok"] and (
            (c["method"] == "chat.update" and message is not None
             and (c["args"].get("channel"), c["args"].get("ts")) == message)
            or (c["method"] == "chat.postEphemeral" and c["args"].get("user") == user)
            or c["method"] in ("views.open", "views.update"))), None)
        if answered:  # the ack itself carried the answer (a slash command's reply)
            shown = started.timestamp()
        at = shown if shown is not None else self.clock.now().timestamp()
        self.results.append((what, round(at - started.timestamp(), 3)))

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]:
        started, seen = self.clock.now(), len(self.sb.calls)
        result = await self.sim.deliver(self.sb.submit(user, view_id, values))
        await self.sim.after_work()
        self.noted("submit", started, seen, user, None)
        return result

    async def submit_view(self, user: str, callback_id: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        view = await self.wait_for(lambda: next((v for v in reversed(self.sb.ws.views.get(user, []))
                                                 if v.get("callback_id") == callback_id), None), f"{callback_id} modal")
        return await self.submit(user, view["id"], values or {})

    async def acknowledge_pages(self) -> int:
        """Everyone who was paged by DM presses Acknowledge (once)."""
        count = 0
        for channel in list(self.sb.ws.channels.values()):
            if not channel.is_im or channel.im_user is None:
                continue
            for message in channel.messages:
                for button in self.buttons(message):
                    if _text(button) == "Acknowledge":
                        await self.click(channel.im_user, channel.id, message.ts, action_id=button["action_id"],
                                         value=button.get("value"))
                        count += 1
        return count

    async def step_message(self, step: Step) -> Message:
        inc = await self.incident()
        channel = inc.channel_id
        assert channel
        return await self.wait_for(lambda: next(
            (m for m in self.messages(channel, with_replies=False)
             if f"Step {step.number}: {step.title}" in m.text), None), f"Step {step.number}'s message")

    async def run_actions(self, step: Step, user: str) -> None:
        inc = await self.incident()
        message = await self.step_message(step)
        optional = {t.id for t in step.tasks if t.optional}
        for button in self.buttons(message):
            task_id = str(button.get("value", "")).split("|")[1] if "|" in str(button.get("value", "")) else ""
            if not button["action_id"].startswith("run_action|") or task_id in optional:
                continue
            if await self._started(step.id, task_id):  # done, or started by itself: nobody clicks Run
                await self.wait_for(partial(self._finished, step.id, task_id), f"{_text(button)} to finish")
                continue
            await self.click(user, inc.channel_id or "", message.ts, action_id=button["action_id"],
                             value=button.get("value"))
            if not runs_without_form(self.bot.svc.runbook.action(str(button.get("value", "")).split("|")[2])):
                await self.submit_view(user, "run_action")
            await self.wait_for(partial(self._finished, step.id, task_id), f"{_text(button)} to finish")

    async def wait_for_success(self, action_id: str) -> None:
        title = self.bot.svc.runbook.action(action_id).title

        async def succeeded() -> bool:
            async with self.bot.db.session() as session:
                rows = (await session.exec(select(Execution).where(
                    Execution.incident_id == self.incident_id, Execution.action_id == action_id))).all()
            return any(r.state == "succeeded" for r in rows)
        await self.wait_for(succeeded, f"{title} to succeed")

    async def _started(self, step_id: str, task_id: str) -> bool:
        async with self.bot.db.session() as session:
            rows = (await session.exec(select(Execution).where(
                Execution.incident_id == self.incident_id, Execution.step_id == step_id))).all()
        return any(r.task_id == task_id and r.state in ("succeeded", *BUSY) for r in rows)

    async def _finished(self, step_id: str, task_id: str) -> bool:
        async with self.bot.db.session() as session:
            rows = (await session.exec(select(Execution).where(
                Execution.incident_id == self.incident_id, Execution.step_id == step_id))).all()
        mine = [r for r in rows if r.task_id == task_id]
        if any(r.state == "requested" for r in mine):
            await self.approve_pending_actions()
        return bool(mine) and all(r.state not in BUSY for r in mine)

    async def approve_pending_actions(self) -> None:
        """A destructive action waits for its own approvers (one person per role) and the typed confirmation."""
        inc = await self.incident()
        channel = inc.channel_id or ""
        for message in self.messages(channel):
            buttons = {b["action_id"]: b for b in self.buttons(message)}
            approve = buttons.get("action_approve")
            if approve is None or approve.get("value") in self.handled:
                continue
            self.handled.add(str(approve.get("value")))
            policy, requester = await self._policy_of_request(str(approve.get("value")))
            voters: list[str] = []
            for role in policy:  # four eyes: never the person who asked for the action
                voters.append(await self.holder(role, avoid={requester, *voters}))
            if "action_confirm" in buttons:
                await self.click(voters[0], channel, message.ts, action_id="action_confirm",
                                 value=buttons["action_confirm"].get("value"))
                view = await self.wait_for(partial(self._open_view, voters[0], "action_confirm_phrase"),
                                           "the confirmation modal")
                phrase = re.search(r"Type exactly: `([^`]+)`", json.dumps(view["blocks"]))
                await self.submit(voters[0], view["id"], {"phrase": phrase.group(1) if phrase else ""})
            for user in voters:
                await self.click(user, channel, message.ts, action_id="action_approve", value=approve.get("value"))

    def _open_view(self, user: str, callback_id: str) -> dict[str, Any] | None:
        return next((v for v in reversed(self.sb.ws.views.get(user, [])) if v.get("callback_id") == callback_id), None)

    async def _policy_of_request(self, request_id: str) -> tuple[list[str], str]:
        async with self.bot.db.session() as session:
            request = await session.get(ApprovalRequest, request_id)
        policy = request.policy if request else {}
        return list(policy.get("all_of") or policy.get("any_of", [])[:1]), request.requested_by if request else ""

    async def tick_all(self, step: Step, user: str) -> None:
        """Tick every item, one task's checkbox element at a time per person (tasks side by side), re-reading the
        message before each click as a person looking at Slack would."""
        inc = await self.incident()
        message = await self.step_message(step)
        block_ids = [b["block_id"] for b in message.blocks or [] if str(b.get("block_id", "")).startswith("cl|")]

        async def tick_block(block_id: str) -> None:
            unanswered = 0
            while True:
                current = (await self.step_message(step)).blocks or []
                block = next((b for b in current if b.get("block_id") == block_id), None)
                if block is None:  # the step closed meanwhile (done, or decided)
                    return
                element = block["elements"][0]
                ticked = {o["value"] for o in element.get("initial_options") or []}
                todo = [o for o in element["options"] if o["value"] not in ticked]
                if not todo:
                    return
                try:
                    await self.click(user, inc.channel_id or "", message.ts, action_id="checklist_tick",
                                     value=todo[0]["value"])
                except Unanswered:
                    # Slack showed the person an error: they look again and tick what is still unticked. Ticks
                    # carry the whole selection, so a tick that was stored after all is not undone.
                    unanswered += 1
                    if unanswered > UNANSWERED_RETRIES:
                        raise

        await self.sim.gather(*(tick_block(b) for b in block_ids))

    async def clear_comms(self) -> int:
        """The Product Manager approves every waiting draft and sends it out: one click when they send it
        themselves (Approve and I'll send it), else Approve then Mark as sent."""
        inc = await self.incident()
        pm = await self.holder("product_manager")
        count = 0
        for message in self.messages(inc.channel_id or ""):
            if not message.text.startswith(("Comms draft", "[DRILL] Comms draft")) or "(sent)" in message.text:
                continue
            for actions in (("comms_approve_sent", "comms_approve"), ("comms_sent",)):
                current = next(m for m in self.messages(inc.channel_id or "") if m.ts == message.ts)
                button = next((b for a in actions for b in self.buttons(current) if b["action_id"] == a), None)
                if button is not None:
                    await self.click(pm, inc.channel_id or "", message.ts, action_id=button["action_id"],
                                     value=button.get("value"))
            count += 1
        return count

    async def validate_all(self) -> None:
        """QA confirms every item of the validation checklists: "All confirmed" once they have checked them, box
        by box where a list offers no such button (one item left)."""
        inc = await self.incident()
        qa = await self.holder("qa_lead")
        lists = await self.wait_for(lambda: [m for m in self.messages(inc.channel_id or "", False)
                                             if "Validation:" in m.text], "the validation checklists")
        for message in lists:
            for _attempt in range(50):
                current = next(m for m in self.messages(inc.channel_id or "") if m.ts == message.ts)
                todo = [o for b in current.blocks or [] for e in b.get("elements") or []
                        if isinstance(e, dict) and e.get("type") == "checkboxes"
                        for o in e["options"] if o not in (e.get("initial_options") or [])]
                if not todo:
                    break
                confirm = next((b for b in self.buttons(current) if b["action_id"] == "validation_all"), None)
                if confirm is not None:
                    await self.click(qa, inc.channel_id or "", message.ts, action_id="validation_all",
                                     value=confirm.get("value"))
                    continue
                await self.click(qa, inc.channel_id or "", message.ts, action_id="validation_tick",
                                 value=todo[0]["value"])
            else:
                said = self.sb.ws.ephemerals.get(qa, [{}])[-1].get("text")
                raise StepStuck(f"validation ticks are not taking ({said})")

    async def step_status(self, step_id: str) -> str:
        async with self.bot.db.session() as session:
            row = (await session.exec(select(StepState).where(StepState.incident_id == self.incident_id,
                                                              StepState.step_id == step_id))).first()
        return row.status if row else "missing"

    async def finish_step(self, step: Step, tick: bool = False) -> None:
        """Run the step's actions, then close it: with `tick`, box by box (as when the checklist is the work);
        otherwise by Mark step done, as an owner under time pressure does once the work is done."""
        user = await self.holder(step.owner)
        await self.run_actions(step, user)
        if await self.step_status(step.id) in ("done", "skipped"):
            return
        if tick:
            await self.tick_all(step, user)
        if await self.step_status(step.id) not in ("done", "skipped"):
            inc = await self.incident()
            message = await self.step_message(step)
            if any(b["action_id"] == "step_done" for b in self.buttons(message)):  # gone once the step closed
                await self.click(user, inc.channel_id or "", message.ts, action_id="step_done", value=step.id)
        await self.wait_for(lambda: self._is_done(step.id), f"Step {step.number} to be done")

    async def _is_done(self, step_id: str) -> bool:
        return await self.step_status(step_id) in ("done", "skipped")

    async def decide(self) -> list[str]:
        """The rollback decision by the level's policy: any-of takes one approver, all-of one person per role."""
        inc = await self.incident()
        policy = self.bot.svc.runbook.level(inc.level).approval
        message = await self.wait_for(lambda: next((m for m in self.messages(inc.channel_id or "", False)
                                                    if any(b["action_id"] == "decision_approve"
                                                           for b in self.buttons(m))), None), "the decision message")
        approvers: list[str] = []
        for role in policy.roles[:1] if policy.any_of else policy.roles:
            approvers.append(await self.holder(role, avoid={inc.declared_by, *approvers}))
        for user in approvers:
            await self.click(user, inc.channel_id or "", message.ts, action_id="decision_approve")
        await self.wait_for(lambda: self._decided(), "the decision")
        return approvers

    async def _decided(self) -> bool:
        return (await self.incident()).decision == "approved"


def _text(element: dict[str, Any]) -> str:
    text = element.get("text")
    return str(text.get("text", "")) if isinstance(text, dict) else str(text or "")

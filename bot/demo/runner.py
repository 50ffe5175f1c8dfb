"""`rollbot demo`: a whole rollback in the sandbox with no configuration — an Alertmanager alert opens the war
room, simulated responders work the procedure through Slack, and the report is written."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import Rollbot
from bot.core.clock import FakeClock
from bot.core.config import load_settings
from bot.core.coord import LocalCoordinator
from bot.core.heap import settle
from bot.core.webserver import start_site
from bot.demo.printer import Printer
from bot.demo.responders import Responders, StepStuck
from bot.demo.sim import Simulation
from bot.demo.stack import health_endpoint, until_interrupted
from bot.runbook.model import Runbook, Step
from bot.runbook.procedure import Procedure, procedure_for
from bot.sandbox.server import SandboxServer
from bot.slack.queue import SlackCallQueue

DEFAULT_SPEED = 90.0  # simulated seconds per real second, for watching: the 30-minute procedure in about 20 s
# Real-time limits (the sandbox's and the bot's Slack rate limits) run this much faster than Slack's, as if the
# simulated half hour took DEFAULT_SPEED times less: a speed of 0 (as fast as it goes) keeps them at this scale.
RATE_SCALE = 90.0
ALERT_TOKEN = "demo-alert-token"


def alert_for(runbook: Runbook, scenario_id: str) -> dict[str, Any] | None:
    """An Alertmanager v4 notification for the first trigger that leads to this scenario (None: declare by hand)."""
    trigger = next((t for t in runbook.triggers if t.scenario == scenario_id and t.match.alertnames), None)
    if trigger is None:
        return None
    labels = {"alertname": trigger.match.alertnames[0], "severity": "critical", "service": "bookedbarber"}
    annotations = {"summary": f"{trigger.title}: {trigger.description}"}
    if trigger.condition:
        labels["metric"] = trigger.condition.metric
        value = (trigger.condition.upper or trigger.condition.threshold) * 1.7 or 1
        annotations["value"] = f"{value:g}"
        annotations["summary"] = f"{trigger.condition.metric} is {value:g}{trigger.condition.unit}"
    return {"version": "4", "status": "firing", "receiver": "rollbot", "groupKey": f"demo:{trigger.id}",
            "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels, "commonAnnotations": annotations,
            "externalURL": "http://alertmanager.demo:9093", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                        "startsAt": "2026-11-28T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.demo:9090/graph", "fingerprint": f"demo-{trigger.id}"}]}


class Demo:
    def __init__(self, scenario: str, speed: float, transcript: Path | None, workdir: Path, quiet: bool,
                 socket_mode: bool = False, keep: bool = False, real_tiers: bool = False) -> None:
        self.scenario = scenario
        # Slack's real rate limits (no ×90 scale) in the sandbox and the bot, both counted on the simulated clock.
        self.real_tiers = real_tiers
        self.people: Responders | None = None  # kept for a look after the run (time to each result)
        self.sandbox: SandboxServer | None = None
        self.socket_mode = socket_mode  # Slack's requests over Socket Mode instead of HTTP POSTs
        self.metrics: Any = None  # the bot's Metrics, kept for a look after the run
        self.keep = keep
        self.speed = speed
        self.transcript = transcript
        self.workdir = workdir
        self.out = (lambda _s: None) if quiet else (lambda s: print(s, flush=True))

    async def run(self) -> Path | None:
        os.environ.setdefault("ROLLBOT_SCRIPT_SPEED", str(max(20, int((self.speed or RATE_SCALE) / 2))))
        scale = 1.0 if self.real_tiers else self.speed or RATE_SCALE
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
        sb = SandboxServer(limits=True, limit_scale=scale,
                           clock=(lambda: clock.now().timestamp()) if self.real_tiers else time.time)
        self.sandbox = sb
        await sb.start()
        health = await health_endpoint()
        settings = load_settings({}, slack_bot_token=sb.bot_token, slack_signing_secret=sb.signing_secret,
                                 slack_api_url=sb.api_url, database_url=f"sqlite:///{self.workdir / 'rollbot.db'}",
                                 alert_token=ALERT_TOKEN, tick_seconds=0.2,
                                 slack_rate_scale=scale)
        # At the ×90 scale rate limits and caches stay on real time: simulated time stands still while the bot
        # works. At real tiers they count simulated time, and the bot's Slack calls wait on the simulation.
        bot = Rollbot(settings, clock=clock, coord=LocalCoordinator(clock.monotonic if self.real_tiers
                                                                    else time.monotonic))
        started: list[datetime] = []
        printer = Printer(sb, lambda: started[0] if started else None, clock.now, self.out)
        sim = Simulation(bot, clock, pace=self.speed or None, on_quiet=printer.poll)
        if self.real_tiers:
            queue: SlackCallQueue = bot.svc.slack.client.queue  # type: ignore[attr-defined]
            queue.now = queue.limiter.now = sim.slack_now
            queue.sleep = queue.limiter.sleep = sim.sleep
        await bot.start(scheduler=False)  # the simulation fires the timers as it moves the clock
        self.metrics = bot.metrics
        runner, port = await start_site(bot.web)
        socket_mode = None
        if self.socket_mode:
            socket_mode = bot.socket_mode_handler(sb.app_token)
            await socket_mode.connect_async()
            await sb.sockets.wait_connected()
        else:
            sb.app_url = f"http://127.0.0.1:{port}/slack/events"
        self.out(f"web client: {sb.base_url}/ (open it to watch the war room live)")
        sim.start()
        people = self.people = Responders(sb, bot, clock, printer, sim)
        try:
            report = await sim.act(self._play(bot, sb, people, printer, port, started))
            if self.keep:
                print(f"report: {report}\nthe workspace and the bot keep running (simulated time stands still): "
                      f"web client {sb.base_url}/ · Ctrl-C to stop", flush=True)
                await until_interrupted()
        finally:
            printer.poll()
            if self.transcript:
                self.transcript.write_text(json.dumps(sb.state(), indent=1, default=str))
                self.out(f"transcript: {self.transcript}")
            await sim.stop()
            await bot.idle()
            if socket_mode:
                await socket_mode.close_async()
            await runner.cleanup()
            await bot.stop()
            await sb.stop()
            await health.cleanup()
        return report

    async def _play(self, bot: Rollbot, sb: SandboxServer, people: Responders, printer: Printer, port: int,
                    started: list[datetime]) -> Path | None:
        runbook = bot.svc.runbook
        scenario = runbook.scenario(self.scenario)
        self.out(f"Rollbot demo: scenario {scenario.number} — {scenario.title} · simulated clock (paced ×{self.speed:g}) · "
                 f"sandbox {sb.base_url}")
        alert = alert_for(runbook, scenario.id)
        if alert is not None:
            async with aiohttp.ClientSession() as http, http.post(
                    f"http://127.0.0.1:{port}/alerts/alertmanager", json=alert,
                    headers={"Authorization": f"Bearer {ALERT_TOKEN}"}) as response:
                body = await response.json()
            people.incident_id = body["opened"][0]
            self.out(f"[00:00] 🔔 Alertmanager → POST /alerts/alertmanager "
                     f"({alert['alerts'][0]['labels']['alertname']}) → {response.status}: opened {people.incident_id}")
        else:
            on_call = await people.holder("on_call_engineer")
            await sb.command(on_call, "C0GENERAL", "/rollback", f"start {scenario.id} --level urgent")
            incidents = await people.wait_for(bot.incidents.open_incidents, "the incident")
            people.incident_id = incidents[0].id
        incident = await people.incident()
        started.append(incident.declared_at)
        await people.wait_for(lambda: self._ready(people), "the war room")
        procedure = procedure_for(runbook, incident.scenario_id)
        await self._fast_path(people, printer, procedure, runbook.level(incident.level).decision_minutes)
        for index, phase in enumerate(procedure.phases, start=1):
            inc = await people.incident()
            snap = await bot.svc.snapshot(inc.id, with_holders=False)
            done, total = snap.done_count()
            printer.progress(index, len(procedure.phases), phase.title, done, total)
            work = [self._work_steps(people, printer, [s for s in phase.steps if s.kind != "decision"])]
            for step in (s for s in phase.steps if s.kind == "decision"):
                # The decision runs beside the step's own checklist, inside the level's deadline.
                work.append(self._decide(people, printer, step, 0.4 * runbook.level(inc.level).decision_minutes))
            await people.sim.gather(*work)
        inc = await people.incident()
        snap = await bot.svc.snapshot(inc.id, with_holders=False)
        done, total = snap.done_count()
        printer.progress(len(procedure.phases), len(procedure.phases), "complete", done, total)
        return await self._finish(bot, people, printer)

    async def _work_steps(self, people: Responders, printer: Printer, steps: list[Step]) -> None:
        for step in steps:
            # People get to a step early in its window, and never in no time at all.
            await people.at_minute(step.window.start + 0.2 * (step.window.end - step.window.start), 20)
            acked = await people.acknowledge_pages()
            if acked:
                printer.say(f"👋 {acked} page(s) acknowledged")
            await people.finish_step(step, tick=step.number == 1)  # Step 1 shows the checkboxes at work

    async def _fast_path(self, people: Responders, printer: Printer, procedure: Procedure,
                         decision_minutes: float) -> None:
        """In an emergency the rollback comes first: the decision, then (the snapshot having started by itself
        on the approval) the scenario's steps up to its rollback, run as soon as Slack offers them; every
        checklist after."""
        await people.at_minute(0.4 * decision_minutes)
        approvers = await people.decide()
        printer.say(f"✅ rollback approved by {', '.join(printer.names[a] for a in approvers)}")
        phase = next((p for p in procedure.phases if p.replaced_by_scenario), None)
        runbook = people.bot.svc.runbook
        rollback = next((i for i, step in enumerate(phase.steps) if any(
            t.action and runbook.action(t.action).requires for t in step.tasks)), None) if phase else None
        if phase is None or rollback is None:
            return
        for step in phase.steps[:rollback + 1]:
            for task in step.tasks:
                for required in runbook.action(task.action).requires if task.action else []:
                    await people.wait_for_success(required)  # its ✅ in the thread, before anyone clicks Run
            await people.run_actions(step, await people.holder(step.owner))

    async def _decide(self, people: Responders, printer: Printer, step: Step, minute: float) -> None:
        if (await people.incident()).decision is None:
            await people.at_minute(minute)  # in an emergency the decision comes first; the step's notes after
            approvers = await people.decide()
            printer.say(f"✅ rollback approved by {', '.join(printer.names[a] for a in approvers)}")
        await people.tick_all(step, await people.holder(step.owner))

    async def _ready(self, people: Responders) -> bool:
        return bool((await people.incident()).data.get("war_room_ready"))

    async def _finish(self, bot: Rollbot, people: Responders, printer: Printer) -> Path | None:
        """The Product Manager clears the comms drafts, QA confirms validation, the Technical Lead resolves."""
        sent = await people.clear_comms()
        printer.say(f"📣 {sent} communication draft(s) approved and sent by the Product Manager")
        await people.validate_all()
        lead = await people.holder("technical_lead")
        inc = await people.incident()
        await self.sb_command(people, lead, inc.channel_id or "", "resolve")
        files = await people.wait_for(lambda: [f for f in people.sb.ws.files.values() if f.get("uploaded")],
                                      "the report upload")
        await people.sim.after_work()
        late = await people.clear_comms()  # drafts of the "resolved" moment (the apology) go out too
        printer.say(f"📣 {late} more draft(s) approved and sent after resolution")
        report = self.workdir / "post-incident-report.md"
        report.write_bytes(bytes(files[0]["content"]))
        printer.poll()
        return report

    @staticmethod
    async def sb_command(people: Responders, user: str, channel: str, text: str) -> None:
        started, seen = people.clock.now(), len(people.sb.calls)
        answer = await people.sim.deliver(people.sb.command(user, channel, "/rollback", text))
        await people.sim.after_work()
        raw = answer.get("body")
        body = raw if isinstance(raw, dict) else {}
        people.noted(f"/rollback {text.split()[0]}", started, seen, user, None, answered=bool(body.get("text")))
        people.printer.say(f"⌨️  {people.printer.names.get(user, user)}: /rollback {text} → {body.get('text', 'ok')}")

def run_demo(args: argparse.Namespace) -> int:
    # A tick that outlasts the scheduler's interval is skipped on purpose (coalesced): not worth a warning here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="rollbot-demo-"))
    transcript = Path(args.transcript).resolve() if args.transcript else None
    demo = Demo(args.scenario, DEFAULT_SPEED if args.speed is None else args.speed, transcript, workdir, args.quiet,
                socket_mode=getattr(args, "socket_mode", False),
                keep=bool(getattr(args, "keep", False)))
    settle()  # the imported heap, out of the collector's walks (bot/core/heap.py)
    try:
        report = asyncio.run(demo.run())
    except StepStuck as exc:
        print(f"demo stopped: {exc}")
        return 1
    print(f"workspace: {workdir}")
    if report:
        print(f"report: {report}")
    return 0

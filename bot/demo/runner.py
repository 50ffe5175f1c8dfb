"""`rollbot demo`: a whole rollback in the sandbox with no configuration — an Alertmanager alert opens the war
room, simulated responders work the procedure through Slack, and the report is written."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import Rollbot
from bot.clock import ScaledClock
from bot.config import load_settings
from bot.demo.printer import Printer
from bot.demo.responders import Responders, StepStuck
from bot.engine.action_specs import CHECK_URL_ENV_PREFIX
from bot.engine.procedure import procedure_for
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Runbook, Step
from bot.sandbox.server import SandboxServer
from bot.webserver import start_site

DEFAULT_SPEED = 90.0  # simulated seconds per real second: the 30-minute procedure in about 20 s
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
    def __init__(self, scenario: str, speed: float, transcript: Path | None, workdir: Path, quiet: bool) -> None:
        self.scenario = scenario
        self.speed = speed
        self.transcript = transcript
        self.workdir = workdir
        self.out = (lambda _s: None) if quiet else (lambda s: print(s, flush=True))

    async def run(self) -> Path | None:
        os.environ.setdefault("ROLLBOT_SCRIPT_SPEED", str(max(20, int(self.speed / 2))))
        sb = SandboxServer(limits=True, limit_scale=self.speed)
        await sb.start()
        health = await self._health_endpoint()
        clock = ScaledClock(self.speed)
        settings = load_settings({}, slack_bot_token=sb.bot_token, slack_signing_secret=sb.signing_secret,
                                 slack_api_url=sb.api_url, database_url=f"sqlite:///{self.workdir / 'rollbot.db'}",
                                 alert_token=ALERT_TOKEN, tick_seconds=0.2,
                                 slack_rate_scale=self.speed)
        bot = Rollbot(settings, clock=clock)
        await bot.start()
        runner, port = await start_site(bot.web)
        sb.app_url = f"http://127.0.0.1:{port}/slack/events"
        started: list[datetime] = []
        printer = Printer(sb, lambda: started[0] if started else None, clock.now, self.out)
        people = Responders(sb, bot, clock, printer)
        try:
            report = await self._play(bot, sb, people, printer, port, started)
        finally:
            printer.poll()
            if self.transcript:
                self.transcript.write_text(json.dumps(sb.state(), indent=1, default=str))
                self.out(f"transcript: {self.transcript}")
            await bot.idle()
            await runner.cleanup()
            await bot.stop()
            await sb.stop()
            await health.cleanup()
        return report

    async def _health_endpoint(self) -> web.AppRunner:
        """The service the traffic checks probe: healthy and fast, as production is after a good rollback."""
        async def healthy(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app = web.Application()
        app.router.add_get("/health", healthy)
        runner, port = await start_site(app)
        url = f"http://127.0.0.1:{port}/health"
        for action in load_runbook(DEFAULT_RUNBOOK).actions:
            if action.kind == "check":
                os.environ[CHECK_URL_ENV_PREFIX + action.id.upper()] = url
        return runner

    async def _play(self, bot: Rollbot, sb: SandboxServer, people: Responders, printer: Printer, port: int,
                    started: list[datetime]) -> Path | None:
        runbook = bot.svc.runbook
        scenario = runbook.scenario(self.scenario)
        self.out(f"Rollbot demo: scenario {scenario.number} — {scenario.title} · clock ×{self.speed:g} · "
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
        for index, phase in enumerate(procedure.phases, start=1):
            inc = await people.incident()
            snap = await bot.svc.snapshot(inc.id, with_holders=False)
            done, total = snap.done_count()
            printer.progress(index, len(procedure.phases), phase.title, done, total)
            work = [self._work_steps(people, printer, [s for s in phase.steps if s.kind != "decision"])]
            for step in (s for s in phase.steps if s.kind == "decision"):
                # The decision runs beside the step's own checklist, inside the level's deadline.
                work.append(self._decide(people, printer, step, 0.4 * runbook.level(inc.level).decision_minutes))
            await asyncio.gather(*work)
        inc = await people.incident()
        snap = await bot.svc.snapshot(inc.id, with_holders=False)
        done, total = snap.done_count()
        printer.progress(len(procedure.phases), len(procedure.phases), "complete", done, total)
        return await self._finish(bot, people, printer)

    async def _work_steps(self, people: Responders, printer: Printer, steps: list[Step]) -> None:
        for step in steps:
            await people.at_minute(step.window.start + 0.6 * (step.window.end - step.window.start))
            acked = await people.acknowledge_pages()
            if acked:
                printer.say(f"👋 {acked} page(s) acknowledged")
            await people.finish_step(step)

    async def _decide(self, people: Responders, printer: Printer, step: Step, minute: float) -> None:
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
        await bot.idle()
        late = await people.clear_comms()  # drafts of the "resolved" moment (the apology) go out too
        printer.say(f"📣 {late} more draft(s) approved and sent after resolution")
        report = self.workdir / "post-incident-report.md"
        report.write_bytes(bytes(files[0]["content"]))
        printer.poll()
        return report

    @staticmethod
    async def sb_command(people: Responders, user: str, channel: str, text: str) -> None:
        answer = await people.sb.command(user, channel, "/rollback", text)
        body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
        people.printer.say(f"⌨️  {people.printer.names.get(user, user)}: /rollback {text} → {body.get('text', 'ok')}")

def run_demo(args: argparse.Namespace) -> int:
    # A tick that outlasts the scheduler's interval is skipped on purpose (coalesced): not worth a warning here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="rollbot-demo-"))
    transcript = Path(args.transcript).resolve() if args.transcript else None
    demo = Demo(args.scenario, args.speed or DEFAULT_SPEED, transcript, workdir, args.quiet)
    try:
        report = asyncio.run(demo.run())
    except StepStuck as exc:
        print(f"demo stopped: {exc}")
        return 1
    print(f"workspace: {workdir}")
    if report:
        print(f"report: {report}")
    return 0

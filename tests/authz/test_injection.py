"""Untrusted text stays inert: `<!channel>`, `<!here>`, a planted `<@U…>` mention and a disguised link, arriving in
an alert's summary, a person's note, a skip reason, a decline reason and an action's output, never reach Slack as
live mrkdwn in any message the bot posts — they arrive escaped, as the characters they are."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.executions.views import ExecutionView, execution_blocks, execution_text
from bot.slack.blocks import escape
from bot.store.models import Execution
from tests.support.harness import Harness, harness

PAYLOAD = "<!channel> <!here> <@U999PWN1> <https://evil.test/login|Click to keep your job> & more"
LIVE = ("<!channel>", "<!here>", "<@U999PWN1>", "<https://evil.test")
AUTH = {"Authorization": "Bearer test-alert-token"}


def _texts(node: Any) -> list[str]:
    """Every string in a message (text, blocks, attachments, replies), wherever it is nested, that Slack parses:
    a plain_text object shows its characters as they are (no mentions, no links), so it is left out."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict) and node.get("type") == "plain_text":
        return []
    if isinstance(node, dict):
        return [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def _everything_posted(h: Harness) -> list[str]:
    state = h.state()
    return _texts(state["channels"]) + _texts(state.get("ephemerals", {})) + _texts(state.get("views", {}))


def test_the_escaping_function_leaves_nothing_slack_would_parse() -> None:
    assert escape(PAYLOAD) == ("&lt;!channel&gt; &lt;!here&gt; &lt;@U999PWN1&gt; "
                               "&lt;https://evil.test/login|Click to keep your job&gt; &amp; more")
    assert escape(None) == "" and escape("plain text") == "plain text"


async def test_untrusted_text_renders_inert_in_every_message_of_an_incident(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        alert = {"name": "PaymentFailureRateHigh", "status": "firing", "summary": f"payments failing {PAYLOAD}",
                 "labels": {"service": "payments"}}
        async with aiohttp.ClientSession() as session, session.post(
                f"{h.app_url}/alerts/generic", json=alert, headers=AUTH) as response:
            assert response.status == 202, await response.text()
        await h.settle()
        incident = await h.only_incident()
        channel = incident.channel_id or ""
        await h.command("U500OC01", f"note {PAYLOAD}", channel)
        step = h.bot.svc.runbook.phases[0].steps[0]
        await h.bot.checklists.complete_step(incident.id, step.id, "U500OC01", "skipped", PAYLOAD)
        request = await h.bot.approvals.rollback_request(incident.id)
        assert request is not None
        await h.bot.approvals.vote(request.id, "U100TL01", "decline", reason=PAYLOAD)
        await h.command("U500OC01", "timeline", channel)
        await h.settle()
        posted = _everything_posted(h)
        everything = "\n".join(posted)
        for token in LIVE:
            assert token not in everything, f"{token} reached Slack live"
        # Not vacuous: the text did arrive, escaped, in the header, the timeline and the decision message.
        assert everything.count("&lt;!channel&gt;") >= 4, everything[:2000]
        header = next(m for m in h.messages(channel) if m["text"].startswith("Rollback incident"))
        assert "&lt;!channel&gt;" in json.dumps(header["blocks"])


def test_action_output_renders_inert_in_the_run_message() -> None:
    ex = Execution(id="ex-1", incident_id="inc-1", step_id="s", action_id="a", idempotency_key="k", state="failed",
                   requested_by="U1", requested_at=datetime(2026, 1, 1, tzinfo=UTC), exit_code=1,
                   output=f"starting\n{PAYLOAD}\ndone", detail=PAYLOAD, data={"kind": "http"})
    view = ExecutionView(execution=ex, action_title="Roll back the app", step_label="Step 5: Application Rollback")
    rendered = json.dumps([b.to_dict() for b in execution_blocks(view)]) + execution_text(view)
    for token in LIVE:
        assert token not in rendered
    assert "&lt;!channel&gt;" in rendered


UNMATCHED = {"version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "{}:{a=\"Lat\"}", "groupLabels": {},
             "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
             "alerts": [{"status": "firing", "labels": {"alertname": "ApiLatencyP95High", "service": "api",
                                                        "severity": "warning"},
                         "annotations": {"summary": f"p95 slow {PAYLOAD}"}, "startsAt": "2026-01-15T08:58:00Z",
                         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/g", "fingerprint": "lat1"}]}


async def test_untrusted_text_renders_inert_in_triage_comms_step_threads_and_the_report(tmp_path: Path) -> None:
    """The same text through the other doors: an alert that opens nothing (the triage post), a declared title
    (header and comms drafts), an action's output (its message in the step's thread), a skip reason and a resolve
    override (the timeline and the report uploaded at resolution)."""
    async with harness(tmp_path, ROLLBOT_TRIAGE_CHANNEL="C0GENERAL") as h:
        async with aiohttp.ClientSession() as session, session.post(
                f"{h.app_url}/alerts/alertmanager", json=UNMATCHED, headers=AUTH) as response:
            assert response.status in (200, 202), await response.text()
        await h.command("U500OC01", f"start --level immediate checkout down {PAYLOAD}")
        incident = await h.only_incident()
        channel = incident.channel_id or ""
        now = h.clock.now()
        async with h.bot.db.session() as session:
            session.add(Execution(id="ex-inj", incident_id=incident.id, step_id="incident_detection",
                                  task_id="incident_confirmation", action_id="quick_health_check",
                                  idempotency_key=f"{incident.id}:inj", attempt=9, state="failed", requested_by="U500OC01",
                                  requested_at=now, started_at=now, finished_at=now, exit_code=1, duration_s=1.0,
                                  output=f"checking\n{PAYLOAD}\n", detail=PAYLOAD, data={"kind": "shell"}))
        await h.bot.executions.rendering.render("ex-inj")  # as the run's end shows it, in Step 1's thread
        step = h.bot.svc.runbook.phases[0].steps[0]
        await h.bot.checklists.complete_step(incident.id, step.id, "U500OC01", "skipped", PAYLOAD)
        await h.command("U100TL01", f'resolve --override "{PAYLOAD}"', channel)
        await h.settle()
        everything = "\n".join(_everything_posted(h))
        reports = [f["content"].decode() for f in h.sb.ws.files.values()]
        for token in LIVE:
            assert token not in everything, f"{token} reached Slack live"
            assert not any(re.search(r"(?<!\\)" + re.escape(token), r) for r in reports), f"{token} is live in the report"
        # Not vacuous: each door did carry the text, escaped.
        triage = next(m for m in h.messages("C0GENERAL") if "ApiLatencyP95High" in json.dumps(m.get("blocks")))
        assert "&lt;!channel&gt;" in json.dumps(triage["blocks"]), "the triage post"
        messages = h.messages(channel)
        header = next(m for m in messages if m["text"].startswith("Rollback incident"))
        assert "&lt;!channel&gt;" in json.dumps(header["blocks"]) + header["text"], "the header"
        drafts = [r for m in messages for r in [m, *m.get("replies", [])] if r["text"].startswith("Comms draft")]
        assert drafts and all("<!channel>" not in json.dumps(d) for d in drafts)
        assert any("&lt;!channel&gt;" in json.dumps(d) for d in drafts), "a comms draft carries the title"
        thread = [r for m in messages if m["text"].endswith(f"Step 1: {step.title}") for r in m.get("replies", [])]
        assert any("&lt;!channel&gt;" in json.dumps(r) for r in thread), "the run's message in Step 1's thread"
        assert reports and all("\\<!channel>" in r for r in reports), "the report: the characters, escaped for Markdown"

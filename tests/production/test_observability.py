"""Health, readiness and metrics over HTTP during an end-to-end incident, and retried Slack events ignored."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from tests.support.harness import harness


def _value(metrics: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{{{re.escape(want)}}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
    match = re.search(pattern, metrics, re.M)
    return float(match.group(1)) if match else 0.0


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_metrics_move_during_an_incident_and_readyz_checks_dependencies(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        assert (await _get(f"{h.app_url}/healthz"))[0] == 200
        status, body = await _get(f"{h.app_url}/readyz")
        assert status == 200 and '"database": "ok"' in body and '"slack": "ok"' in body
        _, before = await _get(f"{h.app_url}/metrics")
        await h.command("U500OC01", "start payment")
        _, after = await _get(f"{h.app_url}/metrics")
        assert _value(after, "rollbot_slack_requests_total", kind="command") == \
            _value(before, "rollbot_slack_requests_total", kind="command") + 1
        assert _value(after, "rollbot_slack_ack_seconds_count", kind="command") >= 1
        assert _value(after, "rollbot_slack_api_calls_total", method="conversations.create", outcome="ok") == 1
        assert _value(after, "rollbot_slack_api_calls_total", method="chat.postMessage", outcome="ok") > \
            _value(before, "rollbot_slack_api_calls_total", method="chat.postMessage", outcome="ok")
        assert _value(after, "rollbot_open_incidents") == 1
        h.sb.faults.configure(fail_share=1.0, fail_statuses=[500])
        status, body = await _get(f"{h.app_url}/readyz")
        h.sb.faults.configure(fail_share=0)
        assert status == 503 and '"slack": "error' in body


async def test_a_retried_event_delivery_is_acknowledged_and_not_processed_twice(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.bot.svc.slack.call("conversations.join", channel="C0GENERAL")
        from bot.sandbox.workspace import Message

        # The mention a person typed in #general (people post through Slack's client, not the Web API).
        h.sb.ws.channels["C0GENERAL"].messages.append(
            Message(ts="1700000000.000100", user="U100TL01", text="<@U0ROLLBOT> hello"))
        event = {"type": "app_mention", "user": "U100TL01", "text": "<@U0ROLLBOT> hello", "channel": "C0GENERAL",
                 "ts": "1700000000.000100"}
        envelope = {"token": "t", "team_id": "T0ROLLBOT", "api_app_id": "A0ROLLBOT", "event": event,
                    "type": "event_callback", "event_id": "EvRETRY1", "event_time": 1700000000}
        import json as _json

        from bot.sandbox.signing import signed_headers

        body = _json.dumps(envelope).encode()
        for retry in (None, "1", "2"):
            import time as _time

            headers = signed_headers(h.sb.signing_secret, int(_time.time()), body, "application/json")
            if retry:
                headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
            async with aiohttp.ClientSession() as session, session.post(
                    f"{h.app_url}/slack/events", data=body, headers=headers) as response:
                assert response.status == 200
        await h.settle()
        mention = next(m for m in h.messages("C0GENERAL") if m["ts"] == "1700000000.000100")
        assert [r["text"] for r in mention["replies"]].count("Type `/rollback help` to see what I can do.") == 1
        _, metrics = await _get(f"{h.app_url}/metrics")
        assert _value(metrics, "rollbot_slack_retries_ignored_total") == 2

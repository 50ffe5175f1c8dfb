"""Health, readiness and metrics during an end-to-end incident, and retried Slack events ignored: the same over
HTTP and over Socket Mode (where Slack's requests bypass the /slack/events route)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from tests.support.harness import harness

pytestmark = pytest.mark.slow  # end to end: scheduled first, so parallel workers finish together


def _value(metrics: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{{{re.escape(want)}}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
    match = re.search(pattern, metrics, re.M)
    return float(match.group(1)) if match else 0.0


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


TRANSPORTS = pytest.mark.parametrize("transport", ["http", "socket_mode"])


@TRANSPORTS
async def test_metrics_move_during_an_incident_and_readyz_checks_dependencies(tmp_path: Path, transport: str) -> None:
    async with harness(tmp_path, transport=transport) as h:
        assert (await _get(f"{h.app_url}/healthz"))[0] == 200
        status, body = await _get(f"{h.app_url}/readyz")
        assert status == 200 and '"database": "ok"' in body and '"slack": "ok"' in body
        _, before = await _get(f"{h.app_url}/metrics")
        await h.command("U500OC01", "start payment")
        _, after = await _get(f"{h.app_url}/metrics")
        assert _value(after, "rollbot_slack_requests_total", kind="command") == \
            _value(before, "rollbot_slack_requests_total", kind="command") + 1
        assert _value(after, "rollbot_slack_ack_seconds_count", kind="command") >= 1
        assert {d.get("via", "http") for d in h.sb.deliveries} == {transport}
        assert _value(after, "rollbot_slack_api_calls_total", method="conversations.create", outcome="ok") == 1
        assert _value(after, "rollbot_slack_api_calls_total", method="chat.postMessage", outcome="ok") > \
            _value(before, "rollbot_slack_api_calls_total", method="chat.postMessage", outcome="ok")
        assert _value(after, "rollbot_open_incidents") == 1
        # A Slack blip must not drain every replica (alert webhooks would be dropped): /readyz stays ready and
        # says Slack is failing; /healthz and the slack_up gauge report it.
        h.sb.faults.configure(fail_share=1.0, fail_statuses=[500])
        status, body = await _get(f"{h.app_url}/readyz")
        health_status, health = await _get(f"{h.app_url}/healthz")
        _, during = await _get(f"{h.app_url}/metrics")
        h.sb.faults.configure(fail_share=0)
        assert status == 200 and '"slack": "error' in body and '"database": "ok"' in body
        assert health_status == 200 and '"slack": "error' in health
        assert _value(during, "rollbot_slack_up") == 0
        _, recovered = await _get(f"{h.app_url}/metrics")
        assert _value(recovered, "rollbot_slack_up") == 1


@TRANSPORTS
async def test_a_retried_event_delivery_is_acknowledged_and_not_processed_twice(tmp_path: Path, transport: str) -> None:
    async with harness(tmp_path, transport=transport) as h:
        h.sb.ws.channels["C0GENERAL"].members.append(h.sb.ws.bot.id)  # someone invited the bot to #general
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
            if transport == "socket_mode":  # Slack re-sends the envelope with a new envelope_id, same event_id
                assert (await h.sb.sockets.deliver("event", envelope, timeout=10))["status"] == 200
                continue
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


async def test_an_unsigned_request_is_refused_before_it_can_plant_an_event_id_or_a_metric_label(tmp_path: Path) -> None:
    """A forged delivery (no or a wrong signature) carrying the real event's event_id and a made-up payload type
    is answered 401 and changes nothing: the real, signed event is then processed once, and the metric labels
    are the fixed set."""
    import json as _json
    import time as _time

    from bot.sandbox.signing import signed_headers
    from bot.sandbox.workspace import Message

    async with harness(tmp_path) as h:
        h.sb.ws.channels["C0GENERAL"].members.append(h.sb.ws.bot.id)  # someone invited the bot to #general
        h.sb.ws.channels["C0GENERAL"].messages.append(
            Message(ts="1700000000.000200", user="U100TL01", text="<@U0ROLLBOT> hi"))
        envelope = {"token": "t", "team_id": "T0ROLLBOT", "api_app_id": "A0ROLLBOT", "type": "event_callback",
                    "event_id": "EvPLANTED", "event_time": 1700000000,
                    "event": {"type": "app_mention", "user": "U100TL01", "text": "<@U0ROLLBOT> hi",
                              "channel": "C0GENERAL", "ts": "1700000000.000200"}}
        body = _json.dumps(envelope).encode()
        forged_kind = b"payload=%7B%22type%22%3A%22made_up_kind_1%22%7D"
        for forged, headers in [
                (body, {"Content-Type": "application/json"}),  # no signature at all
                (body, signed_headers("not-the-secret", int(_time.time()), body, "application/json")),
                (forged_kind, {"Content-Type": "application/x-www-form-urlencoded"})]:
            async with aiohttp.ClientSession() as session, session.post(
                    f"{h.app_url}/slack/events", data=forged, headers=headers) as response:
                assert response.status == 401
        real = signed_headers(h.sb.signing_secret, int(_time.time()), body, "application/json")
        async with aiohttp.ClientSession() as session, session.post(
                f"{h.app_url}/slack/events", data=body, headers=real) as response:
            assert response.status == 200
        await h.settle()
        mention = next(m for m in h.messages("C0GENERAL") if m["ts"] == "1700000000.000200")
        assert len(mention.get("replies", [])) == 1, "the real event was not dropped as a duplicate"
        _, metrics = await _get(f"{h.app_url}/metrics")
        assert _value(metrics, "rollbot_slack_retries_ignored_total") == 0
        assert _value(metrics, "rollbot_slack_requests_total", kind="unsigned") == 3
        labels = set(re.findall(r'^rollbot_slack_requests_total\{kind="([^"]+)"\}', metrics, re.M))
        from handlers.slack_events import KINDS

        assert labels <= KINDS | {"unsigned"} and "made_up_kind_1" not in metrics

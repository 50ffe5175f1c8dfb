"""Forged interaction payloads (property-based): built from the real buttons, checkboxes and modals of two live
incidents, then made wrong in at least one way — another incident's channel, another message, a tampered value
or block, a missing field, a modal replayed by someone else or with edited metadata — and delivered signed, as
Slack would. Whatever the mix: never a 5xx answer, never a change to the database (beyond the timeline's refused
attempts) or to any message in Slack."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sandbox import payloads
from tests.authz.test_table import _database, _slack
from tests.support.harness import Harness, harness

USERS = ("U100TL01", "U100TL02", "U700PM01", "U200DO01", "U900OUT1")  # role holders who could act, and an outsider
INTERACTIVE = ("button", "checkboxes", "static_select")


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(block.get("elements") or [])
    if block.get("accessory"):
        found.append(block["accessory"])
    return [e for e in found if isinstance(e, dict) and e.get("type") in INTERACTIVE]


def _action(block: dict[str, Any], element: dict[str, Any]) -> dict[str, Any]:
    action = {"action_id": element.get("action_id"), "block_id": block.get("block_id"), "type": element["type"],
              "action_ts": "1.0"}
    if element["type"] == "button":
        action["value"] = element.get("value", "")
    elif element["type"] == "checkboxes":
        action["selected_options"] = element.get("options", [])[:1]
    else:
        action["selected_option"] = (element.get("options") or [{}])[0]
    return action


def _targets(h: Harness, channels: list[str]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(channel, message, action) for every interactive element of every message and thread reply."""
    found = []
    state = h.state()
    for channel in channels:
        for message in next(c for c in state["channels"] + state["dms"] if c["id"] == channel)["messages"]:
            for m in [message, *message.get("replies", [])]:
                for block in m.get("blocks") or []:
                    for element in _elements(block):
                        found.append((channel, m, _action(block, element)))
    return found


def _corrupt(payload: dict[str, Any], how: str, data: st.DataObject, others: dict[str, Any]) -> dict[str, Any]:
    p = copy.deepcopy(payload)
    action = p["actions"][0]
    if how == "other_incident":
        p["channel"]["id"] = p["container"]["channel_id"] = others["channel"]
    elif how == "other_message":
        p["container"]["message_ts"] = p["message"]["ts"] = data.draw(st.sampled_from(others["ts"]))
    elif how == "tampered_value":
        junk = data.draw(st.one_of(st.text(max_size=40), st.sampled_from(others["values"])), label="value")
        if "selected_options" in action:
            action["selected_options"] = [{"value": "x" + junk}]
        elif "selected_option" in action:
            action["selected_option"] = {"value": "x" + junk, "text": {"type": "plain_text", "text": "x"}}
        else:
            action["value"] = "x" + junk
    elif how == "tampered_block":
        action["block_id"] = data.draw(st.sampled_from(["", "cl|no_such_step|t|0", "val|nope|0", "x|y|z"]))
    else:  # a missing field
        # (Not `message`: the bot never trusts the copy of the message a payload carries.)
        fields = ["user", "channel", "container", "value", "actions", "action_id"]
        if action["action_id"] in ("checklist_tick", "validation_tick"):  # the only ones that read their block id
            fields.append("block_id")
        field = data.draw(st.sampled_from(fields), label="missing")
        if field in ("value", "block_id", "action_id"):
            action.pop(field, None)
            action.pop("selected_options", None)
        elif field == "channel":
            p.pop("channel", None)
            p["container"].pop("channel_id", None)
        else:
            p.pop(field, None)
    return p


async def _deliver(h: Harness, payload: dict[str, Any], kind: str) -> int:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    result = await h.sb._deliver(body, "application/x-www-form-urlencoded", kind)
    await h.settle()
    return int(result["status"])


def test_forged_interactions_never_fail_and_never_change_state(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    context = harness(tmp_path)
    h: Harness = loop.run_until_complete(context.__aenter__())
    try:
        async def prepare() -> tuple[list[Any], list[dict[str, Any]], dict[str, list[Any]]]:
            await h.command("U500OC01", "start payment --version v2.3.1")
            await h.command("U500OC01", "drill database")
            await h.bot.executions.idle()
            await h.settle()
            incidents = await h.incidents()
            channels = [i.channel_id or "" for i in incidents]
            targets = _targets(h, channels)
            # Modals the right people opened: Skip (the On-Call Engineer), Decline (a Technical Lead), Edit draft.
            first = incidents[0]
            step1 = next(m for m in h.messages(channels[0]) if m["text"].endswith(
                f"Step 1: {h.bot.svc.runbook.phases[0].steps[0].title}"))
            decision = next(m for m in h.messages(channels[0]) if m["text"].startswith("Rollback decision"))
            await h.click("U500OC01", channels[0], step1["ts"], action_id="step_skip")
            await h.click("U100TL01", channels[0], decision["ts"], action_id="decision_decline")
            draft = next(m for m in h.messages(channels[0]) if m["text"].startswith("Comms draft"))
            await h.click("U700PM01", channels[0], draft["ts"], action_id="comms_edit")
            await h.command("U500OC01", "")  # the declare form, opened outside the war rooms
            views = [(u, v) for u in ("U500OC01", "U100TL01", "U700PM01") for v in h.sb.ws.views.get(u, [])]
            assert len(views) == 4, views
            # The pages' Acknowledge buttons, in the DMs they were sent in.
            dms = [c["id"] for c in h.state()["dms"] if any(
                "page_ack" in json.dumps(m.get("blocks") or []) for m in c["messages"])]
            assert dms
            targets += _targets(h, dms)
            submissions = [payloads.view_submission(h.sb.ws, u, v, {"reason": "forged", "text": "forged"}, "1.1.1")
                           for u, v in views]
            assert first.channel_id
            ts = {c: [m["ts"] for m in _all(h, c)] + [r["ts"] for m in _all(h, c) for r in m.get("replies", [])]
                  for c in channels + dms}
            values = [a.get("value", "") for _, _, a in targets if a.get("value")]
            return targets, submissions, {"channels": channels, "ts": ts, "values": values}

        targets, submissions, known = loop.run_until_complete(prepare())
        assert len(targets) > 15, len(targets)
        before = loop.run_until_complete(_database(h)), _slack(h)[0]
        statuses: list[int] = []
        tried: list[str] = []
        changed_by: list[str] = []

        @settings(max_examples=60, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(data=st.data())
        def forged(data: st.DataObject) -> None:
            if data.draw(st.integers(0, 4), label="kind") == 0:  # a modal submission
                payload = copy.deepcopy(data.draw(st.sampled_from(submissions), label="view"))
                how = data.draw(st.sampled_from(["replayed_by_other", "edited_metadata", "other_callback",
                                                 "missing_state", "missing_metadata"]), label="how")
                if how == "replayed_by_other":
                    other = data.draw(st.sampled_from([u for u in USERS if u != payload["user"]["id"]]))
                    payload["user"] = payload["user"] | {"id": other}
                elif how == "edited_metadata":
                    outer = json.loads(payload["view"]["private_metadata"])
                    outer["d"] = outer["d"].replace("inc-", "inc-x").replace("apr-", "apr-x") + " "
                    payload["view"]["private_metadata"] = json.dumps(outer)
                elif how == "other_callback":
                    payload["view"]["callback_id"] = data.draw(st.sampled_from(
                        [c for c in ("step_skip", "approval_decline", "comms_edit", "run_action",
                                     "action_confirm_phrase", "declare_incident")
                         if c != payload["view"]["callback_id"]]))
                elif how == "missing_state":
                    payload["view"].pop("state", None)
                else:
                    payload["view"].pop("private_metadata", None)
                status = loop.run_until_complete(_deliver(h, payload, "view_submission"))
                tried.append(f"view {payload['view'].get('callback_id')} by {payload['user']['id']}: {how}")
            else:
                channel, message, action = data.draw(st.sampled_from(targets), label="target")
                user = data.draw(st.sampled_from(USERS), label="user")
                genuine = payloads.block_actions(h.sb.ws, user, channel, _message_of(h, channel, message), action,
                                                 {}, "", "1.2.3")
                how = data.draw(st.sampled_from(["other_incident", "other_message", "tampered_value",
                                                 "tampered_block", "missing"]), label="how")
                others = {"channel": next(c for c in known["channels"] if c != channel),
                          "ts": [t for t in known["ts"][channel] if t != message["ts"]], "values": known["values"]}
                if how == "tampered_block" and action["action_id"] not in ("checklist_tick", "validation_tick"):
                    how = "tampered_value"  # only checklists read their block id
                status = loop.run_until_complete(_deliver(h, _corrupt(genuine, how, data, others), "block_actions"))
                tried.append(f"{action['action_id']} by {user}: {how}")
            statuses.append(status)
            # The payloads share one workspace, so the first one that changes anything is the one to name.
            if not changed_by and (loop.run_until_complete(_database(h)) != before[0] or _slack(h)[0] != before[1]):
                changed_by.append(tried[-1])
            assert status < 500, tried[-1]
            assert not changed_by, f"changed the database or a message in Slack: {changed_by[0]}"

        forged()
        assert len(statuses) >= 30 and all(s == 200 for s in statuses), statuses
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


def _all(h: Harness, channel: str) -> list[dict[str, Any]]:
    state = h.state()
    return list(next(c for c in state["channels"] + state["dms"] if c["id"] == channel)["messages"])


def _message_of(h: Harness, channel: str, message: dict[str, Any]) -> Any:
    """The sandbox's own message object (what block_actions serialises)."""
    for m in h.sb.ws.channels[channel].messages:
        if m.ts == message["ts"]:
            return m
        for r in getattr(m, "replies", []) or []:
            if r.ts == message["ts"]:
                return r
    raise AssertionError(f"no message {message['ts']}")

"""What a person reads in a Slack workspace (the sandbox's state or a demo transcript), and the words that must
never be in it: the runbook's internal ids, raw Slack user IDs, regexes, the alert source's internal name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot.runbook.model import Runbook
from bot.runbook.procedure import procedure_for

MENTION = re.compile(r"<[@#!][^>]*>")  # <@U123>, <#C123>, <!date^…>: Slack renders these as names and times
LINK_TARGET = re.compile(r"<(https?://[^|>]*)\|")  # a link's address is not read, its label is
RAW_USER_ID = re.compile(r"\b[UW][0-9A-Z]{7,}\b")


def _block_texts(node: Any) -> Iterator[str]:
    """Every text object in a block tree, skipping ids, values, urls and metadata."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "label", "placeholder", "hint", "description") and isinstance(value, str):
                yield value
            elif key in ("block_id", "action_id", "value", "url", "private_metadata", "callback_id",
                         "image_url", "alt_text", "external_id"):
                continue
            else:
                yield from _block_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _block_texts(item)


def _message_texts(message: dict[str, Any]) -> Iterator[str]:
    yield str(message.get("text") or "")
    yield from _block_texts(message.get("blocks") or [])
    for reply in message.get("replies") or []:
        yield from _message_texts(reply)


def human_texts(state: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) for every text a person reads: channel and DM messages with their replies, topics,
    bookmarks, ephemerals and modals."""
    for channel in [*state.get("channels", []), *state.get("dms", [])]:
        where = channel.get("name") or f"DM {channel.get('user')}"
        yield f"{where} topic", str(channel.get("topic") or "")
        for mark in channel.get("bookmarks") or []:
            yield f"{where} bookmark", str(mark.get("title") or "")
        for message in channel.get("messages") or []:
            for text in _message_texts(message):
                yield where, text
    for user, ephemerals in (state.get("ephemerals") or {}).items():
        for message in ephemerals:
            for text in _message_texts(message):
                yield f"ephemeral to {user}", text
    for user, views in (state.get("views") or {}).items():
        for view in views:
            for text in _block_texts([view.get("title"), view.get("blocks") or []]):
                yield f"modal for {user}", text


def internal_words(runbook: Runbook) -> set[str]:
    """Ids a person should never read: every runbook id with an underscore (step, task, action, role, trigger,
    scenario, parameter ids; words without one, like `immediate`, are ordinary English), plus fixed names."""
    ids: set[str] = {"alert:alertmanager", "restore_point", "alert:"}
    ids.update(r.id for r in runbook.roles)
    ids.update(t.id for t in runbook.triggers)
    ids.update(s.id for s in runbook.scenarios)
    for action in runbook.actions:
        ids.add(action.id)
        ids.update(p.name for p in action.params)
    for phase in runbook.phases:
        ids.add(phase.id)
        for step in phase.steps:
            ids.add(step.id)
            ids.update(t.id for t in step.tasks)
    for scenario in runbook.scenarios:
        ids.update(s.id for s in scenario.steps)
        for step in procedure_for(runbook, scenario.id).steps():  # a scenario's steps as the procedure names them
            ids.add(step.id)
            ids.update(t.id for t in step.tasks)
    return {i for i in ids if "_" in i or ":" in i}


def offenders(state: dict[str, Any], runbook: Runbook) -> list[str]:
    """Each human text naming an internal id, a raw Slack user ID or a runbook regex, with where it was."""
    words = internal_words(runbook)
    patterns = {p.pattern for a in runbook.actions for p in a.params if p.pattern}
    found = []
    for where, text in human_texts(state):
        plain = LINK_TARGET.sub("<", MENTION.sub("", text))
        hits = sorted(w for w in words if re.search(rf"(?<![\w/.-]){re.escape(w)}(?![\w-])", plain))
        hits += RAW_USER_ID.findall(plain)
        hits += [p for p in patterns if p in plain]
        if hits:
            found.append(f"{where}: {hits} in {text[:160]!r}")
    return found

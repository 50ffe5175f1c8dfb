"""Validate Block Kit against the published JSON schema (../shared/fixtures/slack), when it is there."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "slack" / "block-kit.schema.json"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA.read_text()))


def schema_errors(blocks: list[dict[str, Any]]) -> list[str]:
    """Problems with a message's or view's block list ([] when valid); skips the test when the schema is absent."""
    if not SCHEMA.exists():
        pytest.skip(f"Block Kit schema not found at {SCHEMA}")
    return [f"{list(e.absolute_path)[:6]}: {e.message[:200]}" for e in _validator().iter_errors(blocks)]


def all_posted_blocks(state: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(where, blocks) for every message, reply, ephemeral and view in a sandbox state."""
    found: list[tuple[str, list[dict[str, Any]]]] = []
    for kind in ("channels", "dms"):
        for channel in state[kind]:
            for message in channel["messages"]:
                for m in [message, *message.get("replies", [])]:
                    if m.get("blocks"):
                        found.append((f"{channel['id']}/{m['ts']}", m["blocks"]))
    for user, messages in state["ephemerals"].items():
        found += [(f"ephemeral {user}", m["blocks"]) for m in messages if m.get("blocks")]
    for user, views in state["views"].items():
        found += [(f"view {user} {v.get('callback_id')}", v["blocks"]) for v in views if v.get("blocks")]
    return found


def assert_everything_posted_is_valid(state: dict[str, Any]) -> int:
    """Every block list the bot posted validates against Slack's Block Kit schema; returns how many were checked."""
    if not SCHEMA.exists():
        return 0
    posted = all_posted_blocks(state)
    bad = {where: errors for where, blocks in posted if (errors := schema_errors(blocks))}
    assert not bad, bad
    return len(posted)

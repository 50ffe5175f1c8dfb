"""manifest.yml is a valid Slack app manifest and declares what the bot really uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "fixtures" / "slack" / "manifest-schema_manifest.schema.1.0.0.json"


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_validates_against_slacks_schema() -> None:
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA}")
    errors = sorted(Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(_manifest()), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_manifest_declares_the_command_events_and_scopes_the_bot_uses() -> None:
    manifest = _manifest()
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert "usage_hint" in commands["/rollback"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # Each Web API family the bot calls needs its scope.
    for needed in ("channels:manage", "chat:write", "commands", "im:write", "pins:write", "usergroups:read",
                   "users:read.email", "files:write"):
        assert needed in scopes

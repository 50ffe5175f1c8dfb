"""`rollbot manifest` prints a manifest ready to paste into Slack: valid against Slack's schema, with every
Request URL on the deployment's /slack/events (HTTP mode) or Socket Mode on and no URL at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from bot.cli.main import main
from bot.slack.scopes import bot_scopes

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "slack" / "manifest-schema_manifest.schema.1.0.0.json"


def _printed(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["manifest", *args]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def _schema_errors(manifest: dict) -> list[str]:
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA}")
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]


def _urls(manifest: dict) -> list[str | None]:
    settings = manifest["settings"]
    return [*(c.get("url") for c in manifest["features"]["slash_commands"]),
            settings["event_subscriptions"].get("request_url"), settings["interactivity"].get("request_url")]


@pytest.mark.parametrize("url", ["https://bot.example.com", "https://bot.example.com/", "https://bot.example.com/slack/events"])
def test_http_mode_points_every_request_url_at_the_deployment(capsys: pytest.CaptureFixture[str], url: str) -> None:
    manifest = _printed(capsys, "--url", url)
    assert _schema_errors(manifest) == []
    assert _urls(manifest) == ["https://bot.example.com/slack/events"] * 3
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["oauth_config"]["scopes"]["bot"] == bot_scopes()


def test_a_path_prefix_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _printed(capsys, "--url", "https://ops.example.com/rollbot")
    assert _urls(manifest) == ["https://ops.example.com/rollbot/slack/events"] * 3


def test_socket_mode_turns_socket_mode_on_and_leaves_no_url(capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _printed(capsys, "--socket-mode")
    assert _schema_errors(manifest) == []
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert _urls(manifest) == [None, None, None]
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


@pytest.mark.parametrize("url", ["http://bot.example.com", "bot.example.com", "https://bot.example.com/?x=1"])
def test_an_address_slack_would_refuse_is_refused_with_the_reason(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert main(["manifest", "--url", url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--url" in captured.err and url in captured.err

"""`rollbot manifest`: manifest.yml made ready to paste into Slack's "Create an app from a manifest", with the
Request URLs pointing at a deployment (HTTP mode) or Socket Mode on and no URLs at all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

# bot.core.config (pydantic) is imported where an error is raised: `rollbot --help` builds this parser and stays quick.
MANIFEST_PATH = Path(__file__).resolve().parents[2] / "manifest.yml"
EVENTS_PATH = "/slack/events"  # commands, interactivity and events all arrive here (handlers/slack_events.py)


def request_url(base_url: str) -> str:
    """`https://bot.example.com` -> `https://bot.example.com/slack/events` (a URL already ending there is kept)."""
    from bot.core.config import ConfigError

    parts = urlsplit(base_url.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(f"--url must be the bot's public https:// address (Slack only calls https), got {base_url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"--url takes no query or fragment, got {base_url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return f"https://{parts.netloc}{path}"


def render(url: str | None = None, socket_mode: bool = False, path: Path = MANIFEST_PATH) -> dict[str, Any]:
    """The manifest with every Request URL set to `url`'s /slack/events, or with Socket Mode on and none."""
    from bot.core.config import ConfigError

    if (url is None) == (not socket_mode):
        raise ConfigError("give either --url https://… (HTTP mode) or --socket-mode")
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    features, settings = manifest.get("features", {}), manifest["settings"]
    target = request_url(url) if url is not None else None
    for command in features.get("slash_commands", []):
        _set(command, "url", target)
    _set(settings.setdefault("event_subscriptions", {}), "request_url", target)
    _set(settings["interactivity"], "request_url", target)
    settings["socket_mode_enabled"] = socket_mode
    return manifest


def _set(section: dict[str, Any], key: str, value: str | None) -> None:
    if value is None:
        section.pop(key, None)  # Socket Mode: Slack delivers over the WebSocket, a URL would only confuse
    else:
        section[key] = value


def render_text(url: str | None = None, socket_mode: bool = False) -> str:
    manifest = render(url, socket_mode)
    how = "Socket Mode (set SLACK_APP_TOKEN)" if url is None else f"HTTP mode: Slack calls {request_url(url)}"
    header = (f"# Rollbot's Slack app manifest, {how}.\n"
              "# api.slack.com/apps -> Create New App -> From an app manifest -> pick the workspace -> YAML -> paste.\n")
    return header + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=120)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("manifest", help="print the Slack app manifest for your deployment (paste it into Slack)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--url", help="the bot's public https address; Slack's Request URLs become URL/slack/events")
    mode.add_argument("--socket-mode", action="store_true", help="Socket Mode: no public URL, needs SLACK_APP_TOKEN")


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(render_text(args.url, args.socket_mode))
    return 0

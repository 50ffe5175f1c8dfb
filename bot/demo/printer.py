"""Prints what the sandbox sees as it happens, readably: channel messages, thread replies, DMs, and a progress
line when the incident moves to another phase."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.sandbox.server import SandboxServer

WIDTH = 110


EMOJI = {":white_check_mark:": "✅", ":x:": "❌", ":alarm_clock:": "⏰", ":hourglass:": "⌛", ":stopwatch:": "⏱",
         ":rotating_light:": "🚨", ":warning:": "⚠️", ":test_tube:": "🧪", ":no_entry:": "⛔", ":bell:": "🔔",
         ":pager:": "📟", ":mega:": "📣", ":memo:": "📝", ":white_circle:": "⚪"}


def _first_line(message: dict[str, Any], names: dict[str, str] | None = None) -> str:
    text = message.get("text") or ""
    if not text and message.get("files"):
        text = "(file) " + ", ".join(f["id"] for f in message["files"])
    text = re.sub(r"<@([A-Z0-9]+)(\|[^>]*)?>", lambda m: "@" + (names or {}).get(m.group(1), m.group(1)), text)
    text = re.sub(r":[a-z_]+:", lambda m: EMOJI.get(m.group(0), m.group(0)), text).replace("*", "")
    text = re.sub(r"<#([A-Z0-9]+)(\|[^>]*)?>", r"#\1", text)
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)
    line = text.strip().splitlines()[0] if text.strip() else "(blocks)"
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


class Printer:
    def __init__(self, sb: SandboxServer, started: Callable[[], datetime | None], now: Callable[[], datetime],
                 out: Callable[[str], None] = print) -> None:
        self.sb = sb
        self.started = started
        self.now = now
        self.out = out
        self.seen: set[tuple[str, str]] = set()
        self.edited: dict[tuple[str, str], str] = {}
        self.names = {u.id: u.real_name for u in sb.ws.users.values()}

    def stamp(self) -> str:
        t0 = self.started()
        if t0 is None:
            return "[--:--]"
        seconds = max(0, int((self.now() - t0).total_seconds()))
        return f"[{seconds // 60:02d}:{seconds % 60:02d}]"

    def say(self, text: str) -> None:
        self.out(f"{self.stamp()} {text}")

    def poll(self) -> None:
        for channel in self.sb.ws.channels.values():
            where = f"DM→{self.names.get(channel.im_user or '', channel.im_user)}" if channel.is_im else f"#{channel.name}"
            for message in channel.messages:
                key = (channel.id, message.ts)
                line = _first_line(message.to_api(), self.names)
                if key in self.seen:
                    if self.edited.get(key) != line:  # an update that says something new (a result, a decision)
                        self.edited[key] = line
                        self.say(f"   ✎ {where}: {line}")
                    continue
                self.seen.add(key)
                self.edited[key] = line
                author = "rollbot" if message.user == self.sb.ws.bot.id else self.names.get(message.user, message.user)
                if channel.is_im:
                    self.say(f"✉  {where}: {line}")
                elif message.thread_ts and message.thread_ts != message.ts:
                    self.say(f"   ↳ {where} thread · {author}: {line}")
                else:
                    pinned = " 📌" if message.ts in channel.pins else ""
                    self.say(f"{where} · {author}: {line}{pinned}")

    def progress(self, phase_number: int, phases: int, title: str, done: int, total: int) -> None:
        filled = round(20 * done / max(1, total))
        bar = "█" * filled + "░" * (20 - filled)
        self.out(f"{self.stamp()} ━━ Phase {phase_number}/{phases}: {title} ━━ [{bar}] {done}/{total} steps")

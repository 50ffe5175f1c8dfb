"""Small formatting helpers shared by the Block Kit views (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

DRILL_TAG = "[DRILL] "


def minutes(value: float) -> str:
    """0.5 -> '30s', 2 -> '2m', 2.5 -> '2m30s'."""
    seconds = round(value * 60)
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    return f"{m}m{s:02d}s" if s else f"{m}m"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def whole_minutes(seconds: float) -> str:
    """A duration to the minute (rounded down): for views refreshed once a minute, which say nothing finer."""
    h, m = divmod(max(0, int(seconds // 60)), 60)
    return f"{h}h{m:02d}m" if h else f"{m} min"


def window(start: float, end: float) -> str:
    return f"{start:g}–{end:g} min"


def mentions(users: Iterable[str]) -> str:
    users = sorted(set(users))
    return ", ".join(f"<@{u}>" for u in users) if users else "_nobody on the roster_"


def clock_time(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")


def escape(text: str | None) -> str:
    """Untrusted text (alert fields, what people typed, action output) made inert for mrkdwn: with &, < and >
    escaped, `<!channel>`, `<!here>`, `<@U…>` and `<http://…|links>` show as the characters they are."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def drill_prefix(is_drill: bool) -> str:
    return DRILL_TAG if is_drill else ""


SOURCE_NAMES = {"alertmanager": "Alertmanager", "grafana": "Grafana", "pagerduty": "PagerDuty",
                "datadog": "Datadog", "generic": "a monitoring webhook"}


def actor(who: str | None) -> str:
    """Who did something, as a person reads it: a mention for a Slack user, words for the bot's own actors
    (`alert:<source>`, `schedule:…`, `auto`), never the internal name."""
    if not who:
        return "nobody"
    if who.startswith(("U", "W")) and who[1:].isalnum() and who.isupper():
        return f"<@{who}>"
    if who.startswith("alert:"):
        source = who.split(":", 1)[1]
        return f"an alert from {SOURCE_NAMES.get(source, escape(source))}"
    if who.startswith("schedule:"):
        return "the drill schedule"
    if who == "auto":
        return "Rollbot (automatically)"
    return escape(who)



def param_label(name: str) -> str:
    """A parameter's name as a label: `restore_point` reads "Restore point"."""
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name

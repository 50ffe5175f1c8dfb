"""Parsing `/rollback` text into a command, with errors that say what was wrong and show the usage.

Pure: no Slack, no store. Untrusted text is only split and matched, never executed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from bot.runbook.model import Runbook

USAGE = """*Usage:* `/rollback <subcommand>`
• `/rollback` — open a form to declare a rollback incident
• `/rollback start [scenario] [--level immediate|urgent|consideration] [--version V] [description]`
• `/rollback status` — phase, steps, overdue, time to RTO (in an incident channel)
• `/rollback list` — open incidents
• `/rollback drill [scenario]` — run a rollback drill
• `/rollback contacts` — who to call, by role, and external support
• `/rollback timeline` — the incident's timeline, to you (`post`: to the channel) · `/rollback note <text>` — add to it
• `/rollback role <role> @user` — give someone a role for this incident
• `/rollback resolve [--override "reason"]` — close the incident
• `/rollback help` — this message"""

SUBCOMMANDS = ("help", "start", "status", "list", "drill", "contacts", "timeline", "note", "role", "resolve")
VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+([-.][A-Za-z0-9]+)*$|^stable-[a-z0-9.-]+$")


class CommandError(ValueError):
    """The message is shown to the user as it is, followed by the usage."""


@dataclass(frozen=True)
class Command:
    name: str
    scenario: str | None = None
    level: str | None = None
    version: str | None = None
    text: str = ""
    role: str | None = None
    user: str | None = None
    override: str | None = None
    flags: dict[str, str] = field(default_factory=dict)


def parse(text: str, runbook: Runbook) -> Command:
    try:
        words = shlex.split(text.strip())
    except ValueError as exc:
        raise CommandError(f"Could not read that command: {exc}.") from None
    if not words:
        return Command(name="modal")
    name, rest = words[0].lower(), words[1:]
    if name not in SUBCOMMANDS:
        raise CommandError(f"Unknown subcommand `{_clip(words[0])}`.")
    if name in ("start", "drill"):
        return _parse_start(name, rest, runbook)
    if name == "timeline":
        if rest not in ([], ["post"]):
            raise CommandError("`timeline` takes nothing, or `post` to show it to the channel.")
        return Command(name=name, text=" ".join(rest))
    if name in ("help", "status", "list", "contacts"):
        if rest:
            raise CommandError(f"`{name}` takes no arguments.")
        return Command(name=name)
    if name == "note":
        if not rest:
            raise CommandError("`note` needs the text to add, e.g. `/rollback note cache flushed by hand`.")
        return Command(name=name, text=" ".join(rest))
    if name == "role":
        return _parse_role(rest, runbook)
    return _parse_resolve(rest)


def _parse_start(name: str, words: list[str], runbook: Runbook) -> Command:
    scenario = level = version = None
    free: list[str] = []
    i = 0
    scenario_ids = {s.id for s in runbook.scenarios}
    aliases = _scenario_aliases(runbook)
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            flag, _, inline = word.partition("=")
            if flag not in ("--level", "--version"):
                raise CommandError(f"Unknown flag `{_clip(flag)}`.")
            value = inline or (words[i + 1] if i + 1 < len(words) else "")
            if not value or value.startswith("--"):
                raise CommandError(f"`{flag}` needs a value.")
            i += 1 if inline else 2
            if flag == "--level":
                if value not in {lv.id for lv in runbook.levels}:
                    levels = "|".join(lv.id for lv in runbook.levels)
                    raise CommandError(f"Unknown level `{_clip(value)}`: use one of {levels}.")
                level = value
            else:
                if not VERSION_RE.match(value):
                    raise CommandError(f"`{_clip(value)}` is not a version (expected e.g. v2.3.1).")
                version = value
            continue
        if scenario is None and not free and word.lower() in aliases:
            scenario = aliases[word.lower()]
        elif scenario is None and not free and len(words) == 1 and word.lower() not in scenario_ids:
            known = ", ".join(sorted(aliases))
            raise CommandError(f"Unknown scenario `{_clip(word)}`: use one of {known}.")
        else:
            free.append(word)
        i += 1
    return Command(name=name, scenario=scenario, level=level, version=version, text=" ".join(free))


def _scenario_aliases(runbook: Runbook) -> dict[str, str]:
    """`payment`, `payment_system` and `4` all name the payment scenario."""
    aliases: dict[str, str] = {}
    for s in runbook.scenarios:
        aliases[s.id] = s.id
        aliases[str(s.number)] = s.id
        aliases[s.id.split("_")[0]] = s.id
    return aliases


def _parse_role(words: list[str], runbook: Runbook) -> Command:
    if len(words) != 2:
        raise CommandError("`role` needs a role and a person, e.g. `/rollback role technical_lead @tara`.")
    role, who = words
    if role not in {r.id for r in runbook.roles}:
        raise CommandError(f"Unknown role `{_clip(role)}`: use one of {', '.join(r.id for r in runbook.roles)}.")
    match = re.fullmatch(r"<@([UW][A-Z0-9]+)(\|[^>]*)?>", who)
    if not match:
        raise CommandError("Mention the person, e.g. `@tara` (Slack sends it as a user id).")
    return Command(name="role", role=role, user=match.group(1))


def _parse_resolve(words: list[str]) -> Command:
    if not words:
        return Command(name="resolve")
    if words[0] != "--override" or len(words) < 2:
        raise CommandError('`resolve` takes only `--override "reason"`.')
    return Command(name="resolve", override=" ".join(words[1:]))


def _clip(text: str) -> str:
    """Echo user input back safely: short, and without Slack control characters."""
    return re.sub(r"[<>&`*_~]", "", text)[:40]

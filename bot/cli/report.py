"""`rollbot report INCIDENT [--format md|json] [--out FILE]`: the post-incident report, from the store
(DATABASE_URL, ROLLBOT_RUNBOOK, the roster). Names come from Slack (users.info) when SLACK_BOT_TOKEN is set;
without it a person is named by their role, never by their Slack ID."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.clock import SystemClock
from bot.core.config import load_settings
from bot.core.people import People
from bot.core.roster import load_roster
from bot.reports.report import write_report as render_report
from bot.runbook.loader import load_runbook
from bot.store.db import Database


def write_report(args: argparse.Namespace) -> int:
    settings = load_settings()
    runbook = load_runbook(settings.runbook_path)
    roster = load_roster(settings.roster_path, runbook)
    # The roster's user contacts (groups and emails need Slack to resolve; the report names them by role).
    holders = {r.id: [c.user for c in roster.all_contacts(r.id) if c.user] for r in runbook.roles}

    async def main() -> str:
        db = Database(settings.database_url)
        client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(),
                                base_url=settings.slack_api_url) if settings.slack_bot_token else None
        try:
            return await render_report(db, runbook, args.incident, SystemClock().now(),
                                       People(client.users_info if client else None), holders,
                                       getattr(args, "format", "md"))
        finally:
            await db.dispose()

    try:
        report = asyncio.run(main())
    except KeyError as exc:
        print(f"rollbot report: {exc.args[0]}", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
        print(f"report written to {args.out}")
    else:
        print(report, end="")
    return 0

"""`rollbot report INCIDENT [--out FILE]`: the post-incident report, from the store (DATABASE_URL, ROLLBOT_RUNBOOK)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import load_settings
from bot.engine.report import write_report as render_report
from bot.runbook.loader import load_runbook
from bot.store.db import Database


def write_report(args: argparse.Namespace) -> int:
    settings = load_settings()

    async def main() -> str:
        db = Database(settings.database_url)
        try:
            return await render_report(db, load_runbook(settings.runbook_path), args.incident)
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
        print(report)
    return 0

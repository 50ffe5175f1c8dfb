"""The `rollbot` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.config import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollbot", description="A Slack war room for emergency rollbacks.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the bot (HTTP, or Socket Mode with SLACK_APP_TOKEN)")

    runbook = sub.add_parser("runbook", help="check or print a runbook")
    rb_sub = runbook.add_subparsers(dest="runbook_command", required=True)
    for name, text in (("validate", "validate a runbook (default: the bundled one)"), ("show", "print the procedure")):
        p = rb_sub.add_parser(name, help=text)
        p.add_argument("path", nargs="?", default=None)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations to head")

    from bot.sandbox_cli import add_sandbox_parser

    add_sandbox_parser(sub)

    demo = sub.add_parser("demo", help="run a whole rollback in the local Slack sandbox")
    demo.add_argument("--scenario", default="payment_system")
    demo.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    demo.add_argument("--transcript", default=None, help="write everything the sandbox saw to this JSON file")
    demo.add_argument("--quiet", action="store_true")

    report = sub.add_parser("report", help="write the post-incident report of an incident")
    report.add_argument("incident")
    report.add_argument("--out", default=None)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"rollbot: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "runbook":
        from bot.runbook import cli as runbook_cli

        return runbook_cli.validate(args.path) if args.runbook_command == "validate" else runbook_cli.show(args.path)
    if args.command == "db":
        from bot.store.db import Database

        settings = load_settings()

        async def upgrade() -> None:
            db = Database(settings.database_url)
            await db.upgrade()
            await db.dispose()

        asyncio.run(upgrade())
        print("database at head")
        return 0
    if args.command == "sandbox":
        from bot.sandbox_cli import run_sandbox

        return run_sandbox(args) or 0
    if args.command == "serve":
        from bot.serve import serve

        logging.getLogger().setLevel(logging.INFO)
        asyncio.run(serve(load_settings()))
        return 0
    if args.command == "demo":
        from bot.demo import run_demo

        return run_demo(args)
    if args.command == "report":
        from bot.report_cli import write_report

        return write_report(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `rollbot` command.

Imports stay inside the commands: `rollbot --help` (and a mistyped command) answers without loading pydantic,
asyncio, aiohttp, Slack or the sandbox.
"""

from __future__ import annotations

import argparse
import logging
import sys


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

    from bot.cli import manifest
    from bot.cli.sandbox import add_sandbox_parser

    manifest.add_parser(sub)

    add_sandbox_parser(sub)

    demo = sub.add_parser("demo", help="run a whole rollback in the local Slack sandbox")
    demo.add_argument("--scenario", default="payment_system")
    demo.add_argument("--speed", type=float, default=None,
                      help="pace for watching, in simulated seconds per real second (0: as fast as it goes); "
                      "the simulated timeline is the same at any pace")
    demo.add_argument("--transcript", default=None, help="write everything the sandbox saw to this JSON file")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--socket-mode", action="store_true", help="Slack's requests over Socket Mode, not HTTP")
    demo.add_argument("--keep", action="store_true",
                      help="after the scripted incident, keep the workspace and the bot running (web client URL printed)")

    report = sub.add_parser("report", help="write the post-incident report of an incident")
    report.add_argument("incident")
    report.add_argument("--out", default=None)
    report.add_argument("--format", choices=["md", "json"], default="md",
                        help="Markdown to paste (default) or JSON")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bot.core.config import ConfigError

    try:
        return _run(args)
    except ConfigError as exc:
        print(f"rollbot: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "runbook":
        from bot.cli import runbook as runbook_cli

        return runbook_cli.validate(args.path) if args.runbook_command == "validate" else runbook_cli.show(args.path)
    if args.command == "db":
        import asyncio

        from bot.core.config import load_settings
        from bot.store.db import Database

        settings = load_settings()

        async def upgrade() -> None:
            db = Database(settings.database_url)
            await db.upgrade()
            await db.dispose()

        asyncio.run(upgrade())
        print("database at head")
        return 0
    if args.command == "manifest":
        from bot.cli import manifest

        return manifest.run(args)
    if args.command == "sandbox":
        from bot.cli.sandbox import run_sandbox

        return run_sandbox(args) or 0
    if args.command == "serve":
        import asyncio

        from bot.cli.serve import serve
        from bot.core.config import load_settings

        logging.getLogger().setLevel(logging.INFO)
        asyncio.run(serve(load_settings()))
        return 0
    if args.command == "demo":
        from bot.demo import run_demo

        return run_demo(args)
    if args.command == "report":
        from bot.cli.report import write_report

        return write_report(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

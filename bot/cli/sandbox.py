"""`rollbot sandbox`: run the local Slack workspace standalone and print how to point a bot at it."""

from __future__ import annotations

import argparse
import os


def add_sandbox_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("sandbox", help="run a local Slack workspace (Web API + signed deliveries)")
    parser.add_argument("--host", default=os.environ.get("ROLLBOT_HOST") or "127.0.0.1",
                        help="address to listen on (default: ROLLBOT_HOST, else 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--users", default=None, help="workspace YAML (default: runbooks/sandbox-workspace.yml)")
    parser.add_argument("--app-url", default=None, help="where to deliver commands, clicks and events")
    parser.add_argument("--bot-token", default=None)
    parser.add_argument("--signing-secret", default=None)
    parser.add_argument("--no-limits", action="store_true", help="turn Slack's rate limits off")
    parser.add_argument("--scopes", default="manifest",
                        help="the installed app's bot scopes, comma-separated; 'manifest' (default): manifest.yml's; "
                             "'all': every scope the sandbox knows (for another app asking for more)")
    parser.add_argument("--with-bot", action="store_true",
                        help="also run Rollbot against it (SQLite in a temporary directory): a drill in the browser")


def run_sandbox(args: argparse.Namespace) -> int:
    import asyncio  # here, not at the top: `rollbot --help` builds this parser and should stay quick
    import signal

    from bot.sandbox.scopes import every_scope
    from bot.sandbox.server import SandboxServer
    scopes = None if args.scopes == "manifest" else every_scope() if args.scopes == "all" else \
        [s.strip() for s in args.scopes.split(",") if s.strip()]
    if args.with_bot:
        from bot.core.heap import settle

        settle()  # a bot runs here for as long as the drill: its imported heap, out of the collector's walks
        asyncio.run(_with_bot(args))
        return 0

    async def main() -> None:
        sandbox = SandboxServer(args.users, limits=not args.no_limits, bot_token=args.bot_token,
                                signing_secret=args.signing_secret, app_url=args.app_url, scopes=scopes)
        await sandbox.start(host=args.host, port=args.port)
        print(f"sandbox: {sandbox.base_url}", flush=True)
        print(f"web api (SLACK_API_URL): {sandbox.api_url}", flush=True)
        print(f"bot token (SLACK_BOT_TOKEN): {sandbox.bot_token}", flush=True)
        print(f"app token: {sandbox.app_token}", flush=True)
        print(f"signing secret: {sandbox.signing_secret}", flush=True)
        print(f"state: {sandbox.base_url}/_sandbox/state · deliveries to: {args.app_url or '(none)'}", flush=True)
        print(f"web client: {sandbox.base_url}/", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sandbox.stop()

    asyncio.run(main())
    return 0


async def _with_bot(args: argparse.Namespace) -> None:
    """The workspace and the bot together, on the real clock: type `/rollback drill` in the web client."""
    import os
    import tempfile
    from pathlib import Path

    from bot.demo.stack import start_stack, until_interrupted

    # The sample scripts pause as a real rollback would; a drill in the browser need not wait minutes for them.
    os.environ.setdefault("ROLLBOT_SCRIPT_SPEED", "5")
    workdir = Path(tempfile.mkdtemp(prefix="rollbot-sandbox-"))
    stack = await start_stack(workdir, speed=None, sandbox_port=args.port)
    if args.no_limits:
        stack.sb.limits.enabled = False
    print(f"web client: {stack.sb.base_url}/", flush=True)
    print(f"bot: http://127.0.0.1:{stack.port} · database: {workdir / 'rollbot.db'}", flush=True)
    print("type `/rollback drill` in #general to start a drill (Ctrl-C to stop)", flush=True)
    try:
        await until_interrupted()
    finally:
        await stack.stop()

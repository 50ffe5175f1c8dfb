"""`rollbot sandbox`: run the local Slack workspace standalone and print how to point a bot at it."""

from __future__ import annotations

import argparse
import asyncio
import signal

from bot.sandbox.server import SandboxServer


def add_sandbox_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("sandbox", help="run a local Slack workspace (Web API + signed deliveries)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--users", default=None, help="workspace YAML (default: runbooks/sandbox-workspace.yml)")
    parser.add_argument("--app-url", default=None, help="where to deliver commands, clicks and events")
    parser.add_argument("--bot-token", default=None)
    parser.add_argument("--signing-secret", default=None)
    parser.add_argument("--no-limits", action="store_true", help="turn Slack's rate limits off")


def run_sandbox(args: argparse.Namespace) -> int:
    async def main() -> None:
        sandbox = SandboxServer(args.users, limits=not args.no_limits, bot_token=args.bot_token,
                                signing_secret=args.signing_secret, app_url=args.app_url)
        await sandbox.start(port=args.port)
        print(f"sandbox: {sandbox.base_url}", flush=True)
        print(f"web api (SLACK_API_URL): {sandbox.api_url}", flush=True)
        print(f"bot token (SLACK_BOT_TOKEN): {sandbox.bot_token}", flush=True)
        print(f"app token: {sandbox.app_token}", flush=True)
        print(f"signing secret: {sandbox.signing_secret}", flush=True)
        print(f"state: {sandbox.base_url}/_sandbox/state · deliveries to: {args.app_url or '(none)'}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sandbox.stop()

    asyncio.run(main())
    return 0

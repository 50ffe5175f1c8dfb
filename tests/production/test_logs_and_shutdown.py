"""JSON logs carry ids and never a secret; `rollbot serve` stops cleanly on SIGTERM, well inside 10 seconds."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

from bot.core.logging_setup import JsonFormatter, incident_id
from bot.sandbox.server import SandboxServer


def test_a_log_line_is_json_with_the_incident_id_and_no_secret() -> None:
    token = "xoxb-123456789012-abcdefabcdefabcdef"
    formatter = JsonFormatter([token, "s3cr3t-signing-value"])
    incident_id.set("inc-42")
    record = logging.LogRecord("bot.test", logging.WARNING, __file__, 1,
                               "calling Slack with %s and signing s3cr3t-signing-value", (token,), None)
    line = formatter.format(record)
    entry = json.loads(line)
    assert entry["incident_id"] == "inc-42" and entry["level"] == "warning"
    assert token not in line and "s3cr3t-signing-value" not in line and "[REDACTED]" in entry["message"]


def test_database_and_redis_passwords_are_masked_in_logs() -> None:
    """A driver error that quotes the connection URL does not leak DATABASE_URL's or REDIS_URL's password."""
    from bot.core.config import load_settings

    settings = load_settings({"DATABASE_URL": "postgresql://rollbot:pg%2Fpass-9f3k@db.internal:5432/rollbot",
                              "REDIS_URL": "redis://:r3dis-pw-77aa@cache.internal:6379/0"})
    formatter = JsonFormatter(settings.secret_values())
    record = logging.LogRecord("bot.test", logging.ERROR, __file__, 1, "cannot connect to %s nor %s (password %s)",
                               (settings.database_url, settings.redis_url, "pg/pass-9f3k"), None)
    line = formatter.format(record)
    assert "pg%2Fpass-9f3k" not in line and "pg/pass-9f3k" not in line and "r3dis-pw-77aa" not in line
    assert "db.internal" in line and "[REDACTED]" in line, "only the passwords go"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_settles_its_heap_and_exits_within_ten_seconds_of_sigterm(tmp_path: Path) -> None:
    sb = SandboxServer(limits=False)
    await sb.start()
    port = _free_port()
    env = os.environ | {"SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret,
                        "SLACK_API_URL": sb.api_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
                        "PORT": str(port)}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli.main", "serve", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        seen = b""
        while b"listening" not in seen:
            line = await asyncio.wait_for(process.stdout.readline(), 30)  # type: ignore[union-attr]
            assert line, seen
            seen += line
        # The start-up heap is frozen, so a full collection no longer stops the loop to walk it (bot/core/heap.py).
        settled = re.search(rb"heap settled: (\d+) objects", seen)
        assert settled and int(settled.group(1)) > 50_000, seen
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
        assert code == 0 and time.monotonic() - started < 10
        rest = (await process.stdout.read()).decode()  # type: ignore[union-attr]
        assert sb.bot_token not in rest and sb.signing_secret not in rest
        assert all(json.loads(x) for x in rest.splitlines() if x.startswith("{"))
    finally:
        if process.returncode is None:
            process.kill()
        await sb.stop()

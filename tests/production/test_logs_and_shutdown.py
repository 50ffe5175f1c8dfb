"""JSON logs carry ids and never a secret; `rollbot serve` stops cleanly on SIGTERM, well inside 10 seconds."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from bot.logging_setup import JsonFormatter, incident_id
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_exits_within_ten_seconds_of_sigterm(tmp_path: Path) -> None:
    sb = SandboxServer(limits=False)
    await sb.start()
    port = _free_port()
    env = os.environ | {"SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret,
                        "SLACK_API_URL": sb.api_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
                        "PORT": str(port)}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        seen = b""
        while b"listening" not in seen:
            line = await asyncio.wait_for(process.stdout.readline(), 30)  # type: ignore[union-attr]
            assert line, seen
            seen += line
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

"""`ROLLBOT_HOST` decides which address `rollbot serve` and `rollbot sandbox` listen on; by default only this
machine (127.0.0.1) reaches them."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import httpx
import pytest

from bot.cli.main import main
from bot.core.config import ConfigError, load_settings
from bot.core.webserver import listen_url
from bot.sandbox.server import SandboxServer

OTHER_LOOPBACK = "127.0.0.2"  # Linux routes all of 127/8 to lo: a second address without a second interface


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _refused(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return True
        return False


def test_the_default_is_this_machine_only_and_the_setting_is_validated() -> None:
    assert load_settings({}).host == "127.0.0.1"
    assert load_settings({"ROLLBOT_HOST": "0.0.0.0"}).host == "0.0.0.0"
    assert load_settings({"ROLLBOT_HOST": "::"}).host == "::"
    with pytest.raises(ConfigError, match="ROLLBOT_HOST"):
        load_settings({"ROLLBOT_HOST": "http://0.0.0.0"})


def test_the_printed_address_is_one_this_machine_can_open() -> None:
    assert listen_url("0.0.0.0", 3000) == "http://127.0.0.1:3000"
    assert listen_url("::", 3000) == "http://[::1]:3000"
    assert listen_url("10.1.2.3", 3000) == "http://10.1.2.3:3000"


async def test_serve_listens_on_rollbot_host_and_nowhere_else(tmp_path: Path) -> None:
    sb = SandboxServer(limits=False)
    await sb.start()
    port = _free_port(OTHER_LOOPBACK)
    env = os.environ | {"SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret,
                        "SLACK_API_URL": sb.api_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
                        "PORT": str(port), "ROLLBOT_HOST": OTHER_LOOPBACK}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli.main", "serve", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        seen = b""
        while b"listening" not in seen:
            line = await asyncio.wait_for(process.stdout.readline(), 60)  # type: ignore[union-attr]
            assert line, seen
            seen += line
        assert f"http://{OTHER_LOOPBACK}:{port}".encode() in seen
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://{OTHER_LOOPBACK}:{port}/healthz")).status_code == 200
        assert _refused("127.0.0.1", port)  # same port, another address of this machine: not listening there
    finally:
        process.terminate()
        await process.wait()
        await sb.stop()


async def test_the_sandbox_listens_on_the_address_it_is_given_and_advertises_it() -> None:
    sb = SandboxServer(limits=False)
    await sb.start(host=OTHER_LOOPBACK)
    try:
        assert sb.api_url == f"http://{OTHER_LOOPBACK}:{sb.port}/api/"
        async with httpx.AsyncClient() as client:
            answer = (await client.post(sb.api_url + "auth.test", headers={"Authorization": f"Bearer {sb.bot_token}"})).json()
        assert answer["ok"] is True
        assert _refused("127.0.0.1", sb.port)
    finally:
        await sb.stop()


def test_rollbot_sandbox_defaults_to_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def fake_run(args):  # type: ignore[no-untyped-def]
        seen["host"] = args.host
        return 0

    monkeypatch.setattr("bot.cli.sandbox.run_sandbox", fake_run)
    monkeypatch.delenv("ROLLBOT_HOST", raising=False)
    assert main(["sandbox"]) == 0
    assert seen["host"] == "127.0.0.1"

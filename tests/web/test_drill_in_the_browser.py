"""`rollbot sandbox --with-bot` starts a workspace and the bot together; a person opens the printed URL, types
`/rollback drill` in the composer and the drill's war room appears in the sidebar; Ctrl-C stops both cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.support.browser import browser_page

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


async def test_a_drill_typed_in_the_browser_runs_against_the_bot(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli.main", "sandbox", "--with-bot", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert process.stdout is not None
        printed = ""
        while "web client:" not in printed:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"rollbot sandbox --with-bot exited: {printed}"
            printed += line.decode()
        url = re.search(r"web client: (http://\S+)/", printed)
        assert url, printed
        async with browser_page(url.group(1), "U100TL01") as page:
            await page.fill("#composer-input", "/rollback drill")
            await page.press("#composer-input", "Enter")
            room = page.locator('#channels li[data-name^="drill-"]')
            await room.wait_for()
            await room.click()
            header = page.locator("#messages .bk-header").first
            await header.wait_for()
            assert "🧪" in await header.inner_text(), "the drill's war room, marked as a drill"
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

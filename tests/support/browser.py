"""Real headless Chromium (Debian's `chromium` package) driven by Playwright's Python API, pointed at the system
executable: no browser is downloaded. Tests skip with the reason when Chromium or Playwright is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "war-room.png"
TIMEOUT_MS = 90_000  # generous: CI is a busy 2-core machine; every wait is on a DOM condition, never a sleep


def chromium_path() -> str | None:
    for candidate in (os.environ.get("ROLLBOT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@asynccontextmanager
async def browser_page(base_url: str, user: str, viewport: tuple[int, int] = (1440, 900)) -> AsyncIterator[Any]:
    """A fresh page on the sandbox web client, acting as `user`; console errors fail the test at the end."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's chromium package (.ci/run does) or set ROLLBOT_CHROMIUM")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is missing: pip install -e '.[dev]'")
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, headless=True,
                                           args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(TIMEOUT_MS)
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{base_url}/?as={user}")
            await page.wait_for_selector("#conn.live")
            yield page
        finally:
            await browser.close()
    assert not errors, f"the page raised: {errors}"


async def screenshot(page: Any, path: Path) -> Path:
    """The war room as a person sees it; written to docs/war-room.png too when ROLLBOT_WRITE_SCREENSHOT=1."""
    png = await page.screenshot(path=str(path))
    if os.environ.get("ROLLBOT_WRITE_SCREENSHOT") == "1":
        SCREENSHOT.write_bytes(png)  # noqa: ASYNC240 (a one-off write of the PNG Chromium just made)
    return path

"""The `rollbot` command stays light: its module and `--help` load none of the heavy machinery, which each
command imports only when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("aiohttp", "slack_bolt", "slack_sdk", "bot.sandbox", "sqlalchemy", "pydantic", "asyncio")

PROBE = """
import contextlib, io, json, sys
import bot.cli.main
after_import = sorted(m for m in sys.modules)
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
    bot.cli.main.main(["--help"])
print(json.dumps({"import": after_import, "help": sorted(sys.modules), "text": out.getvalue()}))
"""


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_importing_the_cli_and_printing_help_load_no_heavy_module() -> None:
    # A fresh interpreter: this test process has long imported everything.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert "bot.cli.main" in seen["import"]
    assert _heavy(seen["import"]) == []
    assert _heavy(seen["help"]) == []
    for command in ("serve", "runbook", "db", "sandbox", "demo", "report"):  # --help still lists them all
        assert command in seen["text"]


def test_a_command_still_finds_what_it_imports_lazily() -> None:
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "runbook", "validate"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()

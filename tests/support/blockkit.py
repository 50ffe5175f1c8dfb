"""Validate Block Kit against the published JSON schema (../shared/fixtures/slack), when it is there."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "slack" / "block-kit.schema.json"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA.read_text()))


def schema_errors(blocks: list[dict[str, Any]]) -> list[str]:
    """Problems with a message's or view's block list ([] when valid); skips the test when the schema is absent."""
    if not SCHEMA.exists():
        pytest.skip(f"Block Kit schema not found at {SCHEMA}")
    return [f"{list(e.absolute_path)[:6]}: {e.message[:200]}" for e in _validator().iter_errors(blocks)]

"""Where a runbook's `prometheus` actions are answered: the action's override, its own `url`, or the setting.

Whether a gate is measured at all is this one question (the views and the runs both ask it).
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping

from bot.runbook.model import Action

PROMETHEUS_URL_ENV = "ROLLBOT_PROMETHEUS_URL"  # where `prometheus` actions query, unless the action names a url
CHECK_URL_ENV_PREFIX = "ROLLBOT_CHECK_URL_"  # ROLLBOT_CHECK_URL_TRAFFIC_HEALTH_CHECK=http://... overrides a check's URL


def prometheus_base(action: Action, env: Mapping[str, str] | None = None) -> str | None:
    """The Prometheus a `prometheus` action queries: its override, its own `url`, else ROLLBOT_PROMETHEUS_URL;
    None when nothing is configured (its gates are then a person's call)."""
    env = os.environ if env is None else env
    return env.get(CHECK_URL_ENV_PREFIX + action.id.upper()) or action.url or env.get(PROMETHEUS_URL_ENV) or None


def with_prometheus(env: Mapping[str, str] | None, url: str | None) -> Mapping[str, str]:
    """`env` (default: the process environment, read live) with the configured Prometheus (a setting) in it."""
    base = os.environ if env is None else env
    return ChainMap({PROMETHEUS_URL_ENV: url}, base) if url else base  # type: ignore[arg-type]

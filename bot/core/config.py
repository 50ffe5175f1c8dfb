"""Settings from environment variables, validated once at start-up. Secrets never appear in logs or reprs."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

REPO_ROOT = Path(__file__).resolve().parents[2]
SLACK_API_DEFAULT = "https://slack.com/api/"
HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # set: Socket Mode
    slack_api_url: str = SLACK_API_DEFAULT
    database_url: str = "sqlite:///rollbot.db"
    redis_url: str | None = None
    runbook_path: Path = REPO_ROOT / "runbooks" / "bookedbarber-v2.yml"
    roster_path: Path = REPO_ROOT / "runbooks" / "roster.example.yml"
    alert_token: SecretStr | None = None
    pagerduty_secret: SecretStr | None = None
    host: str = "127.0.0.1"  # only this machine; 0.0.0.0 where a proxy or another host must reach it (Docker)
    port: int = Field(default=3000, ge=0, le=65535)
    role_cache_seconds: float = Field(default=60, ge=0)
    tick_seconds: float = Field(default=1.0, gt=0)
    slack_rate_scale: float = Field(default=1.0, ge=0)  # 0: no client-side limiter; >1: an accelerated clock
    slack_refresh_seconds: float = Field(default=1.0, ge=0)  # at most one header re-render per message this often
    # A keyed post claimed longer ago than this by a worker that never answered is taken over (after a look-up).
    post_claim_stale_seconds: float = Field(default=30.0, gt=0)
    replica_id: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    statuspage_api_key: SecretStr | None = None
    statuspage_page_id: str | None = None
    statuspage_api_url: str = "https://api.statuspage.io/v1/"
    alertmanager_url: str | None = None  # for silences created from Slack (Alertmanager's v2 API)
    prometheus_url: str | None = None  # where `prometheus` runbook actions query
    triage_channel: str | None = None  # where alerts that open nothing are posted (channel id)

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("host")
    @classmethod
    def _bindable_host(cls, value: str) -> str:
        value = value.strip()
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
        if not HOSTNAME.fullmatch(value):
            raise ValueError("must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value or None

    def secret_values(self) -> list[str]:
        """Every configured secret, so output redaction can strip them."""
        secrets = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token, self.alert_token,
                   self.pagerduty_secret, self.statuspage_api_key]
        found = [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]
        # The passwords inside DATABASE_URL and REDIS_URL (as typed, and as they appear percent-decoded).
        for url in (self.database_url, self.redis_url):
            password = urlsplit(url).password if url else None
            if password:
                found += list(dict.fromkeys([password, unquote(password)]))
        return found


ENV_NAMES = {
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_APP_TOKEN": "slack_app_token",
    "SLACK_API_URL": "slack_api_url",
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "ROLLBOT_RUNBOOK": "runbook_path",
    "ROLLBOT_ROSTER": "roster_path",
    "ROLLBOT_ALERT_TOKEN": "alert_token",
    "ROLLBOT_PAGERDUTY_SECRET": "pagerduty_secret",
    "ROLLBOT_HOST": "host",
    "PORT": "port",
    "ROLLBOT_ROLE_CACHE_SECONDS": "role_cache_seconds",
    "ROLLBOT_TICK_SECONDS": "tick_seconds",
    "ROLLBOT_SLACK_RATE_SCALE": "slack_rate_scale",
    "ROLLBOT_SLACK_REFRESH_SECONDS": "slack_refresh_seconds",
    "ROLLBOT_POST_CLAIM_STALE_SECONDS": "post_claim_stale_seconds",
    "ROLLBOT_REPLICA_ID": "replica_id",
    "STATUSPAGE_API_KEY": "statuspage_api_key",
    "STATUSPAGE_PAGE_ID": "statuspage_page_id",
    "STATUSPAGE_API_URL": "statuspage_api_url",
    "ROLLBOT_ALERTMANAGER_URL": "alertmanager_url",
    "ROLLBOT_PROMETHEUS_URL": "prometheus_url",
    "ROLLBOT_TRIAGE_CHANNEL": "triage_channel",
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, object] = {field: env[name] for name, field in ENV_NAMES.items() if env.get(name)}
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        by_field = {field: name for name, field in ENV_NAMES.items()}
        problems = [f"{by_field.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def require_slack(settings: Settings) -> None:
    """Serving needs a bot token and a signing secret (Socket Mode needs the app token instead of a public URL)."""
    missing = [n for n, v in (("SLACK_BOT_TOKEN", settings.slack_bot_token),
                              ("SLACK_SIGNING_SECRET", settings.slack_signing_secret)) if v is None]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)} (see README: Configuration)")

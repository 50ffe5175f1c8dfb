"""Settings from environment variables, validated once at start-up. Secrets never appear in logs or reprs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
SLACK_API_DEFAULT = "https://slack.com/api/"


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
    port: int = Field(default=3000, ge=0, le=65535)
    role_cache_seconds: float = Field(default=60, ge=0)
    tick_seconds: float = Field(default=1.0, gt=0)
    slack_rate_scale: float = Field(default=1.0, ge=0)  # 0: no client-side limiter; >1: an accelerated clock
    replica_id: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    statuspage_api_key: SecretStr | None = None
    statuspage_page_id: str | None = None
    statuspage_api_url: str = "https://api.statuspage.io/v1/"

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

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
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


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
    "PORT": "port",
    "ROLLBOT_ROLE_CACHE_SECONDS": "role_cache_seconds",
    "ROLLBOT_TICK_SECONDS": "tick_seconds",
    "ROLLBOT_SLACK_RATE_SCALE": "slack_rate_scale",
    "ROLLBOT_REPLICA_ID": "replica_id",
    "STATUSPAGE_API_KEY": "statuspage_api_key",
    "STATUSPAGE_PAGE_ID": "statuspage_page_id",
    "STATUSPAGE_API_URL": "statuspage_api_url",
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

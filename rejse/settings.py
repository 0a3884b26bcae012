"""Process configuration: every value comes from `REJSE_*` environment variables or `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "dev-insecure-change-me"  # noqa: S105 - the known dev default; production refuses it


class ConfigError(Exception):
    """Bad configuration; the message is one line naming the problem."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REJSE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".rejse")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data folder"
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = Field(
        default=None, description="Base URL used in links (tracking, unsubscribe)"
    )

    temporal_address: str | None = Field(
        default=None, description="host:port of a Temporal frontend; default: the embedded one"
    )
    temporal_host: str = "127.0.0.1"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_namespace: str = "default"
    task_queue: str = "rejse"

    secret_key: str = DEFAULT_SECRET
    bootstrap_admin_key: str | None = None

    smtp_url: str | None = None
    smtp_pool_size: int = Field(
        default=8, ge=1, le=1000, description="open SMTP connections per process at most"
    )
    smtp_messages_per_connection: int = Field(
        default=100, ge=1, le=100_000, description="messages sent on one SMTP connection"
    )
    smtp_idle_timeout: float = Field(
        default=10.0, gt=0, le=3600, description="seconds an unused SMTP connection is kept"
    )
    worker_activity_slots: int = Field(
        default=512,
        ge=1,
        le=10_000,
        description="activities one worker process runs at once; its concurrent sends (async "
        "activities, no thread each) go out in batches (docs/operations.md, 'Email throughput')",
    )
    worker_activity_threads: int = Field(
        default=128,
        ge=1,
        le=1024,
        description="threads for the sync activities (database, CRM, HTTP) among those slots",
    )
    email_from: str = "rejse <no-reply@rejse.local>"
    templates_dir: Path = REPO_ROOT / "templates"
    # messaging guards and channels (docs/messaging.md)
    message_frequency_cap: int = Field(
        default=3, ge=0, description="marketing messages per window; 0 = no cap"
    )
    message_frequency_window: str = "P7D"
    message_quiet_hours: dict[str, str] = Field(
        default_factory=lambda: {"email": "21:00-08:00", "sms": "21:00-08:00"},
        description="channel -> 'HH:MM-HH:MM' in the profile's time zone (JSON in the env var)",
    )
    message_default_timezone: str = "Europe/Copenhagen"
    message_require_opt_in: bool = Field(
        default=False,
        description="marketing needs an explicit 'granted' consent (else: not denied/revoked)",
    )
    sms_api_url: str | None = Field(
        default=None, description="Twilio-compatible base URL; unset: SMS outbox"
    )
    sms_account_sid: str | None = None
    sms_auth_token: str | None = None
    sms_from: str | None = None
    message_webhook_url: str | None = Field(
        default=None, description="target of the webhook channel"
    )
    # template limits: every render (save-time trial, preview, send) runs under them
    # (rejse.messaging.sandbox.TemplateLimits; docs/operations.md)
    template_max_subject_bytes: int = Field(
        default=2_048, ge=256, description="rendered subject, UTF-8 bytes"
    )
    template_max_html_bytes: int = Field(
        default=512 * 1024, ge=4_096, description="rendered HTML part, UTF-8 bytes"
    )
    template_max_text_bytes: int = Field(
        default=256 * 1024,
        ge=1_024,
        description="rendered text part (email text, SMS, in-app, webhook body), UTF-8 bytes",
    )
    template_max_steps: int = Field(
        default=1_000_000,
        ge=10_000,
        description="work per message: loop iterations, calls, filters, output chunks",
    )
    template_max_seconds: float = Field(
        default=5.0, gt=0, le=60, description="CPU seconds per message render"
    )
    template_max_range: int = Field(default=10_000, ge=100, description="items in a range()")
    template_max_depth: int = Field(default=32, ge=2, le=200, description="macro call nesting")
    # journey webhook steps (docs/journeys.md): private and loopback targets are refused
    webhook_allow_private: bool = Field(
        default=False,
        description="let journey webhook steps call loopback, private and link-local addresses",
    )

    # entries of many profiles at once (a schedule fire, an audience entered by hand)
    journey_entry_rate: float = Field(
        default=100.0,
        gt=0,
        le=10_000,
        description="journey runs started per second by a schedule fire or an audience entry",
    )

    # the web console (/console, docs/console.md)
    console_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=7 * 24 * 60,
        description="a console session without a request for this many minutes ends",
    )

    # per-key rate limits (rejse.ratelimits; docs/operations.md, "Rate limits"): `<n>/<unit>`
    # as the `limits` package reads it ("2000/second", "100/minute"), or "off"
    rate_limit_ingest: str = Field(
        default="2000/second",
        description="requests per API key on /v1, and per source on /webhooks",
    )
    rate_limit_control: str = Field(
        default="100/second", description="requests per API key on the control plane (/api)"
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0: the rate limits' shared store (else PostgreSQL, "
        "else process memory)",
    )
    redis_key_prefix: str = Field(default="rejse", min_length=1, max_length=100)
    # observability (docs/operations.md, "Metrics and dashboards")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="rejse worker/processor/scheduler serve their Prometheus metrics here "
        "(the API serves them at /metrics)",
    )
    metrics_host: str = "127.0.0.1"
    temporal_metrics_address: str | None = Field(
        default=None,
        description="host:port where the Temporal SDK serves its own Prometheus metrics "
        "(workers, client calls); unset: not exported",
    )

    @field_validator("rate_limit_ingest", "rate_limit_control")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        if value.strip().lower() == "off":
            return "off"
        from limits import parse

        try:
            item = parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate such as '2000/second' or '100/minute' (or 'off')"
            ) from None
        if item.amount < 1:
            raise ValueError("the rate must allow at least one request (or be 'off')")
        return value

    @field_validator("message_frequency_window")
    @classmethod
    def _window_is_a_duration(cls, value: str) -> str:
        from rejse.durations import parse_duration

        parse_duration(value)
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError(
                "must look like smtp://user:pass@host:587?starttls=true or smtps://host:465"
            )
        return value

    @field_validator("message_quiet_hours")
    @classmethod
    def _quiet_hours_parse(cls, value: dict[str, str]) -> dict[str, str]:
        from rejse.quiet_hours import QuietHours

        for text in value.values():
            QuietHours.parse(text)
        return value

    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None, description="JSON log lines; default: JSON unless stderr is a terminal"
    )

    @field_validator(
        "database_url",
        "public_url",
        "temporal_address",
        "bootstrap_admin_key",
        "smtp_url",
        "redis_url",
        "metrics_port",
        "temporal_metrics_address",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`REJSE_SMTP_URL=` (as docker-compose passes an unset variable) means "not set"."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
                raise ValueError(
                    "REJSE_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production"
                )
            if self.database_url is None:
                raise ValueError("REJSE_DATABASE_URL must be set in production")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rejse.db').resolve()}"

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"{self.temporal_host}:{self.temporal_port}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one-line `ConfigError`s."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        where = f"REJSE_{field.upper()}: " if field else ""
        raise ConfigError(f"configuration: {where}{msg}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()

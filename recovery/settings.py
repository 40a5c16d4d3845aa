"""Service configuration: one YAML file plus ``RECOVERY_*`` environment overrides (``__`` between levels).

Built once at start-up and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from recovery.durations import Duration
from recovery.errors import ConfigError
from recovery.guards import QuietHoursPolicy

DEFAULT_CONFIG_PATH = Path("config/recovery.yaml")
TWILIO_API_BASE_URL = "https://api.twilio.com"

InputFormat = Literal["native", "cloudevents", "segment", "shopify", "stripe"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSettings(_Section):
    name: str
    format: InputFormat = "native"


class TopicsSettings(_Section):
    cart: TopicSettings = TopicSettings(name="cart-events")
    payment: TopicSettings = TopicSettings(name="payment-events")
    order: TopicSettings = TopicSettings(name="order-events")
    consent: TopicSettings = TopicSettings(name="consent-events")
    dead_letter: TopicSettings = TopicSettings(name="recovery.dead-letter")
    callback_tasks: TopicSettings = TopicSettings(name="recovery.callback-tasks")
    messages: TopicSettings = TopicSettings(name="recovery.messages")

    def inputs(self) -> list[TopicSettings]:
        """The four input topics, in a stable order."""
        return [self.cart, self.payment, self.order, self.consent]


class KafkaSettings(_Section):
    bootstrap_servers: str = "embedded"
    group_id: str = "cart-recovery"
    topics: TopicsSettings = TopicsSettings()
    partitions: int = Field(default=4, ge=1, description="partitions for topics the service creates")
    batch_size: int = Field(default=2000, ge=1, le=50_000)

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers.strip() == "embedded"


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///var/recovery.db"


class AbandonmentSettings(_Section):
    idle_after: Duration = timedelta(minutes=30)


class EmailSettings(_Section):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    sender: str = "shop@example.com"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: Duration = timedelta(seconds=10)


class SmsSettings(_Section):
    account_sid: str = "AC00000000000000000000000000000000"
    auth_token: str = ""
    sender: str = ""
    api_base_url: str = TWILIO_API_BASE_URL
    max_segments: int = Field(default=3, ge=1, description="warn above this many segments")
    timeout: Duration = timedelta(seconds=10)


class RetrySettings(_Section):
    """Transient provider failures: a few quick in-process tries, then durable retries with backoff."""

    in_process_attempts: int = Field(default=3, ge=1, le=10)
    base_delay: Duration = timedelta(seconds=30)
    max_delay: Duration = timedelta(hours=1)
    max_attempts: int = Field(default=8, ge=1, description="durable attempts before the message fails")
    max_age: Duration = timedelta(hours=24)


class ChannelsSettings(_Section):
    # ``outbox`` writes every message to local JSONL files (var/outbox); ``providers`` sends email over
    # SMTP and SMS through Twilio (callbacks stay in the outbox until agent tasks exist).
    transport: Literal["outbox", "providers"] = "outbox"
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    outbox_dir: Path = Path("var/outbox")
    retry: RetrySettings = RetrySettings()


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"


class SecuritySettings(_Section):
    link_secret: str | None = None
    link_hosts: list[str] | None = None
    api_tokens: dict[str, Literal["agent", "marketer", "admin"]] = {}


class WebhookSecret(_Section):
    secret: str | None = None


class IngestSettings(_Section):
    max_event_bytes: int = Field(default=1_000_000, ge=1024, description="larger events are dead-lettered")
    shopify: WebhookSecret = WebhookSecret()
    stripe: WebhookSecret = WebhookSecret()


class GuardsSettings(_Section):
    holdout_percent: float = Field(default=0, ge=0, le=100)
    holdout_salt: str = "cart-recovery-holdout"
    frequency_cap: int = Field(default=2, ge=0)
    frequency_window: Duration = timedelta(hours=24)
    quiet_hours: QuietHoursPolicy = QuietHoursPolicy()
    stores: dict[str, QuietHoursPolicy] = {}


class OffersSettings(_Section):
    """Discount codes: where to register them in the shop before a message carries one (optional)."""

    register_url: str | None = None
    timeout: Duration = timedelta(seconds=10)


class AttributionSettings(_Section):
    """How an order is credited to a message (see README "Attribution")."""

    model: Literal["last_click", "last_send"] = "last_click"
    click_window: Duration = timedelta(days=5)
    send_window: Duration = timedelta(hours=24)


class SchedulerSettings(_Section):
    poll_interval: Duration = timedelta(milliseconds=200)
    claim_batch: int = Field(default=100, ge=1)
    lease: Duration = timedelta(minutes=2)
    heartbeat_interval: Duration = timedelta(seconds=1)
    # Claims of a worker silent for this long are taken over (its `sending` messages are reconciled first).
    dead_after: Duration = timedelta(seconds=5)


class Settings(BaseSettings):
    """Every key of the service contract; see README "Configuration"."""

    model_config = SettingsConfigDict(
        env_prefix="RECOVERY_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    abandonment: AbandonmentSettings = AbandonmentSettings()
    flows_file: Path = Path("config/flows.yaml")
    templates_dir: Path = Path("templates")
    channels: ChannelsSettings = ChannelsSettings()
    http: HttpSettings = HttpSettings()
    security: SecuritySettings = SecuritySettings()
    ingest: IngestSettings = IngestSettings()
    guards: GuardsSettings = GuardsSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    attribution: AttributionSettings = AttributionSettings()
    offers: OffersSettings = OffersSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file; the file path comes from ``model_config["yaml_file"]``.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def config_path(explicit: Path | None) -> Path | None:
    """The config file to read: ``--config``, else ``RECOVERY_CONFIG``, else the default if it exists."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("RECOVERY_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the configuration; raise ``ConfigError`` naming the bad key."""
    chosen = config_path(path)
    if chosen is not None:
        if not chosen.exists():
            raise ConfigError(f"config file {chosen} does not exist")
        try:
            yaml.safe_load(chosen.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{chosen}: not valid YAML: {exc}") from exc
    # A subclass per load carries the chosen file, so no global state holds it.
    from_file = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "yaml_file": chosen}})
    try:
        return from_file(**overrides)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source=str(chosen or "environment"))) from exc
    except SettingsError as exc:
        # e.g. malformed JSON in RECOVERY_SECURITY__API_TOKENS: pydantic-settings names the field
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"invalid configuration: {exc}{cause}") from exc


def describe_validation_error(exc: ValidationError, *, source: str) -> str:
    """One line per bad key: ``abandonment.idle_after: '30x' is not a duration ...``."""
    lines = [f"invalid configuration ({source}):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env = "RECOVERY_" + "__".join(str(part).upper() for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {key} (env {env}): {message}")
    return "\n".join(lines)

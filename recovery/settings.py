"""Service configuration: one YAML file plus ``RECOVERY_*`` environment overrides (``__`` between levels).

Built once at start-up and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from recovery.calendar import DEFAULT_HOURS, CallingHours, QuietHoursPolicy, known_country, parse_hours
from recovery.durations import Duration
from recovery.errors import ConfigError
from recovery.render.bounds import RenderLimits

DEFAULT_CONFIG_PATH = Path("config/recovery.yaml")
ENV_PREFIX = "RECOVERY_"


def env_var(key: str) -> str:
    """The environment variable that sets ``key`` (``channels.sms.sender`` → ``RECOVERY_CHANNELS__SMS__SENDER``)."""
    return ENV_PREFIX + "__".join(part.upper() for part in key.split("."))


TWILIO_API_BASE_URL = "https://api.twilio.com"

InputFormat = Literal["native", "cloudevents", "segment", "shopify", "stripe", "woocommerce"]


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

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, data: Any) -> Any:
        # ``RECOVERY_KAFKA__TOPICS__CART__FORMAT`` alone must keep the default name, not demand one.
        if isinstance(data, dict):
            data = dict(data)
            for role, field in cls.model_fields.items():
                given = data.get(role)
                if isinstance(given, dict) and "name" not in given and isinstance(field.default, TopicSettings):
                    data[role] = {"name": field.default.name, **given}
        return data

    def inputs(self) -> list[TopicSettings]:
        """The four input topics, in a stable order."""
        return [self.cart, self.payment, self.order, self.consent]


class KafkaSecuritySettings(_Section):
    """TLS and SASL for every Kafka client (see recovery/ingest/security.py); the password is never shown."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None  # none: the system's CAs
    cert_file: Path | None = None  # client certificate (mTLS), with key_file unless the key is in it
    key_file: Path | None = None

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> KafkaSecuritySettings:
        if self.protocol.startswith("SASL_") and (not self.username or not self.password):
            raise ValueError(f"protocol {self.protocol} needs username and password (kafka.security.*)")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file is set without cert_file")
        return self


class KafkaSettings(_Section):
    bootstrap_servers: str = "embedded"
    group_id: str = "cart-recovery"
    topics: TopicsSettings = TopicsSettings()
    partitions: int = Field(default=4, ge=1, description="partitions for topics the service creates")
    # -1: the broker's default.replication.factor (MSK and Strimzi: 3 with min.insync.replicas 2)
    replication_factor: int = Field(default=-1, ge=-1, le=32)
    security: KafkaSecuritySettings = KafkaSecuritySettings()

    @field_validator("replication_factor")
    @classmethod
    def _replicas(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 replicas: use -1 for the broker's default, or 1 and more")
        return value

    batch_size: int = Field(default=2000, ge=1, le=50_000)

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers.strip() == "embedded"


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///var/recovery.db"
    # PostgreSQL pool per process (unset: sized from channels.concurrency); every replica's pool counts
    # against max_connections (100 by default): the Helm chart sets these per role within that budget.
    pool_size: int | None = Field(default=None, ge=1, le=100)
    max_overflow: int | None = Field(default=None, ge=0, le=100)


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
    # Sends per second handed to SMTP (none: unlimited); a relay with a quota gets a steady pace, not errors.
    max_per_second: float | None = Field(default=None, gt=0)


class SmsSettings(_Section):
    account_sid: str = ""
    auth_token: str = ""
    sender: str = ""
    api_base_url: str = TWILIO_API_BASE_URL
    max_segments: int = Field(default=3, ge=1, description="warn above this many segments")
    timeout: Duration = timedelta(seconds=10)
    # Twilio's messages-per-second for the sender (about 1 per long code, more for short codes and toll-free
    # numbers); none: unlimited. Callback offers, texted through the same sender, share this pace.
    max_per_second: float | None = Field(default=None, gt=0)


class RetrySettings(_Section):
    """Transient provider failures: a few quick in-process tries, then durable retries with backoff."""

    in_process_attempts: int = Field(default=3, ge=1, le=10)
    base_delay: Duration = timedelta(seconds=30)
    max_delay: Duration = timedelta(hours=1)
    max_attempts: int = Field(default=8, ge=1, description="durable attempts before the message fails")
    max_age: Duration = timedelta(hours=24)


class ChannelsSettings(_Section):
    # ``providers`` (the default) sends email over SMTP and SMS through Twilio; ``outbox`` is an explicit
    # dry run that writes every message to local JSONL files (var/outbox) and sends nothing.
    transport: Literal["outbox", "providers"] = "providers"
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    outbox_dir: Path = Path("var/outbox")
    retry: RetrySettings = RetrySettings()
    # Due steps fired at once per scheduler (each waits mostly on its provider); also sizes the database pool.
    concurrency: int = Field(default=64, ge=1, le=1024)


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # A client slower than this to send its request (head or body) is cut (issue 19).
    read_timeout: Duration = timedelta(seconds=30)


Role = Literal["agent", "marketer", "platform", "admin"]


class ApiToken(_Section):
    """Who holds a token: the role, and the person's name shown in claims and version history."""

    role: Role
    name: str | None = None


def _token_entry(value: object) -> object:
    """Accept the short form ``token: role`` as well as ``token: {role, name}``."""
    return {"role": value} if isinstance(value, str) else value


class SecuritySettings(_Section):
    link_secret: str | None = None
    # Rotation: links signed with the previous secret keep working until this time (none: until removed).
    previous_link_secret: str | None = None
    previous_link_secret_until: AwareDatetime | None = None
    link_hosts: list[str] | None = None
    # token -> ApiToken; the short form ``token: agent`` is normalised by ``_token_entry``
    api_tokens: dict[str, Annotated[ApiToken, BeforeValidator(_token_entry)]] = {}

    def required_link_secret(self) -> str:
        """``link_secret``, or a ``ConfigError`` saying how to set it: links are signed and verified with it."""
        if not self.link_secret:
            raise ConfigError(
                "security.link_secret is not set (env RECOVERY_SECURITY__LINK_SECRET): it signs and verifies "
                "tracked and unsubscribe links; set a long random value (the same on every process)"
            )
        return self.link_secret


class WebhookSecret(_Section):
    secret: str | None = None


class StripeWebhook(WebhookSecret):
    tolerance: Duration = timedelta(seconds=300)  # a signed timestamp further from now is refused (400)


class IngestSettings(_Section):
    max_event_bytes: int = Field(default=1_000_000, ge=1024, description="larger events are dead-lettered")
    shopify: WebhookSecret = WebhookSecret()
    stripe: StripeWebhook = StripeWebhook()
    woocommerce: WebhookSecret = WebhookSecret()


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
    # Signs each registration (HMAC-SHA256): its own secret, shared with the shop; never the link secret,
    # from which the link, session and address keys are derived.
    register_secret: str | None = None
    timeout: Duration = timedelta(seconds=10)


class AttributionSettings(_Section):
    """How an order is credited to a message (see README "Attribution")."""

    model: Literal["last_click", "last_send"] = "last_click"
    click_window: Duration = timedelta(days=5)
    send_window: Duration = timedelta(hours=24)


class CallbacksSettings(_Section):
    """The agents' desk: calling hours, claims, SLA and the optional helpdesk webhook."""

    hours: dict[str, str] = dict(DEFAULT_HOURS)
    claim_for: Duration = timedelta(minutes=15)
    sla: Duration = timedelta(minutes=15)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_attempts: int = Field(default=8, ge=1, description="tries before a task's webhook is given up")
    # Retries and capacity (issue 22): a no_answer reopens after retry_after, until max_attempts completions;
    # per_hour caps the calls due in one clock hour (unset: no limit).
    retry_after: Duration = timedelta(hours=2)
    max_attempts: int = Field(default=3, ge=1)
    per_hour: int | None = Field(default=None, ge=1)

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        parse_hours(value)  # raises ValueError naming the bad entry
        return value

    def calling_hours(self) -> CallingHours:
        """The parsed calling hours."""
        return parse_hours(self.hours)


class RetentionSettings(_Section):
    """``recovery purge`` deletes carts (with their journeys and messages) older than this; none: keep."""

    days: int | None = Field(default=None, ge=1)


class SchedulerSettings(_Section):
    poll_interval: Duration = timedelta(milliseconds=200)
    claim_batch: int = Field(default=100, ge=1)
    lease: Duration = timedelta(minutes=2)
    heartbeat_interval: Duration = timedelta(seconds=1)
    # Claims of a worker silent for this long are taken over (its `sending` messages are reconciled first).
    dead_after: Duration = timedelta(seconds=5)


class RenderSettings(_Section):
    """Bounds of every message render (previews, save checks, sends): see docs/security.md."""

    deadline: Duration = Field(default=timedelta(seconds=2), description="one render stops past this")
    check_deadline: Duration = Field(default=timedelta(seconds=10), description="a save's full check")
    max_value: int = Field(default=100_000, ge=1_000, description="characters of any one value a template builds")
    max_output: int = Field(default=1_000_000, ge=10_000, description="characters one render writes")

    def limits(self) -> RenderLimits:
        """The sandbox's bounds from these settings."""
        return RenderLimits(
            deadline=self.deadline.total_seconds(),
            check_deadline=self.check_deadline.total_seconds(),
            max_value=self.max_value,
            max_output=self.max_output,
        )


class LoggingSettings(_Section):
    """``format``: text or json; unset means JSON unless stderr is a terminal."""

    format: Literal["text", "json"] | None = None


# --- stores: each shop front's identity, language, calendar and offers (contract stores.md) ---------------
# Every key is optional here: a listed store's absent key falls back to ``stores.default``, then to
# ``channels.*`` (``recovery.stores.resolve_store``); a present key replaces the default's whole value.

PaymentMethod = Literal["card", "paypal", "installments", "apple_pay", "google_pay", "bank_transfer"]


def _blank_is_unset(value: object) -> object:
    """An empty string (a Helm value left "", an empty variable) means "not set": the fallback applies."""
    return None if isinstance(value, str) and not value.strip() else value


class _StoreSection(_Section):
    @field_validator("*", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_is_unset(value)


class StoreEmailSettings(_StoreSection):
    """The store's email sender (its address is used, with the store's name as display name) and Reply-To."""

    sender: str | None = None
    reply_to: str | None = None


class StoreSmsSettings(_StoreSection):
    """The store's SMS sender (E.164 number, Messaging Service SID, or an alphanumeric id) and opt-out text."""

    sender: str | None = None
    stop_text: str | None = None


class StoreSettings(_StoreSection):
    """One shop front, as ``stores.<id>``; see the contract for each key."""

    name: str | None = None
    address: str | None = None
    locale: str | None = None
    timezone: str | None = None
    country: str | None = None
    closed_days: list[date] | None = None
    email: StoreEmailSettings = StoreEmailSettings()
    sms: StoreSmsSettings = StoreSmsSettings()
    terms_url: str | None = None
    support_phone: str | None = None
    payment_methods: list[PaymentMethod] | None = None
    free_shipping_threshold: Decimal | None = Field(default=None, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            QuietHoursPolicy(timezone=value)  # the one IANA check, with its message
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None and not known_country(value):
            raise ValueError(f"{value!r} is not a country the holidays package knows: write e.g. FR, BE, DE")
        return value.upper() if value else value


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
    logging: LoggingSettings = LoggingSettings()
    callbacks: CallbacksSettings = CallbacksSettings()
    retention: RetentionSettings = RetentionSettings()
    stores: dict[str, StoreSettings] = {}
    render: RenderSettings = RenderSettings()

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
        return (init_settings, env_settings, _YamlUnderEnv(settings_cls))


class _YamlUnderEnv(YamlConfigSettingsSource):
    """The YAML file, minus every key an environment variable sets to a whole JSON object or list.

    pydantic-settings deep-merges sources, so ``RECOVERY_SECURITY__API_TOKENS='{"a": "agent"}'`` would be
    added to the file's tokens instead of replacing them (a token revoked in the environment would live on).
    """

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        for name, value in os.environ.items():
            if name.upper().startswith(ENV_PREFIX) and value.lstrip()[:1] in ("{", "["):
                _drop(data, name[len(ENV_PREFIX) :].lower().split("__"))
        return data


def _drop(data: dict[str, Any], path: list[str]) -> None:
    """Remove ``path`` from nested dicts, if present."""
    for part in path[:-1]:
        data = data.get(part)  # type: ignore[assignment]
        if not isinstance(data, dict):
            return
    data.pop(path[-1], None)


def _json_variable_in_error() -> str | None:
    """The ``RECOVERY_*`` variable of a dict/list key whose value is not JSON (pydantic-settings names only
    the top-level section)."""
    for name, value in sorted(os.environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        if not _is_json_key(name[len(ENV_PREFIX) :].lower().split("__")):
            continue
        try:
            json.loads(value)
        except ValueError:
            return name
    return None


def _is_json_key(path: list[str]) -> bool:
    """Whether ``path`` names a dict or list setting (one given as JSON in the environment)."""
    model: type[BaseModel] = Settings
    for index, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return index == len(path) - 1 and get_origin(annotation) in (dict, list)
    return False


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
        variable = _json_variable_in_error()
        where = f"{variable} is not valid JSON ({exc}{cause})" if variable else f"{exc}{cause}"
        raise ConfigError(f"invalid configuration: {where}") from exc


def describe_validation_error(exc: ValidationError, *, source: str) -> str:
    """One line per bad key: ``abandonment.idle_after: '30x' is not a duration ...``."""
    lines = [f"invalid configuration ({source}):"]
    for error in exc.errors():
        loc = _masked(error["loc"])
        key = ".".join(loc)
        env = ENV_PREFIX + "__".join(part.upper() for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {key} (env {env}): {message}")
    return "\n".join(lines)


def _masked(loc: tuple[int | str, ...]) -> list[str]:
    """The error's key path, with an API token (a key of ``security.api_tokens``) never shown."""
    parts = [str(part) for part in loc]
    if parts[:2] == ["security", "api_tokens"] and len(parts) > 2:
        parts[2] = "<token>"
    return parts

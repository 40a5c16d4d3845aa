"""The root ``Settings``: one YAML file under ``RECOVERY_*`` environment overrides, loaded once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from recovery.errors import ConfigError
from recovery.settings.access import HttpSettings, IngestSettings, SecuritySettings
from recovery.settings.base import ENV_PREFIX, env_var
from recovery.settings.channels import ChannelsSettings
from recovery.settings.journeys import (
    AbandonmentSettings,
    AttributionSettings,
    CallbacksSettings,
    GuardsSettings,
    OffersSettings,
)
from recovery.settings.kafka import KafkaSettings
from recovery.settings.runtime import (
    DatabaseSettings,
    LoggingSettings,
    RenderSettings,
    RetentionSettings,
    SchedulerSettings,
)
from recovery.settings.stores import StoreSettings

DEFAULT_CONFIG_PATH = Path("config/recovery.yaml")


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
        env = env_var(key)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {key} (env {env}): {message}")
    return "\n".join(lines)


def _masked(loc: tuple[int | str, ...]) -> list[str]:
    """The error's key path, with an API token (a key of ``security.api_tokens``) never shown."""
    parts = [str(part) for part in loc]
    if parts[:2] == ["security", "api_tokens"] and len(parts) > 2:
        parts[2] = "<token>"
    return parts

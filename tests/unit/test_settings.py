"""Configuration: the README's defaults, a YAML file, RECOVERY_* overrides and errors that name the key."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recovery.errors import ConfigError
from recovery.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RECOVERY_* variable from the developer's shell, and a cwd without config/recovery.yaml."""
    for name in list(os.environ):
        if name.startswith("RECOVERY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_file(tmp_path: Path, text: str, name: str = "recovery.yaml") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def value_at(settings: Settings, key: str) -> Any:
    """The value of a dotted key."""
    node: Any = settings
    for part in key.split("."):
        node = getattr(node, part)
    return node


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("kafka.bootstrap_servers", "embedded"),
        ("kafka.group_id", "cart-recovery"),
        ("database.url", "sqlite+aiosqlite:///var/recovery.db"),
        ("abandonment.idle_after", timedelta(minutes=30)),
        ("flows_file", Path("config/flows.yaml")),
        ("templates_dir", Path("templates")),
        ("channels.email.smtp_host", "127.0.0.1"),
        ("channels.email.smtp_port", 1025),
        ("channels.sms.api_base_url", "https://api.twilio.com"),
        ("http.host", "127.0.0.1"),
        ("http.port", 8080),
        ("http.public_url", "http://127.0.0.1:8080"),
        ("security.link_secret", None),
        ("security.link_hosts", None),
        ("security.api_tokens", {}),
        ("ingest.shopify.secret", None),
        ("ingest.stripe.secret", None),
        ("guards.holdout_percent", 0),
        ("kafka.topics.cart.name", "cart-events"),
        ("kafka.topics.payment.name", "payment-events"),
        ("kafka.topics.order.name", "order-events"),
        ("kafka.topics.consent.name", "consent-events"),
        ("kafka.topics.dead_letter.name", "recovery.dead-letter"),
        ("kafka.topics.callback_tasks.name", "recovery.callback-tasks"),
        ("kafka.topics.messages.name", "recovery.messages"),
        ("kafka.topics.cart.format", "native"),
    ],
)
def test_defaults_match_the_service_contract(key: str, default: Any) -> None:
    """Without a file or environment, every key has the default of the README's "Configuration" table."""
    assert value_at(load_settings(None), key) == default


def test_defaults_mean_the_embedded_broker() -> None:
    """The default bootstrap servers start the bundled broker."""
    assert load_settings(None).kafka.embedded is True


def test_values_from_the_yaml_file_are_loaded(tmp_path: Path) -> None:
    """Keys in the file replace the defaults; keys it leaves out keep them."""
    path = config_file(
        tmp_path,
        """\
kafka:
  bootstrap_servers: broker-1:9092,broker-2:9092
  topics:
    payment: {name: shop.payments, format: stripe}
database:
  url: postgresql+asyncpg://app@db/recovery
abandonment:
  idle_after: 45m
http:
  port: 9000
guards:
  holdout_percent: 10
""",
    )
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.kafka.embedded is False
    assert (settings.kafka.topics.payment.name, settings.kafka.topics.payment.format) == (
        "shop.payments",
        "stripe",
    )
    assert settings.kafka.topics.cart.name == "cart-events"
    assert settings.database.url == "postgresql+asyncpg://app@db/recovery"
    assert settings.abandonment.idle_after == timedelta(minutes=45)
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 9000)
    assert settings.guards.holdout_percent == 10


def test_the_default_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    """``load_settings(None)`` reads ``config/recovery.yaml`` when it exists."""
    (tmp_path / "config").mkdir()
    config_file(tmp_path / "config", "kafka:\n  group_id: from-default-file\n")
    assert load_settings(None).kafka.group_id == "from-default-file"


def test_recovery_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``RECOVERY_CONFIG`` chooses the file when no path is given."""
    path = config_file(tmp_path, "kafka:\n  group_id: from-env-file\n", name="elsewhere.yaml")
    monkeypatch.setenv("RECOVERY_CONFIG", str(path))
    assert load_settings(None).kafka.group_id == "from-env-file"


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [
        ("RECOVERY_ABANDONMENT__IDLE_AFTER", "2h", "abandonment.idle_after", timedelta(hours=2)),
        ("RECOVERY_KAFKA__TOPICS__CART__NAME", "shop.carts", "kafka.topics.cart.name", "shop.carts"),
        ("RECOVERY_KAFKA__TOPICS__CART__FORMAT", "segment", "kafka.topics.cart.format", "segment"),
        ("RECOVERY_KAFKA__GROUP_ID", "replica-set", "kafka.group_id", "replica-set"),
        (
            "RECOVERY_DATABASE__URL",
            "postgresql+asyncpg://x@y/z",
            "database.url",
            "postgresql+asyncpg://x@y/z",
        ),
        ("RECOVERY_HTTP__PORT", "9090", "http.port", 9090),
        ("RECOVERY_SECURITY__LINK_SECRET", "s3cret", "security.link_secret", "s3cret"),
        (
            "RECOVERY_SECURITY__LINK_HOSTS",
            '["shop.example.com"]',
            "security.link_hosts",
            ["shop.example.com"],
        ),
        ("RECOVERY_GUARDS__HOLDOUT_PERCENT", "12.5", "guards.holdout_percent", 12.5),
        ("RECOVERY_FLOWS_FILE", "/etc/recovery/flows.yaml", "flows_file", Path("/etc/recovery/flows.yaml")),
    ],
)
def test_environment_overrides_win_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str, expected: Any
) -> None:
    """A RECOVERY_* variable (``__`` between levels) beats the same key in the YAML file."""
    path = config_file(
        tmp_path,
        """\
kafka:
  group_id: from-file
  topics:
    cart: {name: file-carts}
abandonment: {idle_after: 10m}
http: {port: 8000}
security: {api_tokens: {tok-file: admin}}
""",
    )
    monkeypatch.setenv(variable, value)
    assert value_at(load_settings(path), key) == expected


def test_api_tokens_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """RECOVERY_SECURITY__API_TOKENS holds a JSON object of token to role."""
    monkeypatch.setenv("RECOVERY_SECURITY__API_TOKENS", '{"tok-a": "agent", "tok-m": "marketer"}')
    tokens = load_settings(None).security.api_tokens
    assert {token: entry.role for token, entry in tokens.items()} == {"tok-a": "agent", "tok-m": "marketer"}


def test_an_api_token_may_name_the_person_who_holds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """token -> {"role", "name"} keeps the name; the short form token -> role has none."""
    monkeypatch.setenv("RECOVERY_SECURITY__API_TOKENS", '{"t1": {"role": "agent", "name": "Inès"}, "t2": "admin"}')
    tokens = load_settings(None).security.api_tokens
    assert (tokens["t1"].role, tokens["t1"].name) == ("agent", "Inès")
    assert (tokens["t2"].role, tokens["t2"].name) == ("admin", None)


def test_api_tokens_from_the_environment_replace_those_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The env variable wins for the whole key: a token only in the file is no longer accepted."""
    path = config_file(tmp_path, "security:\n  api_tokens: {tok-file: admin}\n")
    monkeypatch.setenv("RECOVERY_SECURITY__API_TOKENS", '{"tok-a": "agent"}')
    assert set(load_settings(path).security.api_tokens) == {"tok-a"}


def test_an_environment_override_keeps_the_rest_of_the_files_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overriding one nested key does not reset its siblings from the file."""
    path = config_file(tmp_path, "kafka:\n  group_id: from-file\n  topics:\n    payment: {name: file-payments}\n")
    monkeypatch.setenv("RECOVERY_KAFKA__TOPICS__CART__NAME", "env-carts")
    settings = load_settings(path)
    assert settings.kafka.topics.cart.name == "env-carts"
    assert settings.kafka.topics.payment.name == "file-payments"
    assert settings.kafka.group_id == "from-file"


@pytest.mark.parametrize(
    ("file_text", "environment"),
    [
        pytest.param("abandonment:\n  idle_after: 30x\n", {}, id="in the file"),
        pytest.param("", {"RECOVERY_ABANDONMENT__IDLE_AFTER": "30x"}, id="in the environment"),
    ],
)
def test_a_bad_duration_names_the_key_and_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_text: str, environment: dict[str, str]
) -> None:
    """A bad idle_after stops start-up with a ConfigError naming the key, its env variable and the value."""
    path = config_file(tmp_path, file_text)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "abandonment.idle_after" in message
    assert "RECOVERY_ABANDONMENT__IDLE_AFTER" in message
    assert "'30x' is not a duration" in message


@pytest.mark.parametrize(
    ("file_text", "key", "fragment"),
    [
        ("kafka:\n  bogus: 1\n", "kafka.bogus (env RECOVERY_KAFKA__BOGUS)", "Extra inputs are not permitted"),
        ("bogus: 1\n", "bogus (env RECOVERY_BOGUS)", "Extra inputs are not permitted"),
        ("http:\n  port: 70000\n", "http.port (env RECOVERY_HTTP__PORT)", "less than or equal to 65535"),
        ("guards:\n  holdout_percent: 150\n", "guards.holdout_percent", "less than or equal to 100"),
        ("kafka:\n  topics:\n    cart: {name: c, format: xml}\n", "kafka.topics.cart.format", "'native'"),
        ("security:\n  api_tokens: {t: root}\n", "security.api_tokens.<token>", "'platform' or 'admin'"),
    ],
)
def test_invalid_keys_are_refused_by_name(tmp_path: Path, file_text: str, key: str, fragment: str) -> None:
    """An unknown key or a bad value is a ConfigError naming the key and what is wrong."""
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file(tmp_path, file_text))
    message = str(caught.value)
    assert key in message
    assert fragment in message


def test_an_unknown_environment_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt nested RECOVERY_* variable is refused, not silently ignored."""
    monkeypatch.setenv("RECOVERY_KAFKA__GROUPID", "typo")
    with pytest.raises(ConfigError, match=r"kafka\.groupid \(env RECOVERY_KAFKA__GROUPID\)"):
        load_settings(config_file(tmp_path, ""))


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """An explicit path that does not exist says so, with the path."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"config file {missing} does not exist"):
        load_settings(missing)


def test_a_missing_file_named_by_recovery_config_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RECOVERY_CONFIG`` pointing nowhere is an error, not a silent fall back to defaults."""
    monkeypatch.setenv("RECOVERY_CONFIG", "missing/recovery.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(None)


def test_a_file_that_is_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    """Broken YAML is a ConfigError naming the file."""
    path = config_file(tmp_path, "kafka: [\n")
    with pytest.raises(ConfigError, match=r"recovery\.yaml: not valid YAML"):
        load_settings(path)


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    """A file with only comments leaves every default in place."""
    settings = load_settings(config_file(tmp_path, "# nothing to change\n"))
    assert settings.model_dump() == load_settings(None).model_dump()


def test_settings_are_frozen() -> None:
    """Settings are built once and passed down: nobody can change them afterwards."""
    settings = load_settings(None)
    with pytest.raises(ValueError, match="frozen"):
        settings.http.port = 1  # type: ignore[misc]


def test_malformed_json_in_an_environment_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """RECOVERY_SECURITY__API_TOKENS that is not JSON stops start-up with a ConfigError, not a traceback."""
    monkeypatch.setenv("RECOVERY_SECURITY__API_TOKENS", "tok-a=agent")
    with pytest.raises(ConfigError, match="security"):
        load_settings(None)


def test_malformed_json_in_an_environment_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RECOVERY_SECURITY__API_TOKENS that is not JSON stops start-up with a ConfigError naming it."""
    monkeypatch.setenv("RECOVERY_SECURITY__API_TOKENS", "tok-a=agent")
    with pytest.raises(ConfigError, match="RECOVERY_SECURITY__API_TOKENS"):
        load_settings(None)


def test_an_absurd_duration_names_the_key(tmp_path: Path) -> None:
    """A duration too large for a timedelta is reported like any bad duration."""
    with pytest.raises(ConfigError, match=r"abandonment\.idle_after"):
        load_settings(config_file(tmp_path, "abandonment:\n  idle_after: 99999999999d\n"))


def test_a_wrong_role_never_prints_the_token(tmp_path: Path) -> None:
    """A token with a bad role is refused without the token itself appearing in the message."""
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file(tmp_path, "security:\n  api_tokens: {s3cr3t-token-value: root}\n"))
    assert "security.api_tokens.<token>" in str(caught.value)
    assert "s3cr3t-token-value" not in str(caught.value)


def test_the_sender_and_the_http_app_refuse_a_missing_link_secret_with_the_same_words() -> None:
    """`recovery run` and the HTTP app name the same key and variable when security.link_secret is unset."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from recovery.api.app import create_app
    from recovery.app.wiring import build_composer
    from recovery.clock import SystemClock

    settings = load_settings()
    with pytest.raises(ConfigError) as from_sender:
        build_composer(settings)
    engine = create_async_engine("sqlite+aiosqlite://")  # never connected: the app is refused first
    with pytest.raises(ConfigError) as from_app:
        create_app(engine=engine, settings=settings, clock=SystemClock())
    assert str(from_sender.value) == str(from_app.value)
    assert "RECOVERY_SECURITY__LINK_SECRET" in str(from_app.value)

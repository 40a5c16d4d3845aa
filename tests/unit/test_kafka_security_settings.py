"""kafka.security settings: validated naming the key, the password never shown, files checked by `recovery check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.cli.check import run_checks
from recovery.errors import ConfigError
from recovery.ingest.security import client_options, describe, faststream_security
from recovery.settings import KafkaSecuritySettings, Settings, load_settings

SECRET = "pw-never-shown-4242"


def test_sasl_without_credentials_is_refused_naming_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_SSL without a username or password stops start-up with the key and its variable."""
    monkeypatch.setenv("RECOVERY_KAFKA__SECURITY__PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match=r"kafka\.security .*RECOVERY_KAFKA__SECURITY.*needs username and password"):
        load_settings(None)


@pytest.mark.parametrize(
    ("mechanism", "protocol", "expected"),
    [
        ("PLAIN", "SASL_PLAINTEXT", {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}),
        ("SCRAM-SHA-256", "SASL_SSL", {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256"}),
        ("SCRAM-SHA-512", "SASL_SSL", {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"}),
    ],
)
def test_every_client_gets_the_same_protocol_mechanism_and_credentials(
    mechanism: str, protocol: str, expected: dict[str, str]
) -> None:
    """The aiokafka arguments come from the FastStream security object: one source for all clients."""
    security = KafkaSecuritySettings(protocol=protocol, sasl_mechanism=mechanism, username="shop", password=SECRET)
    options = client_options(security)
    assert expected.items() <= options.items()
    assert options["sasl_plain_username"] == "shop" and options["sasl_plain_password"] == SECRET
    assert (options["ssl_context"] is not None) == protocol.endswith("SSL")
    assert faststream_security(security) is not None


def test_the_password_is_never_shown() -> None:
    """Not in the settings' repr, not in the start-up description, not in a dump."""
    settings = Settings(kafka={"security": {"protocol": "SASL_SSL", "username": "shop", "password": SECRET}})
    assert SECRET not in repr(settings)
    assert SECRET not in describe(settings.kafka.security)
    assert SECRET not in str(settings.model_dump())
    assert "SCRAM" not in describe(settings.kafka.security) and "'shop'" in describe(settings.kafka.security)


def test_check_names_an_unreadable_ca_file(tmp_path: Path) -> None:
    """`recovery check` reports a missing Kafka CA file by its key, before any connection is tried."""
    settings = Settings(
        kafka={"security": {"protocol": "SSL", "ca_file": str(tmp_path / "missing-ca.pem")}},
        channels={"transport": "outbox"},
    )
    report = run_checks(settings)
    assert any("kafka.security" in error and "TLS files" in error for error in report.errors)

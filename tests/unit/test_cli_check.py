"""``recovery check`` in-process: shipped defaults pass, a flow naming a missing template fails with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery.cli.main import app


@pytest.fixture(autouse=True)
def empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("RECOVERY_CONFIG", "RECOVERY_FLOWS_FILE", "RECOVERY_TEMPLATES_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_shipped_flows_and_templates_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a directory without config/ or templates/, the shipped ones are checked and pass (Twilio set)."""
    # The shipped flows send SMS: check needs the Twilio settings an operator gives.
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__AUTH_TOKEN", "token")
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__SENDER", "+33700000000")
    # ... and the shop every message speaks for (contract stores.md).
    monkeypatch.setenv("RECOVERY_STORES__DEFAULT__NAME", "Maison Dupont")
    monkeypatch.setenv("RECOVERY_STORES__DEFAULT__ADDRESS", "12 rue des Lilas, 75011 Paris, France")
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "configuration, flows and templates are valid" in result.output


def test_check_refuses_a_shop_without_name_or_address_naming_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Email would go out in the name of a store id: check exits 1 naming stores.default.name and its variable."""
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__AUTH_TOKEN", "token")
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__SENDER", "+33700000000")
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "stores.default.name (env RECOVERY_STORES__DEFAULT__NAME)" in output
    assert "RECOVERY_STORES__DEFAULT__ADDRESS" in output


def test_a_flow_naming_a_missing_template_fails_with_its_line(empty_directory: Path) -> None:
    """Exit 1, and the reason names the flows file, the line and the unknown template."""
    (empty_directory / "config").mkdir()
    (empty_directory / "config" / "flows.yaml").write_text(
        "flows:\n"
        "  - name: abandoned_cart\n"
        "    trigger: cart.abandoned\n"
        "    steps:\n"
        "      - {name: reminder, after: 1h, channel: email, template: no_such_template}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "no_such_template" in output and "flows.yaml:5" in output


def test_a_bad_configuration_value_fails_the_check_with_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """README, "Configuration": check validates the configuration too and exits 1, naming the key and its variable."""
    monkeypatch.setenv("RECOVERY_ABANDONMENT__IDLE_AFTER", "30x")
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "abandonment.idle_after" in output and "RECOVERY_ABANDONMENT__IDLE_AFTER" in output


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RECOVERY_SECURITY__LINK_SECRET": "short"}, "security.link_secret: at least 32 characters"),
        ({"RECOVERY_SECURITY__API_TOKENS": '{"tok-a": "agent"}'}, "security.api_tokens: agent #1 shorter than 32"),
        (
            {"RECOVERY_CALLBACKS__WEBHOOK_URL": "https://desk.example/hook"},
            "callbacks.webhook_secret is not set",
        ),
        ({"RECOVERY_CALLBACKS__WEBHOOK_SECRET": "short"}, "callbacks.webhook_secret: at least 32 characters"),
        (
            {"RECOVERY_OFFERS__REGISTER_URL": "https://shop.example/discounts"},
            "offers.register_secret is not set",
        ),
        ({"RECOVERY_OFFERS__REGISTER_SECRET": "short"}, "offers.register_secret: at least 32 characters"),
    ],
)
def test_short_secrets_and_a_webhook_without_its_own_secret_fail_the_check(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """Guessable secrets and tokens, or a helpdesk webhook that would borrow the link secret, exit 1."""
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__AUTH_TOKEN", "token")
    monkeypatch.setenv("RECOVERY_CHANNELS__SMS__SENDER", "+33700000000")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1
    assert expected in result.output
    assert "tok-a" not in result.output  # a token is never printed

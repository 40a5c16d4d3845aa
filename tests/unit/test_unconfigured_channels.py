"""A channel without its provider settings: `check` fails, `run` warns, and its messages fail with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from recovery.app.wiring import build_channels
from recovery.channels.base import OutgoingMessage
from recovery.channels.email import EmailChannel
from recovery.cli.check import run_checks
from recovery.cli.main import _refuse_on_check_errors
from recovery.errors import PermanentError
from recovery.settings import Settings
from recovery.states import ChannelName

ROOT = Path(__file__).resolve().parents[2]


def email_only() -> Settings:
    """Providers, SMTP configured, Twilio not: the shipped flows still have SMS steps."""
    return Settings(
        channels={"transport": "providers", "email": {"sender": "shop@example.com"}},
        flows_file=ROOT / "config" / "flows.yaml",
        templates_dir=ROOT / "templates",
        security={"link_secret": "s" * 32},
        # The shop the emails speak for (check refuses email in the name of a store id).
        stores={"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris, France"}},
    )


def test_check_fails_but_run_only_warns_when_twilio_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    """`recovery check` lists the SMS steps as errors; `recovery run` starts with a warning naming them."""
    report = run_checks(email_only())
    assert report.unconfigured and set(report.unconfigured) <= set(report.errors)
    assert any("channels.sms.account_sid" in line for line in report.unconfigured)
    _refuse_on_check_errors(email_only())  # no typer.Exit: the email steps can run
    assert "its messages will fail" in capsys.readouterr().err


def test_run_still_refuses_a_broken_template(tmp_path: Path) -> None:
    """A template error stays fatal at start, whatever the channels."""
    templates = tmp_path / "templates"
    (templates / "en").mkdir(parents=True)
    (templates / "en" / "cart_reminder.email.subject").write_text("{{ cart.valeu_typo }}", encoding="utf-8")
    settings = email_only().model_copy(update={"templates_dir": templates})
    with pytest.raises(typer.Exit):
        _refuse_on_check_errors(settings)


async def test_an_sms_without_twilio_settings_fails_for_good_naming_the_keys() -> None:
    """The SMS channel stands in as unconfigured: a permanent failure (never retried), email still real."""
    channels = build_channels(email_only())
    assert isinstance(channels[ChannelName.EMAIL], EmailChannel)
    message = OutgoingMessage(
        message_id="j:s",
        journey_id="j",
        cart_id="c",
        flow="payment_failed",
        step="retry_payment",
        channel=ChannelName.SMS,
        to="+33612345678",
        text="hello",
    )
    with pytest.raises(PermanentError) as failure:
        await channels[ChannelName.SMS].send(message)
    assert failure.value.code == "channel_not_configured"
    assert "channels.sms.account_sid" in str(failure.value)

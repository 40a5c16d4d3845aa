"""Day-one pieces without servers: channel settings a flow needs, logs, dead tasks, hidden SQL parameters."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from recovery.app.lifecycle import TaskDied, until_stop_or_death
from recovery.channels.requirements import channel_destinations, missing_provider_settings
from recovery.cli.log_setup import choose_format, configure_logging
from recovery.render.sources_check import check_template_sources
from recovery.rules import parse_flows
from recovery.settings import Settings
from recovery.store.database import create_engine

FLOWS = parse_flows(
    """\
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed}
      - {name: call_offer, after: 1h, channel: callback, mode: offer}
      - {name: call, after: 2h, channel: callback, mode: direct}
"""
)
TWILIO = {"account_sid": "AC123", "auth_token": "tok", "sender": "+15005550006"}


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        pytest.param({"sms": TWILIO}, [], id="all set"),
        pytest.param({"transport": "outbox"}, [], id="a dry run needs nothing"),
        pytest.param(
            {"sms": {**TWILIO, "account_sid": ""}},
            [
                "flow 'payment_failed': step 'retry_payment' sends by sms but channels.sms.account_sid "
                "(env RECOVERY_CHANNELS__SMS__ACCOUNT_SID) is not set",
                "flow 'payment_failed': step 'call_offer' sends by callback but channels.sms.account_sid "
                "(env RECOVERY_CHANNELS__SMS__ACCOUNT_SID) is not set",
            ],
            id="no Twilio SID: each SMS-sending step named",
        ),
    ],
)
def test_missing_channel_settings(channels: dict[str, object], expected: list[str]) -> None:
    found = missing_provider_settings(Settings(channels=channels), FLOWS)
    assert [problem.message for problem in found] == expected


def test_channel_destinations_name_hosts_never_credentials() -> None:
    settings = Settings(channels={"email": {"smtp_host": "mail.shop.test", "password": "pw-secret"}, "sms": TWILIO})
    lines = channel_destinations(settings)
    assert lines["email"] == "SMTP server mail.shop.test:1025"
    assert lines["sms"] == "Twilio API at https://api.twilio.com"
    assert not any("pw-secret" in line for line in lines.values())


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_carry_the_extra_fields_and_mask_addresses(restore_logging: None) -> None:
    stream = io.StringIO()
    assert configure_logging("info", None, stream) == "json"  # not a terminal: JSON
    logging.getLogger("recovery.test").info(
        "sent to claire@example.com at +33612345678",
        extra={"cart_id": "cart-1", "journey_id": "j-1", "step": "reminder", "message_id": "m-1", "to": "x@y.fr"},
    )
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert {k: record[k] for k in ("cart_id", "journey_id", "step", "message_id")} == {
        "cart_id": "cart-1",
        "journey_id": "j-1",
        "step": "reminder",
        "message_id": "m-1",
    }
    assert record["level"] == "info"
    assert "claire@example.com" not in stream.getvalue() and "+33612345678" not in stream.getvalue()
    assert "x@y.fr" not in stream.getvalue()


def test_text_logs_when_asked(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream)
    logging.getLogger("recovery.test").warning("message failed", extra={"cart_id": "cart-7"})
    line = stream.getvalue()
    assert "message failed" in line and "cart_id=cart-7" in line
    assert not line.lstrip().startswith("{")


def test_format_defaults_to_text_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert choose_format(None, Tty()) == "text"
    assert choose_format("json", Tty()) == "json"


async def test_a_database_error_does_not_carry_the_shoppers_email(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (email TEXT UNIQUE)"))
            await conn.execute(text("INSERT INTO t VALUES (:e)"), {"e": "claire@example.com"})
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:e)"), {"e": "claire@example.com"})
        assert "claire@example.com" not in str(caught.value)
    finally:
        await engine.dispose()


async def _dies() -> None:
    raise RuntimeError("relay exploded")


async def test_a_dead_task_stops_the_service_with_its_name_and_reason() -> None:
    stop = asyncio.Event()
    alive = asyncio.create_task(stop.wait(), name="scheduler")
    dead = asyncio.create_task(_dies(), name="outbox-relay")
    with pytest.raises(TaskDied, match="'outbox-relay' died: RuntimeError\\('relay exploded'\\)"):
        await until_stop_or_death(stop, [alive, dead])  # type: ignore[list-item]
    stop.set()
    await alive


async def test_a_task_that_keeps_running_is_left_alone_until_stop() -> None:
    stop = asyncio.Event()
    looping = asyncio.create_task(stop.wait(), name="scheduler")
    asyncio.get_running_loop().call_later(0.05, stop.set)
    await until_stop_or_death(stop, [looping])  # type: ignore[list-item]
    await looping


def test_template_sources_check_reports_path_line_and_name() -> None:
    sources = {
        "en/cart_reminder.sms.txt": "Hi {{ customer.first_name }}, {{ cart.valeu_typo }}",
        "en/_layout.email.txt": "{% block body %}{% endblock %}",
    }
    samples = {"en_cart.json": json.dumps(json.loads(Path("templates/samples/en_cart.json").read_text()))}
    [error] = check_template_sources(sources, samples)
    assert (error.path, error.line) == ("en/cart_reminder.sms.txt", 1)
    assert "'cart.valeu_typo' is undefined" in error.message

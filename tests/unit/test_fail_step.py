"""A step that fails for good is recorded one way, before the send or after it: step and message failed,
``message.failed`` and a dead letter published, and the journey completed when it was its last step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recovery.errors import ConfigError, PermanentError
from recovery.journeys.records import JourneyRow
from recovery.render.composer import PlainComposer
from recovery.render.short_links import ShortLink
from recovery.rules import FlowStep
from recovery.settings import QuietHoursPolicy, Settings
from recovery.states import ChannelName
from recovery.store.database import create_engine
from recovery.store.schema import journeys, messages, outbox_events, steps
from recovery.testing import Pipeline, ScriptedChannel
from tests.harness import cart, customer, event

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: email, template: payment_failed}
"""


class BrokenTemplate(PlainComposer):
    """A template that cannot render (an undefined name, say)."""

    def compose(
        self,
        *,
        step: FlowStep,
        channel: ChannelName,
        journey: JourneyRow,
        context: Mapping[str, Any],
        message_id: str,
        short_links: list[ShortLink] | None = None,
    ) -> tuple[str | None, str, str | None]:
        raise ConfigError("'cart' has no attribute 'valeu_typo'")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS, encoding="utf-8")
    return Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"},
        flows_file=flows,
        guards={"quiet_hours": QuietHoursPolicy(channels=())},
    )


async def recorded(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings.database.url)
    try:
        async with engine.connect() as conn:
            step = (await conn.execute(select(steps.c.status, steps.c.reason))).one()
            message = (await conn.execute(select(messages.c.state, messages.c.error_code))).one()
            journey = await conn.scalar(select(journeys.c.status))
            events = [
                (row.topic_role, json.loads(row.payload))
                for row in await conn.execute(select(outbox_events.c.topic_role, outbox_events.c.payload))
            ]
    finally:
        await engine.dispose()
    failed = [payload for role, payload in events if role == "messages" and payload["type"] == "message.failed"]
    dead = [payload for role, payload in events if role == "dead_letter"]
    return {"step": tuple(step), "message": tuple(message), "journey": journey, "failed": failed, "dead": dead}


async def fire_one(settings: Settings, email: ScriptedChannel, composer: PlainComposer) -> None:
    """A failed payment whose one step is due at once, fired through the real scheduler and dispatcher."""
    channels = {ChannelName.EMAIL: email, ChannelName.SMS: ScriptedChannel(ChannelName.SMS)}
    async with Pipeline.start(settings=settings, channels=channels, composer=composer, now=NOW) as pipeline:
        failed = event("payment.failed", "cart-1", at=NOW, customer=customer(), cart=cart())
        await pipeline.ingest({**failed, "payment": {"reason": "card_declined", "method": "card"}}, topic="payment")
        await pipeline.advance(timedelta(0))


async def test_a_template_that_cannot_render_fails_the_step_its_message_and_ends_the_journey(
    settings: Settings,
) -> None:
    """Nothing is sent; the failure is published with its dead letter and the journey does not stay open."""
    email = ScriptedChannel(ChannelName.EMAIL)
    await fire_one(settings, email, BrokenTemplate())
    assert email.calls == 0
    facts = await recorded(settings)
    assert facts["step"] == ("failed", "template_error")
    assert facts["message"] == ("failed", "template")
    assert [payload["reason"] for payload in facts["failed"]] == ["template_error"]
    assert len(facts["dead"]) == 1 and "template_error" in facts["dead"][0]["reason"]
    assert facts["journey"] == "completed"


async def test_a_template_that_cannot_render_says_why_in_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator sees the template's error in the log (seen from outside: 1 200 SMS failed without a line)."""
    await fire_one(settings, ScriptedChannel(ChannelName.EMAIL), BrokenTemplate())
    [line] = [r for r in caplog.records if r.getMessage().startswith("message not rendered")]
    assert "valeu_typo" in line.getMessage() and line.levelname == "WARNING"
    assert "shopper1@example.com" not in caplog.text and "+33612345678" not in caplog.text


async def test_a_provider_refusal_is_recorded_the_same_way_with_the_providers_code(settings: Settings) -> None:
    """The step fails as provider:<code>, message.failed carries the code, and the journey completes."""
    email = ScriptedChannel(ChannelName.EMAIL, PermanentError("mailbox does not exist", code="550"))
    await fire_one(settings, email, PlainComposer())
    facts = await recorded(settings)
    assert facts["step"] == ("failed", "provider:550")
    assert facts["message"] == ("failed", "550")
    assert [payload["reason"] for payload in facts["failed"]] == ["550"]
    assert len(facts["dead"]) == 1
    assert facts["journey"] == "completed"

"""Firing claimed steps in a batch (``steps.dispatch_batch``) on SQLite: each message sent once and recorded as
``fire`` records it, a few statements for the whole batch, and an error or a guard kept to its own step."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.consent.ledger import ConsentChannel, ConsentSource, ledger_entries, ledger_entries_many, record_consent
from recovery.errors import ConfigError
from recovery.journeys.records import JourneyRow
from recovery.render.composer import PlainComposer
from recovery.render.short_links import ShortLink
from recovery.rules import FlowStep
from recovery.settings import QuietHoursPolicy, Settings
from recovery.states import ChannelName
from recovery.steps import step_rows
from recovery.steps.dispatch_batch import fire_batch
from recovery.steps.step_rows import ClaimedStep
from recovery.store.schema import customers, journeys, messages, outbox_events, steps
from recovery.testing import Pipeline, ScriptedChannel
from tests.harness import failed_payment

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: email, template: payment_failed}
"""


class FailingFor(ScriptedChannel):
    """Delivers, except for one cart's message: a bug in the channel (not a provider error)."""

    def __init__(self, cart_id: str) -> None:
        super().__init__(ChannelName.EMAIL)
        self.cart_id = cart_id

    async def send(self, message: OutgoingMessage) -> Delivery:
        if message.cart_id == self.cart_id:
            raise RuntimeError("bug in the channel")
        return await super().send(message)


class BrokenFor(PlainComposer):
    """One cart's template cannot render."""

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
        if journey.cart_id == "cart-2":
            raise ConfigError("'cart' has no attribute 'valeu_typo'")
        return super().compose(
            step=step, channel=channel, journey=journey, context=context, message_id=message_id, short_links=short_links
        )


@contextlib.asynccontextmanager
async def pipeline_with(
    tmp_path: Path, email: ScriptedChannel, composer: PlainComposer | None = None
) -> AsyncIterator[Pipeline]:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS, encoding="utf-8")
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"},
        flows_file=flows,
        guards={"quiet_hours": QuietHoursPolicy(channels=()), "frequency_cap": 0},
    )
    channels = {ChannelName.EMAIL: email, ChannelName.SMS: ScriptedChannel(ChannelName.SMS)}
    async with Pipeline.start(
        settings=settings, channels=channels, composer=composer or PlainComposer(), now=NOW
    ) as started:
        yield started


async def claim(pipeline: Pipeline, count: int) -> list[ClaimedStep]:
    async with pipeline.scheduler._engine.begin() as conn:
        return await step_rows.claim_due(
            conn, now=pipeline.clock.now(), worker="worker-test", limit=count, lease=timedelta(minutes=5)
        )


async def table(pipeline: Pipeline, *columns: Any) -> list[tuple[Any, ...]]:
    async with pipeline.scheduler._engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(select(*columns))]


async def test_a_batch_sends_each_message_once_and_records_it_as_fire_does(tmp_path: Path) -> None:
    email = ScriptedChannel(ChannelName.EMAIL)
    async with pipeline_with(tmp_path, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(12)], topic="payment")
        claimed = await claim(pipeline, 12)
        finished: list[str] = []
        failed = await fire_batch(pipeline.scheduler._dispatcher, claimed, lambda step: finished.append(step.step_id))
        assert failed == []
        assert sorted(finished) == sorted(step.step_id for step in claimed), "each step reported done once"
        assert sorted(m.cart_id for m in email.sent) == sorted(f"cart-{i}" for i in range(12))
        assert set(await table(pipeline, steps.c.status, steps.c.claimed_by)) == {("sent", None)}
        sent = await table(pipeline, messages.c.state, messages.c.provider_id, messages.c.sent_at)
        assert len(sent) == 12 and all(state == "sent" and provider and at for state, provider, at in sent)
        assert set(await table(pipeline, journeys.c.status, journeys.c.messages_sent)) == {("completed", 1)}
        events = [
            json.loads(p) for (role, p) in await table(pipeline, outbox_events.c.topic_role, outbox_events.c.payload)
        ]
        assert sum(e["type"] == "message.sent" for e in events) == 12


async def test_a_batch_of_twelve_runs_a_handful_of_statements_not_twelve_times_seven(tmp_path: Path) -> None:
    email = ScriptedChannel(ChannelName.EMAIL)
    async with pipeline_with(tmp_path, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(12)], topic="payment")
        claimed = await claim(pipeline, 12)
        statements: list[str] = []
        sync_engine = pipeline.scheduler._engine.sync_engine

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            assert await fire_batch(pipeline.scheduler._dispatcher, claimed) == []
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
    assert len(email.sent) == 12
    # load, messages, ledger, sending upsert; message, step, journey updates and the outbox insert
    assert len(statements) <= 12, statements


async def test_an_unexpected_error_in_one_send_is_that_steps_alone(tmp_path: Path) -> None:
    async with pipeline_with(tmp_path, FailingFor("cart-3")) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(6)], topic="payment")
        claimed = await claim(pipeline, 6)
        failed = await fire_batch(pipeline.scheduler._dispatcher, claimed)
        assert [(step.cart_id, type(error).__name__) for step, error in failed] == [("cart-3", "RuntimeError")]
        assert sorted(await table(pipeline, steps.c.cart_id, steps.c.status)) == [
            *(("cart-0", "sent"), ("cart-1", "sent"), ("cart-2", "sent")),
            ("cart-3", "claimed"),
            *(("cart-4", "sent"), ("cart-5", "sent")),
        ]


async def test_through_the_scheduler_the_step_whose_send_raised_ends_failed_and_the_rest_sent(tmp_path: Path) -> None:
    email = FailingFor("cart-3")
    async with pipeline_with(tmp_path, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(6)], topic="payment")
        await pipeline.advance(timedelta(seconds=1))
        found = dict(
            (
                (cart_id, (status, reason))
                for cart_id, status, reason in await table(pipeline, steps.c.cart_id, steps.c.status, steps.c.reason)
            )
        )
    assert found.pop("cart-3") == ("failed", "unexpected_error")
    assert set(found.values()) == {("sent", None)}
    assert len(email.sent) == 5


async def test_a_template_that_cannot_render_fails_only_its_message(tmp_path: Path) -> None:
    email = ScriptedChannel(ChannelName.EMAIL)
    async with pipeline_with(tmp_path, email, BrokenFor()) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(4)], topic="payment")
        assert await fire_batch(pipeline.scheduler._dispatcher, await claim(pipeline, 4)) == []
        found = sorted(await table(pipeline, messages.c.cart_id, messages.c.state, messages.c.error_code))
    assert found == [
        ("cart-0", "sent", None),
        ("cart-1", "sent", None),
        ("cart-2", "failed", "template"),
        ("cart-3", "sent", None),
    ]
    assert sorted(m.cart_id for m in email.sent) == ["cart-0", "cart-1", "cart-3"]


async def test_an_opt_out_in_the_ledger_holds_back_its_shoppers_message_in_a_batch(tmp_path: Path) -> None:
    email = ScriptedChannel(ChannelName.EMAIL)
    async with pipeline_with(tmp_path, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(4)], topic="payment")
        dispatcher = pipeline.scheduler._dispatcher
        keys = dict(await table(pipeline, journeys.c.cart_id, journeys.c.customer_key))
        async with pipeline.scheduler._engine.begin() as conn:
            await record_consent(
                conn,
                keys["cart-1"],
                ConsentChannel.EMAIL,
                consent=False,
                source=ConsentSource.UNSUBSCRIBE_LINK,
                now=NOW,
                addresses=dispatcher.addresses,
            )
        assert await fire_batch(dispatcher, await claim(pipeline, 4)) == []
        found = dict(await table(pipeline, steps.c.cart_id, steps.c.status))
    assert found == {"cart-0": "sent", "cart-1": "skipped", "cart-2": "sent", "cart-3": "sent"}
    assert sorted(m.cart_id for m in email.sent) == ["cart-0", "cart-2", "cart-3"]


async def test_the_ledger_read_for_many_customers_says_what_it_says_for_each(tmp_path: Path) -> None:
    async with pipeline_with(tmp_path, ScriptedChannel(ChannelName.EMAIL)) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(3)], topic="payment")
        addresses = pipeline.scheduler._dispatcher.addresses
        async with pipeline.scheduler._engine.begin() as conn:
            people = [
                (key, email, phone)
                for key, email, phone in await conn.execute(
                    select(journeys.c.customer_key, customers.c.email, customers.c.phone)
                    .select_from(journeys.join(customers, customers.c.customer_key == journeys.c.customer_key))
                    .order_by(journeys.c.cart_id)
                )
            ]
            for key, channel in ((people[0][0], ConsentChannel.EMAIL), (people[1][0], ConsentChannel.SMS)):
                await record_consent(
                    conn, key, channel, consent=False, source=ConsentSource.CONSENT_EVENT, now=NOW, addresses=addresses
                )
            many = await ledger_entries_many(conn, people, addresses)
            each = {
                key: await ledger_entries(conn, customer_key=key, email=email, phone=phone, addresses=addresses)
                for key, email, phone in people
            }
    assert many == each
    opted_out = [{e.channel for e in many[key] if not e.consent} for key, _, _ in people]
    assert "email" in opted_out[0] and "sms" in opted_out[1]

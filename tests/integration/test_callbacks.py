"""Callback steps: direct mode creates one agent task (published for contact-centre tools); offer mode texts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from recovery.channels.base import ChannelName
from recovery.store.schema import callback_tasks
from tests.harness import cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]

FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: agent_call, after: 0s, channel: callback, mode: direct, when: "cart.value >= 200"}
      - {name: call_offer, after: 0s, channel: callback, template: callback_offer}
"""


async def test_a_high_value_payment_failure_creates_one_callback_task_and_offers_a_callback_by_sms(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """Direct mode: one open task with the number to call; offer mode: an SMS with the offer."""
    settings = service_settings(
        bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path, flows=FLOWS,
        guards={"frequency_cap": 0},
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    async with running_service(settings) as harness:
        failure = event("payment.failed", "cart-cb", customer=shopper, cart=cart(450.0),
                        payment={"reason": "card_declined", "method": "card"})
        await harness.send(failure)
        await harness.send(failure)  # redelivered: still one task
        await eventually(lambda: len(harness.outbox(ChannelName.SMS)) >= 1, timeout=20)

        async def one_task() -> bool:
            async with harness.service.engine.connect() as conn:
                return len((await conn.execute(select(callback_tasks))).all()) == 1

        await eventually(one_task)
        await asyncio.sleep(1)
        async with harness.service.engine.connect() as conn:
            [task] = (await conn.execute(select(callback_tasks))).mappings().all()
        assert task["status"] == "open" and task["step"] == "agent_call"
        published = await harness.read_topic("callback_tasks", count=1)
        assert published[0]["task_id"] == task["task_id"]
        assert published[0]["phone"] == "+33612345678"
        assert published[0]["cart_value"] == 450.0
        [offer] = harness.outbox(ChannelName.SMS)
        assert offer["step"] == "call_offer" and "RAPPEL" in offer["text"]

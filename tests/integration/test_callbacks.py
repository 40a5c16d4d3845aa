"""Callback steps: direct mode creates one agent task (published for contact-centre tools); offer mode texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from recovery.desk.hours import DEFAULT_HOURS, next_open, parse_hours, zone_of
from recovery.states import ChannelName
from recovery.steps.guards import QuietHoursPolicy, Weekday
from recovery.store.schema import callback_tasks
from tests.fakes.helpdesk import SECRET, Helpdesk, helpdesk
from tests.harness import cart, customer, event, eventually, running_service, service_settings

__all__ = ["helpdesk"]
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
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        workdir=tmp_path,
        flows=FLOWS,
        guards={"frequency_cap": 0},
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        failure = event(
            "payment.failed",
            "cart-cb",
            customer=shopper,
            cart=cart(450.0),
            payment={"reason": "card_declined", "method": "card"},
        )
        await harness.send(failure)
        await harness.send(failure)  # redelivered: still one task
        await eventually(lambda: len(harness.outbox(ChannelName.SMS)) >= 1, timeout=20)

        async def one_task() -> bool:
            async with engine.connect() as conn:
                return len((await conn.execute(select(callback_tasks))).all()) == 1

        await eventually(one_task)
        await eventually(lambda: harness.service.stats.duplicates >= 1)  # the redelivery is applied: no 2nd task
        async with engine.connect() as conn:
            [task] = (await conn.execute(select(callback_tasks))).mappings().all()
        assert task["status"] == "open" and task["step"] == "agent_call"
        published = await harness.read_topic("callback_tasks", count=1)
        # The contract's Task, as the Agents' API serves it: a contact-centre tool needs no API call.
        assert published[0]["id"] == task["task_id"] and published[0]["status"] == "open"
        assert published[0]["customer"]["phone"] == "+33612345678"
        assert published[0]["cart"]["value"] == 450.0
        assert (published[0]["attempts"], published[0]["max_attempts"]) == (0, 3)
        [offer] = harness.outbox(ChannelName.SMS)
        assert offer["step"] == "call_offer" and "RAPPEL" in offer["text"]


OFFER_ONLY = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: call_offer, after: 0s, channel: callback, template: callback_offer}
"""


async def test_a_rappel_reply_to_a_callback_offer_creates_the_agent_task(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The shopper answers the offer by SMS (signed Twilio webhook): a task appears for the agents."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=OFFER_ONLY,
        channels={"transport": "outbox", "outbox_dir": tmp_path / "outbox", "sms": {"auth_token": "twilio-test-token"}},
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        await harness.send(
            event(
                "payment.failed",
                "cart-rp",
                customer=shopper,
                cart=cart(90.0),
                payment={"reason": "card_declined", "method": "card"},
            )
        )
        await eventually(lambda: len(harness.outbox(ChannelName.SMS)) >= 1, timeout=20)
        form = {"From": shopper["phone"], "To": "+15005550006", "Body": " rappel ", "MessageSid": "SMrappel1"}
        path = "/webhooks/twilio/inbound"
        signature = RequestValidator("twilio-test-token").compute_signature(settings.http.public_url + path, form)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{harness.service.http_port}") as client:
            answer = await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
            assert answer.status_code == 200
            forged = await client.post(path, data=form, headers={"X-Twilio-Signature": "bad"})
            assert forged.status_code == 403

        async def task_created() -> bool:
            async with engine.connect() as conn:
                return len((await conn.execute(select(callback_tasks))).all()) == 1

        await eventually(task_created)
        async with engine.connect() as conn:
            [task] = (await conn.execute(select(callback_tasks))).mappings().all()
        assert (task["step"], task["status"], task["cart_id"]) == ("call_offer", "open", "cart-rp")


async def test_following_the_offer_link_and_confirming_creates_the_agent_task(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The SMS offer's tracked link leads to the service's call-back page; confirming makes one task."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=OFFER_ONLY,
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        await harness.send(
            event(
                "payment.failed",
                "cart-link",
                customer=shopper,
                cart=cart(90.0),
                payment={"reason": "card_declined", "method": "card"},
            )
        )
        await eventually(lambda: len(harness.outbox(ChannelName.SMS)) >= 1, timeout=20)
        [offer] = harness.outbox(ChannelName.SMS)
        public = settings.http.public_url
        [tracked] = re.findall(re.escape(public) + r"/s/[A-Za-z0-9]+", offer["text"])  # an SMS short link
        local = f"http://127.0.0.1:{harness.service.http_port}"
        async with httpx.AsyncClient(base_url=local) as client:
            hop = await client.get(tracked.removeprefix(public), headers={"User-Agent": "Mozilla/5.0 (Android)"})
            assert hop.status_code == 302 and hop.headers["location"].startswith(public + "/c/")
            page_path = hop.headers["location"].removeprefix(public)
            page = await client.get(page_path)
            assert page.status_code == 200 and "être rappelé" in page.text
            assert (await client.post(page_path)).status_code == 200
            assert (await client.post(page_path)).status_code == 200  # twice: still one task
            assert (await client.post(page_path[:-4] + "AAAA")).status_code == 404
        async with engine.connect() as conn:
            [task] = (await conn.execute(select(callback_tasks))).mappings().all()
        assert (task["step"], task["cart_id"]) == ("call_offer", "cart-link")


DIRECT_ONLY = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: agent_call, after: 0s, channel: callback, mode: direct}
"""


async def test_a_payment_failure_task_is_created_at_once_even_in_quiet_hours_and_due_in_calling_hours(
    kafka_bootstrap: str, tmp_path: Path, helpdesk: Helpdesk
) -> None:
    """Quiet hours cover today, yet the agents' task appears now, due when agents call; the helpdesk gets it."""
    today = Weekday(list(Weekday)[datetime.now(UTC).weekday()])
    closed_today = QuietHoursPolicy(weekdays=tuple(day for day in Weekday if day != today))
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=DIRECT_ONLY,
        guards={"quiet_hours": closed_today, "frequency_cap": 1},
        callbacks={"webhook_url": helpdesk.url, "webhook_secret": SECRET},
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        failure = event(
            "payment.failed",
            "cart-now",
            customer=shopper,
            cart=cart(80.0),
            payment={"reason": "authentication_failed", "method": "card"},
        )
        await harness.send(failure)

        async def one_task() -> bool:
            async with engine.connect() as conn:
                return len((await conn.execute(select(callback_tasks))).all()) == 1

        await eventually(one_task, timeout=20)
        async with engine.connect() as conn:
            [task] = (await conn.execute(select(callback_tasks))).mappings().all()
        await eventually(lambda: len(helpdesk.received) == 1, timeout=20)
    assert helpdesk.received[0]["key"] == task["task_id"] and helpdesk.bad_signatures == 0
    assert task["reason"] == "payment_failed"
    expected = next_open(task["created_at"], zone_of(shopper.get("timezone")), parse_hours(DEFAULT_HOURS))
    assert task["due_at"] == expected


CALL_AND_TEXT = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed}
      - {name: agent_call, after: 0s, channel: callback, mode: direct}
"""


async def test_a_second_failed_cart_within_reentry_gets_a_call_but_no_second_text(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Same shopper, two carts failing to pay: two agents' tasks, one SMS (re-entry guards the shopper)."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=CALL_AND_TEXT,
        guards={"frequency_cap": 0},
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    payment = {"reason": "card_declined", "method": "card"}
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        await harness.send(event("payment.failed", "cart-one", customer=shopper, cart=cart(250.0), payment=payment))

        async def tasks(n: int) -> bool:
            async with engine.connect() as conn:
                return len((await conn.execute(select(callback_tasks))).all()) == n

        await eventually(lambda: tasks(1), timeout=20)
        await eventually(lambda: len(harness.outbox(ChannelName.SMS)) == 1, timeout=20)
        await harness.send(event("payment.failed", "cart-two", customer=shopper, cart=cart(300.0), payment=payment))
        await eventually(lambda: tasks(2), timeout=20)
        async with engine.connect() as conn:
            carts_called = sorted((await conn.execute(select(callback_tasks.c.cart_id))).scalars())
    assert carts_called == ["cart-one", "cart-two"]
    assert len(harness.outbox(ChannelName.SMS)) == 1

"""From outside: a payment failure becomes a task showing the shopper's past; the agent texts the link from it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlalchemy import select

from recovery.store.schema import callback_tasks, carts, conversions, discount_codes
from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.harness import cart, customer, event, eventually, running_service, service_settings

__all__ = ["fake_twilio", "smtp_sink"]

FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: email, template: payment_failed, offer: {percent: 10}}
      - {name: agent_call, after: 0s, channel: callback, mode: direct}
"""
TOKENS = {
    "tok-ines": {"role": "agent", "name": "Inès"},
    "tok-marc": {"role": "agent", "name": "Marc"},
    "tok-mkt": "marketer",
}
INES, MARC = {"Authorization": "Bearer tok-ines"}, {"Authorization": "Bearer tok-marc"}


async def test_the_agent_sees_the_shoppers_past_and_texts_the_payment_link_that_wins_the_order(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """Earlier order + payment failure → Task with history, email, store, offer; send-link → SMS via Twilio
    with a working tracked link; the order that follows is credited to the agent's link."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=FLOWS,
        security={"api_tokens": TOKENS},
        channels={
            "transport": "providers",
            "outbox_dir": tmp_path / "outbox",
            "email": {"smtp_host": smtp_sink.host, "smtp_port": smtp_sink.port, "sender": "shop@example.com"},
            "sms": {
                "account_sid": fake_twilio.account_sid,
                "auth_token": fake_twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": fake_twilio.url,
            },
        },
    )
    shopper = customer(email=True, sms=True)
    shopper["consent"]["phone"] = True
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        await harness.send(event("cart.updated", "cart-old", customer=shopper, cart=cart(60.0)))
        await harness.send(
            event("order.completed", "cart-old", order={"id": "o-old", "value": 60.0, "currency": "EUR"})
        )

        async def ordered() -> bool:
            async with engine.connect() as conn:
                return await conn.scalar(select(carts.c.ordered_at).where(carts.c.cart_id == "cart-old")) is not None

        await eventually(ordered, timeout=20)
        failure = {"reason": "card_declined", "method": "card"}
        await harness.send(event("payment.failed", "cart-now", customer=shopper, cart=cart(120.0), payment=failure))

        async def task_id() -> str | None:
            async with engine.connect() as conn:
                return await conn.scalar(select(callback_tasks.c.task_id).where(callback_tasks.c.cart_id == "cart-now"))

        await eventually(task_id, timeout=20)
        await eventually(lambda: len(smtp_sink.received) >= 1, timeout=20)
        found = await task_id()
        local = f"http://127.0.0.1:{harness.service.http_port}"
        async with httpx.AsyncClient(base_url=local) as http:
            task = (await http.get(f"/api/callbacks/{found}", headers=INES)).json()
            assert (task["reason"], task["payment"]) == ("payment_failed", {"reason": "card_declined"})
            assert task["history"]["orders"] == 1 and task["history"]["revenue"] == "60.00"
            assert task["customer"]["email"] == shopper["email"]
            assert task["store"] == {"id": "default", "name": "default"}
            async with engine.connect() as conn:
                sent_code = await conn.scalar(select(discount_codes.c.code))
            assert (task["offer"]["code"], task["offer"]["percent"]) == (sent_code, 10)

            url = f"/api/callbacks/{found}/send-link"
            assert (await http.post(f"/api/callbacks/{found}/claim", headers=INES)).status_code == 200
            assert (await http.post(url, json={"channel": "sms"}, headers=MARC)).status_code == 409
            assert (await http.post(url, json={"channel": "sms"}, headers=INES)).status_code == 202
            await eventually(lambda: len(fake_twilio.messages) >= 1, timeout=20)
            [sms] = fake_twilio.messages
            assert sms.to == shopper["phone"] and "Reply STOP" not in sms.body  # a French shopper: French text
            public = settings.http.public_url
            [link] = re.findall(re.escape(public) + r"/[rs]/[A-Za-z0-9._~%?=&/-]+", sms.body)
            hop = await http.get(link.removeprefix(public), headers={"User-Agent": "Mozilla/5.0 (Android)"})
            assert hop.status_code in (302, 303) and hop.headers["location"].startswith(cart()["restore_url"])
            await harness.send(
                event("order.completed", "cart-now", order={"id": "o-now", "value": 120.0, "currency": "EUR"})
            )

            async def credited() -> tuple[str, str] | None:
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            select(conversions.c.step, conversions.c.channel).where(conversions.c.order_id == "o-now")
                        )
                    ).first()
                return None if row is None else (row.step, row.channel)

            await eventually(credited, timeout=20)
            assert await credited() == ("agent_link_sms_1", "sms")
            # The call gets the credit too, whatever the outcome recorded afterwards.
            body = {"outcome": "no_answer"}
            assert (await http.post(f"/api/callbacks/{found}/complete", json=body, headers=INES)).status_code == 200
            stats = (await http.get("/api/stats", headers={"Authorization": "Bearer tok-mkt"})).json()["callbacks"]
            assert (stats["orders"], stats["revenue"]) == (1, "120.00")

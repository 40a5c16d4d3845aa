"""A saved template that runs past the render deadline fails its own messages; every other message goes out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from recovery.render import template_rows
from recovery.render.bounds import RenderLimits, configure
from recovery.store.schema import messages, steps
from tests.fakes.fixtures import smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.harness import cart, customer, event, eventually, running_service, service_settings

__all__ = ["smtp_sink"]
pytestmark = [pytest.mark.kafka]

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 0s, channel: email, template: cart_reminder}
"""
# Within every size bound but minutes long: inserted directly, as if saved before the deadline existed.
RUNAWAY = "{% set l = [1] * 300 %}{% for i in l %}{% for j in l %}{{ ((10 ** 64) ** 60) % 7 }}{% endfor %}{% endfor %}"


async def test_a_runaway_saved_template_fails_its_message_and_others_are_sent(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """English subject runs away: that message fails with ``template`` once; the French shopper gets mail."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=FLOWS,
        templates_dir=TEMPLATES,
        channels={
            "transport": "providers",
            "outbox_dir": tmp_path / "outbox",
            "email": {"smtp_host": smtp_sink.host, "smtp_port": smtp_sink.port, "sender": "shop@example.com"},
        },
        render={"deadline": "1s"},
    )
    try:
        async with running_service(settings) as harness:
            engine = harness.service.engine
            assert engine is not None
            await template_rows.save_version(
                engine,
                path="en/cart_reminder.email.subject",
                source=RUNAWAY,
                created_by="attacker",
                comment=None,
                now=datetime.now(UTC),
            )
            live = harness.service.live_templates
            assert live is not None
            await eventually(lambda: live.versions.get("en/cart_reminder.email.subject") == 1, timeout=10)
            english = {**customer(1), "locale": "en-GB", "timezone": "Europe/London"}
            await harness.send(event("cart.updated", "cart-en", customer=english, cart=cart()))
            await harness.send(event("cart.updated", "cart-fr", customer=customer(2), cart=cart()))
            await eventually(lambda: len(smtp_sink.received) >= 1, timeout=30)

            async def failed() -> list[tuple[str, str, str | None]]:
                async with engine.connect() as conn:
                    rows = await conn.execute(select(messages.c.cart_id, messages.c.state, messages.c.error_code))
                    return [(r.cart_id, r.state, r.error_code) for r in rows if r.state == "failed"]

            for _ in range(60):
                if await failed():
                    break
                await asyncio.sleep(0.5)
            assert await failed() == [("cart-en", "failed", "template")]
            async with engine.connect() as conn:
                reasons = [r.reason for r in await conn.execute(select(steps.c.reason, steps.c.status))]
            assert "template_error" in reasons
            assert len(smtp_sink.received) == 1  # the French shopper's reminder, nobody else's
    finally:
        configure(RenderLimits())

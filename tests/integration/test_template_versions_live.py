"""A saved template version reaches the next email sent through SMTP within 10 s, without restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from recovery.store.schema import messages
from tests.fakes.fixtures import smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.harness import Harness, cart, customer, event, eventually, running_service, service_settings

__all__ = ["smtp_sink"]
pytestmark = [pytest.mark.kafka]

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SUBJECT = "fr/cart_reminder.email.subject"
FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 0s, channel: email, template: cart_reminder}
"""
AUTH = {"Authorization": "Bearer studio-token"}


def live_version(harness: Harness) -> int:
    """The version of the subject the service renders with now (0: the file)."""
    live = harness.service.live_templates
    assert live is not None
    return live.versions.get(SUBJECT, 0)


async def subject_of_next_mail(harness: Harness, sink: SmtpSink, cart_id: str, index: int) -> str:
    """Abandon a fresh cart and return the subject of the email it gets."""
    await harness.send(event("cart.updated", cart_id, customer=customer(index), cart=cart()))
    await eventually(lambda: len(sink.received) > index - 1, timeout=20)
    return str(sink.received[index - 1].message["Subject"])


async def test_saved_version_and_rollback_reach_the_next_email_within_ten_seconds(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """Save → the next reminder uses it; rollback to the file → the next one uses the file again."""
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
        security={"api_tokens": {"studio-token": "marketer"}},
    )
    async with running_service(settings) as harness:
        base = f"http://127.0.0.1:{harness.service.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            saved_at = time.monotonic()
            put = await http.put(f"/api/templates/{SUBJECT}", json={"source": "Nouvelle version {{ cart.value }}"})
            assert put.status_code == 201
            await eventually(lambda: live_version(harness) == 1, timeout=10)
            assert (await subject_of_next_mail(harness, smtp_sink, "cart-v1", 1)).startswith("Nouvelle version")
            assert time.monotonic() - saved_at < 10

            rolled_at = time.monotonic()
            back = await http.post(f"/api/templates/{SUBJECT}/rollback", json={"version": 0})
            assert back.status_code == 200 and back.json() == {"version": 2}
            await eventually(lambda: live_version(harness) == 2, timeout=10)
            assert not (await subject_of_next_mail(harness, smtp_sink, "cart-v2", 2)).startswith("Nouvelle")
            assert time.monotonic() - rolled_at < 10

        assert harness.service.engine is not None
        async with harness.service.engine.connect() as conn:
            rows = (await conn.execute(select(messages.c.cart_id, messages.c.template_version))).all()
        versions = dict(rows)
        assert "subject@1" in versions["cart-v1"] and "subject@2" in versions["cart-v2"]

"""Chaos run: events in while the service is SIGKILLed at random and PostgreSQL is cut, then count deliveries.

Every message that should have been sent must have arrived exactly once at the SMTP and SMS servers, and
every event must have its journey. Prints the table that docs/reliability.md keeps.

    python bench/chaos.py [--events 20000] [--kills 20] [--outages 2] [--outage-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from recovery.demo.sinks.smtp import SmtpSink
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer
from recovery.store.database import create_engine
from recovery.store.schema import journeys
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.fakes.tcp_proxy import TcpProxy
from tests.process import ServiceProcess

FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry, after: 0s, channel: sms, fallback: email, template: payment_failed}
"""


def events(count: int) -> list[dict[str, Any]]:
    """Payment failures: even shoppers take SMS, odd ones email (no SMS consent: the step falls back)."""
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": f"chaos-{i}-{uuid.uuid4().hex[:6]}",
            "type": "payment.failed",
            "occurred_at": now,
            "cart_id": f"chaos-cart-{i}",
            "customer": {
                "id": f"chaos-cust-{i}",
                "email": f"shopper{i}@example.com",
                "phone": f"+336{10_000_000 + i}",
                "locale": "fr-FR",
                "timezone": "Europe/Paris",
                "consent": {"email": True, "sms": i % 2 == 0},
            },
            "cart": {
                "currency": "EUR",
                "value": 20,
                "restore_url": "https://shop.example.com/cart/restore",
                "items": [{"sku": "A", "name": "A", "quantity": 1, "unit_price": 20}],
            },
            "payment": {"reason": "card_declined", "method": "card"},
        }
        for i in range(count)
    ]


def write_config(workdir: Path, *, bootstrap: str, database_url: str, smtp: SmtpSink, twilio: FakeTwilio) -> Path:
    prefix = f"chaos{uuid.uuid4().hex[:6]}"
    (workdir / "flows.yaml").write_text(FLOWS, encoding="utf-8")
    topics = {
        r: {"name": f"{prefix}.{r}"}
        for r in ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
    }
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"{prefix}-group", "topics": topics, "batch_size": 500},
        "database": {"url": database_url},
        "abandonment": {"idle_after": "1h"},
        "flows_file": str(workdir / "flows.yaml"),
        "scheduler": {"poll_interval": "100ms", "dead_after": "3s", "claim_batch": 100},
        "http": {"port": 0},
        "guards": {"quiet_hours": {"channels": []}, "frequency_cap": 0},
        # The shop the messages speak for: run refuses email in the name of a store id (stores.md).
        "stores": {"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris, France"}},
        "security": {"link_secret": "chaos-secret-" + "x" * 32},
        "channels": {
            "transport": "providers",
            "email": {"smtp_host": smtp.host, "smtp_port": smtp.port, "sender": "shop@example.com"},
            "sms": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": twilio.url,
            },
        },
    }
    path = workdir / "recovery.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


class Deliveries:
    """What the sinks received, read incrementally: each email's headers are parsed once, not at every look.

    The harness shares its event loop with the PostgreSQL proxy: re-parsing thousands of emails every second
    starved the proxy and made the service look slow.
    """

    def __init__(self, smtp: SmtpSink, twilio: FakeTwilio) -> None:
        self._smtp, self._twilio = smtp, twilio
        self._emails: list[tuple[str, str]] = []  # (Message-ID, To) per accepted email, in arrival order
        self._parser = BytesHeaderParser(policy=email.policy.default)

    def _catch_up(self) -> None:
        for received in self._smtp.received[len(self._emails) :]:
            headers = self._parser.parsebytes(received.raw)
            self._emails.append((str(headers["Message-ID"]), str(headers["To"])))

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Distinct emails (by Message-ID) per recipient, and SMS per number."""
        self._catch_up()
        emails = Counter(to for to in dict(self._emails).values())
        sms = Counter(m.to for m in self._twilio.messages)
        return emails, sms

    def email_resends(self) -> int:
        """Deliveries repeating a Message-ID: a resend after an unknown SMTP outcome, deduplicated by receivers."""
        self._catch_up()
        return len(self._emails) - len({message_id for message_id, _ in self._emails})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = await create_postgres_database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    broker = EmbeddedBroker()
    await asyncio.to_thread(broker.start)
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    items = events(args.events)
    expected_sms = {e["customer"]["phone"] for e in items if e["customer"]["consent"]["sms"]}
    expected_email = {e["customer"]["email"] for e in items if not e["customer"]["consent"]["sms"]}
    rng = random.Random(args.seed)
    try:
        with SmtpSink() as smtp, FakeTwilio() as twilio:
            config = write_config(
                workdir, bootstrap=broker.bootstrap_servers, database_url=proxied, smtp=smtp, twilio=twilio
            )
            process = ServiceProcess(config, workdir / "service.log").start()
            deliveries = Deliveries(smtp, twilio)
            producer = Producer(broker.bootstrap_servers)
            await producer.start()
            topic = json.loads(config.read_text())["kafka"]["topics"]["payment"]["name"]
            publisher = asyncio.create_task(publish(producer, topic, items, args.publish_seconds))
            window = args.kill_seconds or args.publish_seconds + 30.0
            kill_at = sorted(rng.uniform(3, window) for _ in range(args.kills))
            # One cut per slice of the window, so two cuts are two outages and not one long one.
            slice_ = window / max(1, args.outages)
            outage_at = [
                i * slice_ + rng.uniform(5, max(5.0, slice_ - args.outage_seconds - 5)) for i in range(args.outages)
            ]
            begun = time.monotonic()
            # Outages run beside the kills: a kill due during a cut happens during the cut, as in production.
            cutter = asyncio.create_task(cut_database(proxy, outage_at, args.outage_seconds, begun))
            kills = 0
            while kill_at:
                now = time.monotonic() - begun
                if kill_at[0] <= now:
                    kill_at.pop(0)
                    await asyncio.to_thread(process.kill)
                    kills += 1
                    print(f"[{now:6.1f}s] SIGKILL {kills}; restarting", flush=True)
                    process.start()
                elif process.returncode is not None:  # as a supervisor would: restart a service that exited
                    print(f"[{now:6.1f}s] service exited with {process.returncode}; restarting", flush=True)
                    process.start()
                else:
                    await asyncio.sleep(0.2)
            outages = await cutter
            await publisher
            await producer.stop()
            deadline = time.monotonic() + args.settle_seconds
            last_report = time.monotonic()
            while time.monotonic() < deadline:
                if process.returncode is not None:
                    process.start()
                emails, sms = await asyncio.to_thread(deliveries.counts)
                reached = len(expected_email & set(emails)) + len(expected_sms & set(sms))
                if reached >= len(items):
                    break
                if time.monotonic() - last_report >= 30:
                    last_report = time.monotonic()
                    print(f"[{last_report - begun:6.1f}s] {reached} of {len(items)} reached", flush=True)
                await asyncio.sleep(2)
            await asyncio.sleep(5)  # anything still in flight lands (or shows up as a duplicate)
            await asyncio.to_thread(process.stop, 60)
            emails, sms = await asyncio.to_thread(deliveries.counts)
            resends = deliveries.email_resends()
        engine = create_engine(url)
        async with engine.connect() as conn:
            journey_count = (await conn.execute(select(func.count()).select_from(journeys))).scalar_one()
        await engine.dispose()
    finally:
        await proxy.stop()
        await asyncio.to_thread(broker.stop)
        await drop_postgres_database(url)
    sent = len(expected_email & set(emails)) + len(expected_sms & set(sms))
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kills": kills,
        "outages": f"{outages} × {args.outage_seconds:.0f} s",
        "events": len(items),
        "sent": sent,
        "duplicates": sum(c - 1 for c in emails.values()) + sum(c - 1 for c in sms.values()),
        "lost": len(items) - sent,
        "email resends (same Message-ID)": resends,
        "journeys missing": len(items) - journey_count,
    }


async def cut_database(proxy: TcpProxy, at: list[float], seconds: float, begun: float) -> int:
    """Cut PostgreSQL at each of ``at`` (seconds after ``begun``) for ``seconds``; return how many cuts."""
    cuts = 0
    for when in at:
        await asyncio.sleep(max(0.0, begun + when - time.monotonic()))
        await proxy.cut()
        print(f"[{time.monotonic() - begun:6.1f}s] PostgreSQL cut for {seconds:.0f} s", flush=True)
        await asyncio.sleep(seconds)
        await proxy.restore()
        print(f"[{time.monotonic() - begun:6.1f}s] PostgreSQL back", flush=True)
        cuts += 1
    return cuts


async def publish(producer: Producer, topic: str, items: list[dict[str, Any]], seconds: float) -> None:
    """Spread the events over ``seconds`` so kills and outages land while they arrive."""
    chunks = max(1, int(seconds * 2))
    size = max(1, len(items) // chunks + 1)
    for start_at in range(0, len(items), size):
        chunk = items[start_at : start_at + size]
        await producer.send_many(topic, [(e["cart_id"], json.dumps(e).encode()) for e in chunk])
        await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--outages", type=int, default=2)
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--publish-seconds", type=float, default=120.0)
    parser.add_argument("--settle-seconds", type=float, default=900.0)
    parser.add_argument(
        "--kill-seconds",
        type=float,
        default=0.0,
        help="the window in which kills and cuts fall (default: the publishing time + 30 s); longer reaches the sends",
    )
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    table = asyncio.run(run(args))
    width = max(len(k) for k in table)
    print("\n| " + " | ".join(table) + " |")
    print("|" + "|".join("---" for _ in table) + "|")
    print("| " + " | ".join(str(v) for v in table.values()) + " |")
    print(
        f"\n{'result':<{width}}: "
        + ("PASS" if table["lost"] == 0 and table["duplicates"] == 0 and table["journeys missing"] == 0 else "FAIL")
    )
    sys.exit(0 if table["lost"] == 0 and table["duplicates"] == 0 and table["journeys missing"] == 0 else 1)


if __name__ == "__main__":
    main()

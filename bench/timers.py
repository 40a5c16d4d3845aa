"""Timers: many pending steps, a share coming due within one minute -> firing lag p50/p99 (PostgreSQL).

The issue's size is 1 M pending and 100 k coming due within a minute; ``--scale`` shrinks both (default 0.01:
10 k pending, 1 k due) so the bench finishes here in minutes. Pending steps are real: cart.updated events go
idle (idle_after 1 s), are abandoned by the service's sweep and get a reminder due in 30 days. The due share are
payment.failed events published evenly over 60 s with an SMS due 10 s later. Firing lag = messages.sent_at
- steps.due_at, read from the database afterwards. Baseline: the scheduler's poll interval (the lag a
poll-based scheduler has by construction). At the issue's size (``--scale 1``) 100 k steps coming due within a
minute need 1 666 sends/s sustained: far above the dispatch rate, the lag there measures dispatch, not timers.
The timer queries themselves at 1 M pending: ``python -m bench.timer_queries``.

    python -m bench.timers [--scale 0.01] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import DEFAULT_PG, Row, percentile, postgres_database, print_rows, running, settings_for, wait_for
from bench.events import cart_updated, payment_failed, publish
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.settings import Settings

WINDOW_S = 60
FLOWS = """flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 30d, channel: email, template: cart_reminder}
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 10s, channel: sms, template: payment_failed}
"""


async def count_steps(url: str) -> int:
    """How many steps the service has stored."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM steps"))).scalar_one())
    finally:
        await engine.dispose()


async def lags(url: str) -> list[float]:
    """Seconds between each sent SMS step's due time and its sending."""
    engine = create_async_engine(url)
    query = text(
        "SELECT s.due_at, m.sent_at FROM steps s JOIN messages m ON m.step_id = s.step_id "
        "WHERE m.channel = 'sms' AND m.sent_at IS NOT NULL"
    )
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await engine.dispose()
    return [(_ts(sent) - _ts(due)) for due, sent in rows]


def _ts(value: datetime | str) -> float:
    """A database timestamp as epoch seconds."""
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).timestamp()


async def fill_pending(producer: Producer, settings: Settings, url: str, pending: int) -> float:
    """Publish ``pending`` idle carts and wait until each has its 30-day step; returns seconds taken."""
    started = time.monotonic()
    for offset in range(0, pending, 5000):
        batch = [cart_updated(i) for i in range(offset, min(pending, offset + 5000))]
        await publish(producer, settings.kafka.topics, batch)
    while await count_steps(url) < pending:
        if time.monotonic() - started > 1800:
            raise TimeoutError("pending steps were not all created within 30 min")
        await asyncio.sleep(1)
    return time.monotonic() - started


async def service_lags(
    bootstrap: str, pg_admin: str, twilio: FakeTwilio, pending: int, due: int, workdir: Path
) -> tuple[list[float], float, str]:
    """Firing lags of ``due`` SMS among ``pending`` idle steps; also the fill time and the poll interval."""
    async with postgres_database(pg_admin) as url:
        settings = settings_for(bootstrap, url, workdir, FLOWS, twilio=twilio, abandonment={"idle_after": "1s"})
        await ensure_topics(bootstrap, settings.kafka)
        async with running(settings):
            producer = Producer(bootstrap)
            await producer.start()
            try:
                fill_s = await fill_pending(producer, settings, url, pending)
                sent = 0
                for second in range(WINDOW_S):
                    size = due * (second + 1) // WINDOW_S - sent  # evenly, remainder included
                    await publish(
                        producer, settings.kafka.topics, [payment_failed(10_000_000 + sent + i) for i in range(size)]
                    )
                    sent += size
                    await asyncio.sleep(1)
                await wait_for(lambda: len(twilio.messages) >= sent, within=600, poll=0.1)
            finally:
                await producer.stop()
        return await lags(url), fill_s, f"{settings.scheduler.poll_interval.total_seconds() * 1000:.0f} ms"


async def run(bootstrap: str, pg_admin: str, scale: float, latency_ms: int) -> list[Row]:
    """The timers rows."""
    pending, due = max(100, round(1_000_000 * scale)), max(60, round(100_000 * scale))
    with FakeTwilio() as twilio, tempfile.TemporaryDirectory() as tmp:
        twilio.response_delay_s = latency_ms / 1000
        values, fill_s, poll = await service_lags(bootstrap, pg_admin, twilio, pending, due, Path(tmp))
    label = f"timers: {pending:,} pending, {len(values):,} due over 60 s (scale {scale}; issue: 1 M / 100 k)"
    return [
        Row(f"{label}: lag p50", f"poll {poll}", f"{percentile(values, 0.5):.2f} s", "-", "(p99 target only)"),
        Row(f"{label}: lag p99", f"poll {poll}", f"{percentile(values, 0.99):.2f} s", "-", "< 2 s (goal < 1 s)"),
        Row(f"timers: time to store {pending:,} idle carts' steps", "-", f"{fill_s:.0f} s", "-", "-"),
    ]


def main() -> None:
    """Run the timers bench alone on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    async def go() -> None:
        with EmbeddedBroker() as broker:
            print_rows(await run(broker.bootstrap_servers, args.postgres_url, args.scale, args.latency_ms))

    asyncio.run(go())


if __name__ == "__main__":
    main()

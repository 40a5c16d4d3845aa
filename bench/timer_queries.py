"""Timer queries: the idle-cart sweep and the due-step claim at 10 k and at 1 M pending timers (PostgreSQL).

The end-to-end timers bench cannot reach the issue's size here (100 k coming due within a minute needs 1 666
sends/s); this one checks the part that must not grow with the number of pending timers: the two queries the
scheduler runs on every poll. Rows are inserted directly with SQL (the schema is the migration's), the table
statistics refreshed, then each query is timed as the scheduler runs it (``cart_rows.claim_idle_carts`` with
its limit of 500, ``step_rows.claim_due`` with the default claim batch of 100), in a transaction rolled back so
every run sees the same rows. Each size has the same due share (``--due``, default 1 000 carts and steps, one
step in 50 already claimed by a live worker) plus history (as many sent steps and abandoned or ordered carts
as pending ones): only the pending count changes.

    python -m bench.timer_queries [--sizes 10000,1000000] [--due 1000] [--explain]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

from bench.common import DEFAULT_PG, Row, postgres_database, print_rows
from recovery.journeys import cart_rows
from recovery.states import StepStatus
from recovery.steps import step_rows
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import carts, steps, workers

DUE = 1000
RUNS = 15
SWEEP_LIMIT = 500  # as recovery.steps.scheduler
CLAIM_LIMIT = 100  # scheduler.claim_batch default
LEASE = timedelta(minutes=2)
DEAD_AFTER = timedelta(seconds=5)
WORKER = "bench-worker"

# Pending timers: idle carts whose abandon_at is ahead, and 30-day reminder steps (spread over 30 days).
_PENDING_CARTS = """
INSERT INTO carts (cart_id, store, customer_key, item_count, first_event_at, last_event_at, abandon_at)
SELECT 'idle-' || i, 'fr', 'cust-' || i, 1, :now, :now, :now + interval '1 hour' + (i % 43200) * interval '1 minute'
FROM generate_series(:start, :stop - 1) AS i
"""
_PENDING_STEPS = """
INSERT INTO steps (step_id, journey_id, cart_id, name, position, channel, due_at, status, attempts, updated_at)
SELECT 'j' || i || ':' || 'reminder', 'j' || i, 'c' || i, 'reminder', 0, 'email',
       :now + interval '1 hour' + (i % 43200) * interval '1 minute', 'pending', 0, :now
FROM generate_series(:start, :stop - 1) AS i
"""
# History the queries must skip: abandoned (timer cleared) and ordered carts, sent steps.
_HISTORY_CARTS = """
INSERT INTO carts (cart_id, store, customer_key, item_count, first_event_at, last_event_at, abandoned_at,
                   ordered_at)
SELECT 'old-' || i, 'fr', 'cust-' || i, 1, :now - interval '2 days', :now - interval '2 days',
       :now - interval '1 day', CASE WHEN i % 10 = 0 THEN :now END
FROM generate_series(:start, :stop - 1) AS i
"""
_HISTORY_STEPS = """
INSERT INTO steps (step_id, journey_id, cart_id, name, position, channel, due_at, status, attempts, updated_at)
SELECT 'h' || i || ':' || 'reminder', 'h' || i, 'c' || i, 'reminder', 0, 'email',
       :now - (i % 43200) * interval '1 minute', 'sent', 1, :now
FROM generate_series(:start, :stop - 1) AS i
"""
# The due share: carts idle past their timer, steps due within the last minute, a few live claims.
_DUE_CARTS = """
INSERT INTO carts (cart_id, store, customer_key, item_count, first_event_at, last_event_at, abandon_at)
SELECT 'due-' || i, 'fr', 'cust-due-' || i, 1, :now, :now, :now - (i % 60) * interval '1 second'
FROM generate_series(0, :due - 1) AS i
"""
_DUE_STEPS = """
INSERT INTO steps (step_id, journey_id, cart_id, name, position, channel, due_at, status, attempts, updated_at,
                   claimed_by, claimed_at)
SELECT 'd' || i || ':' || 'sms', 'd' || i, 'due-' || i, 'sms', 0, 'sms', :now - (i % 60) * interval '1 second',
       CASE WHEN i % 50 = 0 THEN 'claimed' ELSE 'pending' END, 0, :now,
       CASE WHEN i % 50 = 0 THEN :worker END, CASE WHEN i % 50 = 0 THEN :now END
FROM generate_series(0, :due - 1) AS i
"""


async def fill(engine: AsyncEngine, now: datetime, start: int, stop: int, *, due: int) -> None:
    """Add pending timers ``start``..``stop`` (and as much history); ``due`` carts and steps due (0: none)."""
    async with engine.begin() as conn:
        values = {"now": now, "start": start, "stop": stop}
        for statement in (_PENDING_CARTS, _PENDING_STEPS, _HISTORY_CARTS, _HISTORY_STEPS):
            await conn.execute(_typed(statement), values)
        if due:
            await conn.execute(_typed(_DUE_CARTS), {"now": now, "due": due})
            await conn.execute(_typed(_DUE_STEPS), {"now": now, "due": due, "worker": WORKER})
            await conn.execute(
                _typed("INSERT INTO workers (worker_id, heartbeat_at, started_at) VALUES (:worker, :now, :now)"),
                {"worker": WORKER, "now": now},
            )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE carts"))
        await conn.execute(text("VACUUM ANALYZE steps"))


def _typed(sql: str) -> TextClause:
    """``sql`` with its parameters cast: asyncpg cannot infer one type for ``:now`` used in several places."""
    for name, type_ in (("now", "timestamptz"), ("start", "integer"), ("stop", "integer"), ("due", "integer")):
        sql = sql.replace(f":{name}", f"CAST(:{name} AS {type_})")
    return text(sql)


async def timed(engine: AsyncEngine, query: Callable[[AsyncConnection], Awaitable[int]]) -> float:
    """Median milliseconds of ``query`` (each run rolled back, so all see the same rows)."""
    times = []
    for _ in range(RUNS):
        async with engine.connect() as conn:
            transaction = await conn.begin()
            started = time.perf_counter()
            found = await query(conn)
            times.append((time.perf_counter() - started) * 1000)
            await transaction.rollback()
        if not found:
            raise RuntimeError("the query claimed nothing: the bench data is wrong")
    return statistics.median(times)


async def explain(engine: AsyncEngine, now: datetime) -> None:
    """Print the plans PostgreSQL picks for both claims (the SQL as SQLAlchemy renders it)."""
    async with engine.connect() as conn:
        for label, sql in _rendered_claims(conn, now):
            print(f"-- {label}")
            result = await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))
            print("\n".join(row[0] for row in result))
        await conn.rollback()


def _rendered_claims(conn: AsyncConnection, now: datetime) -> list[tuple[str, str]]:
    """The two SELECTs with literal parameters (PostgreSQL EXPLAIN cannot take bound ones here)."""
    sweep = (
        select(carts.c.cart_id)
        .where(carts.c.abandon_at <= now, carts.c.ordered_at.is_(None))
        .order_by(carts.c.abandon_at)
        .limit(SWEEP_LIMIT)
        .with_for_update(skip_locked=True)
    )
    dead = select(workers.c.worker_id).where(
        workers.c.heartbeat_at <= now - DEAD_AFTER, workers.c.worker_id != "other-worker"
    )
    claim = (
        select(steps.c.step_id)
        .where(
            or_(
                and_(steps.c.status == StepStatus.PENDING, steps.c.due_at <= now),
                and_(steps.c.status == StepStatus.CLAIMED, steps.c.claimed_at <= now - LEASE),
                and_(steps.c.status == StepStatus.CLAIMED, steps.c.claimed_by.in_(dead)),
            )
        )
        .order_by(steps.c.due_at)
        .limit(CLAIM_LIMIT)
        .with_for_update(skip_locked=True)
    )
    literal = {"literal_binds": True}
    return [
        ("idle-cart sweep", str(sweep.compile(dialect=conn.dialect, compile_kwargs=literal))),
        ("due-step claim", str(claim.compile(dialect=conn.dialect, compile_kwargs=literal))),
    ]


async def measure(pg_admin: str, sizes: list[int], due: int, show_plans: bool) -> list[tuple[int, float, float]]:
    """(pending, sweep ms, claim ms) for each size, growing one database."""
    found = []
    now = datetime.now(UTC)
    async with postgres_database(pg_admin) as url:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            done = 0
            for size in sorted(sizes):
                await fill(engine, now, done, size, due=due if done == 0 else 0)
                done = size

                async def sweep(conn: AsyncConnection) -> int:
                    return len(await cart_rows.claim_idle_carts(conn, now, limit=SWEEP_LIMIT))

                async def claim(conn: AsyncConnection) -> int:
                    return len(
                        await step_rows.claim_due(
                            conn, now=now, worker="other-worker", limit=CLAIM_LIMIT, lease=LEASE, dead_after=DEAD_AFTER
                        )
                    )

                found.append((size, await timed(engine, sweep), await timed(engine, claim)))
                if show_plans:
                    print(f"=== {size:,} pending")
                    await explain(engine, now)
        finally:
            await engine.dispose()
    return found


def rows(found: list[tuple[int, float, float]], due: int) -> list[Row]:
    """Both queries at the smallest size (baseline) and at each larger one."""
    (base, base_sweep, base_claim), *rest = found
    out = []
    for size, sweep_ms, claim_ms in rest:
        for name, base_ms, value in (
            ("idle-cart sweep", base_sweep, sweep_ms),
            ("due-step claim", base_claim, claim_ms),
        ):
            out.append(
                Row(
                    f"timers: {name} query, {size:,} pending ({due:,} due)",
                    f"{base_ms:.1f} ms @ {base:,} pending",
                    f"{value:.1f} ms",
                    f"{value / base_ms:.2f}x",
                    "flat (index on the due time)",
                )
            )
    return out


async def measure_rows(pg_admin: str, sizes: list[int], due: int = DUE) -> list[Row]:
    """The bench's rows for ``bench.run_all``."""
    return rows(await measure(pg_admin, sizes, due, show_plans=False), due)


def main() -> None:
    """Run the timer-query bench."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="pending timers, comma-separated")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--due", type=int, default=DUE, help="carts and steps already due (the backlog)")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of both claims")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if len(sizes) < 2:
        parser.error("--sizes needs at least two sizes: the smallest is the baseline")
    print_rows(rows(asyncio.run(measure(args.postgres_url, sizes, args.due, args.explain)), args.due))


if __name__ == "__main__":
    main()

"""Send slots shared by replicas: the pure maths, and two pacers on one timeline kept without a database."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from recovery.channels.rate import ChannelRates
from recovery.channels.rate_shared import RETRY_AFTER_S, SharedPace
from recovery.channels.slots import Slots, block_cap, grace, next_block


def test_slots_are_used_one_at_a_time_at_their_time() -> None:
    slots = Slots(first=10.0, interval=0.5, left=3)
    taken, slots = slots.take(9.9, late=0.5)
    assert not taken and slots.wait(9.9, late=0.5) == pytest.approx(0.1)
    results = []
    for now in (10.0, 10.0, 10.5, 11.0, 11.0):
        taken, slots = slots.take(now, late=0.5)
        results.append(taken)
    assert results == [True, False, True, True, False]
    assert slots.left == 0 and slots.wait(11.0, late=0.5) is None


def test_slots_passed_unused_are_dropped_not_sent_at_once() -> None:
    """A replica that fell behind by 2 s at 10/s sends one now, not the 20 it missed."""
    slots = Slots(first=0.0, interval=0.1, left=30)
    sent = 0
    while True:
        taken, slots = slots.take(2.0, late=0.1)
        if not taken:
            break
        sent += 1
    assert sent == 2  # the slot at 1.9 (within its grace) and the one at 2.0
    assert (slots.dropped, slots.left) == (19, 9)


@pytest.mark.parametrize(("rate", "cap"), [(0.2, 1), (1.0, 1), (4.0, 2), (20.0, 10), (1000.0, 50)])
def test_a_block_spans_at_most_half_a_second_of_slots(rate: float, cap: int) -> None:
    assert block_cap(rate) == cap


def test_blocks_grow_while_used_and_shrink_once_slots_go_unused() -> None:
    sizes = [1]
    for _ in range(5):
        sizes.append(next_block(sizes[-1], dropped=0, cap=10))
    assert sizes == [1, 2, 4, 8, 10, 10]
    assert next_block(10, dropped=3, cap=10) == 1
    assert (grace(0.01), grace(1.0)) == (0.1, 1.0)


class Timeline:
    """The database's row, kept in memory: what ``rate_shared``'s upsert does, on a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.next_free: dict[str, float] = {}
        self.calls = 0

    def clock(self) -> float:
        return self.now

    async def reserve(self, channel: str, count: int, span: float) -> float:
        self.calls += 1
        start = max(self.next_free.get(channel, self.now), self.now)
        self.next_free[channel] = start + span
        return start - self.now


async def test_two_replicas_on_one_timeline_send_no_faster_than_the_rate_together() -> None:
    timeline, rate, seconds = Timeline(), 20.0, 5.0
    replicas = [SharedPace("sms", rate, timeline.reserve, timeline.clock) for _ in range(2)]
    sent: list[tuple[int, float]] = []
    while timeline.now < seconds:
        for index, pace in enumerate(replicas):
            while pace.take(timeline.now):  # each replica always has steps waiting, as on a sale day
                sent.append((index, timeline.now))
        for _ in range(3):
            await asyncio.sleep(0)  # the reservations in flight come back
        timeline.now = round(timeline.now + 0.003, 6)
    times = [at for _, at in sent]
    assert len(times) <= rate * seconds + 1
    assert len(times) >= 0.9 * rate * seconds  # and the rate is used, not wasted between the replicas
    assert {index for index, _ in sent} == {0, 1}
    for start in times:  # any second: at most the rate, plus the slots still within their grace
        assert sum(start <= at < start + 1.0 for at in times) <= rate * (1.0 + grace(1 / rate)) + 1
    assert timeline.calls < len(times) / 3  # blocks of slots, not a reservation per send


async def test_unlimited_channels_never_reserve_and_sqlite_keeps_buckets() -> None:
    postgres = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # never connected
    sqlite = create_async_engine("sqlite+aiosqlite://")
    try:
        rates = ChannelRates({"sms": 1.0}, 0.0, engine=postgres)
        assert rates.shared and all(rates.take("email", 0.0) for _ in range(1000))
        assert (rates.wait("email", 0.0), rates.rate("email"), rates.limited("email")) == (0.0, None, False)
        assert not ChannelRates({}, 0.0, engine=postgres).shared
        local = ChannelRates({"sms": 1.0}, 0.0, engine=sqlite)
        assert not local.shared and [local.take("sms", 0.0), local.take("sms", 0.0)] == [True, False]
    finally:
        await postgres.dispose()
        await sqlite.dispose()


async def test_a_failed_reservation_holds_the_channel_and_is_retried_later(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]

    async def unreachable(channel: str, count: int, span: float) -> float:
        raise ConnectionRefusedError

    pace = SharedPace("sms", 5.0, unreachable, lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert not pace.take(now[0])
            await asyncio.sleep(0)
        assert pace.wait(now[0]) == pytest.approx(RETRY_AFTER_S)
        now[0] += RETRY_AFTER_S
        assert not pace.take(now[0])
        await asyncio.sleep(0)
    assert [r.message for r in caplog.records].count("send slots not reserved; retrying") == 1

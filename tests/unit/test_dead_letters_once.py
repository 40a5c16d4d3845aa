"""A batch retried after an outage does not publish its dead letters a second time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.clock import SystemClock
from recovery.consent.authority import AddressKeys
from recovery.ingest.batch import BatchProcessor
from tests.unit.test_poison_input import BASE


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str | None, bytes]] = []

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
        self.sent.extend(messages)


async def test_a_retried_batch_dead_letters_each_bad_record_once() -> None:
    dead = RecordingDeadLetters()
    processor = BatchProcessor(
        engine=None,  # type: ignore[arg-type]  # the writes are replaced below: no database needed
        rules=None,  # type: ignore[arg-type]
        clock=SystemClock(),
        dead_letters=dead,
        dead_letter_topic="dlq",
        addresses=AddressKeys((b"k" * 32,)),
    )
    calls = 0

    async def write(pairs: Sequence[Any]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("database unreachable")
        return {"duplicates": 0, "applied": len(pairs), "journeys_started": 0, "journeys_ended": 0}

    processor._apply_pairs = write  # type: ignore[method-assign]
    records = [
        FakeRecord("cart", 0, 1, b"k", json.dumps(BASE).encode()),
        FakeRecord("cart", 0, 2, b"k", b"not json"),
        FakeRecord("cart", 0, 3, b"k", b"[" * 5000),
    ]
    with pytest.raises(ConnectionRefusedError):
        await processor.process(records)
    report = await processor.process(records)
    assert report.applied == 1 and report.rejected == 2
    assert sorted(json.loads(value)["offset"] for _, value in dead.sent) == [2, 3]

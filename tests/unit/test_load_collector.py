"""The garbage collector during ingest (ingest/collector.py): paused in a busy spell, yet cyclic garbage made
during a spell that never ends is reclaimed on schedule, and the collector runs again once ingest is idle."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from recovery.ingest.collector import LoadCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def collector_back_on() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()


def cyclic_garbage() -> weakref.ref[Node]:
    node = Node()
    return weakref.ref(node)  # the only strong reference left is the cycle


def test_a_busy_spell_pauses_the_collector_and_idle_resumes_it() -> None:
    gc.enable()
    collector = LoadCollector(clock=Clock())
    collector.busy()
    assert not gc.isenabled()
    collector.idle()
    assert gc.isenabled()


def test_cyclic_garbage_of_an_endless_spell_is_reclaimed_on_schedule() -> None:
    """Under a load that never pauses, garbage cycles go at the next catch-up, not never."""
    gc.enable()
    clock = Clock()
    collector = LoadCollector(young_every_s=1.0, full_every_s=60.0, clock=clock)
    collector.busy()
    garbage = cyclic_garbage()
    collector.batch_done()
    assert garbage() is not None, "paused: nothing collected before the catch-up is due"
    clock.now = 1.5
    collector.batch_done()
    assert garbage() is None
    assert not gc.isenabled(), "still busy: the collector stays paused between catch-ups"


def test_a_collector_already_off_is_left_off() -> None:
    """Whoever turned the collector off (a host application, a test) keeps it off."""
    gc.disable()
    collector = LoadCollector(clock=Clock())
    collector.busy()
    collector.idle()
    assert not gc.isenabled()

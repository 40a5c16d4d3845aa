"""Decode CPU per event, in process: the issue's mix through the service's decoder, against its floors.

Times (``time.process_time``, best of ``--repeat``) decoding every event of the mix (``make_mix``, five events
per shopper) three ways: the service's ``decode_record`` with its caches emptied first (each shopper's
address and number seen for the first time once, as in the bench) and with them warm, pydantic's
``validate_json`` on the same bytes without the service's Python checks, and ``json.loads`` (the floor of
any decoder that still has to build Python objects).

    python -m bench.ingest_decode [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from bench.ingest_mix import make_mix
from recovery import events
from recovery.ingest.poison import decode_record


def _caches(*modules: ModuleType) -> list[Any]:
    """Every remembered verdict of the decoder's rules (emails, phones, URLs)."""
    return [value for module in modules for value in vars(module).values() if hasattr(value, "cache_clear")]


def per_event(raws: list[bytes], decode: Callable[[bytes], object], repeat: int, before: Callable[[], None]) -> float:
    """Best CPU µs per event over ``repeat`` passes, ``before`` run ahead of each pass (untimed)."""
    best = float("inf")
    for _ in range(repeat):
        before()
        start = time.process_time()
        for raw in raws:
            decode(raw)
        best = min(best, time.process_time() - start)
    return best * 1e6 / len(raws)


def main(options: argparse.Namespace) -> None:
    raws = [event.raw for event in make_mix(options.events, max(1, options.events // 5))]
    modules = [events]
    try:  # the rules' own module since issue 25; absent in an older checkout this script may time
        from recovery import event_fields

        modules.append(event_fields)
    except ImportError:
        pass
    caches = [cache for cache in _caches(*modules) if getattr(cache, "__name__", "") != "_checked_adapter"]

    def cold() -> None:
        for cache in caches:
            cache.cache_clear()

    def decode(raw: bytes) -> object:
        return decode_record(raw, max_bytes=1_000_000)

    published = events._ADAPTER.validate_json
    figures = {
        "decode_record, first sight of each shopper": per_event(raws, decode, options.repeat, cold),
        "decode_record, caches warm": per_event(raws, decode, options.repeat, lambda: None),
        "the published TypeAdapter's validate_json alone": per_event(raws, published, options.repeat, lambda: None),
        "json.loads": per_event(raws, json.loads, options.repeat, lambda: None),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.1f} µs/event")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args())

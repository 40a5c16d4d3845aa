"""Publishing events from JSONL to the input topics, keyed by cart id (``recovery replay``, the demo)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from recovery.ingest.kafka import Producer
from recovery.settings import TopicsSettings

_PREFIX_ROLE = {
    "cart": "cart",
    "checkout": "cart",
    "payment": "payment",
    "order": "order",
    "consent": "consent",
}


def route(line: bytes, topics: TopicsSettings) -> tuple[str, str | None]:
    """The topic and key of one raw event: by its type's prefix; unparseable lines go to the cart topic."""
    try:
        document = json.loads(line)
    except (ValueError, RecursionError):  # deeply nested input must not stop a replay
        return topics.cart.name, None
    if not isinstance(document, dict):
        return topics.cart.name, None
    prefix = str(document.get("type", "")).split(".", 1)[0]
    role = _PREFIX_ROLE.get(prefix, "cart")
    key = document.get("cart_id")
    if key is None and isinstance(document.get("customer"), dict):
        key = document["customer"].get("id")
    return getattr(topics, role).name, str(key) if key is not None else None


def read_lines(path: Path) -> list[bytes]:
    """Non-blank lines of a JSONL file, as bytes."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


async def publish_lines(
    producer: Producer,
    lines: Iterable[bytes],
    topics: TopicsSettings,
    *,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish raw lines in chunks, each chunk awaited; return how many were published."""
    sent = 0
    pending: dict[str, list[tuple[str | None, bytes]]] = {}
    count = 0

    async def flush() -> None:
        nonlocal count, sent
        for topic, messages in pending.items():
            await producer.send_many(topic, messages)
        pending.clear()
        sent += count
        if progress is not None:
            progress(count)
        count = 0

    for line in lines:
        topic, key = route(line, topics)
        pending.setdefault(topic, []).append((key, line))
        count += 1
        if count >= chunk:
            await flush()
    await flush()
    return sent

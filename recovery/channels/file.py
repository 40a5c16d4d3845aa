"""A local sink that "sends" by appending to a JSONL file: the demo's and the tests' provider.

Each line is fsynced before ``send`` returns, so after a crash ``lookup`` can tell for sure whether a
message went out, exactly as a real provider lookup would.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.states import ChannelName


class LocalOutboxChannel:
    """Writes each message as one JSON line to ``<directory>/<channel>.jsonl``."""

    def __init__(self, directory: Path, name: ChannelName) -> None:
        self.name = name
        self.path = directory / f"{name.value}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()

    async def send(self, message: OutgoingMessage) -> Delivery:
        # The same JSON as the message row keeps while sending (readers of earlier outbox files see no change).
        line = json.dumps(message.to_content(), ensure_ascii=False, default=str) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)
        return Delivery(provider_id=f"local-{message.message_id}")

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        with self.path.open("ab+") as sink:
            size = sink.seek(0, os.SEEK_END)
            if size:
                sink.seek(size - 1)
                if sink.read(1) != b"\n":
                    data = b"\n" + data  # a crash cut the previous line: never glue onto it
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        found = await asyncio.to_thread(self._contains, message.message_id)
        return Delivery(provider_id=f"local-{message.message_id}") if found else None

    def _contains(self, message_id: str) -> bool:
        if not self.path.exists():
            return False
        with self.path.open(encoding="utf-8") as sink:
            for line in sink:
                if not line.endswith("\n"):
                    continue  # a line cut by a crash was never "sent"
                try:
                    if json.loads(line).get("message_id") == message_id:
                        return True
                except ValueError:
                    continue
        return False

    async def aclose(self) -> None:
        return None

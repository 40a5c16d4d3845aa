"""Helpdesk hand-off: each new callback task is POSTed to ``callbacks.webhook_url`` (Freshdesk, Zendesk …).

The body is the task as JSON, signed like the discount hook: ``X-Recovery-Signature: sha256=<hex HMAC-SHA256
of the body>`` keyed with ``callbacks.webhook_secret`` (else ``security.link_secret``); ``Idempotency-Key``
is the task id. A failed POST is retried with exponential backoff up to ``callbacks.webhook_attempts``;
a POST that succeeded is never repeated: replicas take a task by a conditional UPDATE before posting.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.backoff import exponential
from recovery.clock import Clock
from recovery.desk.task_rows import task_document
from recovery.store.schema import callback_tasks

log = logging.getLogger(__name__)
_C = callback_tasks.c
LEASE = timedelta(minutes=2)  # a replica that took a task and died: another posts it after this
RECENT = timedelta(days=1)  # turning the webhook on later does not flood the helpdesk with old tasks


def signature(body: bytes, secret: str) -> str:
    """The ``X-Recovery-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(
    attempt: int, *, base: timedelta = timedelta(seconds=5), cap: timedelta = timedelta(minutes=30)
) -> timedelta:
    """Delay before try ``attempt + 1``: 5 s, 10 s, 20 s … at most 30 minutes."""
    return exponential(attempt, base=base, cap=cap)


async def _take(conn: AsyncConnection, now: datetime, attempts: int, limit: int) -> list[str]:
    """Tasks whose webhook is due, each taken for ``LEASE`` so no other replica posts it meanwhile."""
    due = and_(
        _C.webhook_sent_at.is_(None),
        _C.webhook_next_at.is_not(None),
        _C.webhook_next_at <= now,
        _C.webhook_attempts < attempts,
        _C.created_at >= now - RECENT,
    )
    candidates = (await conn.execute(select(_C.task_id).where(due).order_by(_C.webhook_next_at).limit(limit))).scalars()
    taken = []
    for task_id in list(candidates):
        result = await conn.execute(
            update(callback_tasks)
            .where(_C.task_id == task_id, due)
            .values(webhook_next_at=now + LEASE, webhook_attempts=_C.webhook_attempts + 1)
            .returning(_C.task_id)
        )
        if result.first() is not None:
            taken.append(task_id)
    return taken


class WebhookSender:
    """Posts new tasks to the helpdesk; owned by the service, stopped with it."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        clock: Clock,
        url: str,
        secret: str,
        attempts: int = 8,
        poll: timedelta = timedelta(seconds=1),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._url = url
        self._secret = secret
        self._attempts = attempts
        self._poll = poll
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport)

    async def run(self, stop: asyncio.Event) -> None:
        """Post due tasks until ``stop`` is set."""
        try:
            while not stop.is_set():
                try:
                    busy = await self.tick()
                except Exception:
                    log.exception("callback webhook tick failed; retrying")
                    busy = 0
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._poll.total_seconds())
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def tick(self, limit: int = 20) -> int:
        """One pass; returns how many tasks were attempted."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            taken = await _take(conn, now, self._attempts, limit)
        for task_id in taken:
            await self._post(task_id)
        return len(taken)

    async def _post(self, task_id: str) -> None:
        async with self._engine.connect() as conn:
            document = await task_document(conn, task_id)
            attempt = await conn.scalar(select(_C.webhook_attempts).where(_C.task_id == task_id)) or 1
        body = json.dumps({"type": "callback_task.created", "task": document}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Recovery-Signature": signature(body, self._secret),
            "Idempotency-Key": task_id,
        }
        try:
            answer = await self._client.post(self._url, content=body, headers=headers)
            ok, detail = answer.is_success, f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, type(exc).__name__
        now = self._clock.now()
        async with self._engine.begin() as conn:
            if ok:
                values = {"webhook_sent_at": now, "webhook_next_at": None}
            elif attempt >= self._attempts:
                values = {"webhook_next_at": None}  # given up: the task is still in the agents' queue
            else:
                values = {"webhook_next_at": now + backoff(attempt)}
            await conn.execute(update(callback_tasks).where(_C.task_id == task_id).values(**values))
        level = logging.INFO if ok else logging.WARNING
        log.log(level, "callback webhook", extra={"task_id": task_id, "attempt": attempt, "result": detail})

"""The desk's use-cases over one engine (list, get, claim, release, complete, send-link): API and ``/agent``.

Each raises a domain error (``TaskMissing``, ``NotHolder``, ``DeskRequestError``) that the routes map to
404, 409 and 422; no route runs SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import Clock
from recovery.consent.authority import AddressKeys
from recovery.desk import claim_rows, link_rows, task_view
from recovery.desk.link_step import LINK_CHANNELS
from recovery.desk.policy import DEFAULT_POLICY, DeskPolicy
from recovery.desk.queue import CompletionError, decide_completion
from recovery.states import ChannelName


class TaskMissing(LookupError):
    """No task has this id (404)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no callback task {task_id}")
        self.detail = str(self)


class NotHolder(RuntimeError):
    """The caller may not change the task: someone else holds it, or nobody does (409)."""

    def __init__(self, detail: str, holder: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.holder = holder


class DeskRequestError(ValueError):
    """A request the desk cannot apply: bad outcome, no consent or contact (422)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _raise_refused(refused: claim_rows.Refused | None) -> None:
    if refused is not None:
        raise NotHolder(refused.detail, refused.holder)


class DeskService:
    """The desk's operations over one engine; shared by the API and the ``/agent`` page."""

    def __init__(
        self, *, engine: AsyncEngine, clock: Clock, addresses: AddressKeys, policy: DeskPolicy = DEFAULT_POLICY
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.addresses = addresses  # opt-outs (do_not_call) and consent reads are keyed by the address hash too
        self.policy = policy

    async def list(self, state: str, limit: int) -> list[dict[str, Any]]:
        """Tasks of one status, in queue order; lapsed claims go back to the queue first."""
        now = self.clock.now()
        async with self.engine.connect() as conn:
            lapsed = await claim_rows.any_lapsed(conn, now)
        if lapsed:  # a write only when there is something to return (the page polls every few seconds)
            async with self.engine.begin() as conn:
                await claim_rows.expire_claims(conn, now, self.policy.view)
        async with self.engine.connect() as conn:
            return await task_view.list_tasks(conn, state, limit, self.clock.now(), self.policy.view)

    async def get(self, task_id: str) -> dict[str, Any]:
        """One task; ``TaskMissing`` when unknown."""
        async with self.engine.connect() as conn:
            found = await task_view.get_task(conn, task_id, self.clock.now(), self.policy.view)
        if found is None:
            raise TaskMissing(task_id)
        return found

    async def claim(self, task_id: str, agent: str) -> dict[str, Any]:
        """Claim for ``agent``; ``NotHolder`` names the holder."""
        try:
            async with self.engine.begin() as conn:
                refused = await claim_rows.claim(
                    conn, task_id, agent, self.clock.now(), self.policy.claim_for, self.policy.view
                )
        except claim_rows.TaskNotFound as exc:
            raise TaskMissing(task_id) from exc
        _raise_refused(refused)
        return await self.get(task_id)

    async def release(self, task_id: str, agent: str) -> dict[str, Any]:
        """Give the task back."""
        try:
            async with self.engine.begin() as conn:
                refused = await claim_rows.release(conn, task_id, agent, self.clock.now(), self.policy.view)
        except claim_rows.TaskNotFound as exc:
            raise TaskMissing(task_id) from exc
        _raise_refused(refused)
        return await self.get(task_id)

    async def complete(
        self, task_id: str, agent: str, outcome: str, *, note: str | None = None, call_back_at: datetime | None = None
    ) -> dict[str, Any]:
        """Record an outcome; ``DeskRequestError`` for a bad one."""
        now = self.clock.now()
        try:
            completion = decide_completion(outcome, call_back_at, now)
        except CompletionError as exc:
            raise DeskRequestError(str(exc)) from exc
        try:
            async with self.engine.begin() as conn:
                refused = await claim_rows.complete(
                    conn, task_id, agent, completion, now, note, addresses=self.addresses, policy=self.policy
                )
        except claim_rows.TaskNotFound as exc:
            raise TaskMissing(task_id) from exc
        _raise_refused(refused)
        return await self.get(task_id)

    async def send_link(self, task_id: str, agent: str, channel: str) -> str:
        """Send the shopper the restore link now (through the pipeline); the scheduled step's name."""
        if channel not in {c.value for c in LINK_CHANNELS}:
            raise DeskRequestError(f"channel {channel!r} is not one of sms, email")
        try:
            async with self.engine.begin() as conn:
                scheduled = await link_rows.schedule_link(
                    conn,
                    task_id,
                    agent,
                    ChannelName(channel),
                    self.clock.now(),
                    configured=ChannelName(channel) in self.policy.link_channels,
                    addresses=self.addresses,
                )
        except link_rows.LinkTaskMissing as exc:
            raise TaskMissing(task_id) from exc
        if isinstance(scheduled, link_rows.LinkRefused):
            if scheduled.conflict:
                raise NotHolder(scheduled.detail, scheduled.holder)
            raise DeskRequestError(scheduled.detail)
        return scheduled

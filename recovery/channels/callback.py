"""Callback offers: "we can call you back". Direct mode creates an agent task at once; offer mode sends
the offer (by SMS, through the SMS channel) and the task is created when the shopper accepts.
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.clock import Clock
from recovery.desk.policy import DEFAULT_POLICY, DeskPolicy
from recovery.desk.queue import TaskReason
from recovery.desk.task_rows import NewTask, create_task, task_exists, task_id_for
from recovery.states import ChannelName, StepMode


class CallbackChannel:
    """The ``callback`` channel: a task for agents, or an offer sent through ``offer_channel``."""

    name = ChannelName.CALLBACK

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        clock: Clock,
        offer_channel: Channel,
        policy: DeskPolicy = DEFAULT_POLICY,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._offer = offer_channel
        self._policy = policy

    async def send(self, message: OutgoingMessage) -> Delivery:
        if message.mode != StepMode.DIRECT:
            return await self._offer.send(message)
        async with self._engine.begin() as conn:
            task_id, _new = await create_task(
                conn,
                NewTask(
                    **asdict(message.identity),
                    customer_key=message.customer_key,
                    reason=TaskReason(message.task_reason),
                ),
                self._clock.now(),
                policy=self._policy,
            )
        return Delivery(provider_id=task_id, detail={"mode": StepMode.DIRECT.value})

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        if message.mode != StepMode.DIRECT:
            return await self._offer.lookup(message)
        async with self._engine.connect() as conn:
            found = await task_exists(conn, message.message_id)
        return Delivery(provider_id=task_id_for(message.message_id)) if found else None

    async def aclose(self) -> None:
        return None  # the offer channel is owned (and closed) by whoever built it

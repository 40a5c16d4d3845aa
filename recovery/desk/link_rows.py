"""``send-link`` in the store: check the holder, the shopper's consent and address, then schedule the link.

The link is a step due now on the task's journey (``desk/link_step.py``): the scheduler fires it through the
dispatcher like any flow step, so consent, quiet hours, tracked links and attribution are the pipeline's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.consent import ledger
from recovery.consent.authority import AddressKeys, message_consent, with_ledger
from recovery.desk.link_step import PREFIX, link_step_name
from recovery.desk.queue import TaskEvent, TaskStatus
from recovery.events import is_landline
from recovery.journeys.records import CustomerState
from recovery.states import ChannelName, JourneyStatus, PublishedType, StepStatus
from recovery.store.database import signal_due
from recovery.store.outbox import enqueue, message_event
from recovery.store.schema import callback_events, callback_tasks, carts, customers, journeys, steps
from recovery.store.sql import insert_ignore

_C = callback_tasks.c
_SENDABLE_JOURNEYS = (JourneyStatus.ACTIVE.value, JourneyStatus.COMPLETED.value)


class LinkTaskMissing(LookupError):
    """No task has this id."""


@dataclass(frozen=True, kw_only=True)
class LinkRefused:
    """Why the link cannot go: ``holder`` set (or ``conflict``) means 409, otherwise 422."""

    detail: str
    conflict: bool = False
    holder: str | None = None


async def _customer(conn: AsyncConnection, customer_key: str, addresses: AddressKeys) -> CustomerState | None:
    """The shopper with the consent ledger's verdicts applied."""
    row = (await conn.execute(select(customers).where(customers.c.customer_key == customer_key))).mappings().first()
    if row is None:
        return None
    customer = CustomerState(**{name: row[name] for name in CustomerState.__dataclass_fields__})
    entries = await ledger.ledger_entries(
        conn, customer_key=customer.customer_key, email=customer.email, phone=customer.phone, addresses=addresses
    )
    return with_ledger(customer, entries)


def why_not_send(customer: CustomerState | None, channel: ChannelName) -> str | None:
    """Why the shopper cannot get the link on ``channel`` (no address, a landline, no consent); ``None``: fine."""
    address = None if customer is None else (customer.email if channel == ChannelName.EMAIL else customer.phone)
    if not address:
        return f"the shopper has no {'email address' if channel == ChannelName.EMAIL else 'mobile number'}"
    if channel == ChannelName.SMS and is_landline(address):
        return "the shopper's number is a landline: it cannot receive an SMS"
    if message_consent(customer, channel, None) is not True:
        return f"the shopper has not consented to {channel.value} messages"
    return None


async def _held(conn: AsyncConnection, task_id: str, agent: str, now: datetime) -> LinkRefused | None:
    """409 unless ``agent`` holds the task now."""
    row = (await conn.execute(select(_C.status, _C.claimed_by, _C.claimed_until).where(_C.task_id == task_id))).first()
    if row is None:
        raise LinkTaskMissing(task_id)
    held = row.status == TaskStatus.CLAIMED.value and row.claimed_until is not None and row.claimed_until >= now
    if held and row.claimed_by == agent:
        return None
    if held:
        return LinkRefused(detail=f"{row.claimed_by} holds this task", conflict=True, holder=row.claimed_by)
    return LinkRefused(detail="you do not hold this task: claim it first", conflict=True)


async def _insert_link_step(conn: AsyncConnection, task: Any, channel: ChannelName, now: datetime) -> str:
    """A pending step due now on the task's journey, announced as ``step.scheduled``; its name."""
    sent_before = await conn.scalar(
        select(func.count()).where(steps.c.journey_id == task.journey_id, steps.c.name.like(f"{PREFIX}%"))
    )
    name = link_step_name(channel, int(sent_before or 0) + 1)
    await insert_ignore(
        conn,
        steps,
        [
            {
                "step_id": f"{task.journey_id}:{name}",
                "journey_id": task.journey_id,
                "cart_id": task.cart_id,
                "name": name,
                "position": 1000 + int(sent_before or 0),  # after every flow step
                "channel": channel.value,
                "due_at": now,
                "status": StepStatus.PENDING.value,
                "attempts": 0,
                "updated_at": now,
            }
        ],
    )
    event = message_event(
        type_=PublishedType.STEP_SCHEDULED,
        now=now,
        cart_id=task.cart_id,
        journey_id=task.journey_id,
        flow=task.flow,
        step=name,
        channel=channel.value,
    )
    await enqueue(conn, [event])
    return name


async def schedule_link(
    conn: AsyncConnection,
    task_id: str,
    agent: str,
    channel: ChannelName,
    now: datetime,
    *,
    addresses: AddressKeys,
    configured: bool = True,
) -> LinkRefused | str:
    """Schedule the restore link to the task's shopper now; the step's name, or why not.

    ``configured``: the channel has its provider settings (else the message could only fail).
    """
    refused = await _held(conn, task_id, agent, now)
    if refused is not None:
        return refused
    task = (
        await conn.execute(
            select(_C.journey_id, _C.cart_id, _C.customer_key, journeys.c.flow, journeys.c.status, carts.c.cart)
            .select_from(
                callback_tasks.outerjoin(journeys, journeys.c.journey_id == _C.journey_id).outerjoin(
                    carts, carts.c.cart_id == _C.cart_id
                )
            )
            .where(_C.task_id == task_id)
        )
    ).one()
    reason = why_not_send(await _customer(conn, task.customer_key, addresses), channel)
    if reason is None and not (task.cart or {}).get("restore_url"):
        reason = "the cart has no restore link to send"
    if reason is None and task.status not in _SENDABLE_JOURNEYS:
        reason = "the shopper's journey has ended (an order, or new activity on the cart)"
    if reason is None and not configured:
        reason = f"the {channel.value} channel is not configured on this service"
    if reason is not None:
        return LinkRefused(detail=reason)
    name = await _insert_link_step(conn, task, channel, now)
    audit = {"task_id": task_id, "kind": TaskEvent.LINK_SENT.value, "agent": agent, "note": name, "at": now}
    await conn.execute(callback_events.insert().values(**audit))
    await signal_due(conn, [now], now)  # due now: the scheduler wakes without waiting for its next poll
    return name

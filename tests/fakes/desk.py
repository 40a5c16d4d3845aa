"""Seeding the agents' desk in a real database: a shopper, a cart, a sent message and its callback task."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.desk.queue import TaskReason
from recovery.desk.task_rows import NewTask, create_task
from recovery.states import ChannelName
from recovery.store.schema import carts, clicks, customers, discount_codes, feedback_answers, journeys, messages

PHONE = "+33612345678"


async def seed_task(
    engine: AsyncEngine,
    now: datetime,
    *,
    cart_id: str = "cart-1",
    value: str = "320.00",
    reason: TaskReason = TaskReason.PAYMENT_FAILED,
    timezone: str = "Europe/Paris",
    due_at: datetime | None = None,
    clicked: bool = True,
) -> str:
    """A task for ``cart_id`` (customer ``cust-<cart_id>``) with one clicked email sent an hour before."""
    customer_key = f"cust-{cart_id}"
    journey_id = f"j-{cart_id}"
    snapshot: dict[str, Any] = {
        "currency": "EUR",
        "value": value,
        "items": [{"sku": "S1", "name": "Vélo cargo", "quantity": 1, "unit_price": value}],
        "restore_url": f"https://shop.example/cart/{cart_id}",
    }
    payment = {"reason": "authentication_failed"} if reason is TaskReason.PAYMENT_FAILED else None
    async with engine.begin() as conn:
        await conn.execute(
            customers.insert().values(
                customer_key=customer_key,
                phone=PHONE,
                first_name="Élodie",
                locale="fr-FR",
                timezone=timezone,
                consent_phone=True,
                updated_at=now,
            )
        )
        await conn.execute(
            carts.insert().values(
                cart_id=cart_id,
                store="default",
                customer_key=customer_key,
                cart=snapshot,
                value=Decimal(value),
                currency="EUR",
                item_count=1,
                checkout_step="payment",
                payment=payment,
                first_event_at=now - timedelta(hours=2),
                last_event_at=now - timedelta(hours=1),
            )
        )
        await conn.execute(
            journeys.insert().values(
                journey_id=journey_id,
                cart_id=cart_id,
                flow="payment_failed",
                trigger="payment.failed",
                customer_key=customer_key,
                store="default",
                status="active",
                started_at=now - timedelta(hours=1),
                trigger_event_at=now - timedelta(hours=1),
            )
        )
        sent_id = f"{journey_id}:reminder"
        await conn.execute(
            messages.insert().values(
                message_id=sent_id,
                journey_id=journey_id,
                step_id=sent_id,
                cart_id=cart_id,
                customer_key=customer_key,
                flow="payment_failed",
                step="reminder",
                channel="email",
                state="sent",
                created_at=now - timedelta(hours=1),
                sent_at=now - timedelta(hours=1),
                updated_at=now - timedelta(hours=1),
            )
        )
        if clicked:
            await conn.execute(
                clicks.insert().values(
                    message_id=sent_id,
                    journey_id=journey_id,
                    cart_id=cart_id,
                    clicked_at=now - timedelta(minutes=50),
                    user_agent_class="mobile",
                )
            )
        task_id, _ = await create_task(
            conn,
            NewTask(
                message_id=f"{journey_id}:agent_call",
                journey_id=journey_id,
                cart_id=cart_id,
                customer_key=customer_key,
                flow="payment_failed",
                step="agent_call",
                channel=ChannelName.CALLBACK,
                reason=reason,
                due_at=due_at,
            ),
            now,
        )
    return task_id


async def seed_offer(
    engine: AsyncEngine, now: datetime, *, locale: str = "fr-FR", timezone: str = "Europe/Paris"
) -> str:
    """A callback offer already texted to a shopper (cart ``cart-offer``); returns its message id."""
    message_id = "j-offer:call_offer"
    async with engine.begin() as conn:
        await conn.execute(
            customers.insert().values(
                customer_key="cust-offer",
                phone=PHONE,
                first_name="Sam",
                locale=locale,
                timezone=timezone,
                updated_at=now,
            )
        )
        await conn.execute(
            carts.insert().values(
                cart_id="cart-offer",
                store="default",
                customer_key="cust-offer",
                value=Decimal("120.00"),
                currency="EUR",
                item_count=1,
                first_event_at=now,
                last_event_at=now,
            )
        )
        await conn.execute(
            messages.insert().values(
                message_id=message_id,
                journey_id="j-offer",
                step_id=message_id,
                cart_id="cart-offer",
                customer_key="cust-offer",
                flow="abandoned_cart",
                step="call_offer",
                channel="callback",
                state="sent",
                created_at=now,
                sent_at=now,
                updated_at=now,
            )
        )
    return message_id


EMAIL = "elodie@example.com"


async def seed_shopper_context(
    engine: AsyncEngine, now: datetime, *, cart_id: str = "cart-1", sms: bool = True
) -> None:
    """What the desk shows beyond the cart for ``seed_task``'s shopper: an email (with email and SMS consent),
    an earlier order (cart ``<cart_id>-old``, 60 € a month ago), the 10 % code the journey sent, a feedback answer.
    """
    customer_key, journey_id = f"cust-{cart_id}", f"j-{cart_id}"
    async with engine.begin() as conn:
        await conn.execute(
            customers.update()
            .where(customers.c.customer_key == customer_key)
            .values(email=EMAIL, consent_email=True, consent_sms=sms)
        )
        await conn.execute(
            carts.insert().values(
                cart_id=f"{cart_id}-old",
                store="default",
                customer_key=customer_key,
                value=Decimal("60.00"),
                currency="EUR",
                item_count=1,
                first_event_at=now - timedelta(days=30, hours=1),
                last_event_at=now - timedelta(days=30),
                ordered_at=now - timedelta(days=30),
                order_id="o-old",
                order_value=Decimal("60.00"),
            )
        )
        await conn.execute(
            discount_codes.insert().values(
                code="CART-7KQ2MZ4H",
                journey_id=journey_id,
                step="offer",
                percent=10,
                expires_at=now + timedelta(days=2),
                created_at=now - timedelta(minutes=30),
            )
        )
        await conn.execute(
            feedback_answers.insert().values(
                journey_id=journey_id, cart_id=cart_id, store="default", answer="shipping_cost", answered_at=now
            )
        )

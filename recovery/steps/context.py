"""What a step's condition and template see: plain data built from the cart, customer and journey."""

from __future__ import annotations

from typing import Any

from recovery.events import Cart
from recovery.journeys.records import CartState, CustomerState, JourneyRow, guest_cart_id
from recovery.states import ChannelName


def condition_context(cart: CartState, customer: CustomerState | None, journey: JourneyRow) -> dict[str, Any]:
    """The names a ``when:`` expression and a template may use (see the README, "Flows")."""
    snapshot = Cart.model_validate(cart.cart).model_dump() if cart.cart else {"items": [], "value": 0}
    return {
        "cart": snapshot,
        "customer": {
            "id": None if guest_cart_id(journey.customer_key) is not None else journey.customer_key,
            "first_name": customer.first_name if customer else None,
            "locale": customer.locale if customer else None,
            "timezone": customer.timezone if customer else None,
            "consent": {
                "email": customer.consent_email if customer else None,
                "sms": customer.consent_sms if customer else None,
                "phone": customer.consent_phone if customer else None,
            },
        },
        "payment": cart.payment or journey.context.get("payment"),
        "checkout_step": cart.checkout_step,
        "store": cart.store,
        "journey": {
            "clicked": journey.clicked,
            "messages_sent": journey.messages_sent,
            "started_at": journey.started_at,
            # The shopper's latest "why did you leave?" answer (e.g. "shipping_cost"), or None.
            "feedback": journey.feedback,
        },
    }


def recipient_of(customer: CustomerState | None, channel: ChannelName) -> str | None:
    """The address a channel sends to: email for email, phone for SMS and callbacks."""
    if customer is None:
        return None
    return customer.email if channel == ChannelName.EMAIL else customer.phone

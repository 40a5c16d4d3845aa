"""Plain-text composition used until a step's template is rendered by ``recovery.templates``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recovery.channels.base import ChannelName
from recovery.rules import FlowStep
from recovery.store.step_rows import JourneyRow


class PlainComposer:
    """A short factual message naming the cart's value: for the local outbox and tests."""

    def compose(
        self,
        *,
        step: FlowStep,
        channel: ChannelName,
        journey: JourneyRow,
        context: Mapping[str, Any],
        message_id: str,
    ) -> tuple[str | None, str, str | None]:
        cart = context["cart"]
        text = f"[{step.template or step.name}] Your cart of {cart.get('value')} {cart.get('currency', '')} is waiting."
        subject = "Your cart is waiting" if channel == ChannelName.EMAIL else None
        return subject, text, None

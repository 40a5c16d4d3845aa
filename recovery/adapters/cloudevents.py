"""CloudEvents 1.0 (structured JSON, or binary mode with ``ce_*`` Kafka headers) to native events.

``type`` is a native type (``data`` is then a native event, completed from the envelope) or
``<format>.<platform type>`` (``data`` is that platform's payload, translated by its own adapter).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from recovery.adapters import segment, shopify, stripe, woocommerce
from recovery.adapters.base import Outcome, Rejected, Translated, type_label

FORMAT = "cloudevents"
NATIVE_TYPES = frozenset(
    {"cart.updated", "checkout.step", "payment.failed", "order.completed", "order.refunded", "consent.changed"}
)
PLATFORMS: dict[str, Callable[[Any, str | None], Outcome]] = {
    "shopify": shopify.translate,
    "stripe": stripe.translate,
    "woocommerce": woocommerce.translate,
    "segment": segment.translate,
}


def translate(document: Any) -> Outcome:
    """A structured-mode CloudEvent (the whole JSON object) as native events."""
    if not isinstance(document, dict):
        return Rejected(reason="cloudevents: body is not a JSON object")
    attributes = {key: value for key, value in document.items() if key not in ("data", "data_base64")}
    if "data" in document:
        return translate_binary(attributes, document["data"])
    if "data_base64" in document:
        try:
            data = json.loads(base64.b64decode(str(document["data_base64"]), validate=True))
        except (ValueError, binascii.Error):
            return Rejected(reason="cloudevents: field 'data_base64' is not base64 of a JSON document")
        return translate_binary(attributes, data)
    return translate_binary(attributes, None)


def translate_binary(attributes: Mapping[str, Any], data: Any) -> Outcome:
    """A CloudEvent given as attributes (``ce_*`` headers without the prefix) and its decoded ``data``."""
    for required in ("specversion", "type", "id"):
        if not attributes.get(required):
            return Rejected(reason=f"cloudevents: missing attribute '{required}'")
    if str(attributes["specversion"]) != "1.0":
        return Rejected(reason="cloudevents: attribute 'specversion' is not 1.0")
    kind = str(attributes["type"])
    if data is None:
        return Rejected(reason=f"cloudevents {type_label(kind)}: missing field 'data'")
    if kind in NATIVE_TYPES:
        return _native(attributes, kind, data)
    platform, _, platform_type = kind.partition(".")
    adapter = PLATFORMS.get(platform)
    if adapter is None or not platform_type:
        known = ", ".join(sorted(PLATFORMS))
        return Rejected(
            reason=f"cloudevents: attribute 'type' is neither a native type nor '<format>.<type>' ({known})"
        )
    if platform == "stripe" and isinstance(data, dict) and "data" not in data:
        data = _stripe_event(attributes, platform_type, data)
    return adapter(data, platform_type)


def _stripe_event(attributes: Mapping[str, Any], kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A bare Stripe object as the event Stripe would send: the CloudEvent's id, type and time."""
    created = None
    with contextlib.suppress(ValueError):  # no usable time: the adapter then names the field 'created'
        created = int(datetime.fromisoformat(str(attributes.get("time"))).timestamp())
    return {"id": str(attributes["id"]), "type": kind, "created": created, "data": {"object": obj}}


def _native(attributes: Mapping[str, Any], kind: str, data: Any) -> Outcome:
    """A native event in ``data``: the envelope fills what it leaves out (``data`` wins, subject names the cart)."""
    if not isinstance(data, dict):
        return Rejected(reason=f"cloudevents {kind}: field 'data' is not a JSON object")
    event = dict(data)
    event.setdefault("type", kind)
    event.setdefault("id", str(attributes["id"]))
    if not event.get("occurred_at") and attributes.get("time"):
        event["occurred_at"] = attributes["time"]
    if attributes.get("subject"):
        event["cart_id"] = str(attributes["subject"])
    return Translated(events=(event,))

"""One Kafka record (or webhook body) of a given input format to native events: the single entry point.

Kafka records and HTTP webhooks both come through here, so a format maps the same way on either path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from recovery.adapters import cloudevents, segment, shopify, stripe, woocommerce
from recovery.adapters.base import Outcome, Rejected

PLATFORM_FORMATS = frozenset({"shopify", "stripe", "woocommerce", "segment"})
FORMATS = frozenset({"native", "cloudevents"}) | PLATFORM_FORMATS
# Where a Kafka record may say its platform topic (the webhook header names, lower case, or plain ``topic``).
TOPIC_HEADERS = {
    "shopify": ("x-shopify-topic", "topic"),
    "woocommerce": ("x-wc-webhook-topic", "topic"),
}


def header_map(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka record headers as text, names lower-cased (a header that is not UTF-8 is left out)."""
    found: dict[str, str] = {}
    for name, value in headers or ():
        if value is None:
            continue
        try:
            found[name.lower()] = value.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return found


def translate_payload(format_: str, payload: Any, topic: str | None) -> Outcome:
    """A decoded platform payload (``topic``: the platform's own, where it has one) as native events."""
    if format_ == "shopify":
        return shopify.translate(payload, topic)
    if format_ == "stripe":
        return stripe.translate(payload, topic)
    if format_ == "woocommerce":
        return woocommerce.translate(payload, topic)
    if format_ == "segment":
        return segment.translate(payload, topic)
    if format_ == "cloudevents":
        return cloudevents.translate(payload)
    return Rejected(reason=f"unknown input format {format_!r}")


def translate_record(format_: str, value: bytes | None, headers: dict[str, str]) -> Outcome:
    """A Kafka record of a non-native format as native events, or why not."""
    if format_ == "cloudevents" and "ce_specversion" in headers:
        attributes = {name[3:]: text for name, text in headers.items() if name.startswith("ce_")}
        data = _json(value)
        if isinstance(data, Rejected):
            return Rejected(reason=f"cloudevents {attributes.get('type', '')}: data {data.reason}".replace("  ", " "))
        return cloudevents.translate_binary(attributes, data)
    payload = _json(value)
    if isinstance(payload, Rejected):
        return Rejected(reason=f"{format_}: {payload.reason}")
    topic = next((headers[name] for name in TOPIC_HEADERS.get(format_, ()) if name in headers), None)
    if topic is None and isinstance(payload, dict) and isinstance(payload.get("topic"), str):
        topic = payload["topic"]
    return translate_payload(format_, payload, topic)


def _json(value: bytes | None) -> Any:
    if not value:
        return Rejected(reason="empty message: expected one JSON object")
    try:
        return json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return Rejected(reason=f"not JSON ({type(exc).__name__})")

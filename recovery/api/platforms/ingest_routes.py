"""``POST /ingest/shopify``, ``/ingest/stripe``, ``/ingest/woocommerce``: signed platform webhooks, translated
by the same adapters as the Kafka formats and published as native events (key = cart_id) to the input topics.

Answers (adapters.md): bad or missing signature 401; Stripe timestamp outside the tolerance 400; a signed
body that does not map 200 with the raw body dead-lettered; a duplicate delivery 200, nothing published.
An endpoint whose ``ingest.<platform>.secret`` is unset answers 404.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.adapters.base import Outcome, Rejected, Skipped, Translated
from recovery.adapters.formats import translate_payload
from recovery.api.platforms.contract_routes import contract_router
from recovery.api.platforms.webhook_signatures import Verdict, base64_hmac_valid, stripe_verdict
from recovery.clock import Clock
from recovery.errors import RecoveryError
from recovery.events import Event, Rejection
from recovery.ingest.deliveries import first_delivery
from recovery.ingest.platform_formats import PlatformSkips, SkipsCollector, events_from_platform
from recovery.ingest.replay import route
from recovery.settings import Settings

log = logging.getLogger(__name__)

PLATFORMS = ("shopify", "stripe", "woocommerce")
_WOO_PING = re.compile(rb"webhook_id=\d{1,20}")


class Publisher(Protocol):
    """Where native events and dead letters go (the service's Kafka producer)."""

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None: ...


def install_platform_ingest(app: FastAPI, *, engine: AsyncEngine, settings: Settings, clock: Clock) -> None:
    """Add the webhook routes; skipped platform types show in ``/metrics``. No publisher yet: see ``attach_ingest``."""
    app.state.ingest_publisher = None
    app.state.platform_skips = PlatformSkips()
    app.state.metrics.registry.register(SkipsCollector(lambda: app.state.platform_skips))
    app.include_router(ingest_router(engine=engine, settings=settings, clock=clock))
    app.include_router(contract_router(settings))


def attach_ingest(app: FastAPI, *, publisher: Publisher | None, skips: PlatformSkips) -> None:
    """Give the webhook routes the service's producer and its skip counts (shared with Kafka ingest)."""
    app.state.ingest_publisher = publisher
    app.state.platform_skips = skips


def ingest_router(*, engine: AsyncEngine, settings: Settings, clock: Clock) -> APIRouter:
    """The three webhook routes."""
    router = APIRouter(include_in_schema=False)
    max_bytes = settings.ingest.max_event_bytes

    async def handle(platform: str, request: Request) -> JSONResponse:
        secret = getattr(settings.ingest, platform).secret
        if not secret:
            raise HTTPException(404)  # the endpoint is off until its secret is configured
        raw = await _read_limited(request, max_bytes)
        if platform == "woocommerce" and _WOO_PING.fullmatch(raw.strip()):
            return JSONResponse({"status": "ping"})  # WooCommerce's creation ping: nothing to publish
        _check_signature(platform, secret, raw, request, settings, clock)
        publisher: Publisher | None = request.app.state.ingest_publisher
        if publisher is None:
            # This process has no broker (role api): the platform retries later, nothing is lost.
            raise HTTPException(503, detail="this process does not publish to Kafka; retry")
        payload = _json(raw)
        outcome = (
            Rejected(reason=f"{platform}: body is not JSON")
            if payload is _NOT_JSON
            else translate_payload(platform, payload, _topic(platform, request))
        )
        try:
            return await _publish(
                engine,
                settings,
                clock,
                platform,
                raw,
                outcome,
                delivery_id=_delivery_id(platform, request, payload),
                publisher=publisher,
                skips=request.app.state.platform_skips,
            )
        except RecoveryError as exc:
            if not exc.retriable:
                raise
            # The delivery was not recorded (its transaction rolled back): the platform's retry gets through.
            log.warning("webhook not published: %s", type(exc).__name__, extra={"platform": platform})
            raise HTTPException(503, detail="the broker is unavailable; retry") from exc

    for platform in PLATFORMS:
        router.add_api_route(f"/ingest/{platform}", _endpoint(handle, platform), methods=["POST"])
    return router


async def _publish(
    engine: AsyncEngine,
    settings: Settings,
    clock: Clock,
    platform: str,
    raw: bytes,
    outcome: Outcome,
    *,
    delivery_id: str | None,
    publisher: Publisher,
    skips: PlatformSkips,
) -> JSONResponse:
    """Record the delivery and publish its events (or its dead letter) in one go; a duplicate does nothing."""
    async with engine.begin() as conn:  # the delivery is recorded only if its publish succeeded
        if delivery_id and not await first_delivery(conn, platform=platform, delivery_id=delivery_id, now=clock.now()):
            return JSONResponse({"status": "duplicate"})
        if isinstance(outcome, Skipped):
            skips.count(outcome)
            return JSONResponse({"status": "skipped", "type": outcome.type})
        events = _validated(outcome, platform)
        if isinstance(events, Rejection):
            await _dead_letter(publisher, settings, platform, raw, events.reason, delivery_id)
            return JSONResponse({"status": "dead_lettered", "reason": events.reason})
        await _send_events(publisher, settings, [event.model_dump(mode="json") for event in events])
        return JSONResponse({"status": "published", "events": len(events)})


def _endpoint(handle: Any, platform: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        return await handle(platform, request)  # type: ignore[no-any-return]

    endpoint.__name__ = f"ingest_{platform}"
    return endpoint


_NOT_JSON = object()


def _validated(outcome: Translated | Rejected, platform: str) -> list[Event] | Rejection:
    """The translated events checked by the consumer's own models, or the dead letter's reason."""
    if isinstance(outcome, Rejected):
        return Rejection(reason=outcome.reason)
    return events_from_platform(outcome, platform)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


async def _read_limited(request: Request, limit: int) -> bytes:
    """The raw body (the signature is over these bytes); 413 past ``limit``, before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"body above ingest.max_event_bytes ({limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, detail=f"body above ingest.max_event_bytes ({limit})")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_signature(
    platform: str, secret: str, raw: bytes, request: Request, settings: Settings, clock: Clock
) -> None:
    """401 unless the platform's signature over the raw body is valid; Stripe: 400 when too old or new."""
    if platform == "stripe":
        verdict = stripe_verdict(
            secret,
            raw,
            request.headers.get("stripe-signature"),
            now=clock.now(),
            tolerance=settings.ingest.stripe.tolerance,
        )
    else:
        header = "x-shopify-hmac-sha256" if platform == "shopify" else "x-wc-webhook-signature"
        verdict = (
            Verdict.VALID if base64_hmac_valid(secret, raw, request.headers.get(header)) else Verdict.BAD_SIGNATURE
        )
    if verdict is Verdict.BAD_SIGNATURE:
        log.warning("webhook refused: bad or missing signature", extra={"platform": platform})
        raise HTTPException(401, detail="bad or missing signature")
    if verdict is Verdict.STALE:
        log.warning("webhook refused: timestamp outside the tolerance", extra={"platform": platform})
        raise HTTPException(400, detail="Stripe-Signature timestamp outside the tolerance (ingest.stripe.tolerance)")


def _topic(platform: str, request: Request) -> str | None:
    if platform == "shopify":
        return request.headers.get("x-shopify-topic")
    if platform == "woocommerce":
        return request.headers.get("x-wc-webhook-topic")
    return None


def _delivery_id(platform: str, request: Request, payload: Any) -> str | None:
    if platform == "shopify":
        return request.headers.get("x-shopify-webhook-id")
    if platform == "woocommerce":
        return request.headers.get("x-wc-webhook-delivery-id")
    event_id = payload.get("id") if isinstance(payload, dict) else None
    return event_id if isinstance(event_id, str) and event_id else None


async def _send_events(publisher: Publisher, settings: Settings, events: list[dict[str, Any]]) -> None:
    """Each native event to the input topic of its type, key = cart_id (grouped per topic, in order)."""
    by_topic: dict[str, list[tuple[str | None, bytes]]] = {}
    for event in events:
        raw = json.dumps(event, ensure_ascii=False).encode("utf-8")
        topic, key = route(raw, settings.kafka.topics)
        by_topic.setdefault(topic, []).append((key, raw))
    for topic, messages in by_topic.items():
        await publisher.send_many(topic, messages)


async def _dead_letter(
    publisher: Publisher, settings: Settings, platform: str, raw: bytes, reason: str, delivery_id: str | None
) -> None:
    """The raw body to the dead-letter topic with its reason (the platform is answered 200: no retry)."""
    log.warning("webhook dead-lettered: %s", reason, extra={"platform": platform, "reason": reason})
    try:
        original: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        original = None
    document = {
        "reason": reason,
        "source": "webhook",
        "platform": platform,
        "topic": f"POST /ingest/{platform}",
        "partition": None,
        "offset": None,
        "key": delivery_id,
        "original": original,
        "original_base64": base64.b64encode(raw).decode("ascii"),
    }
    payload = json.dumps(document, ensure_ascii=False).encode("utf-8")
    await publisher.send_many(settings.kafka.topics.dead_letter.name, [(delivery_id, payload)])

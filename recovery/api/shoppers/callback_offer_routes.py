"""The callback-offer page ``/c/{token}``: the shopper picks when to be called (next days, calling hours).

Shoppers get no session cookie and no script: the signed link is the credential, the page is plain HTML
under the strict headers of the other shopper pages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from babel.dates import format_datetime
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.pages.languages import PageLanguage, negotiate_language
from recovery.api.pages.shopper_pages import not_found_page, shopper_page
from recovery.api.shoppers.links_routes import CALLBACK_MAX_AGE
from recovery.clock import Clock
from recovery.desk import offer_rows
from recovery.desk.hours import zone_of
from recovery.desk.policy import DeskPolicy
from recovery.render.signed_links import InvalidLink, LinkSigner

ASAP = "asap"
SLOT_DAYS = 3


def _language(locale: str | None, request: Request) -> PageLanguage:
    """The shopper's own language when known, else the browser's."""
    if locale and locale.lower().startswith("fr"):
        return "fr"
    if locale and locale.lower().startswith("en"):
        return "en"
    return negotiate_language(request.headers.get("accept-language"))


def _days(moments: list[datetime], zone: Any, language: str) -> list[dict[str, Any]]:
    """Slots grouped by local day, with labels in the shopper's language."""
    days: dict[str, dict[str, Any]] = {}
    for moment in moments:
        local = moment.astimezone(zone)
        key = local.date().isoformat()
        day = days.setdefault(key, {"label": format_datetime(local, "EEEE d MMMM", locale=language), "slots": []})
        day["slots"].append({"value": moment.astimezone(UTC).isoformat(), "label": local.strftime("%H:%M")})
    return list(days.values())


def callback_offer_router(*, engine: AsyncEngine, signer: LinkSigner, clock: Clock, policy: DeskPolicy) -> APIRouter:
    """``GET /c/{token}`` shows the slots with room; ``POST`` books one (or the next open moment with room)."""
    router = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, language: PageLanguage, **context: Any) -> HTMLResponse:
        return shopper_page(name, language=language, **context)

    @router.get("/c/{token}")
    async def slot_picker(token: str, request: Request) -> HTMLResponse:
        try:
            message_id = signer.read_callback(token, CALLBACK_MAX_AGE)
        except InvalidLink:
            return not_found_page()
        shopper = await offer_rows.shopper_of(engine, message_id)
        if shopper is None:
            return not_found_page()
        zone, language = zone_of(shopper[0]), _language(shopper[1], request)
        if await offer_rows.already_ordered(engine, message_id):
            return page(request, "callback_ordered.html", language)
        days = _days(
            await offer_rows.open_slots(engine, clock.now(), zone, policy.for_store(shopper[2]), SLOT_DAYS),
            zone,
            language,
        )
        return page(request, "callback_slots.html", language, token=token, days=days, asap=ASAP, error=False)

    @router.post("/c/{token}")
    async def book(token: str, request: Request, slot: Annotated[str, Form()] = ASAP) -> HTMLResponse:
        try:
            message_id = signer.read_callback(token, CALLBACK_MAX_AGE)
        except InvalidLink:
            return not_found_page()
        shopper = await offer_rows.shopper_of(engine, message_id)
        if shopper is None:
            return not_found_page()
        now = clock.now()
        zone, language = zone_of(shopper[0]), _language(shopper[1], request)
        if await offer_rows.already_ordered(engine, message_id):  # the offer outlived the order: no task to call
            return page(request, "callback_ordered.html", language)
        # A page left open for a while may post a slot that has just passed: accept it up to the lead time.
        offered = await offer_rows.open_slots(
            engine, now - timedelta(minutes=15), zone, policy.for_store(shopper[2]), SLOT_DAYS + 1
        )
        due = _chosen(slot, offered)
        if due is None and slot != ASAP:
            days = _days(
                await offer_rows.open_slots(engine, now, zone, policy.for_store(shopper[2]), SLOT_DAYS), zone, language
            )
            return page(request, "callback_slots.html", language, token=token, days=days, asap=ASAP, error=True)
        due = await offer_rows.book_offer(engine, message_id, now, due, timezone=shopper[0], policy=policy)
        if due is None:
            return not_found_page()
        label = format_datetime(due.astimezone(zone), "EEEE d MMMM HH:mm", locale=language)
        return page(request, "callback_booked.html", language, when=label)

    return router


def _chosen(slot: str, offered: list[datetime]) -> datetime | None:
    """The offered slot the form asked for; ``None`` for "as soon as possible" and for anything not offered."""
    try:
        moment = datetime.fromisoformat(slot)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC) if moment.astimezone(UTC) in offered else None

"""Shopper links: tracked clicks (``GET /r/{token}``, ``GET /s/{code}``) and unsubscribe (``GET/POST /u/{token}``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.pages.shopper_pages import not_found_page, shopper_page
from recovery.attribution import click_rows
from recovery.attribution.click_rows import UserAgentClass
from recovery.clock import Clock
from recovery.consent import ledger
from recovery.consent.authority import AddressKeys
from recovery.consent.ledger import ConsentChannel, ConsentSource
from recovery.render import short_link_rows
from recovery.render.short_links import LINK_MAX_AGE
from recovery.render.signed_links import InvalidLink, LinkSigner, TrackedLink, UnsubscribeToken

log = logging.getLogger(__name__)

DEFAULT_CLICK_MAX_AGE = LINK_MAX_AGE  # short links (/s/) expire after the same time

# Link-preview fetchers and mail scanners that say what they are: they follow links nobody clicked.
# Plain HTTP libraries (curl, python-httpx, Go, Java) are NOT in the list: the contract says `/r/` records
# the click, and an app or a platform proxy opening a link for a shopper uses exactly those; such a click
# is kept as "unknown" and counts.
_BOT_MARKERS = (
    "bot", "crawler", "spider", "crawl", "slurp", "preview", "facebookexternalhit", "facebookcatalog",
    "whatsapp", "embedly", "iframely", "vkshare", "pinterest", "skypeuripreview", "slack-imgproxy",
    "google-pagerenderer", "headless", "ms-office",
)  # fmt: skip
_MOBILE_MARKERS = ("mobi", "android", "iphone", "ipad", "ipod", "windows phone", "blackberry", "opera mini")
_DESKTOP_MARKERS = ("windows nt", "macintosh", "x11", "cros", "linux")
_LINK_SCHEMES = frozenset({"http", "https"})

_REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def classify_user_agent(user_agent: str | None) -> UserAgentClass:
    """Reduce a User-Agent to mobile, desktop, bot or unknown (the string itself is never kept)."""
    text = (user_agent or "").strip().lower()
    if not text:
        return UserAgentClass.UNKNOWN
    if any(marker in text for marker in _BOT_MARKERS):
        return UserAgentClass.BOT
    if any(marker in text for marker in _MOBILE_MARKERS):
        return UserAgentClass.MOBILE
    if any(marker in text for marker in _DESKTOP_MARKERS):
        return UserAgentClass.DESKTOP
    return UserAgentClass.UNKNOWN


def normalize_host(host: str) -> str | None:
    """``Shop.Example.:443`` or ``https://shop.example/x`` → ``shop.example``; ``None`` if there is no host."""
    text = host.strip()
    try:
        found = urlsplit(text if "//" in text else "//" + text).hostname
    except ValueError:
        return None
    if not found:
        return None
    return found.rstrip(".").lower() or None


def cart_hosts(cart: Mapping[str, Any] | None) -> frozenset[str]:
    """The hosts of a cart snapshot's own links: ``restore_url`` and every item's ``url``."""
    if not cart:
        return frozenset()
    urls = [cart.get("restore_url")]
    items = cart.get("items")
    if isinstance(items, list):
        urls += [item.get("url") for item in items if isinstance(item, Mapping)]
    return frozenset(host for url in urls if isinstance(url, str) and (host := normalize_host(url)))


def allowed_target(target: str, hosts: Iterable[str]) -> bool:
    """True when ``target`` is a plain http(s) URL whose host is one of ``hosts``.

    Backslashes, whitespace, control characters and user-info are refused outright: browsers and
    ``urlsplit`` disagree about the host of such URLs, the classic open-redirect bypass.
    """
    if "\\" in target or any(char.isspace() or not char.isprintable() for char in target):
        return False
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme.lower() not in _LINK_SCHEMES or not parts.hostname or "@" in parts.netloc:
        return False
    allowed = {normalize_host(host) for host in hosts} - {None}
    return parts.hostname.rstrip(".").lower() in allowed


CALLBACK_MAX_AGE = timedelta(days=14)


def links_router(
    *,
    engine: AsyncEngine,
    signer: LinkSigner,
    clock: Clock,
    link_hosts: list[str] | None,
    addresses: AddressKeys,
    click_max_age: timedelta = DEFAULT_CLICK_MAX_AGE,
) -> APIRouter:
    """The ``/r`` and ``/u`` routes over this engine and signer."""
    router = APIRouter()
    router.include_router(
        _click_routes(engine=engine, signer=signer, clock=clock, link_hosts=link_hosts, click_max_age=click_max_age)
    )
    router.include_router(_unsubscribe_routes(engine=engine, signer=signer, clock=clock, addresses=addresses))
    return router


def _click_routes(
    *, engine: AsyncEngine, signer: LinkSigner, clock: Clock, link_hosts: list[str] | None, click_max_age: timedelta
) -> APIRouter:
    """``GET /r/{token}`` (signed) and ``GET /s/{code}`` (SMS short link): count the click, then redirect."""
    router = APIRouter()

    @router.get("/r/{token}", include_in_schema=False)
    async def follow_link(token: str, request: Request) -> Response:
        try:
            link = signer.read_click(token, click_max_age)
        except InvalidLink:
            return not_found_page()
        return await _follow(link, request, engine=engine, signer=signer, clock=clock, link_hosts=link_hosts)

    @router.get("/s/{code}", include_in_schema=False)
    async def follow_short_link(code: str, request: Request) -> Response:
        async with engine.connect() as conn:
            link = await short_link_rows.find_link(conn, code, clock.now())
        if link is None:
            return not_found_page()
        return await _follow(link, request, engine=engine, signer=signer, clock=clock, link_hosts=link_hosts)

    return router


async def _follow(
    link: TrackedLink,
    request: Request,
    *,
    engine: AsyncEngine,
    signer: LinkSigner,
    clock: Clock,
    link_hosts: list[str] | None,
) -> Response:
    """The one click path of ``/r/`` and ``/s/``: a known message, an allowed host, the click recorded, 302."""
    ua_class = classify_user_agent(request.headers.get("user-agent"))
    async with engine.begin() as conn:
        message = await click_rows.find_message(conn, link.message_id)
        if message is None:
            log.warning("click on an unknown message", extra={"message_id": link.message_id})
            return not_found_page()
        hosts = [*(link_hosts or cart_hosts(message.cart)), *([signer.public_host] if signer.public_host else [])]
        if not allowed_target(link.target, hosts):
            log.warning("click target host not allowed", extra=_click_log(message))
            return not_found_page()
        counted = await click_rows.record_click(conn, message, user_agent_class=ua_class, now=clock.now())
    log.info("click", extra=_click_log(message) | {"user_agent_class": ua_class.value, "counted": counted})
    return RedirectResponse(link.target, status_code=302, headers=_REDIRECT_HEADERS)


def _unsubscribe_routes(*, engine: AsyncEngine, signer: LinkSigner, clock: Clock, addresses: AddressKeys) -> APIRouter:
    """``GET /u/{token}`` asks for confirmation; ``POST /u/{token}`` withdraws the consent."""
    router = APIRouter()

    @router.get("/u/{token}", include_in_schema=False)
    async def unsubscribe_page(token: str) -> HTMLResponse:
        request = _read_unsubscribe(signer, token)
        if request is None:
            return not_found_page()
        return _confirm_page(request[1])

    @router.post("/u/{token}", include_in_schema=False)
    async def unsubscribe(token: str) -> HTMLResponse:
        # The signed token is the authority: RFC 8058 one-click and the page's form both land here.
        request = _read_unsubscribe(signer, token)
        if request is None:
            return not_found_page()
        parsed, channel = request
        async with engine.begin() as conn:
            changed = await ledger.record_consent(
                conn,
                parsed.customer_key,
                channel,
                consent=False,
                source=ConsentSource.UNSUBSCRIBE_LINK,
                now=clock.now(),
                addresses=addresses,
            )
        log.info("unsubscribed", extra={"channel": channel.value, "changed": changed})
        return _done_page(channel)

    return router


def _confirm_page(channel: ConsentChannel) -> HTMLResponse:
    """The one-button page a shopper sees before unsubscribing (a GET changes nothing: scanners follow it)."""
    return shopper_page("unsubscribe_confirm.html", channel=f"by_{channel.value}")


def _done_page(channel: ConsentChannel) -> HTMLResponse:
    """The confirmation once the consent is withdrawn."""
    return shopper_page("unsubscribe_done.html", channel=f"by_{channel.value}")


def _read_unsubscribe(signer: LinkSigner, token: str) -> tuple[UnsubscribeToken, ConsentChannel] | None:
    try:
        parsed = signer.read_unsubscribe(token)
        return parsed, ConsentChannel.for_channel(parsed.channel)
    except (InvalidLink, ValueError):
        return None


def _click_log(message: click_rows.TrackedMessage) -> dict[str, str]:
    return {"message_id": message.message_id, "journey_id": message.journey_id, "cart_id": message.cart_id}

"""``GET /f/{token}``: a shopper's "why did you leave?" answer, recorded then redirected to the cart."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.pages.shopper_pages import not_found_page, shopper_page
from recovery.api.shoppers.links_routes import (
    allowed_target,
    cart_hosts,
    classify_user_agent,
)
from recovery.attribution import feedback_rows
from recovery.attribution.click_rows import UserAgentClass
from recovery.attribution.feedback import parse_answer
from recovery.clock import Clock
from recovery.render.signed_links import InvalidLink, LinkSigner

log = logging.getLogger(__name__)

FEEDBACK_MAX_AGE = timedelta(days=60)
_REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def feedback_router(
    *, engine: AsyncEngine, signer: LinkSigner, clock: Clock, link_hosts: list[str] | None = None
) -> APIRouter:
    """The shoppers' feedback link; it redirects only where ``/r/`` would (``security.link_hosts``, http(s))."""
    router = APIRouter()

    @router.get("/f/{token}", include_in_schema=False)
    async def answer(token: str, request: Request) -> Response:
        try:
            journey_id, raw = signer.read_feedback(token, FEEDBACK_MAX_AGE)
            chosen = parse_answer(raw)
        except (InvalidLink, ValueError):
            return not_found_page()
        # Mail scanners follow every link of a message: their visit is not the shopper's answer.
        if classify_user_agent(request.headers.get("user-agent")) is UserAgentClass.BOT:
            return shopper_page("feedback_thanks.html")
        async with engine.begin() as conn:
            answered = await feedback_rows.record_answer(conn, journey_id, chosen, clock.now())
        if answered is None:
            return not_found_page()
        log.info("feedback", extra={"journey_id": journey_id, "answer": chosen.value, "changed": answered.changed})
        target = answered.restore_url
        hosts = [*(link_hosts or cart_hosts({"restore_url": target})), *filter(None, [signer.public_host])]
        if target is None or not allowed_target(target, hosts):
            if target is not None:
                log.warning("feedback redirect target not allowed", extra={"journey_id": journey_id})
            return shopper_page("feedback_thanks.html")
        return RedirectResponse(target, status_code=302, headers=_REDIRECT_HEADERS)

    return router

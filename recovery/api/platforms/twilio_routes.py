"""Twilio webhooks: inbound SMS keywords (STOP, START, RAPPEL) and delivery receipts, signature checked."""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from twilio.request_validator import RequestValidator

from recovery.attribution import click_rows
from recovery.channels.sms import record_if_opted_out
from recovery.clock import Clock
from recovery.consent import ledger
from recovery.consent.authority import AddressKeys
from recovery.consent.ledger import ConsentChannel, ConsentSource

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_BODY_BYTES = 64 * 1024  # Twilio's webhooks are a few hundred bytes


class Keyword(StrEnum):
    """What an inbound SMS asks for; anything else is ordinary text and is ignored."""

    STOP = "stop"
    START = "start"
    CALLBACK = "callback"


_KEYWORDS = {
    **dict.fromkeys(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRÊT"], Keyword.STOP),
    **dict.fromkeys(["START", "UNSTOP"], Keyword.START),
    **dict.fromkeys(["RAPPEL", "CALL"], Keyword.CALLBACK),
}


def keyword_of(body: str) -> Keyword | None:
    """The keyword an SMS body is (whole body, any case, surrounding spaces and ``.!`` ignored)."""
    return _KEYWORDS.get(body.strip().strip(".! ").upper())


class FormParams(dict[str, list[str]]):
    """Form fields with every value kept, in the shape ``RequestValidator`` signs (``getall``)."""

    def first(self, name: str) -> str:
        """The field's first value, or ``""``."""
        values = self.get(name)
        return values[0] if values else ""

    def getall(self, name: str) -> list[str]:
        return self[name]


def parse_form(body: bytes) -> FormParams:
    """Decode an ``application/x-www-form-urlencoded`` body."""
    params = FormParams()
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def twilio_router(
    *, engine: AsyncEngine, clock: Clock, auth_token: str, public_url: str, addresses: AddressKeys
) -> APIRouter:
    """``POST /webhooks/twilio/inbound`` and ``/webhooks/twilio/status``; ``addresses`` key phone hashes."""
    router = APIRouter(prefix="/webhooks/twilio", include_in_schema=False)
    check = _SignatureCheck(auth_token=auth_token, public_url=public_url)

    @router.post("/inbound")
    async def inbound(request: Request) -> Response:
        params = await check.verified(request)
        if isinstance(params, Response):
            return params
        keyword = keyword_of(params.first("Body"))
        phone, sms_sid = params.first("From"), params.first("MessageSid") or params.first("SmsSid")
        if keyword is not None and phone:
            async with engine.begin() as conn:
                if not await ledger.first_inbound_sms(conn, sms_sid, now=clock.now()):
                    log.info("inbound sms keyword already applied", extra={"sms_sid": sms_sid})
                    return Response(EMPTY_TWIML, media_type="text/xml")
                customers = await _apply_keyword(
                    conn, keyword, phone=phone, sms_sid=sms_sid, addresses=addresses, now=clock.now()
                )
            log.info(
                "inbound sms keyword", extra={"sms_sid": sms_sid, "keyword": keyword.value, "customers": customers}
            )
        return Response(EMPTY_TWIML, media_type="text/xml")

    @router.post("/status")
    async def status(request: Request) -> Response:
        params = await check.verified(request)
        if isinstance(params, Response):
            return params
        message_id = request.query_params.get("message_id", "")
        state = (params.first("MessageStatus") or params.first("SmsStatus")).lower()
        sms_sid, error_code = params.first("MessageSid"), params.first("ErrorCode") or None
        if not (message_id or sms_sid) or state not in _FINAL_STATES:
            return Response(status_code=200)
        async with engine.begin() as conn:
            # The StatusCallback URL we give Twilio names the message; a receipt posted to the bare URL (a
            # status callback configured on the Twilio number or service) is matched by its MessageSid.
            message = await click_rows.find_message(conn, message_id, provider_id=sms_sid)
            if message is None or (message.provider_id and sms_sid and message.provider_id != sms_sid):
                log.warning("receipt for an unknown message", extra={"message_id": message_id, "sms_sid": sms_sid})
                return Response(status_code=200)
            moved = await _apply_receipt(
                conn, message, state=state, error_code=error_code, now=clock.now(), addresses=addresses
            )
        log.info(
            "delivery receipt",
            extra={"message_id": message_id, "journey_id": message.journey_id, "state": state, "applied": moved},
        )
        return Response(status_code=200)

    return router


_DELIVERED_STATES = frozenset({"delivered", "read"})
_FINAL_STATES = _DELIVERED_STATES | {"undelivered", "failed"}  # other receipts (queued, sent) change nothing


class _SignatureCheck:
    """Reads a webhook's form and checks Twilio's signature over it."""

    def __init__(self, *, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._base_url = public_url.rstrip("/")

    async def verified(self, request: Request) -> FormParams | Response:
        """The signed form, or the response refusing it (403, or 413 when too large)."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"detail": "request body too large"}, status_code=413)
        params = parse_form(bytes(body))
        signature = request.headers.get("x-twilio-signature", "")
        query = request.scope.get("query_string", b"").decode("latin-1")
        # Twilio signs the URL it was given, which is ours as the public sees it (behind any proxy).
        url = self._base_url + request.url.path + (f"?{query}" if query else "")
        validator = self._validator
        if validator is None or not signature or not validator.validate(url, params, signature):
            reason = "channels.sms.auth_token is not set" if validator is None else "bad or missing signature"
            log.warning("twilio webhook refused", extra={"path": request.url.path, "reason": reason})
            return JSONResponse({"detail": "invalid Twilio signature"}, status_code=403)
        return params


async def _apply_keyword(
    conn: AsyncConnection, keyword: Keyword, *, phone: str, sms_sid: str, addresses: AddressKeys, now: datetime
) -> int:
    """Record a callback request or a consent change for the number; return how many customers have it."""
    keys = await ledger.customers_with_phone(conn, phone)
    if keyword == Keyword.CALLBACK:
        hashed = ledger.phone_hash(phone, addresses.keys[0].hex())
        # A number we cannot match still leaves a trace; the callback channel decides what to do.
        requesters: list[str | None] = [*keys] or [None]
        for key in requesters:
            await ledger.record_callback_request(conn, sms_sid=sms_sid, customer_key=key, phone_hash=hashed, now=now)
        return len(keys)
    stop = keyword == Keyword.STOP
    source = ConsentSource.TWILIO_STOP if stop else ConsentSource.TWILIO_START
    # Keyed by the number too: a guest's next cart (a new customer key) stays opted out.
    await ledger.record_address_consent(
        conn, phone, ConsentChannel.SMS, consent=not stop, source=source, now=now, addresses=addresses
    )
    for key in keys:
        await ledger.record_consent(
            conn, key, ConsentChannel.SMS, consent=not stop, source=source, now=now, addresses=addresses
        )
    return len(keys)


async def _apply_receipt(
    conn: AsyncConnection,
    message: click_rows.TrackedMessage,
    *,
    state: str,
    error_code: str | None,
    now: datetime,
    addresses: AddressKeys,
) -> bool:
    """Move the message to delivered or failed; whether it moved (a late or repeated receipt does not)."""
    if state in _DELIVERED_STATES:
        return await click_rows.mark_delivered(conn, message, now=now)
    moved = await click_rows.mark_failed(
        conn, message, error_code=error_code, error=f"twilio: {state}", reason=error_code or state, now=now
    )
    await record_if_opted_out(conn, message.customer_key, error_code, now, addresses)
    return moved

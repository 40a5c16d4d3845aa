"""Twilio's Messages API as the fake speaks it: a message's JSON, error bodies, list pages, segments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token"

_ERROR_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}
_STATUS_OF_CODE = {20003: 401, 20404: 404, 20429: 429, 20500: 500, 20503: 503}

# Enough of GSM 03.38 to count segments the way Twilio reports them, independently of recovery.render.sms_text.
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)


@dataclass(frozen=True, kw_only=True)
class SentSms:
    """One message the fake accepted."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    num_segments: int
    date_created: datetime
    form: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The message as Twilio's API shows it."""
        stamp = _rfc2822(self.date_created)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": stamp,
            "date_sent": stamp,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": uri,
        }


def error_response(
    code: int, *, status: int | None = None, headers: dict[str, str] | None = None, problem_details: bool = False
) -> web.Response:
    """Twilio's legacy error body, or RFC 9457 problem details (``problem_details``)."""
    status = status or _STATUS_OF_CODE.get(code, 400)
    text = _ERROR_TEXT.get(code, "Error")
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    if problem_details:
        body: dict[str, Any] = {
            "type": more_info,
            "title": text,
            "status": status,
            "code": code,
            "detail": text,
        }
        content_type = "application/problem+json"
    else:
        body = {"code": code, "message": text, "more_info": more_info, "status": status}
        content_type = "application/json"
    return web.json_response(body, status=status, headers=headers, content_type=content_type)


def list_page(newest_first: Sequence[SentSms], query: Mapping[str, str], path: str) -> dict[str, Any]:
    """One page of the messages ``query`` selects (``To``, ``From``, ``DateSent…``, ``PageSize``, ``Page``)."""
    selected = [m for m in newest_first if matches(m, query)]
    page_size = int(query.get("PageSize", "50"))
    page = int(query.get("Page", "0"))
    chunk = selected[page * page_size : (page + 1) * page_size]

    def page_uri(number: int) -> str:
        params = [(k, v) for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}]
        return f"{path}?{urlencode([*params, ('PageSize', page_size), ('Page', number)])}"

    more = (page + 1) * page_size < len(selected)
    return {
        "messages": [m.as_json() for m in chunk],
        "end": page * page_size + max(len(chunk) - 1, 0),
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1) if more else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "start": page * page_size,
        "uri": page_uri(page),
    }


def matches(message: SentSms, query: Mapping[str, str]) -> bool:
    """Whether the list filters of ``query`` select ``message``."""
    if "To" in query and message.to != query["To"]:
        return False
    if "From" in query and message.from_ != query["From"]:
        return False
    sent = message.date_created
    if "DateSent>" in query and sent < _parse_when(query["DateSent>"]):
        return False
    if "DateSent<" in query and sent.date() > _parse_when(query["DateSent<"]).date():
        return False
    return not ("DateSent" in query and sent.date() != _parse_when(query["DateSent"]).date())


def _parse_when(text: str) -> datetime:
    # Twilio documents YYYY-MM-DD; twilio-python sends a full ISO 8601 datetime: accept both.
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def segments(body: str) -> int:
    """How many segments Twilio bills for ``body`` (GSM-7 or UCS-2)."""
    if all(ch in _GSM for ch in body):
        septets = sum(2 if ch in "^{}\\[~]|€\f" else 1 for ch in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def _rfc2822(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")

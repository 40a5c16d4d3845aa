"""Which URLs from events may become a link or a redirect: absolute http(s) ones only."""

from __future__ import annotations

from urllib.parse import urlsplit

HTTP_SCHEMES = frozenset({"http", "https"})
ONLY_HTTP = "only http(s) URLs are accepted"


def is_http_url(value: object) -> bool:
    """True for an absolute ``http://`` or ``https://`` URL with a host (never ``javascript:``, ``data:``…)."""
    if not isinstance(value, str) or value != value.strip():
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.hostname)


def require_http_url(value: str) -> str:
    """``value`` when it is an http(s) URL; ``ValueError`` naming the rule otherwise (a pydantic validator)."""
    if not is_http_url(value):
        raise ValueError(ONLY_HTTP)
    return value

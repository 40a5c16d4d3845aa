"""Shoppers' pages (links, unsubscribe, feedback, callback offer): templates under ``shopper_base.html``.

They carry no script and no session: the strict headers allow only the one inline style, by its hash.
Bilingual pages (a link says nothing of its shopper's language) see both texts as ``fr`` and ``en``; a page in
the shopper's own language sees ``t`` and ``lang``.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment

from recovery.api.pages.languages import PageLanguage, texts_for
from recovery.api.pages.rendering import page_templates
from recovery.api.pages.texts import SHOPPER_TEXTS

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "section+section{border-top:1px solid #ddd;margin-top:1.5rem;padding-top:1rem}"
    "button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HTML_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@cache
def _environment() -> Environment:
    """The page templates' environment (autoescaped, strict), built once: these pages have no request state."""
    return page_templates().env


def shopper_page(name: str, *, language: PageLanguage = "fr", status_code: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` with both languages' texts (``fr``, ``en``), ``language``'s as ``t``, and the headers."""
    html = (
        _environment()
        .get_template(name)
        .render(
            style=_STYLE,
            fr=texts_for("fr", SHOPPER_TEXTS),
            en=texts_for("en", SHOPPER_TEXTS),
            t=texts_for(language, SHOPPER_TEXTS),
            lang=language,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=HTML_HEADERS)


def not_found_page() -> HTMLResponse:
    """The same 404 for every bad link, so a probe learns nothing about why."""
    return shopper_page("link_not_found.html", status_code=404)

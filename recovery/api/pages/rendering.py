"""Render a page: the package's page templates, with language texts, CSRF token and the signed-in person."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from recovery.api.auth import Principal
from recovery.api.pages.csrf import csrf_token
from recovery.api.pages.languages import PageLanguage, Texts, negotiate_language, texts_for
from recovery.events import is_http_url

HTMX_PATH = "/static/pages/htmx-2.0.4.min.js"
CSS_PATH = "/static/pages/pages.css"


def page_templates() -> Jinja2Templates:
    """The page templates shipped in this package (autoescaped; unknown names are errors, not blanks)."""
    env = Environment(
        loader=PackageLoader("recovery.api.pages", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )
    env.tests["http_url"] = is_http_url  # a shop URL becomes a link only when http(s), never javascript:
    return Jinja2Templates(env=env)


def page_language(request: Request) -> PageLanguage:
    """The language of the pages for this request."""
    return negotiate_language(request.headers.get("accept-language"))


def render_page(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    texts: Texts | None = None,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A template answer with ``t`` (texts), ``lang``, ``csrf_token``, ``principal`` and asset paths."""
    language = page_language(request)
    templates: Jinja2Templates = request.app.state.page_templates
    full = {
        "t": texts_for(language, *([texts] if texts else [])),
        "lang": language,
        "csrf_token": csrf_token(request),
        "principal": principal,
        "htmx_path": HTMX_PATH,
        "css_path": CSS_PATH,
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)

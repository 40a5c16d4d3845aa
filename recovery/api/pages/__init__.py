"""Web pages for people (agents, marketers): sign-in, sessions, CSRF, fr/en texts, layout and static files.

How a page uses it (see ``recovery/api/staff/agent_routes.py`` for a full example)::

    from recovery.api.pages import check_csrf, render_page, require_page
    from recovery.api.pages.texts import AGENT_TEXTS

    @router.get("/agent")
    async def agent(request: Request, who: Annotated[Principal, Depends(require_page("agent"))]):
        return render_page(request, "agent.html", {"tasks": ...}, texts=AGENT_TEXTS, principal=who)

    @router.post("/agent/x", dependencies=[Depends(check_csrf)])   # every form/htmx POST
    ...

- Every page text lives in ``recovery/api/pages/texts/`` (``en.py``, ``fr.py``: one dictionary per page group);
  no page writes its words inline. Shoppers' pages (links, unsubscribe, feedback, callback offer) extend
  ``shopper_base.html`` through ``shopper_pages.shopper_page`` (no script, strict headers).
- Templates live in ``recovery/api/pages/templates/`` and extend ``base.html`` (blocks ``title``, ``head``,
  ``content``); they see ``t`` (texts of the request's language, merged with ``COMMON_TEXTS``), ``lang``,
  ``csrf_token``, ``principal``, ``css_path`` and ``htmx_path``. Every ``<form method="post">`` needs
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``; htmx requests send the header by
  themselves (``hx-headers`` on ``<body>``), other ``fetch`` posts must send ``X-CSRF-Token``.
- ``require_page(*roles)`` redirects to ``/login?next=…`` when not signed in (``HX-Redirect`` for htmx) and
  answers an HTML 403 page on a wrong role; ``admin`` may open every page. The cookie carries only a random
  session id; the ``sessions`` row says who, and ``/logout`` or removing the token from ``security.api_tokens``
  ends it at once.
- Static files (``pages.css``, pinned htmx with its licence) are served under ``/static/pages/``; add yours to
  ``recovery/api/pages/static/`` (pyproject package-data ships the folder). Nothing is fetched from a CDN.
- ``install_pages(app, settings, store)`` (called by ``create_app``) wires all of this.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from recovery.api.pages.csrf import CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token
from recovery.api.pages.languages import PageLanguage, Texts, negotiate_language
from recovery.api.pages.rendering import page_language, page_templates, render_page
from recovery.api.pages.session import (
    LANDING,
    PageForbidden,
    SessionStore,
    forbidden_page,
    install_sessions,
    require_page,
    sign_in_router,
    signed_in,
)
from recovery.api.pages.texts import COMMON_TEXTS
from recovery.settings import Settings

__all__ = [
    "COMMON_TEXTS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LANDING",
    "PageForbidden",
    "PageLanguage",
    "SessionStore",
    "Texts",
    "check_csrf",
    "csrf_token",
    "install_pages",
    "negotiate_language",
    "page_language",
    "render_page",
    "require_page",
    "signed_in",
]


def install_pages(app: FastAPI, settings: Settings, store: SessionStore) -> None:
    """Sessions, the sign-in routes, page templates and ``/static/pages`` on ``app``."""
    app.state.page_templates = page_templates()
    app.mount("/static/pages", StaticFiles(packages=[("recovery.api.pages", "static")]), name="pages-static")
    app.include_router(sign_in_router())
    app.add_exception_handler(PageForbidden, forbidden_page)
    install_sessions(app, settings, store)

"""Signing in to the pages: token form, session cookie, CSRF on every post, role checks, fr/en."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.api.auth import Principal
from recovery.api.pages import check_csrf, render_page, require_page
from recovery.clock import ManualClock
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

TOKENS = {
    "agent-tok": {"role": "agent", "name": "Inès"},
    "market-tok": "marketer",
    "admin-tok": {"role": "admin", "name": "Root"},
}


def build_app(engine: AsyncEngine) -> FastAPI:
    """The real app plus one agent-only page and one form post, as a page module would add them."""
    settings = Settings(security={"link_secret": "s3cret", "api_tokens": TOKENS})
    app = create_app(engine=engine, settings=settings, clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))

    @app.get("/test-page")
    async def page(request: Request, who: Annotated[Principal, Depends(require_page("agent"))]) -> Response:
        return render_page(request, "login.html", {"next": "", "error": False}, principal=who)

    @app.post("/test-page/act", dependencies=[Depends(check_csrf)])
    async def act(who: Annotated[Principal, Depends(require_page("agent"))]) -> dict[str, str]:
        return {"by": who.name}

    return app


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pages.db'}")
    await upgrade_to_head(engine)  # sessions are rows
    transport = httpx.ASGITransport(app=build_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://desk.test") as client:
        yield client
    await engine.dispose()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, token: str, next_page: str = "") -> httpx.Response:
    csrf = csrf_of((await http.get("/login")).text)
    return await http.post("/login", data={"token": token, "csrf_token": csrf, "next": next_page})


async def test_a_page_sends_a_visitor_who_is_not_signed_in_to_the_login_form(http: httpx.AsyncClient) -> None:
    """Opening a page without a session redirects to /login, remembering the page."""
    response = await http.get("/test-page?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Ftest-page%3Fx%3D1"


async def test_an_htmx_request_without_a_session_is_told_to_go_to_the_login_page(http: httpx.AsyncClient) -> None:
    """htmx follows HX-Redirect instead of swapping the login page into a fragment."""
    response = await http.get("/test-page", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"].startswith("/login?next=")


async def test_signing_in_sets_a_signed_httponly_lax_cookie_and_opens_the_page(http: httpx.AsyncClient) -> None:
    """A known token signs in, returns to the remembered page, and the page shows the person's name."""
    response = await sign_in(http, "agent-tok", "/test-page")
    assert (response.status_code, response.headers["location"]) == (303, "/test-page")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "agent-tok" not in response.headers["set-cookie"]
    page = await http.get("/test-page")
    assert page.status_code == 200 and "Inès" in page.text


async def test_a_wrong_token_is_refused_with_a_reason(http: httpx.AsyncClient) -> None:
    """An unknown token re-shows the form with an explanation and no session."""
    response = await sign_in(http, "nope")
    assert response.status_code == 401 and "not known" in response.text
    assert (await http.get("/test-page")).status_code == 303


async def test_an_offsite_next_is_ignored_after_sign_in(http: httpx.AsyncClient) -> None:
    """``next`` may only name a page of this site, so the login form cannot send people elsewhere."""
    response = await sign_in(http, "agent-tok", "//evil.example/x")
    assert response.headers["location"] == "/agent"


async def test_a_post_without_the_csrf_token_is_refused(http: httpx.AsyncClient) -> None:
    """A form post or fetch without the session's CSRF token gets 403; with the header it passes."""
    await sign_in(http, "agent-tok")
    page = await http.get("/test-page")
    assert (await http.post("/test-page/act", data={"x": "1"})).status_code == 403
    assert (await http.post("/test-page/act", headers={"X-CSRF-Token": "forged"})).status_code == 403
    ok = await http.post("/test-page/act", headers={"X-CSRF-Token": csrf_of(page.text)})
    assert (ok.status_code, ok.json()) == (200, {"by": "Inès"})


async def test_a_browser_signing_in_without_the_form_csrf_token_is_refused(http: httpx.AsyncClient) -> None:
    """A browser's login (it sends Origin) needs the CSRF token, so another site cannot sign it in to its account."""
    response = await http.post("/login", data={"token": "agent-tok"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    fetched = await http.post("/login", data={"token": "agent-tok"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403


async def test_a_script_signs_in_with_the_token_field_alone(http: httpx.AsyncClient) -> None:
    """The contract's sign-in: POST /login with the form field ``token`` gives the session cookie."""
    response = await http.post("/login", data={"token": "agent-tok"})
    assert response.status_code == 303
    assert "set-cookie" in response.headers


async def test_a_role_that_may_not_open_the_page_gets_403_but_admin_may(http: httpx.AsyncClient) -> None:
    """A marketer is refused the agents' page; an admin opens every page."""
    await sign_in(http, "market-tok")
    refused = await http.get("/test-page")
    assert refused.status_code == 403 and "Your role may not open this page" in refused.text
    await sign_in(http, "admin-tok")
    assert (await http.get("/test-page")).status_code == 200


async def test_signing_out_ends_the_session(http: httpx.AsyncClient) -> None:
    """After /logout the page asks to sign in again."""
    await sign_in(http, "agent-tok")
    page = await http.get("/test-page")
    response = await http.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert (await http.get("/test-page")).status_code == 303


async def test_the_login_page_speaks_french_to_a_french_browser(http: httpx.AsyncClient) -> None:
    """Accept-Language: fr gives the French texts and lang attribute."""
    response = await http.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in response.text and "Se connecter" in response.text


async def test_htmx_and_the_stylesheet_are_served_from_the_package(http: httpx.AsyncClient) -> None:
    """The pinned htmx file and the CSS come from the service itself, not a CDN."""
    htmx = await http.get("/static/pages/htmx-2.0.4.min.js")
    css = await http.get("/static/pages/pages.css")
    assert htmx.status_code == 200 and "htmx" in htmx.text
    assert css.status_code == 200 and ".topbar" in css.text

"""Token sign-in for the pages: a signed session cookie, ``/login`` and ``/logout``, and a page guard."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware.sessions import SessionMiddleware

from recovery.api.auth import Principal, match_token, token_names
from recovery.api.pages import session_rows
from recovery.api.pages.csrf import check_csrf, check_login_csrf, rotate_csrf
from recovery.api.pages.rendering import render_page
from recovery.api.throttle_guard import throttle_failure, throttled_for
from recovery.clock import Clock
from recovery.settings import ApiToken, Role, Settings

SESSION_COOKIE = "recovery_session"
SESSION_MAX_AGE = timedelta(hours=12)
# Where a person lands after signing in without a ``next`` page; pages of other roles add theirs here.
LANDING: dict[Role, str] = {"agent": "/agent", "marketer": "/studio", "admin": "/agent"}
_SESSION_KEY = "sid"


@dataclass(frozen=True, kw_only=True)
class SessionStore:
    """What the pages need to keep sessions on the server: the database, the clock and the session key."""

    engine: AsyncEngine
    clock: Clock
    key: bytes  # derived for sessions only (``recovery.keys``): signs the cookie, hashes tokens in rows

    def token_hash(self, token: str) -> str:
        """A keyed hash of a token: the row knows which token opened it, never the token itself."""
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()


def install_sessions(app: FastAPI, settings: Settings, store: SessionStore) -> None:
    """Add the signed, HttpOnly, SameSite=Lax session cookie (Secure when the public URL is https)."""
    app.state.session_store = store
    app.add_middleware(
        SessionMiddleware,
        secret_key=store.key.hex(),
        session_cookie=SESSION_COOKIE,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        same_site="lax",
        https_only=settings.http.public_url.startswith("https://"),
    )


def _tokens(request: Request) -> Mapping[str, ApiToken]:
    tokens: Mapping[str, ApiToken] = request.app.state.settings.security.api_tokens
    return tokens


def _store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.session_store
    return store


async def signed_in(request: Request) -> Principal | None:
    """The person signed in on this session, or ``None``: no session, logged out, expired, or token removed."""
    session_id = request.session.get(_SESSION_KEY)
    if not isinstance(session_id, str):
        return None
    store = _store(request)
    row = await session_rows.find_session(store.engine, session_id, now=store.clock.now())
    if row is None:
        return None
    tokens = _tokens(request)
    names = token_names(tokens)
    # The token must still be configured, with the same role: removing it ends its sessions at once.
    for token, entry in tokens.items():
        if hmac.compare_digest(store.token_hash(token), row.token_hash) and entry.role == row.role:
            return Principal(role=entry.role, name=names[token])
    return None


def _local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site; anything else could send the person elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def require_page(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A page dependency: to ``/login`` when not signed in (htmx gets ``HX-Redirect``), 403 on a wrong role."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        principal = await signed_in(request)
        if principal is None:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            login = f"/login?next={quote(back, safe='')}"
            if request.headers.get("hx-request"):
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="sign in", headers={"HX-Redirect": login})
            raise HTTPException(status.HTTP_303_SEE_OTHER, detail="sign in", headers={"Location": login})
        if not principal.may(allowed):
            raise PageForbidden(principal)
        return principal

    return dependency


class PageForbidden(Exception):
    """A signed-in person whose role may not open the page (answered with an HTML 403 page)."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(f"role {principal.role} may not open this page")
        self.principal = principal


async def forbidden_page(request: Request, exc: Exception) -> Response:
    """The 403 page: who is signed in, and a way to sign in as someone else."""
    who = exc.principal if isinstance(exc, PageForbidden) else None
    return render_page(request, "forbidden.html", principal=who, status_code=status.HTTP_403_FORBIDDEN)


def sign_in_router() -> APIRouter:
    """``GET/POST /login`` (form field ``token``) and ``POST /logout``."""
    router = APIRouter()

    @router.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str | None = None) -> Response:
        return render_page(request, "login.html", {"next": _local_path(next) or "", "error": False})

    @router.post("/login", include_in_schema=False, dependencies=[Depends(check_login_csrf)])
    async def login(request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "") -> Response:
        presented = token.strip()
        context = {"next": _local_path(next) or "", "error": True}
        wait = throttled_for(request, presented)
        if wait:
            refused = render_page(request, "login.html", context, status_code=status.HTTP_429_TOO_MANY_REQUESTS)
            refused.headers["Retry-After"] = str(wait)
            return refused
        matched = match_token(presented, _tokens(request))
        if matched is None:
            throttle_failure(request, presented)
            return render_page(request, "login.html", context, status_code=status.HTTP_401_UNAUTHORIZED)
        configured, principal = matched
        store = _store(request)
        session_id = await session_rows.open_session(
            store.engine,
            token_hash=store.token_hash(configured),
            name=principal.name,
            role=principal.role,
            now=store.clock.now(),
            lifetime=SESSION_MAX_AGE,
        )
        # A fresh session on sign-in: nothing set before it (e.g. by someone else) carries over.
        request.session.clear()
        request.session[_SESSION_KEY] = session_id
        target = _local_path(next) or LANDING[principal.role]
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    @router.post("/logout", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def logout(request: Request) -> Response:
        session_id = request.session.get(_SESSION_KEY)
        if isinstance(session_id, str):
            store = _store(request)
            await session_rows.revoke_session(store.engine, session_id, now=store.clock.now())
        request.session.clear()
        rotate_csrf(request)
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

    return router

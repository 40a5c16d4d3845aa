"""Token sign-in for the pages: a signed session cookie, ``/login`` and ``/logout``, and a page guard."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from recovery.api.auth import Principal, match_token, principal_for_token_id
from recovery.api.pages.csrf import check_csrf, check_login_csrf, rotate_csrf
from recovery.api.pages.rendering import render_page
from recovery.settings import ApiToken, Role, Settings

SESSION_COOKIE = "recovery_session"
SESSION_MAX_AGE = timedelta(hours=12)
# Where a person lands after signing in without a ``next`` page; pages of other roles add theirs here.
LANDING: dict[Role, str] = {"agent": "/agent", "marketer": "/studio", "admin": "/agent"}
_SESSION_KEY = "token_id"


def session_secret(link_secret: str) -> str:
    """A key for the session cookie derived from ``security.link_secret`` (never the secret itself)."""
    return hmac.new(link_secret.encode(), b"recovery-pages-session", hashlib.sha256).hexdigest()


def install_sessions(app: FastAPI, settings: Settings, link_secret: str) -> None:
    """Add the signed, HttpOnly, SameSite=Lax session cookie (Secure when the public URL is https)."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(link_secret),
        session_cookie=SESSION_COOKIE,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        same_site="lax",
        https_only=settings.http.public_url.startswith("https://"),
    )


def _tokens(request: Request) -> Mapping[str, ApiToken]:
    tokens: Mapping[str, ApiToken] = request.app.state.settings.security.api_tokens
    return tokens


def signed_in(request: Request) -> Principal | None:
    """The person signed in on this session, or ``None`` (also when their token was revoked)."""
    fingerprint = request.session.get(_SESSION_KEY)
    return principal_for_token_id(fingerprint, _tokens(request)) if isinstance(fingerprint, str) else None


def _local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site; anything else could send the person elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def require_page(*roles: Role) -> Callable[[Request], Principal]:
    """A page dependency: to ``/login`` when not signed in (htmx gets ``HX-Redirect``), 403 on a wrong role."""
    allowed = frozenset(roles)

    def dependency(request: Request) -> Principal:
        principal = signed_in(request)
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
        principal = match_token(token.strip(), _tokens(request))
        if principal is None:
            context = {"next": _local_path(next) or "", "error": True}
            return render_page(request, "login.html", context, status_code=status.HTTP_401_UNAUTHORIZED)
        # A fresh session on sign-in: nothing set before it (e.g. by someone else) carries over.
        request.session.clear()
        request.session[_SESSION_KEY] = principal.token_id
        target = _local_path(next) or LANDING[principal.role]
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    @router.post("/logout", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def logout(request: Request) -> Response:
        request.session.clear()
        rotate_csrf(request)
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

    return router

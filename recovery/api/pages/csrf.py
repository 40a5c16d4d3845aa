"""CSRF protection for page forms: a random token kept in the session, echoed by every form post.

Forms carry it as the hidden field ``csrf_token``; fetch/htmx posts send it in the ``X-CSRF-Token``
header (the base layout sets ``hx-headers`` on ``<body>`` so every htmx request does).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request, status

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SESSION_KEY = "csrf"


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_SESSION_KEY] = token
    return token


def rotate_csrf(request: Request) -> None:
    """Forget the token, so a new one is made (on sign-in and sign-out)."""
    request.session.pop(_SESSION_KEY, None)


async def check_csrf(request: Request) -> None:
    """A FastAPI dependency for every page POST: 403 unless the header or form field matches the session."""
    expected = request.session.get(_SESSION_KEY)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not presented or not hmac.compare_digest(expected, presented):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="the form's CSRF token is missing or out of date: reload the page and try again",
        )


async def check_login_csrf(request: Request) -> None:
    """Sign-in: a browser (it sends ``Origin`` with every POST) needs the form's CSRF token; a script does not.

    The contract's sign-in is one form field, ``token``. What the CSRF token guards against here is another site
    making a *browser* sign in to the attacker's account; a client that sends no ``Origin`` is not a browser
    acting for another site, so it may sign in with the token alone.
    """
    if request.headers.get("origin") is None and request.headers.get("sec-fetch-site") in (None, "none"):
        return
    await check_csrf(request)

"""Bearer tokens for the HTTP API: ``security.api_tokens`` maps each token to a role."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException, Request, status

Role = Literal["agent", "marketer", "admin"]


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who called: the token's role and a short fingerprint of it (safe to log, names an agent)."""

    role: Role
    token_id: str


def token_id(token: str) -> str:
    """A stable, non-reversible name for a token."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def authenticate(authorization: str | None, tokens: Mapping[str, Role]) -> Principal | None:
    """The principal for an ``Authorization: Bearer …`` header, or ``None`` when missing or unknown."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    found: Principal | None = None
    # Compare with every token in constant time, so timing tells nothing about which one was close.
    for token, role in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = Principal(role=role, token_id=token_id(token))
    return found


def require_role(*roles: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: 401 without a known bearer token, 403 when its role is not in ``roles``."""
    allowed = frozenset(roles)

    def dependency(request: Request) -> Principal:
        tokens: Mapping[str, Role] = request.app.state.settings.security.api_tokens
        principal = authenticate(request.headers.get("authorization"), tokens)
        if principal is None:
            challenge = 'Bearer error="invalid_token"' if request.headers.get("authorization") else "Bearer"
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="a bearer token from security.api_tokens is required",
                headers={"WWW-Authenticate": challenge},
            )
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this endpoint needs the role {' or '.join(sorted(allowed))}, not {principal.role}",
            )
        return principal

    return dependency

"""Who calls: ``security.api_tokens`` maps each token to a role (and optionally the person's name)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from recovery.settings import ApiToken, Role

__all__ = ["Principal", "Role", "authenticate", "principal_for_token_id", "require_role", "token_id"]


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who called: the token's role, a short fingerprint of it, and the name shown in claims and logs."""

    role: Role
    token_id: str
    name: str

    def may(self, roles: frozenset[Role]) -> bool:
        """``admin`` may use every route; others only those naming their role."""
        return self.role == "admin" or self.role in roles


def token_id(token: str) -> str:
    """A stable, non-reversible name for a token."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _principal(token: str, entry: ApiToken) -> Principal:
    """The principal a configured token stands for; unnamed tokens are known by their fingerprint."""
    fingerprint = token_id(token)
    return Principal(role=entry.role, token_id=fingerprint, name=entry.name or f"token-{fingerprint}")


def match_token(presented: str, tokens: Mapping[str, ApiToken]) -> Principal | None:
    """The principal for a presented token, or ``None``; compares in constant time."""
    found: Principal | None = None
    # Compare with every token, so timing tells nothing about which one was close.
    for token, entry in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = _principal(token, entry)
    return found


def principal_for_token_id(fingerprint: str, tokens: Mapping[str, ApiToken]) -> Principal | None:
    """The principal whose token has this fingerprint (a session stores only that), or ``None`` if revoked."""
    for token, entry in tokens.items():
        if hmac.compare_digest(token_id(token), fingerprint):
            return _principal(token, entry)
    return None


def authenticate(authorization: str | None, tokens: Mapping[str, ApiToken]) -> Principal | None:
    """The principal for an ``Authorization: Bearer …`` header, or ``None`` when missing or unknown."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    return match_token(presented, tokens)


def require_role(*roles: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: 401 without a known bearer token, 403 when its role is not in ``roles``."""
    allowed = frozenset(roles)

    def dependency(request: Request) -> Principal:
        tokens: Mapping[str, ApiToken] = request.app.state.settings.security.api_tokens
        principal = authenticate(request.headers.get("authorization"), tokens)
        if principal is None:
            challenge = 'Bearer error="invalid_token"' if request.headers.get("authorization") else "Bearer"
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="a bearer token from security.api_tokens is required",
                headers={"WWW-Authenticate": challenge},
            )
        if not principal.may(allowed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this endpoint needs the role {' or '.join(sorted(allowed))}, not {principal.role}",
            )
        return principal

    return dependency

"""Who calls: ``security.api_tokens`` maps each token to a role (and optionally the person's name)."""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from recovery.api.throttle_guard import refuse_if_throttled, throttle_failure
from recovery.settings import ApiToken, Role

__all__ = ["Principal", "Role", "authenticate", "match_token", "require_role", "token_names"]


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who called: the token's role and the name shown in claims and logs (never anything of the token)."""

    role: Role
    name: str

    def may(self, roles: frozenset[Role]) -> bool:
        """``admin`` may use every route; others only those naming their role."""
        return self.role == "admin" or self.role in roles


def token_names(tokens: Mapping[str, ApiToken]) -> dict[str, str]:
    """Each token's display name: its configured name, else its role and rank (``agent-1``, ``agent-2``…)."""
    seen: Counter[str] = Counter()
    names: dict[str, str] = {}
    for token, entry in tokens.items():
        seen[entry.role] += 1
        names[token] = entry.name or f"{entry.role}-{seen[entry.role]}"
    return names


def match_token(presented: str, tokens: Mapping[str, ApiToken]) -> tuple[str, Principal] | None:
    """The configured token equal to ``presented`` and its principal, or ``None``; compares in constant time."""
    found: tuple[str, Principal] | None = None
    names = token_names(tokens)
    # Compare with every token, so timing tells nothing about which one was close.
    for token, entry in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = (token, Principal(role=entry.role, name=names[token]))
    return found


def authenticate(authorization: str | None, tokens: Mapping[str, ApiToken]) -> Principal | None:
    """The principal for an ``Authorization: Bearer …`` header, or ``None`` when missing or unknown."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    matched = match_token(presented, tokens)
    return matched[1] if matched else None


def _presented(authorization: str | None) -> str:
    return (authorization or "").strip().partition(" ")[2].strip()


def require_role(*roles: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: 401 without a known bearer token, 403 when its role is not in ``roles``.

    Failed attempts are throttled per client and per token prefix: past the limit, 429 with ``Retry-After``
    comes before the token is even compared, so guessing goes no faster than the limit.
    """
    allowed = frozenset(roles)

    def dependency(request: Request) -> Principal:
        tokens: Mapping[str, ApiToken] = request.app.state.settings.security.api_tokens
        header = request.headers.get("authorization")
        refuse_if_throttled(request, _presented(header))
        principal = authenticate(header, tokens)
        if principal is None:
            if header:
                throttle_failure(request, _presented(header))
            challenge = 'Bearer error="invalid_token"' if header else "Bearer"
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

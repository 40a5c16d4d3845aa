"""Where the throttle meets HTTP: the keys of a request (client address, token prefix) and the 429 answer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from recovery.api.throttle import FailureThrottle
from recovery.clock import Clock

PREFIX_CHARS = 4  # enough to group guesses at one token, too few to say anything about it


@dataclass(frozen=True, kw_only=True)
class SignInThrottle:
    """The app's throttle of failed token attempts (bearer API and ``/login``) and the clock it reads."""

    throttle: FailureThrottle
    clock: Clock


def _keys(request: Request, presented: str) -> list[str]:
    client = request.client.host if request.client else "unknown"
    keys = [f"ip:{client}"]
    if presented:
        keys.append(f"prefix:{presented[:PREFIX_CHARS]}")
    return keys


def _guard(request: Request) -> SignInThrottle | None:
    guard: SignInThrottle | None = getattr(request.app.state, "sign_in_throttle", None)
    return guard


def throttled_for(request: Request, presented: str) -> int:
    """Whole seconds this request must wait before a token is checked (0: check it now)."""
    guard = _guard(request)
    if guard is None:
        return 0
    wait = guard.throttle.retry_after(_keys(request, presented), guard.clock.now().timestamp())
    return math.ceil(wait) if wait > 0 else 0


def refuse_if_throttled(request: Request, presented: str) -> None:
    """Raise 429 with ``Retry-After`` while this client or token prefix has no failures left."""
    wait = throttled_for(request, presented)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed sign-in attempts: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def throttle_failure(request: Request, presented: str) -> None:
    """Count one failed token attempt against this client and token prefix."""
    guard = _guard(request)
    if guard is not None:
        guard.throttle.fail(_keys(request, presented), guard.clock.now().timestamp())

"""The demo's support agents: they work the callback queue through the real Agents' API in virtual time."""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from recovery.clock import Clock
from recovery.desk.queue import Outcome
from recovery.settings import ApiToken

AGENT_NAMES = ("Inès (demo)", "Marc (demo)")
# How calls end, roughly as contact centres report them for recovery calls.
_OUTCOMES = (
    (Outcome.REACHED_RECOVERED, 0.30),
    (Outcome.REACHED_DECLINED, 0.20),
    (Outcome.NO_ANSWER, 0.30),
    (Outcome.CALL_BACK_LATER, 0.12),
    (Outcome.WRONG_NUMBER, 0.03),
    (Outcome.DO_NOT_CALL, 0.05),
)


def demo_agent_tokens() -> dict[str, ApiToken]:
    """Fresh sign-in tokens for the demo's agents (``security.api_tokens`` entries)."""
    return {secrets.token_urlsafe(32): ApiToken(role="agent", name=name) for name in AGENT_NAMES}


@dataclass(frozen=True, kw_only=True)
class Call:
    """What one call did: the outcome, and when the shopper then buys (reached_recovered only)."""

    outcome: Outcome
    call_back_at: datetime | None = None
    buys_after: timedelta | None = None


def decide_call(rng: random.Random, now: datetime) -> Call:
    """A random but realistic end to a call at ``now``."""
    [outcome] = rng.choices([o for o, _ in _OUTCOMES], weights=[share for _, share in _OUTCOMES])
    if outcome is Outcome.CALL_BACK_LATER:
        return Call(outcome=outcome, call_back_at=now + timedelta(hours=rng.randint(2, 6)))
    if outcome is Outcome.REACHED_RECOVERED:
        return Call(outcome=outcome, buys_after=timedelta(minutes=rng.randint(5, 90)))
    return Call(outcome=outcome)


class DemoAgents:
    """Each step, every agent claims the first due task and completes it with a drawn outcome."""

    def __init__(
        self,
        *,
        base_url: str,
        tokens: Mapping[str, ApiToken],
        clock: Clock,
        on_recovered: Callable[[str, datetime], None],
    ) -> None:
        self._tokens = [token for token, entry in tokens.items() if entry.name in AGENT_NAMES]
        self._clock = clock
        self._on_recovered = on_recovered
        self._rng = random.Random(7)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=5)
        self.calls = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def step(self) -> None:
        """One round of calls; HTTP errors are the demo's noise, not its failure."""
        for token in self._tokens:
            with contextlib.suppress(httpx.HTTPError):
                await self._work(token)

    async def _work(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        listed = await self._http.get("/api/callbacks", params={"status": "open", "limit": 5}, headers=headers)
        now = self._clock.now()
        due = [t for t in listed.json().get("tasks", []) if datetime.fromisoformat(t["due_at"]) <= now]
        if not due:
            return
        task = due[0]
        claimed = await self._http.post(f"/api/callbacks/{task['id']}/claim", headers=headers)
        if claimed.status_code != 200:
            return  # the other agent was faster
        call = decide_call(self._rng, now)
        body: dict[str, Any] = {"outcome": call.outcome.value}
        if call.call_back_at:
            body["call_back_at"] = call.call_back_at.isoformat()
        done = await self._http.post(f"/api/callbacks/{task['id']}/complete", json=body, headers=headers)
        if done.status_code == 200:
            self.calls += 1
            if call.buys_after is not None:
                self._on_recovered(task["cart_id"], now + call.buys_after)

"""Staff sign-in against a hostile user: server-side sessions, token removal, throttling, headers (issue 19)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.api.pages.session import SESSION_COOKIE
from recovery.clock import ManualClock
from recovery.settings import Settings
from recovery.store.schema import staff_sessions

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
LINK_SECRET = "link-secret-for-the-security-tests-0123456789"
AGENT = "agent-token-for-the-security-tests-0123456789"
MARKETER = "marketer-token-for-the-security-tests-012345"
ADMIN = "admin-token-for-the-security-tests-0123456789"
TOKENS = {AGENT: {"role": "agent", "name": "Inès"}, MARKETER: "marketer", ADMIN: "admin"}


def app_for(engine: AsyncEngine, clock: ManualClock, tokens: dict[str, object] | None = None) -> httpx.AsyncClient:
    """A client of the real app (one process of the service) with these tokens configured."""
    settings = Settings(security={"link_secret": LINK_SECRET, "api_tokens": TOKENS if tokens is None else tokens})
    app = create_app(engine=engine, settings=settings, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def http(engine: AsyncEngine, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    async with app_for(engine, clock) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    csrf = csrf_of((await http.get("/login")).text)
    return await http.post("/login", data={"token": token, "csrf_token": csrf})


async def sign_out(http: httpx.AsyncClient) -> httpx.Response:
    csrf = csrf_of((await http.get("/agent")).text)
    return await http.post("/logout", data={"csrf_token": csrf})


async def test_after_logout_the_old_cookie_no_longer_opens_a_page(http: httpx.AsyncClient) -> None:
    """POST /logout ends the session on the server: a copy of the cookie taken before is sent to /login."""
    await sign_in(http, AGENT)
    stolen = http.cookies[SESSION_COOKIE]
    assert (await http.get("/agent")).status_code == 200
    assert (await sign_out(http)).status_code == 303
    http.cookies.clear()
    http.cookies.set(SESSION_COOKIE, stolen)
    again = await http.get("/agent")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")


async def test_two_sign_ins_in_the_same_second_get_different_sessions(engine: AsyncEngine, clock: ManualClock) -> None:
    """Same token, same (frozen) time: two cookies, and logging one out leaves the other signed in."""
    async with app_for(engine, clock) as first, app_for(engine, clock) as second:
        await sign_in(first, AGENT)
        await sign_in(second, AGENT)
        assert first.cookies[SESSION_COOKIE] != second.cookies[SESSION_COOKIE]
        await sign_out(first)
        assert (await first.get("/agent")).status_code == 303
        assert (await second.get("/agent")).status_code == 200


async def test_removing_a_token_from_the_settings_ends_its_sessions(engine: AsyncEngine, clock: ManualClock) -> None:
    """After a restart without the agent's token, the agent's cookie opens nothing; other sessions live on."""
    async with app_for(engine, clock) as before:
        await sign_in(before, AGENT)
        agent_cookie = before.cookies[SESSION_COOKIE]
        before.cookies.clear()
        await sign_in(before, MARKETER)
        marketer_cookie = before.cookies[SESSION_COOKIE]
    async with app_for(engine, clock, tokens={MARKETER: "marketer"}) as after:
        after.cookies.set(SESSION_COOKIE, agent_cookie)
        assert (await after.get("/agent")).status_code == 303
        after.cookies.clear()
        after.cookies.set(SESSION_COOKIE, marketer_cookie)
        assert (await after.get("/studio")).status_code == 200


async def test_a_session_expires_after_twelve_hours(http: httpx.AsyncClient, clock: ManualClock) -> None:
    """The server's row has an end, whatever the cookie says."""
    await sign_in(http, AGENT)
    clock.advance(timedelta(hours=12, seconds=1))
    assert (await http.get("/agent")).status_code == 303


async def test_the_database_holds_no_cookie_and_no_token(http: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """A copy of the sessions table can neither be replayed as a cookie nor reveal a token."""
    await sign_in(http, AGENT)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(staff_sessions))).mappings().all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert AGENT not in stored
    assert rows[0]["name"] == "Inès"
    cookie = http.cookies[SESSION_COOKIE]
    assert rows[0]["id"] not in cookie


async def test_a_cookie_signed_with_the_link_secret_is_not_a_session(http: httpx.AsyncClient) -> None:
    """The session key is derived apart from the link secret: knowing the link secret forges nothing."""
    forged = TimestampSigner(LINK_SECRET).sign(b"e30=").decode()  # base64 of "{}", signed as Starlette does
    http.cookies.set(SESSION_COOKIE, forged)
    assert (await http.get("/agent")).status_code == 303


async def test_an_unnamed_token_is_shown_by_its_role_and_rank_never_a_fingerprint(http: httpx.AsyncClient) -> None:
    """The marketer's token has no name: the page says ``marketer-1``."""
    await sign_in(http, MARKETER)
    page = await http.get("/studio")
    assert "marketer-1" in page.text
    assert "token-" not in page.text


async def test_failed_logins_are_throttled_even_for_the_right_token(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Ten wrong tokens, then 429 with Retry-After even for the right one; after the wait it signs in."""
    for attempt in range(10):
        assert (await sign_in(http, f"wrong-guess-{attempt:02d}-xxxxxxxxxxxxxxxxxxxxxxxx")).status_code == 401
    refused = await sign_in(http, AGENT)
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    clock.advance(timedelta(seconds=wait))
    assert (await sign_in(http, AGENT)).status_code == 303


async def test_failed_bearer_tokens_are_throttled_per_client(http: httpx.AsyncClient, clock: ManualClock) -> None:
    """The API counts wrong bearer tokens too: 429 + Retry-After before the token is even compared."""
    for attempt in range(10):
        wrong = {"Authorization": f"Bearer guess-{attempt:02d}-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
        assert (await http.get("/api/templates", headers=wrong)).status_code == 401
    right = {"Authorization": f"Bearer {MARKETER}"}
    refused = await http.get("/api/templates", headers=right)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    clock.advance(timedelta(seconds=int(refused.headers["retry-after"])))
    assert (await http.get("/api/templates", headers=right)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/agent",
        "/studio",
        "/dashboard",
        "/studio/diff?path=en/cart_reminder.email.html&old=0&new=0",
        "/api/stats",
    ],
)
async def test_staff_pages_and_apis_send_security_headers(http: httpx.AsyncClient, path: str) -> None:
    """CSP with frame-ancestors 'none', nosniff and a Referrer-Policy on every staff answer."""
    await sign_in(http, ADMIN)
    headers = {"Authorization": f"Bearer {ADMIN}"} if path.startswith("/api/") else {}
    response = await http.get(path, headers=headers)
    assert response.status_code < 400, response.text[:300]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in {"same-origin", "no-referrer"}
    if response.headers["content-type"].startswith("text/html"):
        assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"RECOVERY_CALLBACKS__WEBHOOK_URL": "https://desk.example/hook"}, "callbacks.webhook_secret is not set"),
        ({"RECOVERY_SECURITY__API_TOKENS": '{"short-agent-token": "agent"}'}, "shorter than 32 characters"),
    ],
)
def test_the_service_refuses_to_start_with_a_borrowed_or_guessable_secret(
    tmp_path: Path, env: dict[str, str], reason: str
) -> None:
    """``recovery run`` stops before serving: a helpdesk webhook without its own secret, or a short token."""
    base = {
        "PATH": "/usr/bin:/bin",
        "RECOVERY_SECURITY__LINK_SECRET": LINK_SECRET,
        "RECOVERY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "RECOVERY_CHANNELS__TRANSPORT": "outbox",
    }
    done = subprocess.run(
        [sys.executable, "-m", "recovery.cli.main", "run"],
        env=base | env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 1
    assert reason in done.stderr
    assert "short-agent-token" not in done.stderr + done.stdout

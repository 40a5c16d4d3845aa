"""Shopper links over HTTP: tracked clicks (``/r/{token}``) and unsubscribe (``/u/{token}``), on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.api.shoppers.links_routes import allowed_target, cart_hosts, classify_user_agent
from recovery.attribution.click_rows import UserAgentClass
from recovery.clock import ManualClock
from recovery.render.signed_links import LinkSigner
from recovery.settings import Settings
from recovery.store.schema import carts, clicks, consent_ledger, customers, journeys, messages, outbox_events

SECRET = "test-link-secret"
PUBLIC_URL = "https://recovery.example"
START = datetime(2025, 11, 25, 12, tzinfo=UTC)
MESSAGE_ID = "journey-1:reminder"
RESTORE = "https://shop.example/cart/restore/7f3a?src=reminder"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"

# pygal (imported by recovery.attribution.render) appends a legacy finder to sys.meta_path that warns on every
# import of a missing module, such as httpx's optional ``import sniffio`` on each ASGI request. Remove this
# once the report module drops that finder or pyproject ignores the warning.


def settings(**security: Any) -> Settings:
    return Settings(security={"link_secret": SECRET, **security}, http={"public_url": PUBLIC_URL})


def signer(at: datetime = START) -> LinkSigner:
    return LinkSigner(SECRET, PUBLIC_URL, clock=ManualClock(at))


def path_of(url: str) -> str:
    return url.removeprefix(PUBLIC_URL)


async def seed(engine: AsyncEngine, *, customer_key: str = "cust-1") -> None:
    """A cart with shop links, its customer (consenting), a journey and one sent email."""
    cart = {
        "currency": "EUR",
        "value": 120.0,
        "restore_url": RESTORE,
        "items": [
            {"sku": "A", "name": "Lamp", "quantity": 1, "unit_price": 120.0, "url": "https://cdn.shop.example/p/a"}
        ],
    }
    async with engine.begin() as conn:
        await conn.execute(
            carts.insert().values(
                cart_id="cart-1",
                store="default",
                customer_key=customer_key,
                cart=cart,
                item_count=1,
                first_event_at=START,
                last_event_at=START,
            )
        )
        await conn.execute(
            customers.insert().values(
                customer_key=customer_key, consent_email=True, consent_sms=True, consent_phone=True, updated_at=START
            )
        )
        await conn.execute(
            journeys.insert().values(
                journey_id="journey-1",
                cart_id="cart-1",
                flow="abandoned_cart",
                trigger="cart.abandoned",
                customer_key=customer_key,
                store="default",
                status="active",
                holdout=False,
                started_at=START,
                trigger_event_at=START,
                messages_sent=1,
                clicked=False,
            )
        )
        await conn.execute(
            messages.insert().values(
                message_id=MESSAGE_ID,
                journey_id="journey-1",
                step_id="step-1",
                cart_id="cart-1",
                customer_key=customer_key,
                flow="abandoned_cart",
                step="reminder",
                channel="email",
                state="sent",
                attempts=1,
                created_at=START,
                sent_at=START,
                updated_at=START,
            )
        )


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncEngine:
    """The migrated engine with a sent message."""
    await seed(engine)
    return engine


def client_for(engine: AsyncEngine, *, now: datetime = START, **security: Any) -> httpx.AsyncClient:
    app = create_app(engine=engine, settings=settings(**security), clock=ManualClock(now))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)


@pytest.fixture
async def client(db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(db) as http:
        yield http


async def click_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(select(clicks).order_by(clicks.c.id))).mappings()]


async def journey_clicked(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool(await conn.scalar(select(journeys.c.clicked).where(journeys.c.journey_id == "journey-1")))


async def published(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox_events).order_by(outbox_events.c.id))
        return [json.loads(row.payload) | {"topic_role": row.topic_role, "key": row.key} for row in rows]


async def test_click_is_recorded_then_redirected(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A valid link records the click, marks the journey clicked, publishes message.clicked and redirects."""
    url = signer().tracked_url(MESSAGE_ID, RESTORE)
    response = await client.get(path_of(url), headers={"User-Agent": IPHONE})
    assert response.status_code == 302
    assert response.headers["location"] == RESTORE
    assert response.headers["cache-control"] == "no-store"
    [click] = await click_rows(db)
    assert click["message_id"] == MESSAGE_ID
    assert click["journey_id"] == "journey-1"
    assert click["cart_id"] == "cart-1"
    assert click["user_agent_class"] == "mobile"
    assert click["clicked_at"] == START
    assert set(click) == {"id", "message_id", "journey_id", "cart_id", "clicked_at", "user_agent_class"}
    assert await journey_clicked(db)
    [event] = await published(db)
    assert event["type"] == "message.clicked"
    assert event["topic_role"] == "messages"
    assert event["key"] == "cart-1"
    assert (event["message_id"], event["journey_id"], event["flow"], event["step"], event["channel"]) == (
        MESSAGE_ID,
        "journey-1",
        "abandoned_cart",
        "reminder",
        "email",
    )


async def test_item_link_on_another_cart_host_is_followed(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """Any host among the cart's own URLs (here an item's) is allowed when link_hosts is unset."""
    target = "https://cdn.shop.example/p/a?utm_source=recovery"
    response = await client.get(path_of(signer().tracked_url(MESSAGE_ID, target)), headers={"User-Agent": DESKTOP})
    assert response.status_code == 302
    assert response.headers["location"] == target
    assert [c["user_agent_class"] for c in await click_rows(db)] == ["desktop"]


async def test_forged_token_is_404_and_records_nothing(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A token signed with another secret gets a plain 404 page: no redirect, no click, no event."""
    forged = LinkSigner("guessed-secret", PUBLIC_URL, clock=ManualClock(START)).tracked_url(MESSAGE_ID, RESTORE)
    response = await client.get(path_of(forged), headers={"User-Agent": DESKTOP})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert await click_rows(db) == []
    assert await published(db) == []
    assert not await journey_clicked(db)


async def test_altered_token_is_404(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """Changing one character of a valid token breaks it."""
    path = path_of(signer().tracked_url(MESSAGE_ID, RESTORE))
    flipped = path[:5] + ("A" if path[5] != "A" else "B") + path[6:]
    response = await client.get(flipped, headers={"User-Agent": DESKTOP})
    assert response.status_code == 404
    assert await click_rows(db) == []


async def test_expired_token_is_404(db: AsyncEngine) -> None:
    """A link older than the click max age (60 days by default) no longer redirects."""
    old = signer(START - timedelta(days=61)).tracked_url(MESSAGE_ID, RESTORE)
    recent = signer(START - timedelta(days=59)).tracked_url(MESSAGE_ID, RESTORE)
    async with client_for(db) as http:
        assert (await http.get(path_of(old), headers={"User-Agent": DESKTOP})).status_code == 404
        assert (await http.get(path_of(recent), headers={"User-Agent": DESKTOP})).status_code == 302
    assert len(await click_rows(db)) == 1


async def test_unknown_message_is_404(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A validly signed link for a message the store does not know is refused."""
    response = await client.get(path_of(signer().tracked_url("journey-9:nope", RESTORE)))
    assert response.status_code == 404
    assert await click_rows(db) == []


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "https://shop.example.evil.example/",
        "https://shop.example@evil.example/",
        "https://evil.example\\@shop.example/",
        "javascript://shop.example/%0aalert(1)",
    ],
)
async def test_target_host_not_allowed_is_404(db: AsyncEngine, client: httpx.AsyncClient, target: str) -> None:
    """Even a correctly signed link never redirects off the cart's own hosts (no open redirect)."""
    url = f"{PUBLIC_URL}/r/" + signer()._clicks.dumps([MESSAGE_ID, target])  # bypasses tracked_url's own check
    response = await client.get(path_of(url), headers={"User-Agent": DESKTOP})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert await click_rows(db) == []


async def test_configured_link_hosts_replace_cart_hosts(db: AsyncEngine) -> None:
    """With security.link_hosts set, only those hosts are allowed, even if the cart names others."""
    elsewhere = "https://www.shop.example/landing"
    async with client_for(db, link_hosts=["WWW.Shop.Example"]) as http:
        assert (await http.get(path_of(signer().tracked_url(MESSAGE_ID, elsewhere)))).status_code == 302
        assert (await http.get(path_of(signer().tracked_url(MESSAGE_ID, RESTORE)))).status_code == 404


async def test_a_plain_http_client_click_counts(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A click from an HTTP library (an app opening the link for a shopper) counts: message.clicked is published."""
    response = await client.get(path_of(signer().tracked_url(MESSAGE_ID, RESTORE)))  # httpx's own User-Agent
    assert response.status_code == 302
    assert [c["user_agent_class"] for c in await click_rows(db)] == ["unknown"]
    assert await journey_clicked(db)
    assert [event["type"] for event in await published(db)] == ["message.clicked"]


async def test_bot_click_redirects_but_does_not_count(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A link-preview fetcher is redirected; its hit is kept as a bot click, not a click on the journey."""
    response = await client.get(path_of(signer().tracked_url(MESSAGE_ID, RESTORE)), headers={"User-Agent": SLACK})
    assert response.status_code == 302
    assert [c["user_agent_class"] for c in await click_rows(db)] == ["bot"]
    assert not await journey_clicked(db)
    assert await published(db) == []


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (IPHONE, UserAgentClass.MOBILE),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36", UserAgentClass.MOBILE),
        (DESKTOP, UserAgentClass.DESKTOP),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15", UserAgentClass.DESKTOP),
        (SLACK, UserAgentClass.BOT),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", UserAgentClass.BOT),
        ("WhatsApp/2.23.20.0", UserAgentClass.BOT),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", UserAgentClass.BOT),
        ("python-httpx/0.28.1", UserAgentClass.UNKNOWN),
        ("curl/8.5.0", UserAgentClass.UNKNOWN),
        ("", UserAgentClass.UNKNOWN),
        (None, UserAgentClass.UNKNOWN),
        ("SomethingElse/1.0", UserAgentClass.UNKNOWN),
    ],
)
def test_user_agent_is_reduced_to_a_class(user_agent: str | None, expected: UserAgentClass) -> None:
    """Only mobile / desktop / bot / unknown is kept from a User-Agent."""
    assert classify_user_agent(user_agent) == expected


def test_cart_hosts_come_from_restore_and_item_urls() -> None:
    """The allow-list derived from a cart holds its restore URL's and items' hosts, lower-cased."""
    cart = {"restore_url": "https://Shop.Example/r", "items": [{"url": "http://cdn.shop.example:8080/x"}, {"sku": "B"}]}
    assert cart_hosts(cart) == {"shop.example", "cdn.shop.example"}
    assert cart_hosts(None) == frozenset()
    assert allowed_target("https://shop.example./x", {"shop.example"})
    assert not allowed_target("https://shop.example:99999/x", {"shop.example"})
    assert not allowed_target("https://shop.example/a b", {"shop.example"})


async def unsubscribe_state(engine: AsyncEngine, customer_key: str = "cust-1") -> tuple[Any, list[dict[str, Any]]]:
    async with engine.connect() as conn:
        consent = await conn.scalar(select(customers.c.consent_email).where(customers.c.customer_key == customer_key))
        ledger = await conn.execute(select(consent_ledger).where(consent_ledger.c.customer_key == customer_key))
        return consent, [dict(row) for row in ledger.mappings()]


async def test_unsubscribe_page_shows_a_form_and_changes_nothing(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """GET shows a bilingual confirmation page with a POST form; mail scanners fetching it unsubscribe nobody."""
    response = await client.get(path_of(signer().unsubscribe_url("cust-1", "email")))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert '<form method="post">' in response.text
    assert "Se désinscrire" in response.text
    assert "Unsubscribe" in response.text
    assert await unsubscribe_state(db) == (True, [])


async def test_one_click_unsubscribe_records_the_opt_out(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """RFC 8058: a form-encoded ``List-Unsubscribe=One-Click`` POST sets consent false and writes the ledger."""
    response = await client.post(
        path_of(signer().unsubscribe_url("cust-1", "email")), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    consent, [entry] = await unsubscribe_state(db)
    assert consent is False
    assert (entry["channel"], entry["consent"], entry["source"], entry["recorded_at"]) == (
        "email",
        False,
        "unsubscribe_link",
        START,
    )


async def test_unsubscribe_twice_adds_no_second_ledger_row(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A repeated POST (the mail client's one-click, then the shopper's form) is 200 and idempotent."""
    path = path_of(signer().unsubscribe_url("cust-1", "email"))
    assert (await client.post(path, data={"List-Unsubscribe": "One-Click"})).status_code == 200
    assert (await client.post(path, data={"List-Unsubscribe": "One-Click"})).status_code == 200
    consent, ledger = await unsubscribe_state(db)
    assert consent is False
    assert len(ledger) == 1


async def test_unsubscribe_only_touches_its_channel(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """An SMS unsubscribe link turns SMS consent off and leaves email and phone alone."""
    await client.post(path_of(signer().unsubscribe_url("cust-1", "sms")), data={"List-Unsubscribe": "One-Click"})
    async with db.connect() as conn:
        row = (await conn.execute(select(customers).where(customers.c.customer_key == "cust-1"))).mappings().one()
    assert (row["consent_email"], row["consent_sms"], row["consent_phone"]) == (True, False, True)


async def test_unsubscribe_of_an_unknown_customer_still_holds(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A customer with no row yet gets one with the opt-out, so their later events cannot send to them."""
    await client.post(path_of(signer().unsubscribe_url("cart:cart-7", "email")), data={"List-Unsubscribe": "One-Click"})
    consent, ledger = await unsubscribe_state(db, "cart:cart-7")
    assert consent is False
    assert len(ledger) == 1


async def test_invalid_unsubscribe_token_is_404(db: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A forged unsubscribe token, or a click token replayed as one, is a 404 for GET and POST."""
    forged = LinkSigner("guessed", PUBLIC_URL).unsubscribe_url("cust-1", "email")
    click_token = signer().tracked_url(MESSAGE_ID, RESTORE).rsplit("/", 1)[1]
    for path in (path_of(forged), f"/u/{click_token}"):
        assert (await client.get(path)).status_code == 404
        assert (await client.post(path, data={"List-Unsubscribe": "One-Click"})).status_code == 404
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(consent_ledger)) == 0

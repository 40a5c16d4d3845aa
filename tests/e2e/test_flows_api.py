"""The Flows API: roles, the flow check before every save, history, diff, rollback, enable/disable,
a new flow by name, and the test send — on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import SystemClock
from recovery.settings import Settings
from recovery.store.schema import flow_versions, messages

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"m-token": "marketer", "a-token": "agent"}
MARKETER = {"Authorization": "Bearer m-token"}
NEW_FLOW = """\
name: winback
trigger: cart.abandoned
steps:
  - name: reminder
    after: 2h
    channel: email
    variants:
      - {name: a, weight: 1, template: cart_reminder}
      - {name: b, weight: 3, template: cart_offer}
"""


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
async def client(engine: AsyncEngine, outbox: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        security={"link_secret": "s", "api_tokens": TOKENS},
        http={"public_url": "https://recovery.example"},
        templates_dir=ROOT / "templates",
        flows_file=ROOT / "config" / "flows.yaml",
        channels={"transport": "outbox", "outbox_dir": outbox},
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://recovery.example") as c:
        yield c


async def saved_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(flow_versions)) or 0)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/flows", None),
        ("GET", "/api/flows/abandoned_cart", None),
        ("PUT", "/api/flows/abandoned_cart", {"source": "x"}),
        ("GET", "/api/flows/abandoned_cart/versions", None),
        ("POST", "/api/flows/abandoned_cart/rollback", {"version": 0}),
        ("POST", "/api/flows/abandoned_cart/enabled", {"enabled": False}),
        ("POST", "/api/flows/abandoned_cart/test-send", {"email": "m@example.com"}),
    ],
)
@pytest.mark.parametrize(("token", "status"), [(None, 401), ("a-token", 403)])
async def test_routes_refuse_callers_without_the_marketer_role(
    client: httpx.AsyncClient, method: str, url: str, body: object, token: str | None, status: int
) -> None:
    """No token is 401 and an agent's token is 403 on every flows route."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert (await client.request(method, url, json=body, headers=headers)).status_code == status


async def test_the_file_is_version_zero_of_each_flow(client: httpx.AsyncClient) -> None:
    """Before any save each flow of flows.yaml is listed at version 0 and reads as its part of the file."""
    listed = {row["name"]: row for row in (await client.get("/api/flows", headers=MARKETER)).json()["flows"]}
    assert set(listed) == {"abandoned_cart", "payment_failed"}
    assert listed["abandoned_cart"]["version"] == 0 and listed["abandoned_cart"]["enabled"] is True
    read = (await client.get("/api/flows/abandoned_cart", headers=MARKETER)).json()
    assert read["version"] == 0 and read["source"].startswith("name: abandoned_cart")
    assert (await client.get("/api/flows/nope", headers=MARKETER)).status_code == 404


async def test_a_delay_change_is_saved_diffed_disabled_and_rolled_back(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Change a delay → version 1; the diff shows it; disable → version 2 (disabled); rollback → version 3."""
    source = (await client.get("/api/flows/abandoned_cart", headers=MARKETER)).json()["source"]
    changed = source.replace("after: 1h", "after: 2h", 1)
    saved = await client.put(
        "/api/flows/abandoned_cart", json={"source": changed, "comment": "later"}, headers=MARKETER
    )
    assert saved.status_code == 201 and saved.json() == {"version": 1}
    diff = (await client.get("/api/flows/abandoned_cart/diff?old=0&new=1", headers=MARKETER)).json()["diff"]
    assert "-    after: 1h" in diff and "+    after: 2h" in diff
    off = await client.post("/api/flows/abandoned_cart/enabled", json={"enabled": False}, headers=MARKETER)
    assert off.status_code == 200 and off.json() == {"version": 2, "enabled": False}
    listed = {row["name"]: row for row in (await client.get("/api/flows", headers=MARKETER)).json()["flows"]}
    assert listed["abandoned_cart"]["enabled"] is False
    back = await client.post("/api/flows/abandoned_cart/rollback", json={"version": 0}, headers=MARKETER)
    assert back.status_code == 200 and back.json() == {"version": 3}
    versions = (await client.get("/api/flows/abandoned_cart/versions", headers=MARKETER)).json()["versions"]
    assert [(v["version"], v["active"]) for v in versions] == [(3, True), (2, False), (1, False), (0, False)]
    assert versions[2]["comment"] == "later" and await saved_rows(engine) == 3


async def test_a_broken_flow_is_refused_with_its_line_and_nothing_changes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Bad duration, bad `when`, unknown channel: 422 with the 1-based line in the submitted source."""
    cases = [
        ("after: 2h", "after: soon", 5),
        ("channel: email", "channel: fax", 6),
        ("    after: 2h\n", '    after: 2h\n    when: "cart.value >>"\n', 6),
        ("weight: 3", "weight: -1", 9),
    ]
    for old, new, line in cases:
        response = await client.put("/api/flows/winback", json={"source": NEW_FLOW.replace(old, new)}, headers=MARKETER)
        assert response.status_code == 422, (old, new)
        assert response.json()["errors"][0]["line"] == line, (old, new, response.json())
    assert await saved_rows(engine) == 0
    assert (await client.get("/api/flows/winback", headers=MARKETER)).status_code == 404


async def test_a_new_name_creates_a_flow(client: httpx.AsyncClient) -> None:
    """PUT under a new name creates the flow at version 1; its name must match the URL's."""
    created = await client.put("/api/flows/winback", json={"source": NEW_FLOW}, headers=MARKETER)
    assert created.status_code == 201 and created.json() == {"version": 1}
    names = [row["name"] for row in (await client.get("/api/flows", headers=MARKETER)).json()["flows"]]
    assert "winback" in names
    other = await client.put("/api/flows/other", json={"source": NEW_FLOW}, headers=MARKETER)
    assert other.status_code == 422 and other.json()["errors"][0]["line"] == 1


async def test_a_test_send_reaches_the_marketer_marked_and_writes_no_message(
    client: httpx.AsyncClient, engine: AsyncEngine, outbox: Path
) -> None:
    """Each step with an address given is sent now with [TEST]; steps by SMS without a phone are skipped."""
    response = await client.post(
        "/api/flows/abandoned_cart/test-send", json={"email": "m@example.com"}, headers=MARKETER
    )
    assert response.status_code == 202
    outcomes = {(s["step"], s["outcome"]) for s in response.json()["steps"]}
    assert ("reminder", "sent") in outcomes and ("sms_offer", "skipped") in outcomes
    sent = [json.loads(line) for line in (outbox / "email.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sent and all(m["to"] == "m@example.com" and m["subject"].startswith("[TEST] ") for m in sent)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(messages)) == 0
    sms = await client.post("/api/flows/abandoned_cart/test-send", json={"phone": "+33612345678"}, headers=MARKETER)
    texts = [json.loads(line) for line in (outbox / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sms.status_code == 202 and texts and all(t["text"].startswith("[TEST] ") for t in texts)
    assert (await client.post("/api/flows/abandoned_cart/test-send", json={}, headers=MARKETER)).status_code == 422


async def test_the_studio_gives_each_steps_net_revenue_per_currency(engine: AsyncEngine) -> None:
    """Orders in two currencies: each step's net recovered revenue per currency, never "–" nor summed."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from recovery.attribution.variant_rows import step_revenue
    from recovery.store.schema import conversions

    now = datetime.now(UTC)
    rows = [("o1", "EUR", "120.00", "20.00"), ("o2", "EUR", "30.00", "0"), ("o3", "GBP", "50.00", "0")]
    async with engine.begin() as conn:
        for order, currency, revenue, refunded in rows:
            await conn.execute(
                conversions.insert().values(
                    order_id=order,
                    cart_id=f"c-{order}",
                    flow="abandoned_cart",
                    step="reminder",
                    kind="clicked",
                    model="last_click",
                    revenue=Decimal(revenue),
                    refunded=Decimal(refunded),
                    currency=currency,
                    holdout=False,
                    ordered_at=now,
                )
            )
    async with engine.connect() as conn:
        found = await step_revenue(conn)
    assert found == {("abandoned_cart", "reminder"): {"EUR": "130.00", "GBP": "50.00"}}


async def test_new_journeys_take_the_newest_version_and_running_ones_keep_theirs(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """After v1 (a split) and v2 (no split), new journeys start with v2; a journey on v1 still reads v1."""
    from recovery.rules import load_flows
    from recovery.rules.live_flows import LiveFlows

    split = (
        (await client.get("/api/flows/abandoned_cart", headers=MARKETER))
        .json()["source"]
        .replace(
            "    template: cart_reminder\n",
            "    variants:\n      - {name: a, weight: 1, template: cart_reminder}\n"
            "      - {name: b, weight: 1, template: cart_offer}\n",
            1,
        )
    )
    assert (await client.put("/api/flows/abandoned_cart", json={"source": split}, headers=MARKETER)).status_code == 201
    assert (await client.post("/api/flows/abandoned_cart/rollback", json={"version": 0}, headers=MARKETER)).json() == {
        "version": 2
    }
    live = LiveFlows(load_flows(ROOT / "config" / "flows.yaml"))
    assert await live.refresh(engine) and not await live.refresh(engine)  # nothing new: no reload
    current = live.get("abandoned_cart")
    assert current is not None and current.version == 2 and current.steps[0].variants is None
    async with engine.connect() as conn:
        running = await live.flow_of(conn, "abandoned_cart", 1)
        original = await live.flow_of(conn, "abandoned_cart", 0)
    assert running is not None and [v.name for v in running.steps[0].variants or []] == ["a", "b"]
    assert original is not None and original.steps[0].template == "cart_reminder"

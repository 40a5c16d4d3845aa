"""Marketers steer the flows on the real pipeline: a saved A/B split, its rollback, answers choosing the next
step, a test send, and a broken flow refused with its line — through /api/flows, the broker and the outbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from recovery.store.schema import discount_codes, flow_versions, messages
from tests.harness import Harness, cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
AUTH = {"Authorization": "Bearer studio-token"}
FILE_FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 0s, channel: email, template: cart_reminder}
"""
SPLIT = """\
name: abandoned_cart
trigger: cart.abandoned
steps:
  - name: reminder
    after: 0s
    channel: email
    variants:
      - {name: classic, weight: 50, template: cart_reminder}
      - {name: offer_first, weight: 50, template: cart_offer}
"""
ANSWERS = """\
name: abandoned_cart
trigger: cart.abandoned
steps:
  - {name: reminder, after: 0s, channel: email, template: cart_reminder}
  - name: free_shipping
    after: 4s
    channel: email
    template: free_shipping_offer
    when: "journey.feedback == 'shipping_cost'"
    offer: {free_shipping: true, valid_for: 48h}
"""


def settings_for(kafka_bootstrap: str, tmp_path: Path, database_url: str) -> Any:
    return service_settings(
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        workdir=tmp_path,
        flows=FILE_FLOWS,
        templates_dir=TEMPLATES,
        security={"api_tokens": {"studio-token": "marketer"}},
    )


def live_version(harness: Harness) -> int:
    """The version of abandoned_cart new journeys start with now (0: the file)."""
    flows = harness.service.flows
    assert flows is not None
    flow = flows.get("abandoned_cart")
    return flow.version if flow else -1


async def abandon(harness: Harness, prefix: str, count: int, start: int) -> list[str]:
    """Abandon ``count`` fresh carts; their ids."""
    ids = [f"{prefix}-{n}" for n in range(count)]
    for offset, cart_id in enumerate(ids):
        await harness.send(event("cart.updated", cart_id, customer=customer(start + offset), cart=cart()))
    return ids


async def sent_events(harness: Harness, carts: list[str]) -> dict[str, dict[str, Any]]:
    """The ``message.sent`` event of each of ``carts`` (waits for all of them)."""
    found: dict[str, dict[str, Any]] = {}

    async def all_there() -> bool:
        events = await harness.read_topic("messages", count=10_000, timeout=1)
        found.update({e["cart_id"]: e for e in events if e["type"] == "message.sent" and e["cart_id"] in carts})
        return len(found) == len(carts)

    await eventually(all_there, timeout=40, interval=0.5)
    return found


async def test_a_saved_split_sends_both_variants_and_a_rollback_stops_it(
    kafka_bootstrap: str, tmp_path: Path, database_url: str
) -> None:
    """Save two variants → a stream of carts gets both, each message.sent names its variant, the stats split
    them; a broken flow is refused with its line; a test send reaches the marketer only; rollback ends the split."""
    async with running_service(settings_for(kafka_bootstrap, tmp_path, database_url)) as harness:
        base = f"http://127.0.0.1:{harness.service.http_port}"
        engine = harness.service.engine
        assert engine is not None
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as http:
            broken = await http.put(
                "/api/flows/abandoned_cart", json={"source": SPLIT.replace("weight: 50", "weight: 0", 1)}
            )
            assert broken.status_code == 422
            assert broken.json()["errors"][0]["line"] == 8 and "greater than 0" in broken.json()["errors"][0]["message"]
            unknown = await http.put(
                "/api/flows/abandoned_cart", json={"source": SPLIT.replace("cart_offer", "cart_ofer")}
            )
            assert unknown.status_code == 422 and unknown.json()["errors"][0]["line"] == 9
            async with engine.connect() as conn:
                assert await conn.scalar(select(func.count()).select_from(flow_versions)) == 0

            saved = await http.put("/api/flows/abandoned_cart", json={"source": SPLIT, "comment": "A/B"})
            assert saved.status_code == 201 and saved.json() == {"version": 1}
            assert (await http.get("/api/flows/abandoned_cart")).json()["source"] == SPLIT
            await eventually(lambda: live_version(harness) == 1, timeout=10)

            tested = await http.post("/api/flows/abandoned_cart/test-send", json={"email": "marketer@example.com"})
            assert tested.status_code == 202
            tests = [m for m in harness.outbox() if m["to"] == "marketer@example.com"]
            assert len(tests) == 2 and all(m["subject"].startswith("[TEST] ") for m in tests)

            split = await abandon(harness, "split", 16, start=100)
            sent = await sent_events(harness, split)
            variants = {e["variant"] for e in sent.values()}
            assert variants == {"classic", "offer_first"}

            stats = (await http.get("/api/stats")).json()
            (reminder,) = [s for s in stats["variants"] if s["step"] == "reminder"]
            by_name = {v["variant"]: v for v in reminder["variants"]}
            assert sum(v["sent"] for v in by_name.values()) == 16  # the test send is not counted
            assert all(0.0 <= v["conversion_ci"][0] <= v["conversion_ci"][1] <= 1.0 for v in by_name.values())
            assert "not significant yet" in reminder["differences"][0]["verdict"]
            async with engine.connect() as conn:
                assert "marketer@example.com" not in str((await conn.execute(select(messages))).all())

            back = await http.post("/api/flows/abandoned_cart/rollback", json={"version": 0})
            assert back.status_code == 200 and back.json() == {"version": 2}
            await eventually(lambda: live_version(harness) == 2, timeout=10)
            after = await sent_events(harness, await abandon(harness, "after", 4, start=200))
            assert all("variant" not in e for e in after.values())
            history = (await http.get("/api/flows/abandoned_cart/versions")).json()["versions"]
            assert [v["version"] for v in history] == [2, 1, 0] and history[0]["active"]


async def test_a_shopper_who_answers_shipping_cost_gets_free_shipping_and_another_does_not(
    kafka_bootstrap: str, tmp_path: Path, database_url: str
) -> None:
    """The reminder's "shipping costs" link sets journey.feedback; only that shopper gets the free-shipping code."""
    async with running_service(settings_for(kafka_bootstrap, tmp_path, database_url)) as harness:
        base = f"http://127.0.0.1:{harness.service.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as http:
            assert (await http.put("/api/flows/abandoned_cart", json={"source": ANSWERS})).status_code == 201
            await eventually(lambda: live_version(harness) == 1, timeout=10)
            answered, silent = await abandon(harness, "fb", 2, start=300)
            await eventually(lambda: len(harness.outbox()) >= 2, timeout=30)
            reminder = next(m for m in harness.outbox() if m["cart_id"] == answered)
            link = re.search(r'href="[^"]*(/f/[^"]+)"[^>]*>Les frais de livraison', reminder["html"] or "")
            assert link is not None
            assert (await http.get(link.group(1), follow_redirects=False)).status_code < 400

            await eventually(lambda: any(m["step"] == "free_shipping" for m in harness.outbox()), timeout=30)
            offers = [m for m in harness.outbox() if m["step"] == "free_shipping"]
            assert [m["cart_id"] for m in offers] == [answered]
            assert "[TEST]" not in (offers[0]["subject"] or "")
            engine = harness.service.engine
            assert engine is not None

            async def silent_step_done() -> bool:
                events = await harness.read_topic("messages", count=10_000, timeout=1)
                return any(
                    e["cart_id"] == silent and e["step"] == "free_shipping" and e["type"] == "step.skipped"
                    for e in events
                )

            await eventually(silent_step_done, timeout=30, interval=0.5)
            assert [m["cart_id"] for m in harness.outbox() if m["step"] == "free_shipping"] == [answered]
            async with engine.connect() as conn:
                codes = (await conn.execute(select(discount_codes.c.free_shipping, discount_codes.c.percent))).all()
            assert [tuple(c) for c in codes] == [(True, 0)]

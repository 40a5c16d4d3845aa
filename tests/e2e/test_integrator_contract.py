"""What an integrator reads and tries: the JSON Schema, the AsyncAPI document, the validate API and CLI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from recovery.api import create_app
from recovery.cli.main import app as cli
from recovery.clock import ManualClock
from recovery.events import Rejection, parse_event
from recovery.ingest.event_schema import BEGIN, END, render_markdown
from recovery.settings import Settings
from tests.harness import cart, customer, event

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"plat": "platform", "mark": "marketer", "root": "admin"}
GOOD = event("cart.updated", "cart-1", customer=customer(), cart=cart())
BAD: list[Any] = [
    {**GOOD, "cart": {**cart(), "value": -1}},
    {key: value for key, value in GOOD.items() if key != "cart_id"},
    {**GOOD, "type": "cart.exploded"},
    {**GOOD, "occurred_at": "yesterday"},
    [1, 2],
]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from recovery.store.database import create_engine
    from recovery.store.migrate import upgrade_to_head

    engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    await upgrade_to_head(engine)
    settings = Settings(
        security={"link_secret": "s", "api_tokens": TOKENS},
        kafka={"topics": {"payment": {"format": "stripe"}}},
    )
    app = create_app(engine=engine, settings=settings, clock=ManualClock(datetime(2026, 11, 20, 12, tzinfo=UTC)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as http:
        yield http
    await engine.dispose()


def dead_letter_reason(document: Any) -> str | None:
    parsed = parse_event(json.dumps(document).encode())
    return parsed.reason if isinstance(parsed, Rejection) else None


async def test_the_published_schema_accepts_what_the_consumer_accepts_and_refuses_the_rest(
    client: httpx.AsyncClient,
) -> None:
    """GET /schemas/events.json is a 2020-12 schema, one oneOf branch per type, agreeing with ingest."""
    schema = (await client.get("/schemas/events.json")).json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert len(schema["oneOf"]) == 6
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    samples = (ROOT / "recovery/demo/data/sample_events.jsonl").read_text(encoding="utf-8").splitlines()
    accepted = [json.loads(line) for line in samples if line.strip() and dead_letter_reason(json.loads(line)) is None]
    assert {document["type"] for document in accepted} >= {"cart.updated", "payment.failed", "order.completed"}
    for document in [GOOD, *accepted]:
        assert validator.is_valid(document), document.get("type")
    for document in BAD[:3]:  # BAD[3]'s timestamp is a format: validators check it only when asked to
        assert not validator.is_valid(document)


async def test_asyncapi_lists_every_topic_read_and_written(client: httpx.AsyncClient) -> None:
    """GET /asyncapi.json (FastStream's) has the four inputs read and the three outputs written."""
    document = (await client.get("/asyncapi.json")).json()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "cart-events",
        "payment-events",
        "order-events",
        "consent-events",
        "recovery.dead-letter",
        "recovery.callback-tasks",
        "recovery.messages",
    }
    actions = {op["channel"]["$ref"].rsplit("/", 1)[-1]: op["action"] for op in document["operations"].values()}
    assert actions["cart-events:read"] == "receive" and actions["recovery.messages:write"] == "send"
    described = {channel["address"]: channel.get("description", "") for channel in document["channels"].values()}
    assert "format stripe" in described["payment-events"]
    assert "CartUpdated" in document["components"]["schemas"]


async def test_validate_answers_exactly_the_dead_letter_reason_for_each_event(client: httpx.AsyncClient) -> None:
    """POST /api/events/validate with a list: valid, or the very reason ingest would dead-letter with."""
    answer = await client.post("/api/events/validate", json=[GOOD, *BAD], headers={"Authorization": "Bearer plat"})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0] == {"valid": True}
    for document, result in zip(BAD, results[1:], strict=True):
        assert result == {"valid": False, "reason": dead_letter_reason(document)}
    single = await client.post("/api/events/validate", json=GOOD, headers={"Authorization": "Bearer root"})
    assert single.json() == {"results": [{"valid": True}]}


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("mark", 403), ("nope", 401)])
async def test_validate_needs_a_platform_or_admin_token(
    client: httpx.AsyncClient, token: str | None, status: int
) -> None:
    """No token 401, a marketer's token 403."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert (await client.post("/api/events/validate", json=GOOD, headers=headers)).status_code == status


def test_recovery_validate_prints_each_invalid_line_and_exits_1(tmp_path: Path) -> None:
    """recovery validate FILE.jsonl: file:line: reason for each bad line, exit 1; a clean file exits 0."""
    bad = tmp_path / "events.jsonl"
    bad.write_text("\n".join([json.dumps(GOOD), json.dumps(BAD[0]), "", "not json"]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2: {dead_letter_reason(BAD[0])}" in result.stdout
    assert f"{bad}:4: not JSON" in result.stdout
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["validate", str(good)]).exit_code == 0


def test_recovery_validate_reads_platform_formats(tmp_path: Path) -> None:
    """--format stripe: a Stripe event without metadata.cart_id gets the adapter's reason."""
    from tests.platform_payloads import STRIPE_PAYMENT_FAILED

    payload = json.loads(json.dumps(STRIPE_PAYMENT_FAILED))
    payload["data"]["object"]["metadata"] = {}
    lines = tmp_path / "stripe.jsonl"
    lines.write_text(json.dumps(STRIPE_PAYMENT_FAILED) + "\n" + json.dumps(payload) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--format", "stripe", str(lines)])
    assert result.exit_code == 1
    assert (
        "stripe.jsonl:2: stripe payment_intent.payment_failed: missing field 'data.object.metadata.cart_id'"
        in result.stdout
    )


def test_docs_events_md_tables_match_the_schema() -> None:
    """docs/events.md carries exactly the tables generated from the models (regenerate with the module)."""
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] + "\n" == render_markdown(), "run: python -m recovery.ingest.event_schema"

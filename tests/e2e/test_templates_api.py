"""The Templates API: roles, the save check, history and rollback, preview, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import SystemClock
from recovery.settings import Settings
from recovery.store.schema import template_versions

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TOKENS = {"m-token": "marketer", "a-token": "agent", "root-token": "admin"}
MARKETER = {"Authorization": "Bearer m-token"}
PATH = "en/cart_reminder.email.subject"
SMS_PATH = "fr/cart_reminder.sms.txt"


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        security={"link_secret": "s", "api_tokens": TOKENS},
        http={"public_url": "https://recovery.example"},
        templates_dir=TEMPLATES,
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://recovery.example") as c:
        yield c


async def saved_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(template_versions)) or 0)


ROUTES = [
    ("GET", "/api/templates", None),
    ("GET", f"/api/templates/{PATH}", None),
    ("GET", f"/api/templates/{PATH}/versions", None),
    ("POST", f"/api/templates/{PATH}/preview", {"source": "Hello"}),
    ("PUT", f"/api/templates/{PATH}", {"source": "Hello"}),
    ("POST", f"/api/templates/{PATH}/rollback", {"version": 0}),
]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
@pytest.mark.parametrize(("token", "status"), [(None, 401), ("a-token", 403)])
async def test_routes_refuse_callers_without_the_marketer_role(
    client: httpx.AsyncClient, method: str, url: str, body: object, token: str | None, status: int
) -> None:
    """No token is 401 and an agent's token is 403 on every templates route."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.request(method, url, json=body, headers=headers)
    assert response.status_code == status


@pytest.mark.parametrize("token", ["m-token", "root-token"])
async def test_marketer_and_admin_list_every_template_at_version_zero(client: httpx.AsyncClient, token: str) -> None:
    """Before any save, every file is listed as the default (version 0)."""
    response = await client.get("/api/templates", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    rows = {row["path"]: row for row in response.json()["templates"]}
    assert rows[PATH]["version"] == 0 and rows[PATH]["updated_by"] is None
    assert "fr/_layout.email.html" in rows


async def test_typo_is_refused_with_the_variable_and_line_and_nothing_is_saved(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A misspelt variable gives 422 naming it and its line; no version is written."""
    source = "Your cart\n{{ cart.totl }} is waiting"
    response = await client.put(f"/api/templates/{PATH}", json={"source": source}, headers=MARKETER)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any("cart.totl" in error["message"] and error["line"] == 2 for error in errors), errors
    assert await saved_rows(engine) == 0
    current = (await client.get(f"/api/templates/{PATH}", headers=MARKETER)).json()
    assert current["version"] == 0 and "totl" not in current["source"]


async def test_syntax_error_is_refused_at_its_line(client: httpx.AsyncClient) -> None:
    """An unclosed tag is refused with its line number."""
    response = await client.put(f"/api/templates/{PATH}", json={"source": "a\nb\n{% if x %}c"}, headers=MARKETER)
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 3


async def test_save_history_and_rollback(client: httpx.AsyncClient) -> None:
    """Two saves make versions 1 and 2; rolling back to 1 makes version 3 with version 1's source."""
    first = "Still thinking, {{ customer.first_name }}?"
    second = "Your basket misses you"
    r1 = await client.put(f"/api/templates/{PATH}", json={"source": first, "comment": "v1"}, headers=MARKETER)
    r2 = await client.put(f"/api/templates/{PATH}", json={"source": second}, headers=MARKETER)
    assert (r1.status_code, r1.json(), r2.status_code, r2.json()) == (201, {"version": 1}, 201, {"version": 2})
    back = await client.post(f"/api/templates/{PATH}/rollback", json={"version": 1}, headers=MARKETER)
    assert back.status_code == 200 and back.json() == {"version": 3}
    current = (await client.get(f"/api/templates/{PATH}", headers=MARKETER)).json()
    assert current["source"] == first and current["version"] == 3 and current["updated_by"]
    versions = (await client.get(f"/api/templates/{PATH}/versions", headers=MARKETER)).json()["versions"]
    assert [(v["version"], v["active"]) for v in versions] == [(3, True), (2, False), (1, False), (0, False)]
    assert versions[2]["comment"] == "v1"
    listed = {row["path"]: row for row in (await client.get("/api/templates", headers=MARKETER)).json()["templates"]}
    assert listed[PATH]["version"] == 3


async def test_rollback_to_a_missing_version_is_404(client: httpx.AsyncClient) -> None:
    """Rolling back to a version that was never saved is refused."""
    response = await client.post(f"/api/templates/{PATH}/rollback", json={"version": 9}, headers=MARKETER)
    assert response.status_code == 404


async def test_unknown_or_escaping_path_is_404(client: httpx.AsyncClient) -> None:
    """Only files under templates/ can be read or versioned."""
    for path in ("en/nope.email.txt", "../pyproject.toml", "samples/en_cart.json"):
        response = await client.get(f"/api/templates/{path}", headers=MARKETER)
        assert response.status_code == 404, path


async def test_email_preview_renders_subject_text_and_html(client: httpx.AsyncClient) -> None:
    """Previewing an unsaved subject shows it with the sample's values, and the rest of the email."""
    source = "{{ customer.first_name }}, your cart waits"
    response = await client.post(f"/api/templates/{PATH}/preview", json={"source": source}, headers=MARKETER)
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "Oliver, your cart waits"
    assert body["html"].startswith("<") and body["text"]


async def test_sms_preview_counts_segments_and_encoding(client: httpx.AsyncClient) -> None:
    """One emoji turns a short GSM-7 SMS into UCS-2."""
    plain = await client.post(f"/api/templates/{SMS_PATH}/preview", json={"source": "Votre panier"}, headers=MARKETER)
    emoji = await client.post(f"/api/templates/{SMS_PATH}/preview", json={"source": "Panier 🛒"}, headers=MARKETER)
    assert plain.json()["sms"]["encoding"] == "GSM-7" and plain.json()["sms"]["segments"] == 1
    assert emoji.json()["sms"]["encoding"] == "UCS-2"


async def test_preview_with_an_error_answers_422_with_its_line(client: httpx.AsyncClient) -> None:
    """A preview of a broken source names the undefined variable at its line."""
    response = await client.post(
        f"/api/templates/{SMS_PATH}/preview", json={"source": "ok\n{{ cart.nope }}"}, headers=MARKETER
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 2 and "cart.nope" in response.json()["errors"][0]["message"]

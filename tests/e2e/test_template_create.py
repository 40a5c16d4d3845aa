"""The studio creates template files (a variant's template, a new language) and refuses text that a layout
would never show, naming its line."""

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
MARKETER = {"Authorization": "Bearer m-token"}


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        security={"link_secret": "s", "api_tokens": {"m-token": "marketer"}},
        http={"public_url": "https://recovery.example"},
        templates_dir=TEMPLATES,
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://recovery.example") as c:
        yield c


async def saved_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(template_versions)) or 0)


async def test_a_paragraph_after_the_blocks_is_refused_at_its_line(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Appending a paragraph after the last block of cart_reminder.email.html is a 422 at that line."""
    path = "en/cart_reminder.email.html"
    source = (TEMPLATES / path).read_text(encoding="utf-8")
    lines = source.count("\n")
    response = await client.put(
        f"/api/templates/{path}", json={"source": source + "\n<p>One more thing</p>\n"}, headers=MARKETER
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["line"] == lines + 2 and "outside the blocks" in error["message"]
    assert await saved_rows(engine) == 0


async def test_a_new_language_is_created_part_by_part(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """it/ parts save one by one (201), are listed and read back; a bad one is still refused by line."""
    subject = await client.put(
        "/api/templates/it/cart_reminder.email.subject", json={"source": "Il tuo carrello ti aspetta"}, headers=MARKETER
    )
    assert subject.status_code == 201 and subject.json() == {"version": 1}
    text = '{% extends "_layout.email.txt" %}\n{% block content %}Ciao!{% endblock %}\n'
    body = await client.put("/api/templates/it/cart_reminder.email.txt", json={"source": text}, headers=MARKETER)
    # No it/ layout exists: the check says so rather than saving a template that cannot render.
    assert body.status_code == 422
    plain = await client.put(
        "/api/templates/it/cart_reminder.email.txt",
        json={"source": "Ciao!\n{{ cart.restore_url | track }}\n"},
        headers=MARKETER,
    )
    assert plain.status_code == 201, plain.json()
    listed = {row["path"] for row in (await client.get("/api/templates", headers=MARKETER)).json()["templates"]}
    assert {"it/cart_reminder.email.subject", "it/cart_reminder.email.txt"} <= listed
    read = (await client.get("/api/templates/it/cart_reminder.email.subject", headers=MARKETER)).json()
    assert read["source"] == "Il tuo carrello ti aspetta" and read["version"] == 1
    versions = (await client.get("/api/templates/it/cart_reminder.email.subject/versions", headers=MARKETER)).json()
    assert [v["version"] for v in versions["versions"]] == [1]  # no file, so no version 0
    assert await saved_rows(engine) == 2


async def test_a_variants_template_is_created_and_a_bad_name_is_404(client: httpx.AsyncClient) -> None:
    """A new message file name is accepted; a path that cannot be a template is not."""
    created = await client.put(
        "/api/templates/en/cart_reminder_short.email.subject", json={"source": "Still yours"}, headers=MARKETER
    )
    assert created.status_code == 201
    for path in ("en/Nope.email.subject", "en/notes.md", "../x.email.txt"):
        response = await client.put(f"/api/templates/{path}", json={"source": "x"}, headers=MARKETER)
        assert response.status_code == 404, path

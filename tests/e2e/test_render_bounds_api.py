"""A hostile template is refused by the served app (422, nothing saved) while /healthz keeps answering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import SystemClock
from recovery.render.bounds import RenderLimits, configure
from recovery.settings import Settings
from recovery.store.schema import template_versions

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
MARKETER = {"Authorization": "Bearer m-token"}
PATH = "en/cart_reminder.email.subject"

DOUBLING = "{% set a = 'x' * 100000 %}" + "{% set a = a ~ a %}" * 9 + "{{ a | length }}"
POWERS = "{% set x = ((10 ** 64) ** 64) ** 64 %}{{ (x ** 30) % 7 }}"
REPLACE = "{{ ('x' * 100000) | replace('x', 'y' * 2000) | length }}"
LJUST = "{{ 'x'.ljust(200000000) | length }}"
FORMAT = "{{ '{:>200000000}'.format(1) | length }}"
# Within every size bound, but runs for minutes: only the deadline stops it.
RUNAWAY = "{% set l = [1] * 300 %}{% for i in l %}{% for j in l %}{{ ((10 ** 64) ** 60) % 7 }}{% endfor %}{% endfor %}"


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        security={"link_secret": "s", "api_tokens": {"m-token": "marketer"}},
        http={"public_url": "https://recovery.example"},
        templates_dir=TEMPLATES,
        # long enough that the shop's own email parts render on a loaded CI machine (1 s was not), short
        # enough that the runaway template's test stays quick
        render={"deadline": "3s"},
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://recovery.example") as c:
        yield c
    configure(RenderLimits())


async def saved_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(template_versions)) or 0)


def assert_served_meanwhile(timings: list[float]) -> None:
    """/healthz answered within 100 ms while the render ran, and never waited anywhere near the 3 s deadline
    (the fixture's) that a render on the loop would hold it. One probe in ten may be late: the CI machine is
    shared, and a garbage collection or a descheduled process delays any request, rendering or not (one probe
    took 1.8 s in a CI run of 2 431 tests on 2 cores, while three render threads computed)."""
    assert timings
    late = [t for t in timings if t >= 0.1]
    assert len(late) <= max(1, len(timings) // 10), timings
    assert max(timings) < 2.0, timings


async def health_while(client: httpx.AsyncClient, request: asyncio.Task[httpx.Response]) -> list[float]:
    """Seconds each ``GET /healthz`` took while ``request`` was running."""
    timings = []
    while not request.done():
        started = time.monotonic()
        health = await client.get("/healthz")
        timings.append(time.monotonic() - started)
        assert health.status_code == 200
        await asyncio.sleep(0.02)
    return timings


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (DOUBLING, "concatenation of 200000 characters"),
        (POWERS, "a power of"),
        (REPLACE, "a replace of 200000000 characters"),
        (LJUST, "str.ljust of 200000000 characters"),
        (FORMAT, "format spec"),
        (RUNAWAY, "rendering took longer than 3 s and was stopped"),
    ],
)
async def test_a_hostile_save_is_refused_and_healthz_answers_meanwhile(
    client: httpx.AsyncClient, engine: AsyncEngine, source: str, reason: str
) -> None:
    """PUT of the issue's attacks: 422 naming the bound, no version saved, /healthz answering meanwhile."""
    started = time.monotonic()
    put = asyncio.create_task(client.put(f"/api/templates/{PATH}", json={"source": source}, headers=MARKETER))
    timings = await health_while(client, put)
    response = await put
    assert response.status_code == 422
    # each part of the email (subject, text, html) reports its own error
    assert any(reason in error["message"] for error in response.json()["errors"]), response.json()
    assert await saved_rows(engine) == 0
    assert time.monotonic() - started < 8
    assert_served_meanwhile(timings)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (DOUBLING, "concatenation of 200000 characters"),
        (POWERS, "a power of"),
        # stopped by the sandbox at its deadline, or (on a starved machine) by the caller's grace after it
        (RUNAWAY, "rendering took longer than 3 s and was stopped"),
    ],
)
async def test_a_hostile_preview_is_refused_and_healthz_answers_meanwhile(
    client: httpx.AsyncClient, source: str, reason: str
) -> None:
    """POST preview of an attack: 422 naming the bound, and the service keeps answering."""
    preview = asyncio.create_task(
        client.post(f"/api/templates/{PATH}/preview", json={"source": source}, headers=MARKETER)
    )
    timings = await health_while(client, preview)
    response = await preview
    assert response.status_code == 422
    # each part of the email (subject, text, html) reports its own error
    assert any(reason in error["message"] for error in response.json()["errors"]), response.json()
    assert_served_meanwhile(timings)


async def test_an_ordinary_template_still_saves(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """The bounds leave normal template logic alone: loops, joins, concatenation, filters."""
    source = "{{ cart.items | map(attribute='name') | join(', ') ~ ' — ' ~ ('ok' | upper) }} {{ 2 ** 10 }}"
    response = await client.put(f"/api/templates/{PATH}", json={"source": source}, headers=MARKETER)
    assert response.status_code == 201
    assert await saved_rows(engine) == 1


@pytest.mark.parametrize("version", [2**63, 2**31, -1])
async def test_a_rollback_to_an_out_of_range_version_is_a_422(client: httpx.AsyncClient, version: int) -> None:
    """``{"version": 2**63}`` is refused by validation, never a database error (500)."""
    response = await client.post(f"/api/templates/{PATH}/rollback", json={"version": version}, headers=MARKETER)
    assert response.status_code == 422

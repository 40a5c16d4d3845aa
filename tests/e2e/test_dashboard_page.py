"""The /dashboard page over HTTP: roles, and figures equal to ``recovery report --format json``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from recovery.api import create_app
from recovery.cli.main import app as cli
from recovery.clock import SystemClock
from recovery.settings import Settings
from tests.integration.test_report import shop

__all__ = ["shop"]
TOKENS = {"m-token": {"role": "marketer", "name": "Mia"}, "a-token": {"role": "agent", "name": "Ali"}}
ROOT = Path(__file__).resolve().parents[2]


def client(engine: AsyncEngine) -> httpx.AsyncClient:
    settings = Settings(
        security={"link_secret": "dash-secret", "api_tokens": TOKENS},
        templates_dir=ROOT / "templates",
        flows_file=ROOT / "config" / "flows.yaml",
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def signed_in(http: httpx.AsyncClient, token: str) -> None:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/login")).text)
    assert csrf
    await http.post("/login", data={"token": token, "csrf_token": csrf.group(1)})


@pytest.fixture
async def marketer(shop: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with client(shop) as http:
        await signed_in(http, "m-token")
        yield http


def without_time(stats: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in stats.items() if key != "generated_at"}


async def test_dashboard_figures_equal_the_report_json(
    marketer: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """The dashboard's JSON and the CLI report give the same figures for the same period and store."""
    config = tmp_path / "recovery.yaml"
    config.write_text(f"database:\n  url: {database_url}\n", encoding="utf-8")
    for store in ("", "fr"):
        args = ["report", "--format", "json", "-c", str(config), *(["--store", store] if store else [])]
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        assert result.exit_code == 0, result.output
        dashboard = (await marketer.get("/dashboard/stats.json", params={"period": "", "store": store})).json()
        assert without_time(dashboard) == without_time(json.loads(result.stdout))


async def test_dashboard_page_shows_the_headline_money_per_currency_and_charts(marketer: httpx.AsyncClient) -> None:
    """The page prints the report's counts and draws one SVG per chart."""
    stats = (await marketer.get("/dashboard/stats.json", params={"period": ""})).json()
    page = await marketer.get("/dashboard", params={"period": ""})
    assert page.status_code == 200
    assert f'<span data-figure="orders">{stats["funnel"]["orders"]}</span>' in page.text
    assert f"{stats['money']['EUR']['recovered_revenue']} EUR" in page.text
    assert page.text.count("<svg") >= 7


async def test_agents_may_not_open_the_dashboard_or_the_studio(shop: AsyncEngine) -> None:
    """An agent's session gets the 403 page; no session is sent to sign in."""
    async with client(shop) as http:
        assert (await http.get("/dashboard")).status_code in (302, 303, 307)
        await signed_in(http, "a-token")
        for path in ("/dashboard", "/studio", "/dashboard/stats.json"):
            assert (await http.get(path)).status_code == 403, path


async def test_an_unknown_period_is_a_400(marketer: httpx.AsyncClient) -> None:
    """Only the periods of the picker are accepted."""
    assert (await marketer.get("/dashboard", params={"period": "5y"})).status_code == 400


async def test_api_stats_gives_the_same_figures_per_store_with_money_per_currency(
    marketer: httpx.AsyncClient, shop: AsyncEngine
) -> None:
    """``GET /api/stats?store=`` (bearer) equals the dashboard's figures for that store."""
    async with client(shop) as http:
        api = await http.get("/api/stats", params={"store": "fr"}, headers={"Authorization": "Bearer m-token"})
    assert api.status_code == 200
    dashboard = (await marketer.get("/dashboard/stats.json", params={"period": "", "store": "fr"})).json()
    assert without_time(api.json()) == without_time(dashboard)
    assert set(api.json()["money"]) == {"EUR"} and "feedback" in api.json()

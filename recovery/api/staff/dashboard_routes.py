"""The ``/dashboard`` page (roles marketer and admin): the report's figures as charts, by period and store."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from recovery.api.auth import Principal
from recovery.api.pages.rendering import render_page
from recovery.api.pages.session import require_page
from recovery.api.pages.texts import STUDIO_TEXTS
from recovery.attribution.dashboard_charts import dashboard_charts
from recovery.attribution.queries import build_stats, stores_seen
from recovery.durations import parse_duration

DashboardPage = Annotated[Principal, Depends(require_page("marketer"))]
PERIODS = ("1d", "7d", "30d", "90d", "")  # "" is everything

log = logging.getLogger(__name__)


async def _stats(request: Request, period: str, store: str) -> dict[str, Any]:
    """``build_stats`` for the period and store: the very figures of ``recovery report --format json``."""
    if period not in PERIODS:
        raise HTTPException(400, detail=f"period: use one of {', '.join(p or 'all' for p in PERIODS)}")
    desk = request.app.state.template_desk
    now = desk.clock.now()
    since = now - parse_duration(period) if period else None
    return await build_stats(desk.engine, since=since, now=now, store=store or None)


def _charts(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """The SVG charts; none (the figures stay) when the ``report`` extra (matplotlib) is not installed."""
    try:
        return dashboard_charts(stats)
    except ModuleNotFoundError:
        log.warning("dashboard charts need matplotlib: pip install 'cart-recovery[report]'")
        return []


def dashboard_router() -> APIRouter:
    """The dashboard page and its figures as JSON (same session)."""
    router = APIRouter(prefix="/dashboard")

    @router.get("", include_in_schema=False)
    async def dashboard(request: Request, who: DashboardPage, period: str = "30d", store: str = "") -> Response:
        stats = await _stats(request, period, store)
        context = {
            "stats": stats,
            "charts": _charts(stats),
            "periods": PERIODS,
            "period": period,
            "stores": await stores_seen(request.app.state.template_desk.engine),
            "store": store,
        }
        return render_page(request, "dashboard.html", context, texts=STUDIO_TEXTS, principal=who)

    @router.get("/stats.json", include_in_schema=False)
    async def figures(request: Request, _: DashboardPage, period: str = "30d", store: str = "") -> dict[str, Any]:
        return await _stats(request, period, store)

    return router

"""The studio's flow page (``/studio/flows/{name}``): a form a marketer can use (steps with delay, channel,
template, condition, offer, variants), the YAML beside it, figures per step and variant, save and test send."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from recovery.api.auth import Principal
from recovery.api.pages.csrf import check_csrf
from recovery.api.pages.rendering import render_page
from recovery.api.pages.session import require_page
from recovery.api.pages.texts import STUDIO_TEXTS
from recovery.api.staff.flows_routes import MAX_SOURCE, TestSendBody, rejected, test_send_answer
from recovery.attribution.queries import build_stats
from recovery.attribution.variant_rows import step_revenue
from recovery.rules.flow_check import check_flow_source
from recovery.rules.flow_desk import FlowDesk, FlowRejected, UnknownFlow
from recovery.rules.flows import Flow
from recovery.rules.yaml_positions import load_with_lines
from recovery.states import ChannelName

StudioPage = Annotated[Principal, Depends(require_page("marketer"))]


class FlowSave(BaseModel):
    """A save from the flow page: the YAML the form wrote (or the marketer typed)."""

    name: str = Field(max_length=128)
    source: str = Field(max_length=MAX_SOURCE)
    comment: str | None = Field(default=None, max_length=500)


class FlowTestSend(TestSendBody):
    """A test send from the flow page."""

    name: str = Field(max_length=128)


def _desk(request: Request) -> FlowDesk:
    desk: FlowDesk = request.app.state.flow_desk
    return desk


def flow_of(source: str, name: str) -> Flow | None:
    """The flow a live source describes (its shape only), for the form."""
    flow, _problems = check_flow_source(source, name=name, catalogue=None, settings=None)
    return flow


async def step_figures(desk: FlowDesk, name: str) -> dict[str, Any]:
    """``{step: {"step": by_step row, "variants": [...], "differences": [...]}}`` for one flow."""
    stats = await build_stats(desk.engine, since=None, now=desk.clock.now())
    found: dict[str, Any] = {}
    async with desk.engine.connect() as conn:
        revenue = await step_revenue(conn)
    for row in stats["recovery"]["by_step"]:
        if row["flow"] == name:
            amounts = revenue.get((name, row["step"]), {})
            found.setdefault(row["step"], {})["step"] = row | {"revenue_by_currency": amounts}
    for split in stats.get("variants") or []:
        if split["flow"] == name:
            found.setdefault(split["step"], {}).update(variants=split["variants"], differences=split["differences"])
    return found


def flow_studio_router() -> APIRouter:
    """The flow page and the JSON calls its script makes (session + CSRF header)."""
    router = APIRouter(prefix="/studio/flows")

    @router.get("/{name}", include_in_schema=False)
    async def page(request: Request, name: str, who: StudioPage) -> Response:
        desk = _desk(request)
        try:
            live = await desk.read(name)
        except UnknownFlow as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        data, _lines = load_with_lines(live["source"])
        context = {
            "flow": live,
            "parsed": flow_of(live["source"], name),
            "raw": data if isinstance(data, dict) else {},
            "channels": [channel.value for channel in ChannelName],
            "figures": await step_figures(desk, name),
            "versions": await desk.versions(name),
        }
        return render_page(request, "flow_studio.html", context, texts=STUDIO_TEXTS, principal=who)

    @router.post("/save", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def save(request: Request, body: FlowSave, who: StudioPage) -> Response:
        try:
            version = await _desk(request).save(body.name, body.source, who.name, body.comment)
        except FlowRejected as exc:
            return rejected(exc)
        return JSONResponse({"version": version}, status_code=201)

    @router.post("/test-send", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def test_send(request: Request, body: FlowTestSend, _: StudioPage) -> Response:
        # The same path as POST /api/flows/{name}/test-send, reached with the page's session.
        channels = request.app.state.flow_channels
        return await test_send_answer(_desk(request), channels, body.name, body.email, body.phone)

    return router

"""The Flows API (role ``marketer``): list, read, save (checked), history, diff, rollback, enable, test send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from recovery.api.auth import Principal, require_role
from recovery.channels.base import Channel
from recovery.render.templates import load_templates
from recovery.render.versions import live_sources
from recovery.rules.flow_desk import FlowDesk, FlowRejected, UnknownFlow
from recovery.rules.flow_test_send import send_tests
from recovery.states import ChannelName

Marketer = Annotated[Principal, Depends(require_role("marketer", "admin"))]
MAX_SOURCE = 100_000
T = TypeVar("T")
ChannelsFactory = Callable[[], Mapping[ChannelName, Channel]]


class SaveBody(BaseModel):
    """A flow's YAML to save as its next version."""

    source: str = Field(max_length=MAX_SOURCE)
    comment: str | None = Field(default=None, max_length=500)


class RollbackBody(BaseModel):
    """The version whose source becomes the newest version."""

    version: int = Field(ge=0)


class EnabledBody(BaseModel):
    """Whether new journeys enter the flow."""

    enabled: bool


class TestSendBody(BaseModel):
    """The marketer's own address and/or phone."""

    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+[1-9][0-9]{6,15}$")


def rejected(exc: FlowRejected) -> JSONResponse:
    """The contract's ``422 {"errors": [{"line", "message"}]}``, lines in the submitted source."""
    return JSONResponse({"errors": [{"line": e.line, "message": e.message} for e in exc.errors]}, status_code=422)


def flows_router(desk: FlowDesk, channels: ChannelsFactory) -> APIRouter:
    """Routes under ``/api/flows``; saves are checked and start new journeys on every replica within seconds."""
    router = APIRouter(prefix="/api/flows")

    @router.get("")
    async def list_flows(_: Marketer) -> dict[str, Any]:
        return {"flows": await desk.listing()}

    @router.get("/{name}")
    async def read(name: str, _: Marketer) -> dict[str, Any]:
        return await _found(desk.read(name))

    @router.put("/{name}", response_model=None)
    async def save(name: str, body: SaveBody, who: Marketer) -> JSONResponse:
        try:
            return JSONResponse({"version": await desk.save(name, body.source, who.name, body.comment)}, 201)
        except FlowRejected as exc:
            return rejected(exc)

    @router.get("/{name}/versions")
    async def versions(name: str, _: Marketer) -> dict[str, Any]:
        return {"versions": await _found(desk.versions(name))}

    @router.get("/{name}/diff")
    async def diff(name: str, old: int, new: int, _: Marketer) -> dict[str, Any]:
        return {"diff": await _found(desk.diff(name, old, new))}

    @router.post("/{name}/rollback", response_model=None)
    async def rollback(name: str, body: RollbackBody, who: Marketer) -> JSONResponse:
        try:
            return JSONResponse({"version": await _found(desk.rollback(name, body.version, who.name))})
        except FlowRejected as exc:
            return rejected(exc)

    @router.post("/{name}/enabled", response_model=None)
    async def enable(name: str, body: EnabledBody, who: Marketer) -> JSONResponse:
        try:
            version = await _found(desk.set_enabled(name, body.enabled, who.name))
        except FlowRejected as exc:
            return rejected(exc)
        return JSONResponse({"version": version, "enabled": body.enabled})

    @router.post("/{name}/test-send", response_model=None)
    async def test_send(name: str, body: TestSendBody, _: Marketer) -> JSONResponse:
        return await test_send_answer(desk, channels, name, body.email, body.phone)

    return router


async def test_send_answer(
    desk: FlowDesk, channels: ChannelsFactory, name: str, email: str | None, phone: str | None
) -> JSONResponse:
    """``202 {"steps": [...]}``: the flow's steps rendered on a sample cart and sent now, marked [TEST]."""
    if not email and not phone:
        raise HTTPException(422, detail="give an email address, a phone number or both")
    source = (await _found(desk.read(name)))["source"]
    try:
        flow = await desk.check(name, source)
    except FlowRejected as exc:
        return rejected(exc)
    templates = load_templates(desk.settings.templates_dir, await live_sources(desk.engine))
    built = channels()
    try:
        sent = await send_tests(flow, templates, built, email=email, phone=phone, now_iso=desk.clock.now().isoformat())
    finally:
        for channel in built.values():
            await channel.aclose()
    steps = [{"step": s.step, "variant": s.variant, "channel": s.channel, "outcome": s.outcome} for s in sent]
    return JSONResponse({"steps": steps}, status_code=202)


async def _found(call: Awaitable[T]) -> T:
    """The call's answer; HTTP 404 when the flow or version does not exist."""
    try:
        return await call
    except UnknownFlow as exc:
        raise HTTPException(404, detail=str(exc)) from exc

"""The Templates API (role ``marketer``): list, read, preview, save, history and rollback of versions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from recovery.api.auth import Principal, require_role
from recovery.errors import NotFound
from recovery.render.template_desk import TemplateDesk
from recovery.render.versions import TemplateRejected

Marketer = Annotated[Principal, Depends(require_role("marketer", "admin"))]
MAX_SOURCE = 100_000
MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer: a larger number is a 422, never a database error


class PreviewBody(BaseModel):
    """An unsaved source to render, with a sample name or a real cart id."""

    source: str = Field(max_length=MAX_SOURCE)
    sample: str | None = Field(default=None, max_length=128)
    cart_id: str | None = Field(default=None, max_length=128)


class SaveBody(BaseModel):
    """A source to save as the next version."""

    source: str = Field(max_length=MAX_SOURCE)
    comment: str | None = Field(default=None, max_length=500)


class RollbackBody(BaseModel):
    """The version whose source becomes the newest version."""

    version: int = Field(ge=0, le=MAX_VERSION)


def rejected(exc: TemplateRejected) -> JSONResponse:
    """The contract's ``422 {"errors": [{"line", "message"}]}``."""
    errors = [{"line": error.line, "message": error.message} for error in exc.errors]
    return JSONResponse({"errors": errors}, status_code=422)


@contextmanager
def not_found_as_404() -> Iterator[None]:
    """A template, version or cart that does not exist answers 404 with the reason as ``detail``."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc


def templates_router(desk: TemplateDesk) -> APIRouter:
    """Routes under ``/api/templates``; saves are checked and live on every replica within seconds."""
    router = APIRouter(prefix="/api/templates")

    @router.get("")
    async def list_templates(_: Marketer) -> dict[str, Any]:
        return {"templates": await desk.listing()}

    @router.get("/{path:path}/versions")
    async def versions(path: str, _: Marketer) -> dict[str, Any]:
        with not_found_as_404():
            return {"versions": await desk.versions(path)}

    @router.post("/{path:path}/preview", response_model=None)
    async def preview(path: str, body: PreviewBody, _: Marketer) -> dict[str, Any] | JSONResponse:
        with not_found_as_404():
            try:
                return await desk.preview(path, body.source, body.sample, body.cart_id)
            except TemplateRejected as exc:
                return rejected(exc)

    @router.post("/{path:path}/rollback", response_model=None)
    async def rollback(path: str, body: RollbackBody, who: Marketer) -> JSONResponse:
        with not_found_as_404():
            try:
                return JSONResponse({"version": await desk.rollback(path, body.version, who.name)})
            except TemplateRejected as exc:
                return rejected(exc)

    @router.get("/{path:path}")
    async def read(path: str, _: Marketer) -> dict[str, Any]:
        with not_found_as_404():
            return await desk.read(path)

    @router.put("/{path:path}", response_model=None)
    async def save(path: str, body: SaveBody, who: Marketer) -> JSONResponse:
        with not_found_as_404():
            try:
                return JSONResponse({"version": await desk.save(path, body.source, who.name, body.comment)}, 201)
            except TemplateRejected as exc:
                return rejected(exc)

    return router

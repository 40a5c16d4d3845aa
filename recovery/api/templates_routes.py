"""The Templates API (role ``marketer``): list, read, preview, save, history and rollback of versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.auth import Principal, require_role
from recovery.clock import Clock
from recovery.store import cart_rows, template_rows
from recovery.template_preview import pick_sample, render_preview
from recovery.template_versions import (
    TemplateRejected,
    UnknownTemplate,
    current_source,
    editable_paths,
    live_sources,
    require_path,
    save_checked,
)

Marketer = Annotated[Principal, Depends(require_role("marketer", "admin"))]
_MAX_SOURCE = 100_000


class PreviewBody(BaseModel):
    """An unsaved source to render, with a sample name or a real cart id."""

    source: str = Field(max_length=_MAX_SOURCE)
    sample: str | None = None
    cart_id: str | None = Field(default=None, max_length=128)


class SaveBody(BaseModel):
    """A source to save as the next version."""

    source: str = Field(max_length=_MAX_SOURCE)
    comment: str | None = Field(default=None, max_length=500)


class RollbackBody(BaseModel):
    """The version whose source becomes the newest version."""

    version: int = Field(ge=0)


def _rejected(exc: TemplateRejected) -> JSONResponse:
    errors = [{"line": error.line, "message": error.message} for error in exc.errors]
    return JSONResponse({"errors": errors}, status_code=422)


def _who(principal: Principal) -> str:
    return principal.name


async def _cart_context(engine: AsyncEngine, cart_id: str) -> dict[str, Any]:
    """The parts of a render context a real cart provides (cart, customer, payment, store)."""
    async with engine.connect() as conn:
        cart = (await cart_rows.load_carts(conn, [cart_id])).get(cart_id)
        if cart is None:
            raise HTTPException(404, detail=f"no cart '{cart_id}'")
        customer = (await cart_rows.load_customers(conn, [cart.customer_key])).get(cart.customer_key)
    snapshot = cart.cart if isinstance(cart.cart, dict) else {}
    found: dict[str, Any] = {"cart": snapshot, "store": cart.store, "checkout_step": cart.checkout_step}
    if cart.payment:
        found["payment"] = cart.payment
    if customer is not None:
        found["customer"] = {
            "first_name": customer.first_name,
            "locale": customer.locale,
            "timezone": customer.timezone,
        }
    return found


def templates_router(*, engine: AsyncEngine, templates_dir: Path, clock: Clock) -> APIRouter:
    """Routes under ``/api/templates``; saves are checked and live on every replica within seconds."""
    router = APIRouter(prefix="/api/templates")

    @router.get("")
    async def list_templates(_: Marketer) -> dict[str, Any]:
        async with engine.connect() as conn:
            live = await template_rows.live_versions(conn)
        rows = []
        for path in editable_paths(templates_dir):
            saved = live.get(path)
            rows.append(
                {
                    "path": path,
                    "version": saved.version if saved else 0,
                    "updated_at": saved.created_at.isoformat() if saved else None,
                    "updated_by": saved.created_by if saved else None,
                }
            )
        return {"templates": rows}

    @router.get("/{path:path}/versions")
    async def versions(path: str, _: Marketer) -> dict[str, Any]:
        _known(path)
        async with engine.connect() as conn:
            saved = await template_rows.history(conn, path)
        rows = [
            {
                "version": row.version,
                "created_at": row.created_at.isoformat(),
                "created_by": row.created_by,
                "comment": row.comment,
                "active": index == 0,
            }
            for index, row in enumerate(saved)
        ]
        default = {"version": 0, "created_at": None, "created_by": None, "comment": "file", "active": not saved}
        return {"versions": [*rows, default]}

    @router.post("/{path:path}/preview", response_model=None)
    async def preview(path: str, body: PreviewBody, _: Marketer) -> dict[str, Any] | JSONResponse:
        _known(path)
        live = await live_sources(engine)
        try:
            sample = pick_sample(templates_dir / "samples", body.sample, path.split("/", 1)[0])
            context = dict(sample.context)
            if body.cart_id:
                context.update(await _cart_context(engine, body.cart_id))
            return render_preview(
                templates_dir, live, path=path, source=body.source, context=context, store_locale=sample.store_locale
            )
        except TemplateRejected as exc:
            return _rejected(exc)

    @router.post("/{path:path}/rollback", response_model=None)
    async def rollback(path: str, body: RollbackBody, principal: Marketer) -> dict[str, Any] | JSONResponse:
        _known(path)
        if body.version == 0:
            source = (templates_dir / path).read_text(encoding="utf-8")
        else:
            async with engine.connect() as conn:
                old = await template_rows.get_version(conn, path, body.version)
            if old is None:
                raise HTTPException(404, detail=f"'{path}' has no version {body.version}")
            source = old.source
        return await _save(path, source, principal, f"rollback to version {body.version}", status=200)

    @router.get("/{path:path}")
    async def read(path: str, _: Marketer) -> dict[str, Any]:
        _known(path)
        source, version, at, by = await current_source(engine, templates_dir, path)
        return {
            "path": path,
            "source": source,
            "version": version,
            "updated_at": at.isoformat() if at else None,
            "updated_by": by,
        }

    @router.put("/{path:path}", response_model=None)
    async def save(path: str, body: SaveBody, principal: Marketer) -> JSONResponse:
        _known(path)
        return await _save(path, body.source, principal, body.comment, status=201)

    async def _save(path: str, source: str, principal: Principal, comment: str | None, *, status: int) -> JSONResponse:
        try:
            version = await save_checked(
                engine, templates_dir, path=path, source=source, created_by=_who(principal), comment=comment,
                now=clock.now(),
            )  # fmt: skip
        except TemplateRejected as exc:
            return _rejected(exc)
        return JSONResponse({"version": version}, status_code=status)

    def _known(path: str) -> None:
        try:
            require_path(templates_dir, path)
        except UnknownTemplate as exc:
            raise HTTPException(404, detail=str(exc)) from exc

    return router

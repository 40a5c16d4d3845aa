"""The ``/studio`` page: templates by locale and channel, an editor with a live preview, save, history, rollback."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from recovery.api.auth import Principal
from recovery.api.pages.csrf import check_csrf
from recovery.api.pages.rendering import render_page
from recovery.api.pages.session import require_page
from recovery.api.pages.texts import STUDIO_TEXTS
from recovery.api.staff.flow_studio_routes import flow_of
from recovery.api.staff.templates_routes import (
    MAX_VERSION,
    PreviewBody,
    RollbackBody,
    SaveBody,
    not_found_as_404,
    rejected,
)
from recovery.attribution.queries import build_stats
from recovery.attribution.variant_rows import step_revenue
from recovery.render.template_desk import TemplateDesk
from recovery.render.versions import TemplateRejected

StudioPage = Annotated[Principal, Depends(require_page("marketer"))]
Version = Annotated[int, Query(ge=0, le=MAX_VERSION)]


class StudioPreview(PreviewBody):
    """A preview request from the page: the path travels in the body."""

    path: str


class StudioSave(SaveBody):
    """A save from the page."""

    path: str


class StudioRollback(RollbackBody):
    """A rollback from the page."""

    path: str


def _desk(request: Request) -> TemplateDesk:
    desk: TemplateDesk = request.app.state.template_desk
    return desk


def _grouped(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Template files by message (``cart_reminder.email``), each with its locales and parts."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        _, name = row["path"].split("/", 1)
        message = ".".join(name.split(".")[:2]) if not name.startswith("_") else "layouts & partials"
        groups[message].append(row)
    return dict(sorted(groups.items()))


async def _flows(request: Request) -> list[dict[str, Any]]:
    """Each live flow's steps (its newest version) with their figures from the report."""
    flow_desk = request.app.state.flow_desk
    try:
        listing = await flow_desk.listing()
    except Exception:
        return []  # the page still edits templates when the flows file is elsewhere
    desk = _desk(request)
    stats = await build_stats(desk.engine, since=None, now=desk.clock.now())
    figures = {(row["flow"], row["step"]): row for row in stats["recovery"]["by_step"]}
    async with desk.engine.connect() as conn:
        revenue = await step_revenue(conn)  # per currency: the report withholds sums across currencies
    for key, amounts in revenue.items():
        figures.setdefault(key, {})["revenue_by_currency"] = amounts
    found = []
    for row in listing:
        flow = flow_of((await flow_desk.read(row["name"]))["source"], row["name"])
        if flow is None:
            continue
        found.append(
            {
                "name": flow.name,
                "trigger": str(flow.trigger),
                "version": row["version"],
                "steps": [{"step": step, "figures": figures.get((flow.name, step.name), {})} for step in flow.steps],
            }
        )
    return found


def studio_router() -> APIRouter:
    """The studio page and the JSON calls its script makes (session + CSRF header)."""
    router = APIRouter(prefix="/studio")

    @router.get("", include_in_schema=False)
    async def studio(request: Request, who: StudioPage, path: str | None = None) -> Response:
        desk = _desk(request)
        context: dict[str, Any] = {
            "groups": _grouped(await desk.listing()),
            "selected": None,
            "samples": desk.samples(),
            "flows": await _flows(request),
        }
        if path:
            with not_found_as_404():
                context["selected"] = await desk.read(path)
                context["versions"] = await desk.versions(path)
            locale, name = path.split("/", 1)
            context["other_locales"] = [
                row["path"] for row in await desk.listing() if row["path"].endswith("/" + name) and row["path"] != path
            ]
            context["locale"] = locale
        return render_page(request, "studio.html", context, texts=STUDIO_TEXTS, principal=who)

    @router.post("/preview", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def preview(request: Request, body: StudioPreview, _: StudioPage) -> Response:
        with not_found_as_404():
            try:
                return JSONResponse(await _desk(request).preview(body.path, body.source, body.sample, body.cart_id))
            except TemplateRejected as exc:
                return rejected(exc)

    @router.post("/save", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def save(request: Request, body: StudioSave, who: StudioPage) -> Response:
        with not_found_as_404():
            try:
                version = await _desk(request).save(body.path, body.source, who.name, body.comment)
            except TemplateRejected as exc:
                return rejected(exc)
        return JSONResponse({"version": version}, status_code=201)

    @router.post("/rollback", include_in_schema=False, dependencies=[Depends(check_csrf)])
    async def rollback(request: Request, body: StudioRollback, who: StudioPage) -> Response:
        with not_found_as_404():
            try:
                return JSONResponse({"version": await _desk(request).rollback(body.path, body.version, who.name)})
            except TemplateRejected as exc:
                return rejected(exc)

    @router.get("/diff", include_in_schema=False)
    async def diff(request: Request, _: StudioPage, path: str, old: Version, new: Version) -> Response:
        with not_found_as_404():
            return PlainTextResponse(await _desk(request).diff(path, old, new) or "(no difference)")

    return router

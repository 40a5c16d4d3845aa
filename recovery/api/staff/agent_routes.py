"""The ``/agent`` page: the queue refreshing by itself (htmx), a task with everything for the call, actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from babel.dates import format_datetime
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import Response

from recovery.api.auth import Principal
from recovery.api.pages.csrf import check_csrf
from recovery.api.pages.rendering import page_language, render_page
from recovery.api.pages.session import require_page
from recovery.api.pages.texts import AGENT_TEXTS
from recovery.desk.agent_lines import AgentLines
from recovery.desk.hours import zone_of
from recovery.desk.queue import Outcome
from recovery.desk.service import DeskRequestError, DeskService, NotHolder, TaskMissing

AgentPage = Annotated[Principal, Depends(require_page("agent"))]
QUEUE_CHANGED = {"HX-Trigger": "queue-changed"}  # the queue re-fetches itself after an action


def _desk(request: Request) -> DeskService:
    desk: DeskService = request.app.state.desk
    return desk


def _clock(value: str | None, timezone: str, fmt: str = "%H:%M") -> str:
    """An ISO instant as the shopper's wall-clock time."""
    return datetime.fromisoformat(value).astimezone(zone_of(timezone)).strftime(fmt) if value else ""


def _moment(value: str | None, timezone: str, language: str) -> dict[str, str] | None:
    """An instant for the page: ISO (the agent's browser shows it in the agent's clock), UTC, shopper's time."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return {
        "iso": value,
        "utc": moment.astimezone(UTC).strftime("%d/%m %H:%M UTC"),
        "shopper": format_datetime(moment.astimezone(zone_of(timezone)), "EEE dd/MM HH:mm", locale=language),
    }


def _view(task: dict[str, Any], request: Request) -> dict[str, Any]:
    """The task plus what the page prints: both clocks for every time, suggested line for the store's methods."""
    timezone = task["customer"]["timezone"]
    lines: AgentLines = request.app.state.agent_lines
    methods = _desk(request).policy.view.stores.get(task["store"]["id"]).payment_methods
    offer, history, language = task["offer"], task["history"], page_language(request)
    return {
        **task,
        "local_clock": _clock(task["customer"]["local_time"], timezone),
        "due_local": _clock(task["due_at"], timezone, "%a %d/%m %H:%M"),
        "until_local": _clock(task["claimed_until"], timezone),
        "due": _moment(task["due_at"], timezone, language),
        "until": _moment(task["claimed_until"], timezone, language),
        "sent": [_moment(m["sent_at"], timezone, language) for m in task["messages"]],
        "note_times": [_moment(n["at"], timezone, language) for n in task["notes"]],
        "offer_expires": _moment(offer["expires_at"], timezone, language) if offer else None,
        "last_order": _moment(history["last_order_at"], timezone, language),
        "line": lines.line(language, task, methods),
    }


async def _queue(request: Request, who: Principal) -> list[dict[str, Any]]:
    """My claimed tasks first, then the open queue."""
    desk = _desk(request)
    mine = [t for t in await desk.list("claimed", 50) if t["claimed_by"] == who.name]
    return [_view(task, request) for task in mine + await desk.list("open", 50)]


def _task_page(
    request: Request, who: Principal, task: dict[str, Any], error: str | None = None, notice: str | None = None
) -> Response:
    context = {"task": _view(task, request), "error": error, "notice": notice, "outcomes": [o.value for o in Outcome]}
    response = render_page(request, "_agent_task.html", context, texts=AGENT_TEXTS, principal=who)
    response.headers.update(QUEUE_CHANGED)
    return response


async def _get(request: Request, task_id: str) -> dict[str, Any]:
    try:
        return await _desk(request).get(task_id)
    except TaskMissing as exc:
        raise HTTPException(404, detail=exc.detail) from exc


async def _act(
    request: Request, who: Principal, task_id: str, action: Callable[[DeskService], Awaitable[dict[str, Any]]]
) -> Response:
    """Run a desk use-case and show the task again, with the refusal's reason when there is one."""
    try:
        return _task_page(request, who, await action(_desk(request)))
    except (NotHolder, DeskRequestError) as exc:
        return _task_page(request, who, await _get(request, task_id), exc.detail)
    except TaskMissing as exc:
        raise HTTPException(404, detail=exc.detail) from exc


def _call_back_at(value: str, timezone: str) -> datetime | None:
    """The form's ``datetime-local`` value, read in the shopper's timezone."""
    if not value.strip():
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone_of(timezone))


def agent_router() -> APIRouter:
    """Routes of the agents' page; every POST checks the CSRF token."""
    router = APIRouter(include_in_schema=False)

    @router.get("/agent")
    async def agent_page(request: Request, who: AgentPage) -> Response:
        context = {"tasks": await _queue(request, who)}
        return render_page(request, "agent.html", context, texts=AGENT_TEXTS, principal=who)

    @router.get("/agent/queue")
    async def queue(request: Request, who: AgentPage) -> Response:
        context = {"tasks": await _queue(request, who)}
        return render_page(request, "_agent_queue.html", context, texts=AGENT_TEXTS, principal=who)

    @router.get("/agent/tasks/{task_id}")
    async def task(request: Request, task_id: str, who: AgentPage) -> Response:
        return _task_page(request, who, await _get(request, task_id))

    @router.post("/agent/tasks/{task_id}/claim", dependencies=[Depends(check_csrf)])
    async def claim(request: Request, task_id: str, who: AgentPage) -> Response:
        return await _act(request, who, task_id, lambda desk: desk.claim(task_id, who.name))

    @router.post("/agent/tasks/{task_id}/release", dependencies=[Depends(check_csrf)])
    async def release(request: Request, task_id: str, who: AgentPage) -> Response:
        return await _act(request, who, task_id, lambda desk: desk.release(task_id, who.name))

    @router.post("/agent/tasks/{task_id}/send-link", dependencies=[Depends(check_csrf)])
    async def send_link(request: Request, task_id: str, who: AgentPage, channel: Annotated[str, Form()]) -> Response:
        try:
            await _desk(request).send_link(task_id, who.name, channel)
        except (NotHolder, DeskRequestError) as exc:
            return _task_page(request, who, await _get(request, task_id), exc.detail)
        except TaskMissing as exc:
            raise HTTPException(404, detail=exc.detail) from exc
        return _task_page(request, who, await _get(request, task_id), notice=channel)

    @router.post("/agent/tasks/{task_id}/complete", dependencies=[Depends(check_csrf)])
    async def complete(
        request: Request,
        task_id: str,
        who: AgentPage,
        outcome: Annotated[str, Form()],
        note: Annotated[str, Form(max_length=2000)] = "",
        call_back_at: Annotated[str, Form()] = "",
    ) -> Response:
        current = await _get(request, task_id)
        try:
            when = _call_back_at(call_back_at, current["customer"]["timezone"])
        except ValueError as exc:
            return _task_page(request, who, current, str(exc))
        return await _act(
            request,
            who,
            task_id,
            lambda desk: desk.complete(task_id, who.name, outcome, note=note.strip() or None, call_back_at=when),
        )

    return router

"""The Agents' API (``/api/callbacks``, role ``agent``): list, read, claim, release, complete, send the link.

The routes map the desk's domain errors to HTTP: ``TaskMissing`` 404, ``NotHolder`` 409, ``DeskRequestError`` 422.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from recovery.api.auth import Principal, require_role
from recovery.desk.service import DeskRequestError, DeskService, NotHolder, TaskMissing

Agent = Annotated[Principal, Depends(require_role("agent"))]


class SendLinkRequest(BaseModel):
    """Body of ``POST /api/callbacks/{id}/send-link``."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["sms", "email"]


class CompleteRequest(BaseModel):
    """Body of ``POST /api/callbacks/{id}/complete``."""

    model_config = ConfigDict(extra="forbid")

    outcome: str
    note: Annotated[str, Field(max_length=2000)] | None = None
    call_back_at: AwareDatetime | None = None


async def _answer(action: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | JSONResponse:
    """Run a desk use-case; its domain errors become 404, 409 (naming the holder) and 422."""
    try:
        return await action()
    except TaskMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=exc.detail) from exc
    except NotHolder as exc:
        return JSONResponse({"detail": exc.detail, "claimed_by": exc.holder}, status.HTTP_409_CONFLICT)
    except DeskRequestError as exc:
        raise HTTPException(422, detail=exc.detail) from exc


def callbacks_router(desk: DeskService) -> APIRouter:
    """The routes of the Agents' API."""
    router = APIRouter(prefix="/api/callbacks")

    @router.get("")
    async def list_tasks(
        _: Agent,
        status: Literal["open", "claimed", "done"] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        return {"tasks": await desk.list(status, limit)}

    @router.get("/{task_id}", response_model=None)
    async def get_task(task_id: str, _: Agent) -> dict[str, Any] | JSONResponse:
        return await _answer(lambda: desk.get(task_id))

    @router.post("/{task_id}/claim", response_model=None)
    async def claim(task_id: str, who: Agent) -> dict[str, Any] | JSONResponse:
        return await _answer(lambda: desk.claim(task_id, who.name))

    @router.post("/{task_id}/release", response_model=None)
    async def release(task_id: str, who: Agent) -> dict[str, Any] | JSONResponse:
        return await _answer(lambda: desk.release(task_id, who.name))

    @router.post("/{task_id}/complete", response_model=None)
    async def complete(task_id: str, body: CompleteRequest, who: Agent) -> dict[str, Any] | JSONResponse:
        return await _answer(
            lambda: desk.complete(task_id, who.name, body.outcome, note=body.note, call_back_at=body.call_back_at)
        )

    @router.post("/{task_id}/send-link", status_code=status.HTTP_202_ACCEPTED, response_model=None)
    async def send_link(task_id: str, body: SendLinkRequest, who: Agent) -> dict[str, Any] | JSONResponse:
        async def scheduled() -> dict[str, Any]:
            step = await desk.send_link(task_id, who.name, body.channel)
            return {"detail": "the link is on its way", "channel": body.channel, "step": step}

        return await _answer(scheduled)

    return router

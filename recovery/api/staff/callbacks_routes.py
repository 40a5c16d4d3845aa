"""The Agents' API (``/api/callbacks``, role ``agent``): list, read, claim, release and complete tasks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.auth import Principal, require_role
from recovery.clock import Clock
from recovery.consent.authority import AddressKeys
from recovery.desk import claim_rows, task_view
from recovery.desk.queue import CompletionError, decide_completion
from recovery.settings import CallbacksSettings

Agent = Annotated[Principal, Depends(require_role("agent"))]


class CompleteRequest(BaseModel):
    """Body of ``POST /api/callbacks/{id}/complete``."""

    model_config = ConfigDict(extra="forbid")

    outcome: str
    note: Annotated[str, Field(max_length=2000)] | None = None
    call_back_at: AwareDatetime | None = None


def _refused(refusal: claim_rows.Refused) -> JSONResponse:
    return JSONResponse({"detail": refusal.detail, "claimed_by": refusal.holder}, status.HTTP_409_CONFLICT)


def _missing(task_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no callback task {task_id}")


class DeskService:
    """The desk's operations over one engine; shared by the API and the ``/agent`` page."""

    def __init__(
        self, *, engine: AsyncEngine, clock: Clock, settings: CallbacksSettings, addresses: AddressKeys
    ) -> None:
        self.engine = engine
        self.addresses = addresses  # a do_not_call outcome is also kept under the number's keyed hash
        self.clock = clock
        self.settings = settings

    async def list(self, state: str, limit: int) -> list[dict[str, Any]]:
        """Tasks of one status, in queue order."""
        async with self.engine.connect() as conn:
            return await task_view.list_tasks(conn, state, limit, self.clock.now(), self.settings.sla)

    async def get(self, task_id: str) -> dict[str, Any]:
        """One task; 404 when unknown."""
        async with self.engine.connect() as conn:
            found = await task_view.get_task(conn, task_id, self.clock.now(), self.settings.sla)
        if found is None:
            raise _missing(task_id)
        return found

    async def claim(self, task_id: str, agent: str) -> claim_rows.Refused | None:
        """Claim for ``agent``; the refusal names the holder."""
        try:
            async with self.engine.begin() as conn:
                return await claim_rows.claim(conn, task_id, agent, self.clock.now(), self.settings.claim_for)
        except claim_rows.TaskNotFound as exc:
            raise _missing(task_id) from exc

    async def release(self, task_id: str, agent: str) -> claim_rows.Refused | None:
        """Give the task back."""
        try:
            async with self.engine.begin() as conn:
                return await claim_rows.release(conn, task_id, agent, self.clock.now())
        except claim_rows.TaskNotFound as exc:
            raise _missing(task_id) from exc

    async def complete(self, task_id: str, agent: str, body: CompleteRequest) -> claim_rows.Refused | None:
        """Record an outcome; 422 for a bad one."""
        now = self.clock.now()
        try:
            completion = decide_completion(body.outcome, body.call_back_at, now)
        except CompletionError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        try:
            async with self.engine.begin() as conn:
                return await claim_rows.complete(
                    conn, task_id, agent, completion, now, body.note, addresses=self.addresses
                )
        except claim_rows.TaskNotFound as exc:
            raise _missing(task_id) from exc


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

    @router.get("/{task_id}")
    async def get_task(task_id: str, _: Agent) -> dict[str, Any]:
        return await desk.get(task_id)

    @router.post("/{task_id}/claim", response_model=None)
    async def claim(task_id: str, who: Agent) -> dict[str, Any] | JSONResponse:
        refused = await desk.claim(task_id, who.name)
        return _refused(refused) if refused else await desk.get(task_id)

    @router.post("/{task_id}/release", response_model=None)
    async def release(task_id: str, who: Agent) -> dict[str, Any] | JSONResponse:
        refused = await desk.release(task_id, who.name)
        return _refused(refused) if refused else await desk.get(task_id)

    @router.post("/{task_id}/complete", response_model=None)
    async def complete(task_id: str, body: CompleteRequest, who: Agent) -> dict[str, Any] | JSONResponse:
        refused = await desk.complete(task_id, who.name, body)
        return _refused(refused) if refused else await desk.get(task_id)

    return router

"""What integrators read: the event JSON Schema, the AsyncAPI document, and a dry-run validator."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from recovery.api.auth import Principal, require_role
from recovery.events import Rejection
from recovery.ingest.asyncapi import asyncapi_document
from recovery.ingest.event_schema import event_json_schema
from recovery.ingest.poison import decode_record
from recovery.settings import Settings

MAX_EVENTS_PER_CALL = 1000


def contract_router(settings: Settings) -> APIRouter:
    """``GET /schemas/events.json``, ``GET /asyncapi.json``, ``POST /api/events/validate``."""
    router = APIRouter(include_in_schema=False)
    max_bytes = settings.ingest.max_event_bytes
    asyncapi = asyncapi_document(settings.kafka)  # built once: the topics are fixed at start-up

    @router.get("/schemas/events.json")
    async def events_schema() -> JSONResponse:
        return JSONResponse(event_json_schema(), media_type="application/schema+json")

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(asyncapi)

    @router.post("/api/events/validate")
    async def validate(
        request: Request, _: Annotated[Principal, Depends(require_role("platform", "admin"))]
    ) -> dict[str, Any]:
        limit = max_bytes * 10
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, detail=f"body above {limit} bytes")
        raw = await request.body()
        if len(raw) > limit:
            raise HTTPException(413, detail=f"body above {limit} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise HTTPException(422, detail="body: not JSON (one event object, or a list of them)") from exc
        items = body if isinstance(body, list) else [body]
        if len(items) > MAX_EVENTS_PER_CALL:
            raise HTTPException(422, detail=f"at most {MAX_EVENTS_PER_CALL} events per call")
        return {"results": [validation_result(item, max_bytes=max_bytes) for item in items]}

    return router


def validation_result(item: Any, *, max_bytes: int) -> dict[str, Any]:
    """``{"valid": true}`` or ``{"valid": false, "reason"}`` with exactly the dead letter's reason."""
    parsed = decode_record(json.dumps(item, ensure_ascii=False).encode("utf-8"), max_bytes=max_bytes)
    if isinstance(parsed, Rejection):
        return {"valid": False, "reason": parsed.reason}
    return {"valid": True}

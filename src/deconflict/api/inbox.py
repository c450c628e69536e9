"""The inbox (polling and server-sent events), acknowledgments, deliveries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import authenticated, bearer_token, blocking, caller, deployment_of
from deconflict.errors import InvalidRequest
from deconflict.requests import MAX_QUERY_INT, AckIn, parse_body
from deconflict.service import notifications
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["notifications"], route_class=StrictRoute)

STREAM_POLL_S = 0.25
STREAM_DB_POLL_S = 2.0
STREAM_KEEPALIVE_S = 15.0


@router.get("/inbox")
async def inbox(
    request: Request,
    party: Party = Depends(caller),
    after: int = Query(default=0, ge=0, le=MAX_QUERY_INT),
    limit: int = Query(default=100, ge=1, le=notifications.MAX_INBOX_PAGE),
) -> dict[str, Any]:
    return await blocking(
        notifications.read_inbox, deployment_of(request), party, after=after, limit=limit
    )


def _resume_point(request: Request) -> int:
    header = request.headers.get("last-event-id") or None
    field = "Last-Event-ID" if header is not None else "after"
    text = header if header is not None else request.query_params.get("after", "0")
    # ASCII digits only: int() would also take "1_000", " 7 " and other scripts' digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_QUERY_INT:
        raise InvalidRequest(
            f"{field} must be a notification seq: an integer from 0 to {MAX_QUERY_INT}",
            field=field,
        )
    return int(text)


@router.get("/inbox/stream")
async def stream(request: Request) -> StreamingResponse:
    """Server-sent events of the caller's inbox: one ``notification`` event per notification,
    with ``id`` = its seq, so a reconnecting client resumes with ``Last-Event-ID``.

    Browsers' EventSource cannot send headers, so ``?access_token=`` is accepted here too.
    """
    deployment = deployment_of(request)
    token = bearer_token(request) or request.query_params.get("access_token")
    party = await authenticated(request, token)
    after = _resume_point(request)

    async def events() -> AsyncIterator[str]:
        nonlocal after
        seen_generation = -1
        last_db_poll = last_sent = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            now = time.monotonic()
            if deployment.generation != seen_generation or now - last_db_poll > STREAM_DB_POLL_S:
                seen_generation = deployment.generation
                last_db_poll = now
                page = await blocking(
                    notifications.read_inbox,
                    deployment,
                    party,
                    after=after,
                    limit=100,
                    via="stream",
                )
                for item in page["notifications"]:
                    after = item["seq"]
                    last_sent = now
                    yield f"id: {item['seq']}\nevent: notification\ndata: {json.dumps(item)}\n\n"
                if page["notifications"]:
                    continue
            if now - last_sent > STREAM_KEEPALIVE_S:
                last_sent = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/notifications/{notification_id}/ack")
async def acknowledge(
    notification_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    raw = await request.body()
    # The body is optional: an empty one acknowledges without a comment.
    body = parse_body(raw, AckIn) if raw.strip() else AckIn()
    return await blocking(
        notifications.acknowledge, deployment_of(request), party, notification_id, body.comment
    )


@router.get("/notifications/{notification_id}/opening")
async def opening(
    notification_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    """The notification's record entries with the openings of their seals, and the openings
    of its conflicts and comment: what its recipient shows an inquiry (recipient and
    coordinator only)."""
    return await blocking(
        notifications.notification_opening, deployment_of(request), party, notification_id
    )


@router.get("/declarations/{declaration_id}/deliveries")
async def deliveries(
    declaration_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    found = await blocking(notifications.deliveries, deployment_of(request), party, declaration_id)
    return {"deliveries": found}


@router.get("/notifications/overdue")
async def overdue(request: Request, party: Party = Depends(caller)) -> dict[str, Any]:
    """Acknowledgments past the policy's deadline: for the caller's declarations, or every
    one for the coordinator."""
    return {"overdue": await blocking(notifications.overdue, deployment_of(request), party)}

"""The inbox (polling and server-sent events), acknowledgments, deliveries; their answers.

The notification document itself is ``notifications.notification_json``'s (webhooks send it
too); the rest of each answer is built here from what the service returns."""

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
from deconflict.clock import format_time
from deconflict.errors import InvalidRequest
from deconflict.record.entries import notified_declaration
from deconflict.requests import MAX_QUERY_INT, AckIn, parse_body
from deconflict.service import notifications, responses
from deconflict.service.notifications import (
    Delivery,
    NotificationOpening,
    current_comment,
    current_responded_at,
    current_response_name,
    notification_json,
)
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["notifications"], route_class=StrictRoute)

STREAM_POLL_S = 0.25
STREAM_DB_POLL_S = 2.0
STREAM_KEEPALIVE_S = 15.0


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    row = delivery.notification
    return {
        "party": row["recipient"],
        "notification_id": row["id"],
        "version": row["declaration_version"],
        "change": row["change"],
        "reason": delivery.reason,
        "created_at": row["created_at"],
        "delivered_at": row["delivered_at"],
        "acknowledged_at": row["acknowledged_at"],
        "response": current_response_name(row),
        "comment": current_comment(row),
        "responded_at": current_responded_at(row),
        "overdue": delivery.overdue,
        "due_at": format_time(delivery.due_at),
    }


def overdue_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery, and the declaration it is about (the list spans declarations)."""
    return {**delivery_json(delivery), "declaration": notified_declaration(delivery.notification)}


def opening_json(opening: NotificationOpening) -> dict[str, Any]:
    row = opening.notification
    comment = row["ack_comment"]
    return {
        "notification_id": row["id"],
        "entries": [
            {"type": e.entry_type, "log_index": e.log_index, "leaf": e.leaf, "seal": e.seal}
            for e in opening.entries
        ],
        "conflicts": {"value": json.loads(row["conflicts"]), "salt": row["conflicts_salt"]},
        "comment": None if comment is None else {"value": comment, "salt": row["ack_salt"]},
        "responses": [
            {
                "number": response["number"],
                "response": response["response"],
                "at": response["at"],
                "comment": None
                if response["comment"] is None
                else {"value": response["comment"], "salt": response["salt"]},
            }
            for response in opening.responses
        ],
    }


@router.get("/inbox")
async def inbox(
    request: Request,
    party: Party = Depends(caller),
    after: int = Query(default=0, ge=0, le=MAX_QUERY_INT),
    limit: int = Query(default=100, ge=1, le=notifications.MAX_INBOX_PAGE),
) -> dict[str, Any]:
    page = await blocking(
        notifications.read_inbox, deployment_of(request), party, after=after, limit=limit
    )
    return {
        "notifications": [notification_json(row) for row in page.notifications],
        "last_seq": page.last_seq,
    }


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
                for row in page.notifications:
                    item = notification_json(row)
                    after = item["seq"]
                    last_sent = now
                    yield f"id: {item['seq']}\nevent: notification\ndata: {json.dumps(item)}\n\n"
                if page.notifications:
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
    done = await blocking(
        responses.acknowledge,
        deployment_of(request),
        party,
        notification_id,
        body.comment,
        body.response_sent,
    )
    return {"notification": notification_json(done.notification), "receipt": done.receipt}


@router.get("/notifications/{notification_id}/opening")
async def opening(
    notification_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    """The notification's record entries with the openings of their seals, and the openings
    of its conflicts and comment: what its recipient shows an inquiry (recipient and
    coordinator only)."""
    opening = await blocking(
        notifications.notification_opening, deployment_of(request), party, notification_id
    )
    return opening_json(opening)


@router.get("/declarations/{declaration_id}/deliveries")
async def deliveries(
    declaration_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    found = await blocking(notifications.deliveries, deployment_of(request), party, declaration_id)
    return {"deliveries": [delivery_json(delivery) for delivery in found]}


@router.get("/notifications/overdue")
async def overdue(request: Request, party: Party = Depends(caller)) -> dict[str, Any]:
    """Acknowledgments past the policy's deadline: for the caller's declarations, or every
    one for the coordinator."""
    found = await blocking(notifications.overdue, deployment_of(request), party)
    return {"overdue": [overdue_json(delivery) for delivery in found]}

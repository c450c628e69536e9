"""``/v1/log/*``: the public record. No token needed: the log holds only commitments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import blocking, deployment_of
from deconflict.errors import InvalidRequest, NotFound
from deconflict.record import log_store
from deconflict.record.signing import public_key_b64
from deconflict.requests import MAX_QUERY_INT
from deconflict.service.deployment import Deployment

router = APIRouter(prefix="/v1/log", tags=["record"], route_class=StrictRoute)

MAX_ENTRIES_PAGE = 1000


def _head(deployment: Deployment) -> dict[str, Any]:
    with deployment.db.read() as conn:
        head = log_store.latest_head(conn)
    if head is None:
        raise NotFound("the record is empty")
    return head


@router.get("/head")
async def head(request: Request) -> dict[str, Any]:
    return await blocking(_head, deployment_of(request))


@router.get("/public-key")
async def public_key(request: Request) -> dict[str, str]:
    key = deployment_of(request).key
    return {"algorithm": "Ed25519", "public_key": public_key_b64(key)}


def _size(deployment: Deployment) -> int:
    with deployment.db.read() as conn:
        return log_store.log_size(conn)


def _entries(deployment: Deployment, start: int, end: int) -> dict[str, Any]:
    if end < start:
        raise InvalidRequest("end must not be below start", field="end")
    end = min(end, start + MAX_ENTRIES_PAGE)
    with deployment.db.read() as conn:
        return {"entries": log_store.entries(conn, start, end)}


@router.get("/entries")
async def entries(
    request: Request,
    start: int = Query(ge=0, le=MAX_QUERY_INT),
    end: int = Query(ge=0, le=MAX_QUERY_INT),
) -> dict[str, Any]:
    """Entries with ``start <= index < end`` (at most 1000 at a time)."""
    return await blocking(_entries, deployment_of(request), start, end)


def _inclusion(deployment: Deployment, index: int, size: int) -> dict[str, Any]:
    # log_store checks size against the log, then index against size (400s naming the field):
    # the one place for those checks, shared with everything else that asks for proofs.
    with deployment.db.read() as conn:
        path = log_store.inclusion_proof(conn, index, size)
        leaf_hash = log_store.leaf_hash_at(conn, index)
    return {
        "index": index,
        "size": size,
        "leaf_hash": leaf_hash.hex(),
        "path": [h.hex() for h in path],
    }


@router.get("/proof/inclusion")
async def inclusion(
    request: Request,
    index: int = Query(ge=0, le=MAX_QUERY_INT),
    size: int = Query(ge=1, le=MAX_QUERY_INT),
) -> dict[str, Any]:
    return await blocking(_inclusion, deployment_of(request), index, size)


def _consistency(deployment: Deployment, first: int, second: int) -> dict[str, Any]:
    # As for inclusion: log_store checks second against the log, then first against second.
    with deployment.db.read() as conn:
        path = log_store.consistency_proof(conn, first, second)
    return {"first": first, "second": second, "path": [h.hex() for h in path]}


@router.get("/proof/consistency")
async def consistency(
    request: Request,
    first: int = Query(ge=1, le=MAX_QUERY_INT),
    second: int = Query(ge=1, le=MAX_QUERY_INT),
) -> dict[str, Any]:
    return await blocking(_consistency, deployment_of(request), first, second)

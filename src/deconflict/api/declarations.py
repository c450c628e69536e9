"""``/v1/declarations`` and ``/v1/conflicts/check``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.declaration_json import (
    conflicts_json,
    declaration_json,
    opening_json,
    written_json,
)
from deconflict.api.deps import (
    bearer,
    blocking,
    caller,
    client_address,
    deployment_of,
    rate_limiter,
)
from deconflict.errors import Unauthorized
from deconflict.requests import CheckIn, DeclarationIn, DeclarationUpdate
from deconflict.service import declaration_reads, declarations
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["declarations"], route_class=StrictRoute)


@router.post("/declarations", status_code=201)
async def create(
    body: DeclarationIn, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    written = await blocking(declarations.create_declaration, deployment_of(request), party, body)
    return written_json(written)


@router.get("/declarations")
async def list_(
    request: Request,
    party: Party = Depends(caller),
    bbox: str | None = Query(default=None, description="minlon,minlat,maxlon,maxlat"),
    start: str | None = None,
    end: str | None = None,
    kind: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    found = await blocking(
        declaration_reads.list_declarations,
        deployment_of(request),
        party,
        bbox=bbox,
        start=start,
        end=end,
        kind=kind,
        owner=owner,
    )
    return {"declarations": [declaration_json(d) for d in found]}


@router.get("/declarations/{declaration_id}")
async def get(
    declaration_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    found = await blocking(
        declaration_reads.get_declaration, deployment_of(request), party, declaration_id
    )
    return {"declaration": declaration_json(found)}


@router.put("/declarations/{declaration_id}")
async def update(
    declaration_id: str, body: DeclarationUpdate, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    written = await blocking(
        declarations.update_declaration, deployment_of(request), party, declaration_id, body
    )
    return written_json(written)


@router.delete("/declarations/{declaration_id}")
async def withdraw(
    declaration_id: str,
    request: Request,
    party: Party = Depends(caller),
    version: str | None = None,
) -> dict[str, Any]:
    written = await blocking(
        declarations.withdraw_declaration, deployment_of(request), party, declaration_id, version
    )
    return written_json(written)


@router.get("/declarations/{declaration_id}/opening")
async def opening(
    declaration_id: str,
    request: Request,
    party: Party = Depends(caller),
    version: str | None = None,
) -> dict[str, Any]:
    """The salts and values behind a version's commitments in the record, with its leaf
    (owner and coordinator only); ``deconflict check-opening`` checks it."""
    opening_ = await blocking(
        declaration_reads.declaration_opening,
        deployment_of(request),
        party,
        declaration_id,
        version,
    )
    return opening_json(opening_)


@router.get("/declarations/{declaration_id}/conflicts")
async def conflicts(
    declaration_id: str, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    found = await blocking(
        declaration_reads.declaration_conflicts, deployment_of(request), party, declaration_id
    )
    return {"conflicts": conflicts_json(found)}


@router.post("/conflicts/check")
async def check(body: CheckIn, request: Request, token: str = Depends(bearer)) -> dict[str, Any]:
    # The hottest route: the token is checked with the conflicts, in one trip to a worker
    # thread (a trip costs about as much as the check itself at 100,000 stored volumes);
    # the party's rate of checks is taken there, once the token says who it is.
    limiter, address = rate_limiter(request), client_address(request)
    limiter.check_address(address)
    try:
        found = await blocking(
            declaration_reads.authenticated_check,
            deployment_of(request),
            token,
            body,
            lambda party: limiter.admit(party.id, "check"),
        )
    except Unauthorized:
        limiter.failed(address)
        raise
    return {"conflicts": conflicts_json(found)}

"""``POST /v1/declarations/import``: many sites or movements from one file (API.md v1.1).

The file is the raw body (any content type); ``format`` says how to read it and
``dry_run=true`` answers the same results without writing anything. Its body limit is the
policy's ``limits.import_bytes``, not ``body_bytes`` (``api/app.py``, ``_body_limit``).

The import counts as one request against the party's rate of writes (the ``caller``
dependency takes one token, as for any POST): the rows are bounded by ``limits.import_rows``
instead, and a party that imports in chunks (``deconflict import``) spends one token a
chunk.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Depends, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.declaration_json import declaration_json
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.errors import Forbidden, InvalidRequest
from deconflict.importing import FORMATS, read_rows
from deconflict.service.deployment import Deployment
from deconflict.service.imports import IMPORTERS, ImportResult, RowResult, import_rows
from deconflict.service.parties import Party

PATH: Final = "/v1/declarations/import"

router = APIRouter(prefix="/v1", tags=["declarations"], route_class=StrictRoute)


@router.post("/declarations/import")
async def import_(
    request: Request,
    party: Party = Depends(caller),
    format: str | None = None,
    dry_run: str | None = None,
) -> dict[str, Any]:
    if party.role not in IMPORTERS:
        raise Forbidden(f"a {party.role} may not import declarations")
    fmt = _format(format)
    dry = _dry_run(dry_run)
    data = await request.body()
    result = await blocking(_import, deployment_of(request), party, data, fmt, dry)
    return result_json(result)


def _format(value: str | None) -> str:
    if value not in FORMATS:
        shown = "missing" if value is None else repr(value)
        raise InvalidRequest(
            f"`format` must be one of {', '.join(FORMATS)} ({shown})", field="format"
        )
    return value


def _dry_run(value: str | None) -> bool:
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise InvalidRequest(f"`dry_run` must be true or false, not {value!r}", field="dry_run")


def _import(
    deployment: Deployment, party: Party, data: bytes, fmt: str, dry_run: bool
) -> ImportResult:
    limits = deployment.current_policy().limits
    rows = read_rows(data, fmt, max_rows=limits.import_rows, max_bytes=limits.import_bytes)
    return import_rows(deployment, party, rows, dry_run=dry_run)


def result_json(result: ImportResult) -> dict[str, Any]:
    """The answer: each row's result, and the totals."""
    return {
        "results": [row_json(r, result.dry_run) for r in result.results],
        "created": result.count("created"),
        "updated": result.count("updated"),
        "unchanged": result.count("unchanged"),
        "errors": result.count("error"),
        "dry_run": result.dry_run,
    }


def row_json(result: RowResult, dry_run: bool) -> dict[str, Any]:
    document: dict[str, Any] = {"row": result.row, "status": result.status}
    if result.external_id is not None:
        document["external_id"] = result.external_id
    if result.declaration is not None:
        declaration = declaration_json(result.declaration)
        if dry_run and result.status in ("created", "updated"):
            # Drafted, never stored: its version (and a new one's id) would name nothing.
            declaration.pop("version")
            if result.status == "created":
                declaration.pop("id")
        document["declaration"] = declaration
    if result.conflicts is not None:
        document["conflicts"] = result.conflicts
    if result.missing is not None:
        document["missing"] = result.missing
    if result.errors:
        document["errors"] = [e.to_json() for e in result.errors]
    return document

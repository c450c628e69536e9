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

from fastapi import APIRouter, Depends, Query, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.declaration_json import declaration_json
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.errors import Forbidden, InvalidRequest
from deconflict.importing import FORMATS, read_rows
from deconflict.service.deployment import Deployment
from deconflict.service.imports import IMPORTERS, ImportResult, RowResult, import_rows
from deconflict.service.parties import Party

PATH: Final = "/v1/declarations/import"
MAX_KEY: Final = 100_000

router = APIRouter(prefix="/v1", tags=["declarations"], route_class=StrictRoute)


@router.post("/declarations/import")
async def import_(
    request: Request,
    party: Party = Depends(caller),
    format: str | None = None,
    dry_run: str | None = None,
    key: list[str] = Query(default_factory=list),
) -> dict[str, Any]:
    if party.role not in IMPORTERS:
        raise Forbidden(f"a {party.role} may not import declarations")
    fmt = _format(format)
    dry = _dry_run(dry_run)
    versions = _key(key)
    data = await request.body()
    result = await blocking(_import, deployment_of(request), party, data, fmt, dry, versions)
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


def _key(versions: list[str]) -> list[str]:
    """The versions a party reviewed on the page (``?key=`` once each), bounded as a
    declaration's own ``key`` is."""
    if len(versions) > MAX_KEY:
        raise InvalidRequest(f"`key` holds at most {MAX_KEY} versions", field="key")
    for version in versions:
        if not 0 < len(version) <= 64:
            raise InvalidRequest("each `key` version is 1 to 64 characters", field="key")
    return versions


def _import(
    deployment: Deployment,
    party: Party,
    data: bytes,
    fmt: str,
    dry_run: bool,
    key: list[str] | None = None,
) -> ImportResult:
    limits = deployment.current_policy().limits
    rows = read_rows(data, fmt, max_rows=limits.import_rows, max_bytes=limits.import_bytes)
    if key:
        # Versions the party reviewed apply to every row, beside the row's own `key` column:
        # the awareness rule asks that each conflict's version be known, not by which row.
        for row in rows:
            if row.document is not None:
                row.document["key"] = [*row.document.get("key", []), *key]
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

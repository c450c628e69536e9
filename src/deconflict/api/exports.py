"""``GET /v1/export``: the declarations the caller may see, as a CSV or GeoJSON file."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.service import exports
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["export"], route_class=StrictRoute)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}},
)
async def export(
    request: Request,
    party: Party = Depends(caller),
    format: str = Query(default="csv", description="csv or geojson"),
    kind: str | None = Query(default=None, description="operation, site, movement, restriction"),
) -> Response:
    found = await blocking(
        exports.export_declarations, deployment_of(request), party, fmt=format, kind=kind
    )
    return Response(
        found.content,
        media_type=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )

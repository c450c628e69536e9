"""``/v1/coordinates``: a position typed by a person, read as import and the web form read it.

The web page's declare form sends what was typed here, so decimal degrees, DMS and MGRS are
parsed by the one parser (``geo.coords``) the spreadsheet import uses, and shows the read-back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import caller
from deconflict.errors import InvalidRequest
from deconflict.geo.coords import CoordinateError, parse_position, readback
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["coordinates"], route_class=StrictRoute)

# Far longer than any position written by hand ("36° 12' 30.5\" N, 42° 30' 44.4\" E").
MAX_TEXT = 200


@router.get("/coordinates")
async def read(
    _party: Party = Depends(caller),
    text: str | None = Query(
        default=None, description="latitude, longitude (decimal or DMS) or an MGRS reference"
    ),
) -> dict[str, Any]:
    """``{"position": read-back}`` of the position ``text`` names (API.md v1.1)."""
    if text is None or not text.strip():
        raise InvalidRequest("give the position to read in text", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"a position is at most {MAX_TEXT} characters", field="text")
    try:
        lat, lon = parse_position(text)
    except CoordinateError as exc:
        raise InvalidRequest(str(exc), field="text") from exc
    return {"position": readback(lat, lon)}

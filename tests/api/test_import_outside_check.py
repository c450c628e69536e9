"""Issue 14's outside check of import, on SQLite and PostgreSQL: a CSV of 200 sites, a dozen
of them bad (swapped coordinates, caught by the policy's area of operations; malformed DMS
and MGRS; missing columns; repeated external ids) among good rows typed as decimal degrees,
DMS and MGRS. Exactly the good ones are created, each bad one is named by row and column,
and importing the same file again creates nothing: every good row is ``unchanged``."""

from __future__ import annotations

import csv
import io
from typing import Any

import mgrs
import pytest

from support import Actor, Service

URL = "/v1/declarations/import"
COLUMNS = ["name", "category", "lat", "lon", "mgrs", "buffer_m", "start", "end", "external_id"]
START = "2026-12-04T06:00:00Z"

# Yemen, roughly (as tests/api/test_area_of_operations_api.py): lon 42.5-53.5, lat 12.5-19.
AREA = (
    "\n[area_of_operations]\n"
    'name = "Yemen"\n'
    'geometry.type = "Polygon"\n'
    "geometry.coordinates = [[[42.5, 12.5], [53.5, 12.5], [53.5, 19.0], [42.5, 19.0], "
    "[42.5, 12.5]]]\n"
)


def dms(value: float, positive: str, negative: str) -> str:
    """Degrees, minutes and seconds as people type them: 15°21'36"N."""
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60)
    if seconds == 60:
        minutes, seconds = minutes + 1, 0
    return f"{degrees}°{minutes}'{seconds}\"{hemisphere}"


def good_row(n: int) -> dict[str, str]:
    """Site n, inside Yemen; every fifth typed in DMS, every seventh as MGRS."""
    lat, lon = 13.0 + (n % 50) * 0.1, 43.0 + (n // 50) * 2 + (n % 7) * 0.05
    row = {
        "name": f"Site {n}",
        "category": "hospital" if n % 2 else "school",
        "buffer_m": "100",
        "start": START,
        "external_id": f"YE-{n:04d}",
    }
    if n % 7 == 0:
        row["mgrs"] = mgrs.MGRS().toMGRS(lat, lon, MGRSPrecision=5)
    elif n % 5 == 0:
        row["lat"], row["lon"] = dms(lat, "N", "S"), dms(lon, "E", "W")
    else:
        row["lat"], row["lon"] = f"{lat:.5f}", f"{lon:.5f}"
    return row


# The bad rows: where they go in the file, what is wrong, and the column that must be named.
BAD: dict[int, tuple[dict[str, str], str]] = {
    # Swapped latitude and longitude: valid numbers, a position in the Balkans.
    9: ({"lat": "44.20000", "lon": "15.35000"}, "lat"),
    40: ({"lat": "45.03", "lon": "13.01"}, "lat"),
    77: ({"lat": "48.5", "lon": "16.0"}, "lat"),
    # Malformed DMS: 75 minutes; a hemisphere that is no hemisphere.
    101: ({"lat": "15°75'00\"N", "lon": "44°12'00\"E"}, "lat"),
    115: ({"lat": "15°21'00\"N", "lon": "44°12'00\"Q"}, "lon"),
    # Malformed MGRS.
    130: ({"mgrs": "38PZZ"}, "mgrs"),
    142: ({"mgrs": "99XAA1234512345"}, "mgrs"),
    # Missing columns: no latitude, no name, no start.
    150: ({"lat": ""}, "lat"),
    161: ({"name": ""}, "name"),
    170: ({"start": ""}, "start"),
    # The external id of an earlier row, again.
    185: ({"external_id": "YE-0005"}, "external_id"),
    199: ({"external_id": "YE-0100"}, "external_id"),
}


def sheet() -> tuple[bytes, list[str]]:
    """The CSV and the names of its good rows."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    good = []
    for n in range(1, 201):
        row = good_row(n)
        if n in BAD:
            changes, _ = BAD[n]
            if "mgrs" in changes:
                row.pop("lat", None), row.pop("lon", None)
            if "lat" in changes:
                row.pop("mgrs", None)
            row |= changes
        else:
            good.append(row["name"])
        writer.writerow(row)
    return out.getvalue().encode("utf-8"), good


def send(actor: Actor, data: bytes) -> dict[str, Any]:
    answer = actor.client.post(
        URL,
        content=data,
        params={"format": "csv"},
        headers={**actor.headers, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def relief(service: Service, cast: dict[str, Actor]) -> Actor:
    text = cast["north"].get("/v1/policy").json()["toml"] + AREA
    answer = service.coordinator.client.put(
        "/v1/policy", content=text.encode(), headers=service.coordinator.headers
    )
    assert answer.status_code == 200, answer.text
    return cast["relief"]


def owned_names(actor: Actor) -> list[str]:
    listed = actor.get("/v1/declarations", params={"owner": actor.id}).json()["declarations"]
    return sorted(d["metadata"]["name"] for d in listed)


def test_two_hundred_sites_a_dozen_bad(relief: Actor) -> None:
    data, good = sheet()
    assert len(good) == 188

    first = send(relief, data)

    assert (first["created"], first["updated"], first["unchanged"]) == (188, 0, 0)
    assert first["errors"] == len(BAD) == 12
    assert owned_names(relief) == sorted(good)
    failed = {r["row"]: r for r in first["results"] if r["status"] == "error"}
    assert set(failed) == set(BAD)
    for row, (_, column) in BAD.items():
        fields = [e["field"] for e in failed[row]["errors"]]
        assert column in fields, (row, failed[row])
        assert all(e["message"] for e in failed[row]["errors"])
    # A swapped position says where it fell and that it may be swapped.
    swapped = failed[9]["errors"][0]["message"]
    assert "outside the area of operations" in swapped and "swapped" in swapped

    again = send(relief, data)

    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 188)
    assert {r["row"] for r in again["results"] if r["status"] == "error"} == set(BAD)
    assert owned_names(relief) == sorted(good)

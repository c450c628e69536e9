"""One row's columns to a declaration document: positions in every notation, times, numbers,
kinds, and every way a row can be wrong, each error naming its column."""

from __future__ import annotations

import json

import pytest
from import_files import START, errors_of, only_row, rows_of


def csv_row(**cells: str) -> bytes:
    cells = {"name": "Site", "start": START, **cells}
    header = ",".join(cells)
    values = ",".join(
        f'"{v}"' if "," in v or '"' in v else v
        for v in (c.replace('"', '""') for c in cells.values())
    )
    return f"{header}\n{values}\n".encode()


def geometry_of(**cells: str) -> dict[str, object]:
    row = only_row(csv_row(**cells), "csv")
    assert row.errors == [], row.errors
    assert row.document is not None
    geometry: dict[str, object] = row.document["volumes"][0]["geometry"]
    return geometry


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        pytest.param("36.2083", "37.1", (37.1, 36.2083), id="decimal"),
        pytest.param("36°12'30\"N", "37°06'00\"E", (37.1, 36.208333), id="dms"),
        pytest.param("36 12 30 S", "37 6 0 W", (-37.1, -36.208333), id="dms-spaces-hemispheres"),
        pytest.param("36,2083", "37,1", (37.1, 36.2083), id="decimal-comma"),
    ],
)
def test_lat_and_lon_in_decimal_or_dms(lat: str, lon: str, expected: tuple[float, float]) -> None:
    coordinates = geometry_of(lat=lat, lon=lon)["coordinates"]
    assert coordinates == pytest.approx(list(expected), abs=1e-6)


def test_mgrs_becomes_a_point() -> None:
    lon, lat = geometry_of(mgrs="37SBA1234567890")["coordinates"]  # type: ignore[misc]
    assert 35.0 < lon < 36.5 and 36.0 < lat < 37.5


def test_a_geometry_column_holds_a_polygon() -> None:
    ring = [[36.0, 35.0], [36.1, 35.0], [36.1, 35.1], [36.0, 35.0]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    assert geometry_of(geometry=json.dumps(polygon)) == polygon


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        pytest.param({"lat": "95", "lon": "36"}, "lat", id="impossible-latitude"),
        pytest.param({"lat": "35", "lon": "190"}, "lon", id="impossible-longitude"),
        pytest.param({"lat": "north", "lon": "36"}, "lat", id="not-an-angle"),
        pytest.param({"lat": "35"}, "lon", id="lat-without-lon"),
        pytest.param({"lon": "35"}, "lat", id="lon-without-lat"),
        pytest.param({"kind": "site"}, "lat", id="no-position"),
        pytest.param({"lat": "35", "lon": "36", "mgrs": "37SBA1234567890"}, "mgrs", id="both"),
        pytest.param({"mgrs": "37SBA123456789"}, "mgrs", id="odd-mgrs-digits"),
        pytest.param({"mgrs": "hello"}, "mgrs", id="not-mgrs"),
        pytest.param({"geometry": "{not json"}, "geometry", id="geometry-not-json"),
        pytest.param(
            {"geometry": '{"type":"Circle","coordinates":[1,2]}'}, "geometry", id="geometry-type"
        ),
        pytest.param({"lat": "35", "lon": "36", "name": ""}, "name", id="no-name"),
        pytest.param({"lat": "35", "lon": "36", "start": ""}, "start", id="no-start"),
        pytest.param({"lat": "35", "lon": "36", "start": "2026-12-01"}, "start", id="no-timezone"),
        pytest.param({"lat": "35", "lon": "36", "start": "tomorrow"}, "start", id="not-a-time"),
        pytest.param(
            {"lat": "35", "lon": "36", "end": "2026-11-30T00:00:00Z"}, "end", id="end-before-start"
        ),
        pytest.param(
            {"lat": "35", "lon": "36", "start": "0001-01-01T00:00:00Z"},
            "start",
            id="time-out-of-range",
        ),
        pytest.param(
            {"lat": "35", "lon": "36", "buffer_m": "-5"}, "buffer_m", id="negative-buffer"
        ),
        pytest.param(
            {"lat": "35", "lon": "36", "buffer_m": "wide"}, "buffer_m", id="buffer-not-a-number"
        ),
        pytest.param({"lat": "35", "lon": "36", "upper_m": "nan"}, "upper_m", id="upper-nan"),
        pytest.param(
            {"lat": "35", "lon": "36", "lower_m": "500", "upper_m": "100"},
            "upper_m",
            id="band-upside-down",
        ),
        pytest.param({"lat": "35", "lon": "36", "kind": "hospital"}, "kind", id="unknown-kind"),
        pytest.param(
            {"lat": "35", "lon": "36", "category": "x" * 201}, "category", id="long-category"
        ),
        pytest.param(
            {"lat": "35", "lon": "36", "external_id": "x" * 201}, "external_id", id="long-id"
        ),
    ],
)
def test_a_bad_value_is_an_error_naming_its_column(cells: dict[str, str], column: str) -> None:
    row = only_row(csv_row(**cells), "csv")
    assert row.document is None
    assert column in errors_of(row), row.errors
    assert all(e.message for e in row.errors)


def test_times_are_kept_in_utc_and_end_may_be_empty() -> None:
    row = only_row(
        csv_row(lat="35", lon="36", start="2026-12-01T09:00:00+03:00", end="2026-12-02 09:00Z"),
        "csv",
    )
    assert row.document is not None
    assert row.document["volumes"][0]["time"] == {
        "start": "2026-12-01T06:00:00Z",
        "end": "2026-12-02T09:00:00Z",
    }


def test_every_other_column_reaches_the_document() -> None:
    row = only_row(
        csv_row(
            lat="35",
            lon="36",
            kind="Movement",
            category="convoy",
            buffer_m="250",
            lower_m="0",
            upper_m="100",
            external_id="c-7",
            key="v1 v2,v3",
            comment="via the north road",
        ),
        "csv",
    )
    assert row.document is not None
    assert row.document["kind"] == "movement"
    assert row.document["key"] == ["v1", "v2", "v3"]
    assert row.document["metadata"] == {
        "name": "Site",
        "external_id": "c-7",
        "comment": "via the north road",
    }
    volume = row.document["volumes"][0]
    assert (volume["buffer_m"], volume["altitude"]) == (250.0, {"lower_m": 0.0, "upper_m": 100.0})


def test_headers_are_read_without_case_or_spaces() -> None:
    data = f"Name, Latitude ,LONGITUDE,Start,External ID\nA,35,36,{START},x\n".encode()
    row = only_row(data, "csv")
    assert row.ok and row.external_id == "x"


def test_the_second_and_later_rows_of_an_external_id_are_errors() -> None:
    text = "name,lat,lon,start,external_id\n" + "".join(
        f"S{n},35,36,{START},{'dup' if n != 2 else 'other'}\n" for n in range(1, 5)
    )
    rows = rows_of(text.encode(), "csv")
    assert [r.ok for r in rows] == [True, True, False, False]
    assert "row 1" in errors_of(rows[2])["external_id"]


def test_a_guarded_formula_text_reads_back_without_its_guard() -> None:
    row = only_row(csv_row(lat="35", lon="36", name="'=1+1", comment="'-note"), "csv")
    assert row.document is not None
    assert row.document["metadata"]["name"] == "=1+1"
    assert row.document["metadata"]["comment"] == "-note"

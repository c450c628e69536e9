"""Coordinates typed by people (geo.coords): the spellings read, the errors named, and the
read-back that parses back to the same point."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.geo.coords import (
    CoordinateError,
    format_dms,
    parse_angle,
    parse_mgrs,
    parse_position,
    readback,
)
from deconflict.geo.distance import min_distance_m
from deconflict.geo.geojson import parse_geometry

D_12_30 = 36 + 12 / 60 + 30 / 3600


@pytest.mark.parametrize(
    ("text", "axis", "expected"),
    [
        ("36.2083", "lat", 36.2083),
        ("-12.5", "lat", -12.5),
        ("+12.5", "lon", 12.5),
        ("36,2083", "lat", 36.2083),  # a decimal comma, from a European spreadsheet
        ("36°12'30\"N", "lat", D_12_30),
        ("36° 12' 30.5\" N", "lat", 36 + 12 / 60 + 30.5 / 3600),
        ("36 12 30 N", "lat", D_12_30),
        ("36 12 30", "lat", D_12_30),
        ("N36°12.5'", "lat", D_12_30),
        ("N 36 12.5", "lat", D_12_30),
        ("36d12m30s", "lat", D_12_30),
        ("36D12M30S", "lat", D_12_30),  # upper-case marks: the final S is the seconds mark
        ("36d12m30sS", "lat", -D_12_30),
        ("36°12'30S", "lat", -D_12_30),  # minutes marked with a prime: S is South
        ("36°12\u203230\u2033S", "lat", -D_12_30),  # primes
        ("36º12\u201930\u201dN", "lat", D_12_30),  # typographic quotes
        ("36°12'30''N", "lat", D_12_30),  # two apostrophes for seconds
        ("s36.5", "lat", -36.5),
        ("42°30'44.4\"E", "lon", 42 + 30 / 60 + 44.4 / 3600),
        ("42 30 W", "lon", -42.5),
        ("W179.5", "lon", -179.5),
        ("180", "lon", 180.0),
        ("-90", "lat", -90.0),
        ("0", "lat", 0.0),
        ("  36.5  ", "lat", 36.5),
    ],
)
def test_angles_in_the_usual_spellings(text: str, axis: str, expected: float) -> None:
    assert parse_angle(text, axis) == pytest.approx(expected, abs=1e-12)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "axis", "says"),
    [
        ("", "lat", "empty"),
        ("abc", "lat", "unexpected character"),
        ("36E", "lat", "longitude hemisphere"),  # E given as a latitude
        ("42N", "lon", "latitude hemisphere"),
        ("95", "lat", "swapped"),
        ("180.5", "lon", "beyond 180"),
        ("-90.01", "lat", "beyond 90"),
        ("36°72'", "lat", "minutes must be below 60"),
        ("36°12'60\"", "lat", "seconds must be below 60"),
        ("36.5°12'", "lat", "only the last part"),
        ("36 12.5 30", "lat", "only the last part"),
        ("12'", "lat", "no degrees"),
        ('36°30"', "lat", "seconds but no minutes"),
        ("36 12 30 40", "lat", "more than three"),
        ("-36N", "lat", "both a sign and a hemisphere"),
        ("N36S", "lat", "both N and S"),
        ("36N12", "lat", "in the middle"),
        ("36 - 12", "lat", "sign that is not at its start"),
        ("36'12°", "lat", "out of order"),
        ("36°12'30'", "lat", "out of order"),
        ("°", "lat", "no number"),
        ("36.2083, 42.5", "lat", "unexpected character"),
    ],
)
def test_angles_refused_with_a_reason(text: str, axis: str, says: str) -> None:
    with pytest.raises(CoordinateError, match=says):
        parse_angle(text, axis)  # type: ignore[arg-type]


def test_a_coordinate_error_is_a_value_error() -> None:
    assert issubclass(CoordinateError, ValueError)


@pytest.mark.parametrize(
    "text",
    ["38SKF7636209924", "38s kf 76362 09924", "38SKF 7636 0992", "38SKF70", " 38skf7636209924 "],
)
def test_mgrs_tolerates_spaces_and_case(text: str) -> None:
    lat, lon = parse_mgrs(text)
    assert abs(lat - 36.2083) < 0.1 and abs(lon - 42.5123) < 0.2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("junk", "not an MGRS reference"),
        ("38SKF", "0 digits"),  # a 100 km square is too coarse to declare
        ("38SKF123", "3 digits"),
        ("38SKF123456789012", "12 digits"),
        ("38IKF1234", "not an MGRS reference"),  # I is no band letter
        ("61SKF1234", "names no place"),  # there is no zone 61
    ],
)
def test_mgrs_junk_refused(text: str, says: str) -> None:
    with pytest.raises(CoordinateError, match=says):
        parse_mgrs(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("36.2083, 42.5123", (36.2083, 42.5123)),
        ("36.2083,42.5123", (36.2083, 42.5123)),
        ("36,2083; 42,5123", (36.2083, 42.5123)),
        ("36.2083 42.5123", (36.2083, 42.5123)),
        ("36°12'30\"N 42°30'E", (D_12_30, 42.5)),
        ("36°12'30\"N, 42°30'E", (D_12_30, 42.5)),
        ("N36 12 30 E42 30", (D_12_30, 42.5)),
        ("36 12 30 N 42 30 E", (D_12_30, 42.5)),
        ("36d12m30s 42d30m", (D_12_30, 42.5)),
        ("42°30'E, 36°12'30\"N", (D_12_30, 42.5)),  # letters say longitude came first
    ],
)
def test_positions_as_a_pair(text: str, expected: tuple[float, float]) -> None:
    assert parse_position(text) == pytest.approx(expected, abs=1e-12)


def test_a_position_may_be_mgrs() -> None:
    assert parse_position("38SKF7636209924") == parse_mgrs("38SKF7636209924")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("36.2", "not a position"),
        ("1, 2, 3", "not a position"),
        ("136.2, 42.5", "beyond 90"),  # a swapped pair whose longitude is beyond 90
        ("36.2E, 42.5E", "longitude hemisphere"),
    ],
)
def test_positions_refused(text: str, says: str) -> None:
    with pytest.raises(CoordinateError, match=says):
        parse_position(text)


def test_readback_of_a_position() -> None:
    assert readback(36.20833, 42.51234) == {
        "lat": 36.20833,
        "lon": 42.51234,
        "decimal": "36.20833, 42.51234",
        "dms": "36°12'30.0\"N 42°30'44.4\"E",
        "mgrs": "38SKF7636209924",
    }


@pytest.mark.parametrize(
    ("lat", "mgrs_given"),
    [(84.0, True), (84.01, False), (-80.0, True), (-80.5, False), (90.0, False)],
)
def test_readback_has_no_mgrs_near_the_poles(lat: float, mgrs_given: bool) -> None:
    assert (readback(lat, 10.0)["mgrs"] is not None) is mgrs_given


def test_readback_never_shows_minus_zero() -> None:
    back = readback(-0.000001, -0.000001)
    assert back["decimal"] == "0.00000, 0.00000"
    assert back["dms"] == "0°0'0.0\"N 0°0'0.0\"E"


def test_dms_rounds_once_so_sixty_seconds_never_shows() -> None:
    assert format_dms(36 + 59 / 60 + 59.99 / 3600, "lat") == "37°0'0.0\"N"


def _metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    def point(lat: float, lon: float) -> object:
        return {"type": "Point", "coordinates": [lon, lat]}

    return min_distance_m(parse_geometry(point(*a), "a"), parse_geometry(point(*b), "b"))


# No deadline: the first example pays for compiling the distance kernels.
PROPERTY = settings(deadline=None)
latitudes = st.floats(-90, 90, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False)


@PROPERTY
@given(latitudes, longitudes)
def test_dms_round_trips_within_a_tenth_of_a_second(lat: float, lon: float) -> None:
    lat_text, lon_text = str(readback(lat, lon)["dms"]).split(" ")
    assert math.isclose(parse_angle(lat_text, "lat"), lat, abs_tol=0.05 / 3600 + 1e-12)
    assert math.isclose(parse_angle(lon_text, "lon"), lon, abs_tol=0.05 / 3600 + 1e-12)
    back = parse_position(str(readback(lat, lon)["dms"]))
    assert back == (parse_angle(lat_text, "lat"), parse_angle(lon_text, "lon"))


@PROPERTY
@given(latitudes, longitudes)
def test_decimal_round_trips_within_five_decimals(lat: float, lon: float) -> None:
    back = parse_position(str(readback(lat, lon)["decimal"]))
    assert math.isclose(back[0], lat, abs_tol=5e-6) and math.isclose(back[1], lon, abs_tol=5e-6)


@PROPERTY
@given(st.floats(-80, 84, allow_nan=False), st.floats(-180, 180, allow_nan=False))
def test_mgrs_round_trips_within_its_metre(lat: float, lon: float) -> None:
    reference = readback(lat, lon)["mgrs"]
    assert isinstance(reference, str)
    back = parse_mgrs(reference)
    # The reference names the 1 m square whose south-west corner it reads back to: the point
    # lies within that square, so within its diagonal (1.42 m) and a little rounding.
    assert _metres_between(back, (lat, lon)) < 1.5

"""Tests of deconflict.volumes: what a volume document may say, the policy's limits on a
declaration's volumes, and the two cheap parts of the rule (time windows and altitude gaps)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from deconflict.errors import DeconflictError, InvalidGeometry, InvalidRequest, TooLarge
from deconflict.policy import Limits, default_policy
from deconflict.requests import VolumeIn
from deconflict.volumes import (
    Volume,
    altitude_gap_m,
    build_volumes,
    time_windows_overlap,
    volumes_from_json,
    within_vertical_separation,
)

LIMITS = default_policy().limits
T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
START = "2026-12-04T06:00:00Z"
END = "2026-12-04T10:00:00Z"
POINT = {"type": "Point", "coordinates": [10.0, 45.0]}


def doc(**changes: Any) -> dict[str, Any]:
    """A valid volume document with some members replaced (a value of ... removes one)."""
    document: dict[str, Any] = {
        "geometry": POINT,
        "buffer_m": 100.0,
        "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
        "time": {"start": START, "end": END},
    }
    for key, value in changes.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return document


def volume_in(**changes: Any) -> VolumeIn:
    return VolumeIn.model_validate(doc(**changes))


# --------------------------------------------------------------------------- VolumeIn

INVALID_DOCUMENTS = [
    pytest.param(doc(time=...), ("time",), id="missing-time"),
    pytest.param(doc(geometry=...), ("geometry",), id="missing-geometry"),
    pytest.param(doc(time={"end": END}), ("time", "start"), id="missing-start"),
    pytest.param(doc(time={"start": START, "end": START}), ("time",), id="end-equals-start"),
    pytest.param(doc(time={"start": END, "end": START}), ("time",), id="end-before-start"),
    pytest.param(
        doc(time={"start": "2026-12-04T12:00:00+02:00", "end": "2026-12-04T10:00:00Z"}),
        ("time",),
        id="end-equals-start-in-another-offset",
    ),
    pytest.param(
        doc(time={"start": "2026-12-04T06:00:00", "end": END}),
        ("time", "start"),
        id="naive-start-refused",
    ),
    pytest.param(
        doc(time={"start": START, "end": "2026-12-04T10:00:00"}),
        ("time", "end"),
        id="naive-end-refused",
    ),
    pytest.param(
        doc(time={"start": "tomorrow", "end": None}), ("time", "start"), id="start-not-a-time"
    ),
    pytest.param(
        doc(time={"start": START, "end": END, "zone": "UTC"}),
        ("time", "zone"),
        id="time-extra-member",
    ),
    pytest.param(
        doc(altitude={"lower_m": 3000.5, "upper_m": 3000.0}),
        ("altitude",),
        id="altitude-lower-above-upper",
    ),
    pytest.param(
        doc(altitude={"lower_m": -1000.5, "upper_m": None}),
        ("altitude", "lower_m"),
        id="altitude-below-minus-1000m",
    ),
    pytest.param(
        doc(altitude={"lower_m": None, "upper_m": 1_000_000.5}),
        ("altitude", "upper_m"),
        id="altitude-above-1000km",
    ),
    pytest.param(
        doc(altitude={"lower_m": float("nan")}), ("altitude", "lower_m"), id="altitude-nan"
    ),
    pytest.param(doc(buffer_m=-0.5), ("buffer_m",), id="negative-buffer"),
    pytest.param(doc(buffer_m=float("inf")), ("buffer_m",), id="infinite-buffer"),
    pytest.param(doc(buffer_m=float("nan")), ("buffer_m",), id="nan-buffer"),
    pytest.param(doc(buffer_m="wide"), ("buffer_m",), id="buffer-not-a-number"),
    pytest.param(doc(colour="red"), ("colour",), id="extra-member"),
]


@pytest.mark.parametrize(("document", "location"), INVALID_DOCUMENTS)
def test_volume_in_refuses(document: dict[str, Any], location: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        VolumeIn.model_validate(document)
    assert [error["loc"] for error in caught.value.errors()] == [location]


VALID_DOCUMENTS = [
    pytest.param(doc(), id="everything-given"),
    pytest.param(doc(buffer_m=...), id="buffer-defaults-to-0"),
    pytest.param(doc(altitude=...), id="altitude-defaults-to-unbounded"),
    pytest.param(doc(altitude={"lower_m": 500, "upper_m": 500}), id="altitude-band-of-0m"),
    pytest.param(doc(altitude={"lower_m": None, "upper_m": None}), id="altitude-unbounded"),
    pytest.param(doc(altitude={"lower_m": -1000, "upper_m": 1_000_000}), id="altitude-extremes"),
    pytest.param(doc(time={"start": START}), id="open-ended-by-omission"),
    pytest.param(doc(time={"start": START, "end": None}), id="open-ended-by-null"),
    pytest.param(
        doc(time={"start": START, "end": "2026-12-04T06:00:00.000001Z"}), id="one-microsecond"
    ),
    pytest.param(
        doc(time={"start": "2026-12-04T08:00:00+02:00", "end": "2026-12-04T06:30:00Z"}),
        id="offsets-mixed",
    ),
]


@pytest.mark.parametrize("document", VALID_DOCUMENTS)
def test_volume_in_accepts(document: dict[str, Any]) -> None:
    item = VolumeIn.model_validate(document)
    assert item.buffer_m == document.get("buffer_m", 0.0)
    assert item.time.start == T0
    if "altitude" not in document:
        assert (item.altitude.lower_m, item.altitude.upper_m) == (None, None)


# --------------------------------------------------------------------------- build_volumes


def line_doc(vertices: int, lon: float = 10.0) -> dict[str, Any]:
    positions = [[lon + i * 1e-5, 45.0 + (i % 2) * 1e-5] for i in range(vertices)]
    return doc(geometry={"type": "LineString", "coordinates": positions})


def line_doc_in(vertices: int, lon: float = 10.0) -> VolumeIn:
    return VolumeIn.model_validate(line_doc(vertices, lon))


def test_build_volumes_keeps_what_was_sent() -> None:
    (volume,) = build_volumes([volume_in(time={"start": START})], LIMITS)
    assert volume.shape.kind == "Point"
    assert (volume.buffer_m, volume.lower_m, volume.upper_m) == (100.0, 0.0, 3000.0)
    assert (volume.start, volume.end) == (T0, None)
    assert volume.start_s == T0.timestamp()
    assert volume.end_s == math.inf
    assert volume.to_json() == {
        "geometry": POINT,
        "buffer_m": 100.0,
        "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
        "time": {"start": START, "end": None},
    }


def test_build_volumes_keeps_times_in_utc() -> None:
    item = volume_in(
        time={"start": "2026-12-04T08:00:00+02:00", "end": "2026-12-04T12:00:00+02:00"}
    )
    (volume,) = build_volumes([item], LIMITS)
    assert (volume.start, volume.end) == (T0, T0 + timedelta(hours=4))
    assert volume.start.utcoffset() == timedelta(0)
    assert volume.to_json()["time"] == {"start": START, "end": END}
    assert (volume.start_s, volume.end_s) == (T0.timestamp(), T0.timestamp() + 4 * 3600)


def test_volumes_from_json_round_trips() -> None:
    volumes = build_volumes([volume_in(), volume_in(altitude={}), line_doc_in(3)], LIMITS)
    again = volumes_from_json([v.to_json() for v in volumes])
    assert [v.to_json() for v in again] == [v.to_json() for v in volumes]


def test_volumes_from_json_ignores_the_limits() -> None:
    stored = volume_in(buffer_m=LIMITS.buffer_m * 2)
    (volume,) = volumes_from_json([stored.model_dump(mode="json")])
    assert volume.buffer_m == LIMITS.buffer_m * 2


def error_field(error: DeconflictError) -> str:
    assert len(error.errors) == 1
    return error.errors[0]["field"]


WITHIN_LIMITS = [
    pytest.param([volume_in()] * 100, id="100-volumes"),
    pytest.param([volume_in(buffer_m=500_000)], id="buffer-of-500km"),
    pytest.param([line_doc_in(10_000)], id="10000-vertices-in-one-volume"),
    pytest.param([line_doc_in(6_000), line_doc_in(4_000, lon=11.0)], id="10000-vertices-in-two"),
]


@pytest.mark.parametrize("items", WITHIN_LIMITS)
def test_build_volumes_accepts_up_to_the_limits(items: list[VolumeIn]) -> None:
    assert len(build_volumes(items, LIMITS)) == len(items)


OVER_LIMITS = [
    pytest.param([volume_in()] * 101, "volumes", id="101-volumes"),
    pytest.param([volume_in(buffer_m=500_000.5)], "volumes[0].buffer_m", id="buffer-over-500km"),
    pytest.param(
        [volume_in(), volume_in(buffer_m=600_000)], "volumes[1].buffer_m", id="second-buffer"
    ),
    pytest.param([line_doc_in(10_001)], "volumes[0].geometry", id="10001-vertices-in-one"),
    pytest.param(
        [volume_in(), line_doc_in(6_000), line_doc_in(4_001, lon=11.0)],
        "volumes[2].geometry",
        id="10001-vertices-over-three",
    ),
    pytest.param(
        [volume_in(geometry={"type": "LineString", "coordinates": [[0.0, 0.0], [20.0, 0.0]]})],
        "volumes[0].geometry",
        id="geometry-wider-than-1000km",
    ),
]


@pytest.mark.parametrize(("items", "field"), OVER_LIMITS)
def test_build_volumes_refuses_over_the_limits(items: list[VolumeIn], field: str) -> None:
    with pytest.raises(TooLarge) as caught:
        build_volumes(items, LIMITS)
    assert error_field(caught.value) == field
    assert caught.value.status == 413


def test_build_volumes_names_the_field_it_is_given() -> None:
    with pytest.raises(TooLarge) as caught:
        build_volumes([volume_in(), volume_in(buffer_m=1e6)], LIMITS, field="areas")
    assert error_field(caught.value) == "areas[1].buffer_m"


def test_build_volumes_follows_the_policy_limits() -> None:
    tight = Limits(volumes_per_declaration=2, vertices_per_declaration=5, buffer_m=10)
    assert len(build_volumes([volume_in(buffer_m=10)] * 2, tight)) == 2
    with pytest.raises(TooLarge):
        build_volumes([volume_in(buffer_m=10)] * 3, tight)
    with pytest.raises(TooLarge):
        build_volumes([volume_in(buffer_m=10.5)], tight)
    with pytest.raises(TooLarge):
        build_volumes([line_doc_in(3), line_doc_in(3)], tight)


def test_build_volumes_needs_one_volume() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_volumes([], LIMITS)
    assert error_field(caught.value) == "volumes"


def test_build_volumes_names_a_bad_geometry() -> None:
    items = [volume_in(), volume_in(geometry={"type": "Circle", "coordinates": [0, 0]})]
    with pytest.raises(InvalidGeometry) as caught:
        build_volumes(items, LIMITS)
    assert error_field(caught.value) == "volumes[1].geometry.type"


# --------------------------------------------------------------------------- time and altitude


def window(start_h: float, hours: float | None) -> Volume:
    start = T0 + timedelta(hours=start_h)
    end = None if hours is None else start + timedelta(hours=hours)
    (volume,) = build_volumes(
        [
            VolumeIn.model_validate(
                doc(time={"start": start.isoformat(), "end": end and end.isoformat()})
            )
        ],
        LIMITS,
    )
    return volume


SECOND_H = 1 / 3600

TIME_WINDOWS = [
    pytest.param(window(0, 4), window(2, 4), True, id="overlapping"),
    pytest.param(window(0, 4), window(0, 4), True, id="identical"),
    pytest.param(window(0, 4), window(1, 1), True, id="containing"),
    pytest.param(window(0, 4), window(4, 4), False, id="touching-end-equals-start"),
    pytest.param(window(4, 4), window(0, 4), False, id="touching-start-equals-end"),
    pytest.param(window(0, 4), window(4 - SECOND_H, 4), True, id="one-second-overlap"),
    pytest.param(window(0, 4), window(5, 4), False, id="disjoint"),
    pytest.param(window(0, None), window(1000, 1), True, id="open-ended-meets-later"),
    pytest.param(window(0, None), window(-2, 2), False, id="open-ended-after-earlier-touching"),
    pytest.param(window(0, None), window(-2, 2 + SECOND_H), True, id="open-ended-one-second"),
    pytest.param(window(0, None), window(500, None), True, id="both-open-ended"),
    pytest.param(window(0, 1), window(1, None), False, id="open-ended-starting-at-the-end"),
]


@pytest.mark.parametrize(("a", "b", "expected"), TIME_WINDOWS)
def test_time_windows_overlap(a: Volume, b: Volume, expected: bool) -> None:
    assert time_windows_overlap(a, b) is expected
    assert time_windows_overlap(b, a) is expected


def test_time_windows_in_other_offsets_compare_as_instants() -> None:
    plus_two = timezone(timedelta(hours=2))
    ends_at_ten = window(0, 4)  # 06:00Z to 10:00Z
    starts_at_twelve_local = build_volumes(
        [volume_in(time={"start": datetime(2026, 12, 4, 12, tzinfo=plus_two).isoformat()})],
        LIMITS,
    )[0]
    assert not time_windows_overlap(ends_at_ten, starts_at_twelve_local)


def band(lower_m: float | None, upper_m: float | None) -> Volume:
    (volume,) = build_volumes(
        [volume_in(altitude={"lower_m": lower_m, "upper_m": upper_m})], LIMITS
    )
    return volume


ALTITUDE_GAPS = [
    pytest.param(band(0, 1000), band(1300, 2000), 300.0, id="300m-apart"),
    pytest.param(band(0, 1000), band(1000, 2000), 0.0, id="touching"),
    pytest.param(band(0, 1000), band(500, 2000), -500.0, id="overlapping-500m"),
    # Inside a band, the gap is minus the distance to the nearer edge of the other band.
    pytest.param(band(0, 1000), band(200, 300), -300.0, id="containing"),
    pytest.param(band(500, 500), band(500, 500), 0.0, id="same-level"),
    pytest.param(band(None, 1000), band(1300.5, None), 300.5, id="unbounded-outwards"),
    pytest.param(band(None, 1000), band(None, 5000), -math.inf, id="both-unbounded-below"),
    pytest.param(band(100, None), band(9000, None), -math.inf, id="both-unbounded-above"),
    pytest.param(band(None, None), band(50_000, 60_000), -math.inf, id="unbounded-both-ways"),
    pytest.param(band(5000, None), band(None, 100), 4900.0, id="above-and-below"),
    pytest.param(band(-1000, -500), band(-200, 0), 300.0, id="below-sea-level"),
]


@pytest.mark.parametrize(("a", "b", "gap"), ALTITUDE_GAPS)
def test_altitude_gap_m(a: Volume, b: Volume, gap: float) -> None:
    assert altitude_gap_m(a, b) == gap
    assert altitude_gap_m(b, a) == gap
    if gap <= 0:
        assert within_vertical_separation(a, b, 0.0)
    else:
        assert within_vertical_separation(a, b, gap)
        assert not within_vertical_separation(a, b, gap - 0.5)


@pytest.mark.parametrize(
    "start",
    [
        pytest.param("9999-12-31T23:00:00-02:00", id="after-year-9999-in-utc"),
        pytest.param("0001-01-01T00:30:00+01:00", id="before-year-1-in-utc"),
    ],
)
def test_times_outside_the_utc_range_are_refused_naming_the_field(start: str) -> None:
    with pytest.raises((ValidationError, InvalidRequest)) as caught:
        build_volumes([volume_in(time={"start": start})], LIMITS)
    error = caught.value
    if isinstance(error, ValidationError):
        assert [e["loc"] for e in error.errors()] == [("time", "start")]
    else:
        assert isinstance(error, InvalidRequest)
        assert error_field(error) == "volumes[0].time.start"

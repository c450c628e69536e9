"""GeoJSON FeatureCollections: one feature per row, properties as columns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from import_files import START, errors_of, rows_of

from deconflict.errors import InvalidRequest, TooLarge

RING = [[36.0, 35.0], [36.1, 35.0], [36.1, 35.1], [36.0, 35.0]]


def collection(*features: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"start": START, **properties}}


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [36.6, 35.9]},
        {"type": "LineString", "coordinates": [[36.6, 35.9], [36.7, 36.0]]},
        {"type": "Polygon", "coordinates": [RING]},
        {"type": "MultiPolygon", "coordinates": [[RING]]},
    ],
    ids=lambda g: g["type"],
)
def test_each_geometry_the_service_accepts(geometry: dict[str, Any]) -> None:
    (row,) = rows_of(collection(feature(geometry, name="Zone", category="camp")), "geojson")
    assert row.document is not None
    assert row.document["volumes"][0]["geometry"] == geometry


def test_properties_that_are_not_columns_are_kept_in_metadata() -> None:
    data = collection(
        feature(None, name="Clinic", lat="35.9", lon="36.6", external_id=4, fid=12, source="OCHA")
    )
    (row,) = rows_of(data, "geojson")
    assert row.document is not None
    assert row.document["metadata"] == {
        "name": "Clinic",
        "external_id": "4",
        "fid": 12,
        "source": "OCHA",
    }


def test_bad_features_are_errors_of_their_rows() -> None:
    data = collection(
        feature({"type": "Point", "coordinates": [36.6, 35.9]}, name="Good"),
        "not a feature",
        feature({"type": "GeometryCollection", "geometries": []}, name="Odd"),
        feature({"type": "Point", "coordinates": [36.6, 95]}, name="Swapped"),
        feature(None, name="Nowhere"),
    )
    rows = rows_of(data, "geojson")
    assert [r.ok for r in rows] == [True, False, False, False, False]
    assert [set(errors_of(r)) for r in rows[1:]] == [{"row"}, {"geometry"}, {"geometry"}, {"lat"}]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"name,lat\n", id="csv"),
        pytest.param(b'{"type": "Feature"}', id="a-feature"),
        pytest.param(b'{"type": "FeatureCollection"}', id="no-features"),
        pytest.param(b'{"type": "FeatureCollection", "features": [NaN]}', id="nan"),
        pytest.param(b"[" * 100 + b"]" * 100, id="deep"),
        pytest.param(b"\xff\xfe{", id="not-utf-8"),
    ],
)
def test_a_file_that_is_not_a_feature_collection_is_a_400(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        rows_of(data, "geojson")


def test_more_features_than_the_limit_is_413() -> None:
    point = {"type": "Point", "coordinates": [36.6, 35.9]}
    with pytest.raises(TooLarge):
        rows_of(collection(*[feature(point, name=str(n)) for n in range(4)]), "geojson", max_rows=3)

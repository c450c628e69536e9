"""GeoJSON FeatureCollections: one feature per row, its properties the import columns, its
geometry (Point, LineString, Polygon, MultiPolygon) the row's geometry. A feature without a
geometry may give ``lat``/``lon`` or ``mgrs`` properties instead. Properties that are not
import columns are kept in the declaration's ``metadata``."""

from __future__ import annotations

from typing import Any

from deconflict.errors import InvalidRequest
from deconflict.importing.columns import check_row_count, column_name, row_from_values
from deconflict.importing.csv_rows import decode_text
from deconflict.importing.rows import ImportRow, RowError
from deconflict.requests import BODY_DEPTH, check_json_value, parse_json


def read_geojson(data: bytes, *, max_rows: int) -> list[ImportRow]:
    document = parse_json(decode_text(data, "GeoJSON"), "the file", field="body")
    check_json_value(document, "", BODY_DEPTH)
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise InvalidRequest(
            'the file must be a GeoJSON FeatureCollection ({"type": "FeatureCollection", '
            '"features": [...]}), one feature per declaration',
            field="body",
        )
    features = document.get("features")
    if not isinstance(features, list):
        raise InvalidRequest("features must be a list of features", field="body")
    check_row_count(len(features), max_rows)
    return [_feature_row(number, feature) for number, feature in enumerate(features, start=1)]


def _feature_row(number: int, feature: Any) -> ImportRow:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return ImportRow(number, None, None, [RowError("row", "is not a GeoJSON Feature")])
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return ImportRow(number, None, None, [RowError("row", "properties must be an object")])
    values, extra = split_properties(properties)
    values.pop("geometry", None)  # the feature's own geometry is the row's
    return row_from_values(number, values, geometry=feature.get("geometry"), extra=extra)


def split_properties(properties: dict[str, Any]) -> tuple[dict[str, object], dict[str, Any]]:
    """Properties of import columns (by their column names), and the others as they are."""
    values: dict[str, object] = {}
    extra: dict[str, Any] = {}
    for key, value in properties.items():
        column = column_name(key)
        if column is None:
            extra[key] = value
        else:
            values[column] = value
    return values, extra

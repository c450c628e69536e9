"""GeoJSON geometries in: reading and validating a request's geometry into a ``Shape``.

What is accepted (RFC 7946, with the limits of deconflict's contract) is described in the
package's docstring (``deconflict.geo``). Errors name the path of the offending member in
the request (``volumes[2].geometry.coordinates[0][3]``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import shapely

from deconflict.errors import InvalidGeometry, TooLarge
from deconflict.geo.caps import as_tuple, unit_vectors
from deconflict.geo.earth import EARTH_MEAN_RADIUS_M, SAME_POSITION
from deconflict.geo.shape import Part, Shape, line_part, point_part, polygon_part, shape_cap

_KINDS: Final = ("Point", "LineString", "Polygon", "MultiPolygon")


def parse_geometry(
    obj: object,
    field: str,
    *,
    max_vertices: int | None = None,
    max_radius_m: float | None = None,
) -> Shape:
    """Validate a GeoJSON geometry and precompute it for distance queries.

    ``field`` is the path of the geometry in the request (``volumes[2].geometry``); errors
    name the path of the offending member below it. Raises ``InvalidGeometry`` for anything
    malformed and ``TooLarge`` when the geometry has more than ``max_vertices`` positions
    (closing positions included) or its cap is wider than ``max_radius_m`` (on the mean-radius
    sphere). ``None`` means no limit beyond ``MAX_PART_RADIUS_DEG`` per part.
    """
    if not isinstance(obj, dict):
        raise InvalidGeometry("a geometry must be a GeoJSON object", field=field)
    kind = obj.get("type")
    if kind not in _KINDS:
        raise InvalidGeometry(
            "type must be one of Point, LineString, Polygon, MultiPolygon", field=f"{field}.type"
        )
    if "coordinates" not in obj:
        raise InvalidGeometry("coordinates are missing", field=f"{field}.coordinates")
    path = f"{field}.coordinates"
    coordinates = _read_coordinates(kind, obj["coordinates"], path)
    vertex_count = _count_positions(coordinates)
    if max_vertices is not None and vertex_count > max_vertices:
        raise TooLarge(
            f"the geometry has {vertex_count} positions, more than the limit of {max_vertices}",
            field=field,
        )
    try:
        parts = tuple(_build_parts(kind, coordinates, path, field))
        center, radius = shape_cap(parts)
    except (InvalidGeometry, TooLarge):
        raise
    except (shapely.errors.ShapelyError, ValueError, ArithmeticError) as exc:
        raise InvalidGeometry("the geometry cannot be interpreted", field=field) from exc
    if max_radius_m is not None and radius * EARTH_MEAN_RADIUS_M > max_radius_m:
        raise TooLarge(
            f"the geometry spans more than {max_radius_m:g} m from its centre", field=field
        )
    geojson = {"type": kind, "coordinates": coordinates}
    return Shape(geojson, str(kind), vertex_count, center, radius, parts, as_tuple(center))


def _read_coordinates(kind: str, value: object, path: str) -> Any:
    """The coordinates as nested lists of 2-D float positions, checked for shape and range."""
    if kind == "Point":
        return _read_position(value, path)
    if kind == "LineString":
        positions = _read_positions(value, path)
        if len(positions) < 2:
            raise InvalidGeometry("a LineString needs at least 2 positions", field=path)
        return positions
    if kind == "Polygon":
        return _read_polygon(value, path)
    polygons = _read_array(value, path, "an array of polygons")
    if not polygons:
        raise InvalidGeometry("a MultiPolygon needs at least one polygon", field=path)
    return [_read_polygon(item, f"{path}[{i}]") for i, item in enumerate(polygons)]


def _read_array(value: object, path: str, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidGeometry(f"must be {what}", field=path)
    return list(value)


def _read_position(value: object, path: str) -> list[float]:
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= 3:
        raise InvalidGeometry(
            "a position must be [longitude, latitude] or [lon, lat, altitude]", field=path
        )
    numbers: list[float] = []
    for item in value:
        # bool is an int in Python but true is not a coordinate.
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise InvalidGeometry("position members must be numbers", field=path)
        try:
            number = float(item)
        except OverflowError as exc:
            raise InvalidGeometry("coordinate out of range", field=path) from exc
        if not math.isfinite(number):
            raise InvalidGeometry("coordinates must be finite numbers", field=path)
        numbers.append(number)
    lon, lat = numbers[0], numbers[1]
    if not -180.0 <= lon <= 180.0:
        raise InvalidGeometry("longitude must be between -180 and 180", field=path)
    if not -90.0 <= lat <= 90.0:
        raise InvalidGeometry("latitude must be between -90 and 90", field=path)
    return [lon, lat]


def _read_positions(value: object, path: str) -> list[list[float]]:
    items = _read_array(value, path, "an array of positions")
    plain = _plain_positions(items)
    if plain is not None:
        return plain
    return [_read_position(item, f"{path}[{i}]") for i, item in enumerate(items)]


_NUMBER_TYPES = (float, int)


def _plain_positions(items: list[Any]) -> list[list[float]] | None:
    """The positions when every one is a plain ``[lon, lat]`` of numbers in range (the
    usual case, read without building a field path per position), else None: then
    ``_read_position`` reads them one by one and names the bad one. Types are compared
    exactly, so true is not a number here either; NaN fails the range tests."""
    positions: list[list[float]] = []
    for item in items:
        if type(item) is not list or len(item) != 2:
            return None
        lon, lat = item
        if type(lon) not in _NUMBER_TYPES or type(lat) not in _NUMBER_TYPES:
            return None
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            return None
        positions.append([float(lon), float(lat)])
    return positions


def _read_polygon(value: object, path: str) -> list[list[list[float]]]:
    rings = _read_array(value, path, "an array of linear rings")
    if not rings:
        raise InvalidGeometry("a polygon needs at least one ring", field=path)
    result = []
    for i, ring in enumerate(rings):
        ring_path = f"{path}[{i}]"
        positions = _read_positions(ring, ring_path)
        if len(positions) < 4:
            raise InvalidGeometry("a linear ring needs at least 4 positions", field=ring_path)
        if not _same_position(positions[0], positions[-1]):
            raise InvalidGeometry("a linear ring must end where it starts", field=ring_path)
        result.append(positions)
    return result


def _same_position(a: list[float], b: list[float]) -> bool:
    return a == b or bool(np.linalg.norm(unit_vectors([a]) - unit_vectors([b])) < SAME_POSITION)


def _count_positions(coordinates: Any) -> int:
    if coordinates and isinstance(coordinates[0], float):
        return 1
    return sum(_count_positions(item) for item in coordinates)


def _build_parts(kind: str, coordinates: Any, path: str, field: str) -> Iterator[Part]:
    if kind == "Point":
        yield point_part(coordinates)
    elif kind == "LineString":
        yield line_part(coordinates, path, field)
    elif kind == "Polygon":
        yield polygon_part(coordinates, path, field)
    else:
        for i, polygon in enumerate(coordinates):
            yield polygon_part(polygon, f"{path}[{i}]", field)

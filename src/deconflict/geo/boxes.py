"""Boxes: the lon/lat box of a ``?bbox=`` query as a shape, and the 3-D box of unit vectors
within a distance of a shape (``reach_box``)."""

from __future__ import annotations

import math
from typing import Any, Final

from deconflict.errors import InvalidGeometry
from deconflict.geo.caps import ANGLE_SLACK
from deconflict.geo.earth import EARTH_MAX_RADIUS_M, EARTH_MIN_RADIUS_M
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape

BOX_TOLERANCE_M: Final = 1.0
"""How far outside a query box's parallels its polygon may reach (it never falls inside)."""
_BOX_TILE_DEG: Final = 45.0


def reach_box(shape: Shape, pad_m: float) -> tuple[float, float, float, float, float, float]:
    """(xmin, ymin, zmin, xmax, ymax, zmax) of unit vectors within ``pad_m`` of the shape.

    Conservative: it holds every point of the sphere whose geodesic distance to the shape is at
    most ``pad_m`` (edges' bulge and interiors included). Two shapes within ``d`` metres of each
    other have overlapping boxes when their pads sum to at least ``d``: both boxes hold the
    point of the great circle between their closest points that splits it in the pads' ratio.
    """
    # A point pad_m away is at most pad_m / EARTH_MIN_RADIUS_M radians away. Along axis k the
    # padded set reaches cos(angle from +axis to it), and the angle from an axis to the padded
    # set is the angle to the shape minus the pad.
    pad = max(pad_m, 0.0) / EARTH_MIN_RADIUS_M + ANGLE_SLACK
    reach = [math.cos(max(0.0, angle - pad)) + 1e-12 for angle in shape.axis_angles]
    highs = [min(1.0, value) for value in reach[:3]]
    lows = [max(-1.0, -value) for value in reach[3:]]
    return (lows[0], lows[1], lows[2], highs[0], highs[1], highs[2])


def bbox_shape(
    min_lon: float, min_lat: float, max_lon: float, max_lat: float, field: str = "bbox"
) -> Shape:
    """A polygon covering the lon/lat box, for ``?bbox=`` queries.

    ``min_lon > max_lon`` crosses the antimeridian; ``-180, ..., 180`` is every longitude. The
    meridian sides are exact; the parallels are followed within ``BOX_TOLERANCE_M``, always on
    the outside, so no geometry inside the box is missed. Boxes wider or taller than 45 degrees
    become a MultiPolygon of tiles sharing their edges (one gnomonic plane cannot hold them).
    """
    values = (min_lon, min_lat, max_lon, max_lat)
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise InvalidGeometry("bbox values must be finite numbers", field=field)
    if not (-180.0 <= min_lon <= 180.0 and -180.0 <= max_lon <= 180.0):
        raise InvalidGeometry("bbox longitudes must be between -180 and 180", field=field)
    if not -90.0 <= min_lat < max_lat <= 90.0:
        raise InvalidGeometry(
            "bbox latitudes must be between -90 and 90, minimum below maximum", field=field
        )
    width = max_lon - min_lon if min_lon <= max_lon else max_lon + 360.0 - min_lon
    if width <= 0.0:
        raise InvalidGeometry("bbox must have a positive width", field=field)
    columns = math.ceil(width / _BOX_TILE_DEG)
    rows = math.ceil((max_lat - min_lat) / _BOX_TILE_DEG)
    lats = [min_lat + (max_lat - min_lat) * j / rows for j in range(rows + 1)]
    lats[-1] = max_lat
    polygons = []
    for i in range(columns):
        west = min_lon + width * i / columns
        east = min_lon + width * (i + 1) / columns
        for j in range(rows):
            south = _box_parallel(lats[j], west, east, outer=j == 0, box_side=1.0)
            north = _box_parallel(lats[j + 1], east, west, outer=j == rows - 1, box_side=-1.0)
            ring = [*south, *north, south[0]]
            polygons.append([[[_wrap_lon(lon), lat] for lon, lat in ring]])
    geojson: dict[str, Any] = (
        {"type": "Polygon", "coordinates": polygons[0]}
        if len(polygons) == 1
        else {"type": "MultiPolygon", "coordinates": polygons}
    )
    try:
        return parse_geometry(geojson, field)
    except InvalidGeometry as exc:  # a box so thin that its corners merge
        raise InvalidGeometry("bbox is too small to form a polygon", field=field) from exc


def _box_parallel(
    lat: float, lon_from: float, lon_to: float, *, outer: bool, box_side: float
) -> list[tuple[float, float]]:
    """Vertices following a parallel from lon_from to lon_to (unwrapped degrees).

    A great-circle chord between two points of a parallel bulges towards the pole. Inner tile
    edges are shared by both tiles, so the bulge moves area from one tile to the other and
    nothing is lost. On the box's own sides the chords are kept within BOX_TOLERANCE_M of the
    parallel and, where the bulge would point into the box (box_side: +1 when the box lies
    north of this edge), the vertices are lowered so the chords just touch the parallel.
    """
    if abs(lat) == 90.0:
        return [(lon_from, lat)]
    if not outer or lat == 0.0:
        return [(lon_from, lat), (lon_to, lat)]
    phi = math.radians(lat)
    span = math.radians(abs(lon_to - lon_from))
    # Bulge of a chord spanning dl radians of longitude: about R * dl^2 * |sin 2 phi| / 16;
    # start from that estimate and add segments until the exact bulge is small enough.
    bulge_factor = EARTH_MIN_RADIUS_M * abs(math.sin(2 * phi)) / 16.0
    segments = max(1, math.ceil(span * math.sqrt(bulge_factor / BOX_TOLERANCE_M)))
    while _chord_bulge_m(phi, span / segments) > BOX_TOLERANCE_M:
        segments += 1
    if box_side * lat > 0.0:
        # The bulge points into the box: lower the vertices so the chord's apex is on lat.
        lat = math.degrees(math.atan(math.tan(phi) * math.cos(span / segments / 2)))
    return [(lon_from + (lon_to - lon_from) * s / segments, lat) for s in range(segments + 1)]


def _chord_bulge_m(phi: float, dl: float) -> float:
    """How far poleward of its parallel a chord spanning dl radians of longitude reaches."""
    apex = math.atan(math.tan(abs(phi)) / math.cos(dl / 2))
    return EARTH_MAX_RADIUS_M * (apex - abs(phi))


def _wrap_lon(lon: float) -> float:
    return lon - 360.0 if lon > 180.0 else lon

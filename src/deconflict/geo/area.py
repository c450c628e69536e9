"""Whether a geometry lies in an area (the policy's area of operations), and if not, where not.

The test is on positions: every vertex of the geometry (a point's own position, each
distinct vertex of a line or polygon) must lie inside the area's polygon or on its edge. That
is what catches a mistyped or swapped coordinate, which moves a vertex, not an edge; an edge
between two inside vertices that cuts across a concave corner of the area is not refused.
Buffers are not counted: the area says where declarations are, not where their margins end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from deconflict.geo.caps import lon_lat
from deconflict.geo.compiled import Floats
from deconflict.geo.distance import min_distance_m
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape


@dataclass(frozen=True)
class Outside:
    """A vertex outside the area: where it is, how far out (metres, geodesic WGS84), and
    whether the same position with latitude and longitude exchanged would be inside."""

    lat: float
    lon: float
    distance_m: float
    inside_if_swapped: bool


def first_outside(shape: Shape, area: Shape) -> Outside | None:
    """The first vertex of ``shape`` (in GeoJSON order) outside ``area``, or None."""
    for part in shape.parts:
        inside = _strictly_inside(area, part.xyz)
        if inside.all():
            continue
        lons, lats = lon_lat(part.xyz)
        for index in np.flatnonzero(~inside):
            lon, lat = float(lons[index]), float(lats[index])
            distance_m = _distance_m(lat, lon, area)
            if distance_m > 0.0:  # 0: on the edge (within a millimetre), which is in
                return Outside(lat, lon, distance_m, _inside_if_swapped(lat, lon, area))
    return None


def _strictly_inside(area: Shape, xyz: Floats) -> npt.NDArray[np.bool_]:
    """For each unit vector, whether it lies strictly inside one of the area's polygons.

    The vectorised form of ``shape.contains``: the same gnomonic frame and prepared polygon,
    one shapely call per polygon for all the vertices, since a declaration may have 10,000.
    """
    inside = np.zeros(len(xyz), dtype=np.bool_)
    for part in area.parts:
        if part.frame is None:
            continue
        w = xyz @ part.frame.T
        candidates = np.flatnonzero((w[:, 0] >= part.cos_radius - 1e-12) & ~inside)
        if len(candidates):
            x = w[candidates, 1] / w[candidates, 0]
            y = w[candidates, 2] / w[candidates, 0]
            inside[candidates] = shapely.contains_xy(part.polygon, x, y)
    return inside


def _distance_m(lat: float, lon: float, area: Shape) -> float:
    point = parse_geometry({"type": "Point", "coordinates": [lon, lat]}, "position")
    return min_distance_m(point, area)


def _inside_if_swapped(lat: float, lon: float, area: Shape) -> bool:
    if abs(lon) > 90.0:
        return False
    return _distance_m(lon, lat, area) == 0.0

"""Geometries of declarations: GeoJSON parsing and validation, and geodesic distances.

Contract
--------
- Datum: WGS84. GeoJSON (RFC 7946) positions are ``[lon, lat]`` in degrees; a third member
  (altitude) is accepted and ignored: altitudes belong to volumes, not to geometries.
- Geometry types: Point, LineString, Polygon, MultiPolygon. Nothing else.
- Edges are great-circle arcs, always the short way (as PostGIS ``geography``): the edge from
  lon 179.5 to lon -179.5 is 1 degree long and crosses the antimeridian. Lines and rings may
  therefore cross the antimeridian and surround a pole.
- A polygon's interior is the side of its shell that fits inside the shell's own cap (less
  than a hemisphere); winding order does not matter. Parts of a MultiPolygon may overlap.
- Distances are geodesic on the WGS84 ellipsoid, in metres, between the closest points of the
  two geometries; a polygon includes its interior. Touching, crossing and containment are
  distance 0, and so is anything closer than ``TOUCH_M`` (1 mm): coordinates carry no more
  precision than that, and it keeps shared edges and T-junctions from depending on rounding.
- The distance reported is always the geodesic length between two actual points of the two
  geometries, so it is never below the true minimum (beyond floating-point noise); it
  exceeds it by at most ~0.002 % (see ``_part_distance_m``).
- Limits: ``max_vertices=None`` and ``max_radius_m=None`` mean "no policy limit". Whatever the
  policy, every line or polygon part must fit in a cap of ``MAX_PART_RADIUS_DEG`` (60 degrees,
  about 6,700 km), because polygons are validated in a gnomonic projection of their own cap.

How distances are computed
--------------------------
Every part (a point, a line, one polygon) keeps its vertices and its edges as 3-D unit vectors
(geodetic lon/lat on the unit sphere) in numpy arrays, with each edge's great-circle normal.
For a pair of parts:

1. Caps: each part has a cap (centre, angular radius) containing it. On WGS84 a path that
   spans a central angle ``s`` is at least ``EARTH_MIN_RADIUS_M * s`` long (the smallest
   radius of curvature is a(1-e^2) = 6,335,439 m), so the gap between caps gives a lower bound
   that rejects far pairs in a few microseconds without numpy.
2. Touching: a vertex of one inside the other's polygon (tested in that polygon's gnomonic
   projection, where great-circle edges are straight, so shapely is exact), or two edges that
   cross (sign tests on the edge normals, as in S2), means distance 0.
3. Otherwise the closest pair involves a vertex of one part and a vertex or an edge of the
   other. Central angles of every vertex-vertex and vertex-edge pair are matrix products; the
   pairs within ``_RADIUS_RATIO`` of the smallest angle (the ellipsoid can reorder the sphere's
   candidates by at most the ratio of its largest to its smallest radius of curvature) are
   measured with ``pyproj.Geod.inv``, and the shortest wins. The foot of the perpendicular is
   spherical, not ellipsoidal; the difference costs about e^4/2 = 2e-5 of the distance.
   Parts with many edges are cut into chunks of consecutive edges with their own caps, and
   only chunk pairs whose caps are near enough to matter get the quadratic treatment.

The suggested alternative, one gnomonic projection per pair and shapely's nearest points, was
not kept: planar nearest points are not geodesic nearest points (the projection's scale
varies by 0.2 % over 300 km and the ellipsoid's by 0.7 % with direction), so it needs a
second, recentred pass to reach 0.05 %; and a pair far apart does not fit in one projection.
The gnomonic projection is used where it is exact: validating a polygon and locating a point
in it, each in the projection of its own cap.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod

from deconflict.engine.kernels import gilbert_direction, smallest_circle
from deconflict.errors import InvalidGeometry, TooLarge

Array = npt.NDArray[np.float64]

EARTH_MIN_RADIUS_M: Final = 6_335_000.0
"""Lower bound of metres per radian of central angle on WGS84 (a(1-e^2) = 6,335,439 m)."""

# Upper bound of metres per radian: the polar radius of curvature a^2/b = 6,399,594 m.
_EARTH_MAX_RADIUS_M: Final = 6_400_000.0
_EARTH_MEAN_RADIUS_M: Final = 6_371_008.8  # only to express cap radii in metres for limits
_RADIUS_RATIO: Final = _EARTH_MAX_RADIUS_M / EARTH_MIN_RADIUS_M

TOUCH_M: Final = 1e-3
"""Distances below this many metres are reported as 0 (touching)."""

MAX_PART_RADIUS_DEG: Final = 60.0
"""Largest angular radius of the cap around one line or polygon part."""

BOX_TOLERANCE_M: Final = 1.0
"""How far outside a query box's parallels its polygon may reach (it never falls inside)."""

_MAX_PART_RADIUS: Final = math.radians(MAX_PART_RADIUS_DEG)
# Central angles computed from dot products of unit vectors are good to ~2e-8 rad near 0;
# every bound that decides something is widened by this much (0.3 m).
_ANGLE_SLACK: Final = 5e-8
# Two positions closer than this on the unit sphere (6 micrometres) are the same position:
# it merges 180 with -180 and every longitude at a pole, and keeps edge normals well defined.
_SAME_POSITION: Final = 1e-12
_BOX_TILE_DEG: Final = 45.0
_CHUNK_EDGES: Final = 48
_KINDS: Final = ("Point", "LineString", "Polygon", "MultiPolygon")
_GEOD: Final = Geod(ellps="WGS84")
_AXES: Final = np.vstack((np.eye(3), -np.eye(3)))


@dataclass(frozen=True, eq=False, slots=True)
class _Chunk:
    """Up to _CHUNK_EDGES consecutive edges of a part and their vertices.

    Pairs of parts are compared chunk pair by chunk pair, nearest caps first, so the
    quadratic vertex-edge work stays on the few chunks that can hold the closest points.
    """

    xyz: Array  # (k, 3) vertices as unit vectors
    lonlat: Array  # (k, 2) the same vertices in degrees
    normals: Array  # (e, 3) unit normal of each edge's great circle, u x v
    ends: Array  # (2e, 3) edge starts u, then edge ends v
    sides: Array  # (3, 2e + e): normals, then n x u, then v x n, as columns (see _edge_angles)


@dataclass(frozen=True, eq=False, slots=True)
class _Part:
    """One point, line or polygon, precomputed for distance queries."""

    xyz: Array  # (k, 3) its distinct vertices as unit vectors
    chunks: tuple[_Chunk, ...]
    chunk_centers: Array  # (c, 3) centre of a cap around each chunk, edges included
    chunk_radii: Array  # (c,) angular radius of those caps
    center: tuple[float, float, float]
    radius: float
    cos_radius: float
    frame: Array | None  # (3, 3) rows: centre, east, north of the polygon's gnomonic plane
    polygon: Any  # the prepared shapely polygon in that plane, or None


@dataclass(frozen=True, eq=False)
class Shape:
    """A parsed geometry, with what distance queries need precomputed.

    ``center`` and ``radius_rad`` describe a spherical cap containing the whole geometry,
    edges and interiors included; ``radius_rad`` is pi for a query box wider than a hemisphere.
    """

    geojson: dict[str, Any]
    kind: str
    vertex_count: int
    center: Array
    radius_rad: float
    _parts: tuple[_Part, ...] = field(repr=False)
    _center: tuple[float, float, float] = field(repr=False)  # as floats, for within_m's fast path

    @cached_property
    def _axis_angles(self) -> tuple[float, ...]:
        """Central angle from each of +x, +y, +z, -x, -y, -z to the geometry: makes
        reach_box O(1). Computed when first asked: a conflict check never asks, and these
        six distances were a fifth of its parsing."""
        return tuple(min(_point_angle(part, axis) for part in self._parts) for axis in _AXES)


# --------------------------------------------------------------------------- parsing


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
        center, radius = _shape_cap(parts)
    except (InvalidGeometry, TooLarge):
        raise
    except (shapely.errors.ShapelyError, ValueError, ArithmeticError) as exc:
        raise InvalidGeometry("the geometry cannot be interpreted", field=field) from exc
    if max_radius_m is not None and radius * _EARTH_MEAN_RADIUS_M > max_radius_m:
        raise TooLarge(
            f"the geometry spans more than {max_radius_m:g} m from its centre", field=field
        )
    geojson = {"type": kind, "coordinates": coordinates}
    return Shape(geojson, str(kind), vertex_count, center, radius, parts, _as_tuple(center))


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
    return a == b or bool(np.linalg.norm(_unit_vectors([a]) - _unit_vectors([b])) < _SAME_POSITION)


def _count_positions(coordinates: Any) -> int:
    if coordinates and isinstance(coordinates[0], float):
        return 1
    return sum(_count_positions(item) for item in coordinates)


def _build_parts(kind: str, coordinates: Any, path: str, field: str) -> Iterator[_Part]:
    if kind == "Point":
        yield _point_part(coordinates)
    elif kind == "LineString":
        yield _line_part(coordinates, path, field)
    elif kind == "Polygon":
        yield _polygon_part(coordinates, path, field)
    else:
        for i, polygon in enumerate(coordinates):
            yield _polygon_part(polygon, f"{path}[{i}]", field)


def _point_part(position: list[float]) -> _Part:
    lonlat = np.array([position], dtype=np.float64)
    return _make_part(lonlat, _unit_vectors(lonlat), np.empty((0, 2), np.intp), None, None)


def _line_part(positions: list[list[float]], path: str, field: str) -> _Part:
    lonlat, xyz = _distinct_run(positions, closed=False)
    if len(xyz) < 2:
        raise InvalidGeometry("a LineString needs at least 2 distinct positions", field=path)
    cap = _check_part_radius(xyz, field)
    edges = np.column_stack((np.arange(len(xyz) - 1), np.arange(1, len(xyz))))
    return _make_part(lonlat, xyz, edges, None, None, cap)


def _polygon_part(rings: list[list[list[float]]], path: str, field: str) -> _Part:
    runs = []
    for i, ring in enumerate(rings):
        lonlat, xyz = _distinct_run(ring[:-1], closed=True)
        if len(xyz) < 3:
            raise InvalidGeometry(
                "a linear ring needs at least 3 distinct positions", field=f"{path}[{i}]"
            )
        runs.append((lonlat, xyz))
    # The shell's cap holds the whole polygon: holes must lie inside the shell.
    cap = _check_part_radius(runs[0][1], field)
    frame = _gnomonic_frame(cap[0])
    polygon = _valid_polygon(frame, math.cos(cap[1]), [xyz for _, xyz in runs], path)
    lonlat = np.vstack([run[0] for run in runs])
    xyz = np.vstack([run[1] for run in runs])
    edges, start = [], 0
    for _, ring_xyz in runs:  # each ring's vertices in order, the last joined to the first
        index = np.arange(start, start + len(ring_xyz))
        edges.append(np.column_stack((index, np.roll(index, -1))))
        start += len(ring_xyz)
    return _make_part(lonlat, xyz, np.vstack(edges), frame, polygon, cap)


def _distinct_run(positions: list[list[float]], *, closed: bool) -> tuple[Array, Array]:
    """Positions without consecutive repeats (consecutive duplicates are allowed in input)."""
    lonlat = np.array(positions, dtype=np.float64)
    xyz = _unit_vectors(lonlat)
    step = np.linalg.norm(xyz - np.roll(xyz, 1, axis=0), axis=1)
    keep = step >= _SAME_POSITION
    if not closed:
        keep[0] = True  # np.roll compared the first position with the last
    elif not keep.any():
        keep[0] = True
    return lonlat[keep], xyz[keep]


def _check_part_radius(xyz: Array, field: str) -> tuple[Array, float]:
    center, radius = _enclosing_cap(xyz)
    # Caps narrower than a hemisphere are convex, so the cap around the vertices contains the
    # (short) edges too; the limit keeps the gnomonic projection of the part well conditioned.
    if radius > _MAX_PART_RADIUS:
        raise TooLarge(
            f"a line or polygon must fit within {MAX_PART_RADIUS_DEG:g} degrees of its centre",
            field=field,
        )
    return center, radius


def _valid_polygon(frame: Array, cos_radius: float, rings: list[Array], path: str) -> Any:
    """The polygon in its gnomonic plane, where great-circle edges are straight segments."""
    planar = []
    for i, xyz in enumerate(rings):
        w = xyz @ frame.T
        # Only holes can leave the shell's cap; such a hole is outside the shell.
        if np.any(w[:, 0] < cos_radius - 1e-12):
            raise InvalidGeometry("a hole must lie inside the shell", field=f"{path}[{i}]")
        ring = shapely.linearrings(w[:, 1:] / w[:, :1])
        if not shapely.is_simple(ring):
            raise InvalidGeometry("a linear ring must not intersect itself", field=f"{path}[{i}]")
        planar.append(ring)
    shell = shapely.Polygon(planar[0])
    for i, hole in enumerate(planar[1:], start=1):
        if not shapely.covers(shell, shapely.Polygon(hole)):
            raise InvalidGeometry("a hole must lie inside the shell", field=f"{path}[{i}]")
    polygon = shapely.Polygon(planar[0], planar[1:])
    reason = shapely.is_valid_reason(polygon)
    if reason != "Valid Geometry":
        raise InvalidGeometry(f"invalid polygon: {reason}", field=path)
    shapely.prepare(polygon)
    # GEOS builds a prepared polygon's point locator on first use; build it now, before the
    # shape may be shared between threads.
    shapely.contains_xy(polygon, 0.0, 0.0)
    return polygon


def _make_part(
    lonlat: Array,
    xyz: Array,
    edges: npt.NDArray[np.intp],
    frame: Array | None,
    polygon: Any,
    cap: tuple[Array, float] | None = None,
) -> _Part:
    """The part, its edges (pairs of vertex indices, neighbours adjacent) cut into chunks."""
    center, radius = cap if cap is not None else _enclosing_cap(xyz)
    if len(edges):
        pieces = [edges[i : i + _CHUNK_EDGES] for i in range(0, len(edges), _CHUNK_EDGES)]
        chunks = [_make_chunk(lonlat, xyz, piece) for piece in pieces]
        vertex_sets = [np.unique(piece) for piece in pieces]
    else:
        chunks = [_make_chunk(lonlat, xyz, edges)]
        vertex_sets = [np.arange(len(xyz))]
    centers, radii = [], []
    for index in vertex_sets:
        chunk_center = _normalized(xyz[index].mean(axis=0))
        chunk_radius = float(np.max(_angles_from(chunk_center, xyz[index])))
        # Below 90 degrees a cap is convex, so holding the vertices it holds the edges; a
        # wider chunk (only in parts near the 60 degree limit) falls back on the part's cap.
        if chunk_radius >= math.radians(80.0):
            chunk_center, chunk_radius = center, radius
        centers.append(chunk_center)
        radii.append(chunk_radius)
    return _Part(
        xyz=xyz,
        chunks=tuple(chunks),
        chunk_centers=np.array(centers),
        chunk_radii=np.array(radii),
        center=_as_tuple(center),
        radius=radius,
        cos_radius=math.cos(radius),
        frame=frame,
        polygon=polygon,
    )


def _make_chunk(lonlat: Array, xyz: Array, edges: npt.NDArray[np.intp]) -> _Chunk:
    index = np.unique(edges) if len(edges) else np.arange(len(xyz))
    u, v = xyz[edges[:, 0]], xyz[edges[:, 1]]
    # (u + v) x (v - u) = 2 u x v, but v - u is exact for close vertices, so this keeps the
    # normal of a 1 m edge accurate to 1e-16 instead of 1e-10 rad (0.6 mm at the edge).
    normals = _normalized(_cross(u + v, v - u))
    # n x u points from u along the edge, v x n from v back along it: a point whose dot
    # products with both are positive has its perpendicular foot inside the edge.
    sides = np.hstack((normals.T, _cross(normals, u).T, _cross(v, normals).T))
    return _Chunk(xyz[index], lonlat[index], normals, np.vstack((u, v)), sides)


# --------------------------------------------------------------------------- spherical helpers


def _unit_vectors(lonlat: Array | list[list[float]]) -> Array:
    ll = np.radians(np.asarray(lonlat, dtype=np.float64))
    cos_lat = np.cos(ll[:, 1])
    return np.column_stack(
        (cos_lat * np.cos(ll[:, 0]), cos_lat * np.sin(ll[:, 0]), np.sin(ll[:, 1]))
    )


def _lon_lat(xyz: Array) -> tuple[Array, Array]:
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    lat = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    return lon, lat


def _normalized(vectors: Array) -> Array:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0.0, norms, 1.0)


def _cross(a: Array, b: Array) -> Array:
    """Row-wise cross products; np.cross costs ~10 microseconds of overhead per call."""
    return np.column_stack(
        (
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        )
    )


def _angles_from(point: Array, xyz: Array) -> Array:
    """Central angles from one unit vector to many, accurate near 0 (unlike arccos)."""
    angles: Array = np.arctan2(np.linalg.norm(_cross(xyz, point), axis=-1), xyz @ point)
    return angles


def _enclosing_cap(xyz: Array) -> tuple[Array, float]:
    """A near-smallest cap containing the points: centre and angular radius.

    A few steps of Gilbert's algorithm (the smallest cap's centre points at the origin's
    nearest point in the points' convex hull) give a rough centre; the smallest circle around
    the points in the gnomonic plane of that centre (Welzl) gives a near-optimal one. The
    radius is measured exactly from the centre chosen, so approximations only cost tightness.
    """
    w = gilbert_direction(np.ascontiguousarray(xyz, dtype=np.float64))
    norm = float(np.linalg.norm(w))
    if norm < 1e-9:  # the points surround the origin: no cap narrower than a hemisphere
        return xyz[0].copy(), math.pi
    center = w / norm
    radius = float(np.max(_angles_from(center, xyz)))
    if 0.0 < radius < math.radians(85.0):
        frame = _gnomonic_frame(center)
        projected = xyz @ frame.T
        x, y, _ = _smallest_circle(projected[:, 1:] / projected[:, :1])
        planar = _normalized(frame[0] + x * frame[1] + y * frame[2])
        planar_radius = float(np.max(_angles_from(planar, xyz)))
        if planar_radius < radius:
            center, radius = planar, planar_radius
    return center, radius


def _smallest_circle(points: Array) -> tuple[float, float, float]:
    """Centre and radius of the smallest circle around planar points (Welzl, compiled in
    ``spherical.smallest_circle``). Points are taken in a fixed pseudo-random order, which
    keeps the expected cost linear and the result reproducible."""
    order = np.random.default_rng(0).permutation(len(points))
    return smallest_circle(np.ascontiguousarray(points[order], dtype=np.float64))


def _shape_cap(parts: tuple[_Part, ...]) -> tuple[Array, float]:
    if len(parts) == 1:
        part = parts[0]
        return np.array(part.center), part.radius
    center, radius = _enclosing_cap(np.vstack([part.xyz for part in parts]))
    if radius < math.pi / 2 - 1e-9:
        # Convex cap: holds every part's edges and interior, since it holds their vertices.
        return center, radius
    reach = max(float(_angles_from(center, np.array([p.center]))[0]) + p.radius for p in parts)
    return center, min(math.pi, reach)


def _gnomonic_frame(center: Array) -> Array:
    pole = np.array([0.0, 0.0, 1.0]) if abs(center[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    east = _normalized(np.cross(pole, center))
    return np.vstack((center, east, np.cross(center, east)))


def _cap_angle(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    # Plain floats: this runs for every candidate pair and must not pay numpy's overhead.
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    return math.acos(max(-1.0, min(1.0, dot)))


def _gap_m(a: _Part, b: _Part) -> float:
    """A lower bound of the geodesic distance between two parts, from their caps."""
    angle = _cap_angle(a.center, b.center) - a.radius - b.radius - _ANGLE_SLACK
    return EARTH_MIN_RADIUS_M * angle


def _contains(part: _Part, point: Array) -> bool:
    """Whether a unit vector lies strictly inside the part's polygon (never for lines)."""
    if part.frame is None:
        return False
    w = part.frame @ point
    if w[0] < part.cos_radius - 1e-12:
        return False
    return bool(shapely.contains_xy(part.polygon, w[1] / w[0], w[2] / w[0]))


def _edge_angles(points: Array, chunk: _Chunk) -> tuple[Array, Array]:
    """Central angles from points to the interiors of the chunk's edges, and the sines.

    Angle is inf where the perpendicular foot falls outside the edge: the edge's nearest point
    is then an end, which the vertex-vertex angles cover.
    """
    e = len(chunk.normals)
    products = points @ chunk.sides
    sines = products[:, :e]
    inside = (products[:, e : 2 * e] > 0.0) & (products[:, 2 * e :] > 0.0)
    angles = np.where(inside, np.arcsin(np.minimum(np.abs(sines), 1.0)), np.inf)
    return angles, sines


def _point_angle(part: _Part, point: Array) -> float:
    """Central angle from a unit vector to the part, 0 inside its polygon."""
    if _contains(part, point):
        return 0.0
    angle = float(np.min(_angles_from(point, part.xyz)))
    for chunk in part.chunks:
        if len(chunk.normals):
            angle = min(angle, float(np.min(_edge_angles(point[np.newaxis], chunk)[0])))
    return angle


# --------------------------------------------------------------------------- distances


def _chunk_gaps(a: _Part, b: _Part) -> Array:
    """Lower bounds of the central angle between each chunk of a and each chunk of b."""
    cos = np.clip(a.chunk_centers @ b.chunk_centers.T, -1.0, 1.0)
    gaps: Array = np.arccos(cos) - a.chunk_radii[:, None] - b.chunk_radii[None, :]
    return gaps - _ANGLE_SLACK


def _edges_cross(a: _Chunk, b: _Chunk) -> bool:
    """Whether an edge of a crosses an edge of b at a point interior to both.

    Edges AB and CD cross iff -(n_AB . C), n_AB . D, -(n_CD . B) and n_CD . A are all
    non-zero with one sign (S2's CrossingSign), which also rules out the antipodal crossing.
    Touching in a vertex is left to the distance, which is then below TOUCH_M.
    """
    if not len(a.normals) or not len(b.normals):
        return False
    ea, eb = len(a.normals), len(b.normals)
    on_a = b.ends @ a.normals.T  # rows: C then D of each b edge; columns: a edges
    on_b = a.ends @ b.normals.T  # rows: A then B of each a edge; columns: b edges
    s1, s2 = -on_a[:eb].T, on_a[eb:].T  # (ea, eb)
    s3, s4 = -on_b[ea:], on_b[:ea]
    positive = (s1 > 0.0) & (s2 > 0.0) & (s3 > 0.0) & (s4 > 0.0)
    negative = (s1 < 0.0) & (s2 < 0.0) & (s3 < 0.0) & (s4 < 0.0)
    return bool(positive.any() or negative.any())


def _touch(a: _Part, b: _Part, gaps: Array) -> bool:
    """Whether one part contains a vertex of the other, or their edges cross."""
    # Without crossing edges a part is wholly inside or outside the other's polygon, so one
    # vertex decides; with them, _edges_cross answers. Only chunks whose caps meet can cross.
    if _contains(b, a.xyz[0]) or _contains(a, b.xyz[0]):
        return True
    meeting = np.argwhere(gaps <= 0.0)
    return any(_edges_cross(a.chunks[i], b.chunks[j]) for i, j in meeting)


@dataclass(frozen=True, slots=True)
class _Nearest:
    """Candidate closest pairs of two parts that do not touch."""

    angle: float  # the smallest central angle between the parts (radians, +- _ANGLE_SLACK)
    lon1: Array
    lat1: Array
    lon2: Array
    lat2: Array

    def distance_m(self) -> float:
        _, _, lengths = _GEOD.inv(self.lon1, self.lat1, self.lon2, self.lat2)
        distance = float(np.min(lengths))
        return 0.0 if distance < TOUCH_M else distance


@dataclass(frozen=True, slots=True)
class _ChunkAngles:
    """Central angles between the vertices and edges of two chunks (see _chunk_angles)."""

    a: _Chunk
    b: _Chunk
    vertices: Array  # (ka, kb) vertex of a to vertex of b
    a_to_b: Array  # (ka, eb) vertex of a to the interior of an edge of b, or inf
    a_sines: Array
    b_to_a: Array  # (kb, ea)
    b_sines: Array
    smallest: float


def _chunk_angles(a: _Chunk, b: _Chunk) -> _ChunkAngles:
    # Vertex-vertex angles from the chord; exact enough to choose candidates (see _ANGLE_SLACK).
    chord = np.sqrt(np.maximum(2.0 - 2.0 * (a.xyz @ b.xyz.T), 0.0))
    vertices = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
    a_to_b, a_sines = _edge_angles(a.xyz, b)
    b_to_a, b_sines = _edge_angles(b.xyz, a)
    smallest = float(vertices.min())
    if a_to_b.size:
        smallest = min(smallest, float(a_to_b.min()))
    if b_to_a.size:
        smallest = min(smallest, float(b_to_a.min()))
    return _ChunkAngles(a, b, vertices, a_to_b, a_sines, b_to_a, b_sines, smallest)


def _nearest(a: _Part, b: _Part, gaps: Array) -> _Nearest:
    # Chunk pairs nearest first; stop where a pair's lower bound exceeds what the ellipsoid
    # could still prefer over the best angle so far (see the cutoff below).
    order = np.argsort(gaps, axis=None)
    flat_gaps = gaps.ravel()
    best = math.inf
    measured = []
    for flat in order:
        if flat_gaps[flat] > best * _RADIUS_RATIO + 2 * _ANGLE_SLACK:
            break
        i, j = divmod(int(flat), gaps.shape[1])
        angles = _chunk_angles(a.chunks[i], b.chunks[j])
        best = min(best, angles.smallest)
        measured.append(angles)
    # The ellipsoid can prefer a pair whose central angle is larger by the ratio of its radii.
    cutoff = best * _RADIUS_RATIO + 2 * _ANGLE_SLACK
    firsts: list[Array] = []
    seconds: list[Array] = []
    for m in measured:
        i, j = np.nonzero(m.vertices <= cutoff)
        firsts.append(m.a.lonlat[i])
        seconds.append(m.b.lonlat[j])
        i, k = np.nonzero(m.a_to_b <= cutoff)
        if len(i):
            feet = _normalized(m.a.xyz[i] - m.a_sines[i, k, np.newaxis] * m.b.normals[k])
            firsts.append(m.a.lonlat[i])
            seconds.append(np.column_stack(_lon_lat(feet)))
        j, k = np.nonzero(m.b_to_a <= cutoff)
        if len(j):
            feet = _normalized(m.b.xyz[j] - m.b_sines[j, k, np.newaxis] * m.a.normals[k])
            firsts.append(np.column_stack(_lon_lat(feet)))
            seconds.append(m.b.lonlat[j])
    first, second = np.vstack(firsts), np.vstack(seconds)
    return _Nearest(best, first[:, 0], first[:, 1], second[:, 0], second[:, 1])


def _part_distance_m(a: _Part, b: _Part) -> float:
    # The result is the length of a real pair of points, so never below the true distance;
    # it exceeds it only by the sphere-vs-ellipsoid shift of the perpendicular foot (~2e-5).
    gaps = _chunk_gaps(a, b)
    if _touch(a, b, gaps):
        return 0.0
    return _nearest(a, b, gaps).distance_m()


def _part_within(a: _Part, b: _Part, limit_m: float) -> bool:
    """Same answer as ``_part_distance_m(a, b) <= limit_m``, skipping geodesics when it can."""
    gaps = _chunk_gaps(a, b)
    if _touch(a, b, gaps):
        return True
    nearest = _nearest(a, b, gaps)
    if EARTH_MIN_RADIUS_M * (nearest.angle - _ANGLE_SLACK) > max(limit_m, TOUCH_M):
        return False
    # The smallest-angle pair is always measured, and no path on WGS84 is longer than
    # _EARTH_MAX_RADIUS_M per radian along the great circle.
    if _EARTH_MAX_RADIUS_M * (nearest.angle + _ANGLE_SLACK) <= limit_m:
        return True
    return nearest.distance_m() <= limit_m


def min_distance_m(a: Shape, b: Shape) -> float:
    """Smallest geodesic distance (WGS84, metres) between any point of ``a`` and of ``b``.

    0 when they touch, cross or one contains the other (and below ``TOUCH_M``). Never below
    the true distance; above it by at most ~0.002 %.
    """
    pairs = sorted(
        ((_gap_m(pa, pb), pa, pb) for pa in a._parts for pb in b._parts), key=lambda t: t[0]
    )
    best = math.inf
    for gap, pa, pb in pairs:
        if gap >= best:
            break
        best = min(best, _part_distance_m(pa, pb))
        if best == 0.0:
            break
    return best


def within_m(a: Shape, b: Shape, limit_m: float) -> bool:
    """``min_distance_m(a, b) <= limit_m``, exactly, rejecting far pairs from their caps."""
    if not limit_m >= 0.0:  # negative or NaN: nothing is that close
        return False
    floor = max(limit_m, TOUCH_M)
    gap = _cap_angle(a._center, b._center) - a.radius_rad - b.radius_rad
    if EARTH_MIN_RADIUS_M * (gap - _ANGLE_SLACK) > floor:
        return False
    for pa in a._parts:
        for pb in b._parts:
            if _gap_m(pa, pb) <= floor and _part_within(pa, pb, limit_m):
                return True
    return False


def _as_tuple(vector: Array) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


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
    pad = max(pad_m, 0.0) / EARTH_MIN_RADIUS_M + _ANGLE_SLACK
    reach = [math.cos(max(0.0, angle - pad)) + 1e-12 for angle in shape._axis_angles]
    highs = [min(1.0, value) for value in reach[:3]]
    lows = [max(-1.0, -value) for value in reach[3:]]
    return (lows[0], lows[1], lows[2], highs[0], highs[1], highs[2])


# --------------------------------------------------------------------------- query boxes


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
    return _EARTH_MAX_RADIUS_M * (apex - abs(phi))


def _wrap_lon(lon: float) -> float:
    return lon - 360.0 if lon > 180.0 else lon


# --------------------------------------------------------------------------- for the engine


def enclosing_cap(xyz: Array) -> tuple[Array, float]:
    """A near-smallest cap holding unit vectors ``(k, 3)``: its centre and angular radius.

    The conflict engine (``volume_store``) encodes geometries without building a ``Shape``;
    it uses this where its own quick cap would be too wide.
    """
    return _enclosing_cap(np.ascontiguousarray(xyz, dtype=np.float64))

"""The parsed geometry, ``Shape``, and the parts it is made of, built from checked positions.

Every part (a point, a line, one polygon) keeps its vertices and its edges as 3-D unit
vectors (geodetic lon/lat on the unit sphere) in numpy arrays, with each edge's great-circle
normal, and a cap holding it. Parts with many edges are cut into chunks of consecutive edges
with their own caps (``geo.distance`` compares chunk pairs nearest first). A polygon is
validated, and points are located in it, in the gnomonic projection of its own cap, where
great-circle edges are straight, so shapely is exact there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely

from deconflict.errors import InvalidGeometry, TooLarge
from deconflict.geo.caps import (
    angles_from,
    as_tuple,
    cross,
    enclosing_cap,
    gnomonic_frame,
    normalized,
    unit_vectors,
)
from deconflict.geo.compiled import Floats
from deconflict.geo.earth import SAME_POSITION

MAX_PART_RADIUS_DEG: Final = 60.0
"""Largest angular radius of the cap around one line or polygon part."""

MAX_PART_RADIUS: Final = math.radians(MAX_PART_RADIUS_DEG)
CHUNK_EDGES: Final = 48
AXES: Final = np.vstack((np.eye(3), -np.eye(3)))


@dataclass(frozen=True, eq=False, slots=True)
class Chunk:
    """Up to CHUNK_EDGES consecutive edges of a part and their vertices.

    Pairs of parts are compared chunk pair by chunk pair, nearest caps first, so the
    quadratic vertex-edge work stays on the few chunks that can hold the closest points.
    """

    xyz: Floats  # (k, 3) vertices as unit vectors
    lonlat: Floats  # (k, 2) the same vertices in degrees
    normals: Floats  # (e, 3) unit normal of each edge's great circle, u x v
    ends: Floats  # (2e, 3) edge starts u, then edge ends v
    sides: Floats  # (3, 2e + e): normals, then n x u, then v x n, as columns (see edge_angles)


@dataclass(frozen=True, eq=False, slots=True)
class Part:
    """One point, line or polygon, precomputed for distance queries."""

    xyz: Floats  # (k, 3) its distinct vertices as unit vectors
    chunks: tuple[Chunk, ...]
    chunk_centers: Floats  # (c, 3) centre of a cap around each chunk, edges included
    chunk_radii: Floats  # (c,) angular radius of those caps
    center: tuple[float, float, float]
    radius: float
    cos_radius: float
    frame: Floats | None  # (3, 3) rows: centre, east, north of the polygon's gnomonic plane
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
    center: Floats
    radius_rad: float
    parts: tuple[Part, ...] = field(repr=False)
    center_floats: tuple[float, float, float] = field(repr=False)  # for within_m's fast path

    @cached_property
    def axis_angles(self) -> tuple[float, ...]:
        """Central angle from each of +x, +y, +z, -x, -y, -z to the geometry: makes
        reach_box O(1). Computed when first asked: a conflict check never asks, and these
        six distances were a fifth of its parsing."""
        return tuple(min(point_angle(part, axis) for part in self.parts) for axis in AXES)


def point_part(position: list[float]) -> Part:
    lonlat = np.array([position], dtype=np.float64)
    return _make_part(lonlat, unit_vectors(lonlat), np.empty((0, 2), np.intp), None, None)


def line_part(positions: list[list[float]], path: str, field: str) -> Part:
    lonlat, xyz = _distinct_run(positions, closed=False)
    if len(xyz) < 2:
        raise InvalidGeometry("a LineString needs at least 2 distinct positions", field=path)
    cap = _check_part_radius(xyz, field)
    edges = np.column_stack((np.arange(len(xyz) - 1), np.arange(1, len(xyz))))
    return _make_part(lonlat, xyz, edges, None, None, cap)


def polygon_part(rings: list[list[list[float]]], path: str, field: str) -> Part:
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
    frame = gnomonic_frame(cap[0])
    polygon = _valid_polygon(frame, math.cos(cap[1]), [xyz for _, xyz in runs], path)
    lonlat = np.vstack([run[0] for run in runs])
    xyz = np.vstack([run[1] for run in runs])
    edges, start = [], 0
    for _, ring_xyz in runs:  # each ring's vertices in order, the last joined to the first
        index = np.arange(start, start + len(ring_xyz))
        edges.append(np.column_stack((index, np.roll(index, -1))))
        start += len(ring_xyz)
    return _make_part(lonlat, xyz, np.vstack(edges), frame, polygon, cap)


def _distinct_run(positions: list[list[float]], *, closed: bool) -> tuple[Floats, Floats]:
    """Positions without consecutive repeats (consecutive duplicates are allowed in input)."""
    lonlat = np.array(positions, dtype=np.float64)
    xyz = unit_vectors(lonlat)
    step = np.linalg.norm(xyz - np.roll(xyz, 1, axis=0), axis=1)
    keep = step >= SAME_POSITION
    if not closed:
        keep[0] = True  # np.roll compared the first position with the last
    elif not keep.any():
        keep[0] = True
    return lonlat[keep], xyz[keep]


def _check_part_radius(xyz: Floats, field: str) -> tuple[Floats, float]:
    center, radius = enclosing_cap(xyz)
    # Caps narrower than a hemisphere are convex, so the cap around the vertices contains the
    # (short) edges too; the limit keeps the gnomonic projection of the part well conditioned.
    if radius > MAX_PART_RADIUS:
        raise TooLarge(
            f"a line or polygon must fit within {MAX_PART_RADIUS_DEG:g} degrees of its centre",
            field=field,
        )
    return center, radius


def _valid_polygon(frame: Floats, cos_radius: float, rings: list[Floats], path: str) -> Any:
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
    lonlat: Floats,
    xyz: Floats,
    edges: npt.NDArray[np.intp],
    frame: Floats | None,
    polygon: Any,
    cap: tuple[Floats, float] | None = None,
) -> Part:
    """The part, its edges (pairs of vertex indices, neighbours adjacent) cut into chunks."""
    center, radius = cap if cap is not None else enclosing_cap(xyz)
    if len(edges):
        pieces = [edges[i : i + CHUNK_EDGES] for i in range(0, len(edges), CHUNK_EDGES)]
        chunks = [_make_chunk(lonlat, xyz, piece) for piece in pieces]
        vertex_sets = [np.unique(piece) for piece in pieces]
    else:
        chunks = [_make_chunk(lonlat, xyz, edges)]
        vertex_sets = [np.arange(len(xyz))]
    centers, radii = [], []
    for index in vertex_sets:
        chunk_center = normalized(xyz[index].mean(axis=0))
        chunk_radius = float(np.max(angles_from(chunk_center, xyz[index])))
        # Below 90 degrees a cap is convex, so holding the vertices it holds the edges; a
        # wider chunk (only in parts near the 60 degree limit) falls back on the part's cap.
        if chunk_radius >= math.radians(80.0):
            chunk_center, chunk_radius = center, radius
        centers.append(chunk_center)
        radii.append(chunk_radius)
    return Part(
        xyz=xyz,
        chunks=tuple(chunks),
        chunk_centers=np.array(centers),
        chunk_radii=np.array(radii),
        center=as_tuple(center),
        radius=radius,
        cos_radius=math.cos(radius),
        frame=frame,
        polygon=polygon,
    )


def _make_chunk(lonlat: Floats, xyz: Floats, edges: npt.NDArray[np.intp]) -> Chunk:
    index = np.unique(edges) if len(edges) else np.arange(len(xyz))
    u, v = xyz[edges[:, 0]], xyz[edges[:, 1]]
    # (u + v) x (v - u) = 2 u x v, but v - u is exact for close vertices, so this keeps the
    # normal of a 1 m edge accurate to 1e-16 instead of 1e-10 rad (0.6 mm at the edge).
    normals = normalized(cross(u + v, v - u))
    # n x u points from u along the edge, v x n from v back along it: a point whose dot
    # products with both are positive has its perpendicular foot inside the edge.
    sides = np.hstack((normals.T, cross(normals, u).T, cross(v, normals).T))
    return Chunk(xyz[index], lonlat[index], normals, np.vstack((u, v)), sides)


def shape_cap(parts: tuple[Part, ...]) -> tuple[Floats, float]:
    if len(parts) == 1:
        part = parts[0]
        return np.array(part.center), part.radius
    center, radius = enclosing_cap(np.vstack([part.xyz for part in parts]))
    if radius < math.pi / 2 - 1e-9:
        # Convex cap: holds every part's edges and interior, since it holds their vertices.
        return center, radius
    reach = max(float(angles_from(center, np.array([p.center]))[0]) + p.radius for p in parts)
    return center, min(math.pi, reach)


def contains(part: Part, point: Floats) -> bool:
    """Whether a unit vector lies strictly inside the part's polygon (never for lines)."""
    if part.frame is None:
        return False
    w = part.frame @ point
    if w[0] < part.cos_radius - 1e-12:
        return False
    return bool(shapely.contains_xy(part.polygon, w[1] / w[0], w[2] / w[0]))


def edge_angles(points: Floats, chunk: Chunk) -> tuple[Floats, Floats]:
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


def point_angle(part: Part, point: Floats) -> float:
    """Central angle from a unit vector to the part, 0 inside its polygon."""
    if contains(part, point):
        return 0.0
    angle = float(np.min(angles_from(point, part.xyz)))
    for chunk in part.chunks:
        if len(chunk.normals):
            angle = min(angle, float(np.min(edge_angles(point[np.newaxis], chunk)[0])))
    return angle

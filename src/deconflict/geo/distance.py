"""Geodesic distances between shapes: ``min_distance_m`` and the decision ``within_m``.

Distances are geodesic on the WGS84 ellipsoid, in metres, between the closest points of the
two geometries; a polygon includes its interior. Touching, crossing and containment are
distance 0, and so is anything closer than ``TOUCH_M``. The distance reported is always the
geodesic length between two actual points of the two geometries, so it is never below the
true minimum (beyond floating-point noise); it exceeds it by at most ~0.002 %.

How distances are computed
--------------------------
For a pair of parts (``geo.shape``):

1. Caps: each part has a cap (centre, angular radius) containing it. On WGS84 a path that
   spans a central angle ``s`` is at least ``EARTH_MIN_RADIUS_M * s`` long (the smallest
   radius of curvature is a(1-e^2) = 6,335,439 m), so the gap between caps gives a lower bound
   that rejects far pairs in a few microseconds without numpy.
2. Touching: a vertex of one inside the other's polygon (tested in that polygon's gnomonic
   projection, where great-circle edges are straight, so shapely is exact), or two edges that
   cross (sign tests on the edge normals, as in S2), means distance 0.
3. Otherwise the closest pair involves a vertex of one part and a vertex or an edge of the
   other. Central angles of every vertex-vertex and vertex-edge pair are matrix products; the
   pairs within ``RADIUS_RATIO`` of the smallest angle (the ellipsoid can reorder the sphere's
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
from dataclasses import dataclass
from typing import Final

import numpy as np
from pyproj import Geod

from deconflict.geo.caps import ANGLE_SLACK, cap_angle, lon_lat, normalized
from deconflict.geo.compiled import Floats
from deconflict.geo.earth import EARTH_MAX_RADIUS_M, EARTH_MIN_RADIUS_M, RADIUS_RATIO, TOUCH_M
from deconflict.geo.shape import Chunk, Part, Shape, contains, edge_angles

_GEOD: Final = Geod(ellps="WGS84")


def _gap_m(a: Part, b: Part) -> float:
    """A lower bound of the geodesic distance between two parts, from their caps."""
    angle = cap_angle(a.center, b.center) - a.radius - b.radius - ANGLE_SLACK
    return EARTH_MIN_RADIUS_M * angle


def _chunk_gaps(a: Part, b: Part) -> Floats:
    """Lower bounds of the central angle between each chunk of a and each chunk of b."""
    cos = np.clip(a.chunk_centers @ b.chunk_centers.T, -1.0, 1.0)
    gaps: Floats = np.arccos(cos) - a.chunk_radii[:, None] - b.chunk_radii[None, :]
    return gaps - ANGLE_SLACK


def _edges_cross(a: Chunk, b: Chunk) -> bool:
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


def _touch(a: Part, b: Part, gaps: Floats) -> bool:
    """Whether one part contains a vertex of the other, or their edges cross."""
    # Without crossing edges a part is wholly inside or outside the other's polygon, so one
    # vertex decides; with them, _edges_cross answers. Only chunks whose caps meet can cross.
    if contains(b, a.xyz[0]) or contains(a, b.xyz[0]):
        return True
    meeting = np.argwhere(gaps <= 0.0)
    return any(_edges_cross(a.chunks[i], b.chunks[j]) for i, j in meeting)


@dataclass(frozen=True, slots=True)
class _Nearest:
    """Candidate closest pairs of two parts that do not touch."""

    angle: float  # the smallest central angle between the parts (radians, +- ANGLE_SLACK)
    lon1: Floats
    lat1: Floats
    lon2: Floats
    lat2: Floats

    def distance_m(self) -> float:
        _, _, lengths = _GEOD.inv(self.lon1, self.lat1, self.lon2, self.lat2)
        distance = float(np.min(lengths))
        return 0.0 if distance < TOUCH_M else distance


@dataclass(frozen=True, slots=True)
class _ChunkAngles:
    """Central angles between the vertices and edges of two chunks (see _chunk_angles)."""

    a: Chunk
    b: Chunk
    vertices: Floats  # (ka, kb) vertex of a to vertex of b
    a_to_b: Floats  # (ka, eb) vertex of a to the interior of an edge of b, or inf
    a_sines: Floats
    b_to_a: Floats  # (kb, ea)
    b_sines: Floats
    smallest: float


def _chunk_angles(a: Chunk, b: Chunk) -> _ChunkAngles:
    # Vertex-vertex angles from the chord; exact enough to choose candidates (see ANGLE_SLACK).
    chord = np.sqrt(np.maximum(2.0 - 2.0 * (a.xyz @ b.xyz.T), 0.0))
    vertices = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
    a_to_b, a_sines = edge_angles(a.xyz, b)
    b_to_a, b_sines = edge_angles(b.xyz, a)
    smallest = float(vertices.min())
    if a_to_b.size:
        smallest = min(smallest, float(a_to_b.min()))
    if b_to_a.size:
        smallest = min(smallest, float(b_to_a.min()))
    return _ChunkAngles(a, b, vertices, a_to_b, a_sines, b_to_a, b_sines, smallest)


def _nearest(a: Part, b: Part, gaps: Floats) -> _Nearest:
    # Chunk pairs nearest first; stop where a pair's lower bound exceeds what the ellipsoid
    # could still prefer over the best angle so far (see the cutoff below).
    order = np.argsort(gaps, axis=None)
    flat_gaps = gaps.ravel()
    best = math.inf
    measured = []
    for flat in order:
        if flat_gaps[flat] > best * RADIUS_RATIO + 2 * ANGLE_SLACK:
            break
        i, j = divmod(int(flat), gaps.shape[1])
        angles = _chunk_angles(a.chunks[i], b.chunks[j])
        best = min(best, angles.smallest)
        measured.append(angles)
    # The ellipsoid can prefer a pair whose central angle is larger by the ratio of its radii.
    cutoff = best * RADIUS_RATIO + 2 * ANGLE_SLACK
    firsts: list[Floats] = []
    seconds: list[Floats] = []
    for m in measured:
        i, j = np.nonzero(m.vertices <= cutoff)
        firsts.append(m.a.lonlat[i])
        seconds.append(m.b.lonlat[j])
        i, k = np.nonzero(m.a_to_b <= cutoff)
        if len(i):
            feet = normalized(m.a.xyz[i] - m.a_sines[i, k, np.newaxis] * m.b.normals[k])
            firsts.append(m.a.lonlat[i])
            seconds.append(np.column_stack(lon_lat(feet)))
        j, k = np.nonzero(m.b_to_a <= cutoff)
        if len(j):
            feet = normalized(m.b.xyz[j] - m.b_sines[j, k, np.newaxis] * m.a.normals[k])
            firsts.append(np.column_stack(lon_lat(feet)))
            seconds.append(m.b.lonlat[j])
    first, second = np.vstack(firsts), np.vstack(seconds)
    return _Nearest(best, first[:, 0], first[:, 1], second[:, 0], second[:, 1])


def _part_distance_m(a: Part, b: Part) -> float:
    # The result is the length of a real pair of points, so never below the true distance;
    # it exceeds it only by the sphere-vs-ellipsoid shift of the perpendicular foot (~2e-5).
    gaps = _chunk_gaps(a, b)
    if _touch(a, b, gaps):
        return 0.0
    return _nearest(a, b, gaps).distance_m()


def _part_within(a: Part, b: Part, limit_m: float) -> bool:
    """Same answer as ``_part_distance_m(a, b) <= limit_m``, skipping geodesics when it can."""
    gaps = _chunk_gaps(a, b)
    if _touch(a, b, gaps):
        return True
    nearest = _nearest(a, b, gaps)
    if EARTH_MIN_RADIUS_M * (nearest.angle - ANGLE_SLACK) > max(limit_m, TOUCH_M):
        return False
    # The smallest-angle pair is always measured, and no path on WGS84 is longer than
    # EARTH_MAX_RADIUS_M per radian along the great circle.
    if EARTH_MAX_RADIUS_M * (nearest.angle + ANGLE_SLACK) <= limit_m:
        return True
    return nearest.distance_m() <= limit_m


def min_distance_m(a: Shape, b: Shape) -> float:
    """Smallest geodesic distance (WGS84, metres) between any point of ``a`` and of ``b``.

    0 when they touch, cross or one contains the other (and below ``TOUCH_M``). Never below
    the true distance; above it by at most ~0.002 %.
    """
    pairs = sorted(
        ((_gap_m(pa, pb), pa, pb) for pa in a.parts for pb in b.parts), key=lambda t: t[0]
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
    gap = cap_angle(a.center_floats, b.center_floats) - a.radius_rad - b.radius_rad
    if EARTH_MIN_RADIUS_M * (gap - ANGLE_SLACK) > floor:
        return False
    for pa in a.parts:
        for pb in b.parts:
            if _gap_m(pa, pb) <= floor and _part_within(pa, pb, limit_m):
                return True
    return False

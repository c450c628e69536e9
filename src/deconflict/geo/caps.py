"""Caps on the unit sphere: unit vectors of positions, central angles, and the near-smallest
cap around a set of points (centre and angular radius), with the compiled steps it takes.

A cap narrower than a hemisphere is convex: holding a part's vertices, it holds its
great-circle edges and interior too. ``geo.shape`` builds every part's cap here and the
engine (``engine.blocks``) encodes stored geometries with the same ``enclosing_cap``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from deconflict.geo.compiled import Floats, compiled, kernel

ANGLE_SLACK: Final = 5e-8
"""Central angles computed from dot products of unit vectors are good to ~2e-8 rad near 0;
every bound that decides something is widened by this much (0.3 m)."""


def unit_vectors(lonlat: Floats | list[list[float]]) -> Floats:
    ll = np.radians(np.asarray(lonlat, dtype=np.float64))
    cos_lat = np.cos(ll[:, 1])
    return np.column_stack(
        (cos_lat * np.cos(ll[:, 0]), cos_lat * np.sin(ll[:, 0]), np.sin(ll[:, 1]))
    )


def lon_lat(xyz: Floats) -> tuple[Floats, Floats]:
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    lat = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    return lon, lat


def normalized(vectors: Floats) -> Floats:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0.0, norms, 1.0)


def cross(a: Floats, b: Floats) -> Floats:
    """Row-wise cross products; np.cross costs ~10 microseconds of overhead per call."""
    return np.column_stack(
        (
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        )
    )


def angles_from(point: Floats, xyz: Floats) -> Floats:
    """Central angles from one unit vector to many, accurate near 0 (unlike arccos)."""
    angles: Floats = np.arctan2(np.linalg.norm(cross(xyz, point), axis=-1), xyz @ point)
    return angles


def enclosing_cap(xyz: Floats) -> tuple[Floats, float]:
    """A near-smallest cap containing unit vectors ``(k, 3)``: centre and angular radius.

    A few steps of Gilbert's algorithm (the smallest cap's centre points at the origin's
    nearest point in the points' convex hull) give a rough centre; the smallest circle around
    the points in the gnomonic plane of that centre (Welzl) gives a near-optimal one. The
    radius is measured exactly from the centre chosen, so approximations only cost tightness.
    """
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    w = gilbert_direction(xyz)
    norm = float(np.linalg.norm(w))
    if norm < 1e-9:  # the points surround the origin: no cap narrower than a hemisphere
        return xyz[0].copy(), math.pi
    center = w / norm
    radius = float(np.max(angles_from(center, xyz)))
    if 0.0 < radius < math.radians(85.0):
        frame = gnomonic_frame(center)
        projected = xyz @ frame.T
        x, y, _ = _smallest_circle(projected[:, 1:] / projected[:, :1])
        planar = normalized(frame[0] + x * frame[1] + y * frame[2])
        planar_radius = float(np.max(angles_from(planar, xyz)))
        if planar_radius < radius:
            center, radius = planar, planar_radius
    return center, radius


def _smallest_circle(points: Floats) -> tuple[float, float, float]:
    """Centre and radius of the smallest circle around planar points (Welzl, compiled in
    ``smallest_circle``). Points are taken in a fixed pseudo-random order, which
    keeps the expected cost linear and the result reproducible."""
    order = np.random.default_rng(0).permutation(len(points))
    return smallest_circle(np.ascontiguousarray(points[order], dtype=np.float64))


def gnomonic_frame(center: Floats) -> Floats:
    pole = np.array([0.0, 0.0, 1.0]) if abs(center[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    east = normalized(np.cross(pole, center))
    return np.vstack((center, east, np.cross(center, east)))


def cap_angle(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    # Plain floats: this runs for every candidate pair and must not pay numpy's overhead.
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    return math.acos(max(-1.0, min(1.0, dot)))


def as_tuple(vector: Floats) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


@compiled
def gilbert_direction(xyz: Floats) -> Floats:
    """Up to 16 steps of Gilbert's algorithm from the points' mean towards the point of
    their convex hull nearest the origin (not normalised): the direction of a near-smallest
    cap around them (``enclosing_cap``). Compiled because numpy's per-call cost
    on a few dozen points made this a tenth of a conflict check over HTTP."""
    n = xyz.shape[0]
    wx, wy, wz = 0.0, 0.0, 0.0
    for i in range(n):
        wx += xyz[i, 0]
        wy += xyz[i, 1]
        wz += xyz[i, 2]
    wx, wy, wz = wx / n, wy / n, wz / n
    for _ in range(16):
        nearest = 0
        best = np.inf
        for i in range(n):
            d = xyz[i, 0] * wx + xyz[i, 1] * wy + xyz[i, 2] * wz
            if d < best:
                best = d
                nearest = i
        sx, sy, sz = wx - xyz[nearest, 0], wy - xyz[nearest, 1], wz - xyz[nearest, 2]
        gap = wx * sx + wy * sy + wz * sz
        if gap <= 1e-15:
            break
        t = min(1.0, gap / (sx * sx + sy * sy + sz * sz))
        wx, wy, wz = wx - t * sx, wy - t * sy, wz - t * sz
    return np.array([wx, wy, wz])


@kernel
def _outside(pts: Floats, cx: float, cy: float, r: float, start: int, stop: int) -> int:
    """The first of ``pts[start:stop]`` outside the circle (with a hair of slack), or -1."""
    limit = (r * (1.0 + 1e-12)) ** 2 + 1e-30
    for index in range(start, stop):
        if (pts[index, 0] - cx) ** 2 + (pts[index, 1] - cy) ** 2 > limit:
            return index
    return -1


@kernel
def _circle_of_two(ax: float, ay: float, bx: float, by: float) -> tuple[float, float, float]:
    return (ax + bx) / 2, (ay + by) / 2, math.hypot(ax - bx, ay - by) / 2


@kernel
def _circle_of_three(pts: Floats, i: int, j: int, k: int) -> tuple[float, float, float]:
    """The circle through three points, or on the diameter of the widest pair if they are
    collinear."""
    ax, ay = pts[i, 0], pts[i, 1]
    bx, by = pts[j, 0] - ax, pts[j, 1] - ay
    cx, cy = pts[k, 0] - ax, pts[k, 1] - ay
    det = 2.0 * (bx * cy - by * cx)
    if abs(det) > 1e-300:
        ux = (cy * (bx * bx + by * by) - by * (cx * cx + cy * cy)) / det
        uy = (bx * (cx * cx + cy * cy) - cx * (bx * bx + by * by)) / det
        return ax + ux, ay + uy, math.hypot(ux, uy)
    best, p, q = -1.0, i, j
    for u, v in ((i, j), (i, k), (j, k)):
        d = math.hypot(pts[u, 0] - pts[v, 0], pts[u, 1] - pts[v, 1])
        if d > best:
            best, p, q = d, u, v
    return _circle_of_two(pts[p, 0], pts[p, 1], pts[q, 0], pts[q, 1])


@compiled
def smallest_circle(pts: Floats) -> tuple[float, float, float]:
    """Centre and radius of the smallest circle around planar points (Welzl's three nested
    loops, each jumping to the next point outside the current circle), taken in the order
    given: the caller shuffles them once, which keeps the expected cost linear. Compiled:
    in Python this was half the validation of a polygon of 100 vertices."""
    n = len(pts)
    cx, cy, r = pts[0, 0], pts[0, 1], 0.0
    i = _outside(pts, cx, cy, r, 1, n)
    while i >= 0:
        cx, cy, r = pts[i, 0], pts[i, 1], 0.0
        j = _outside(pts, cx, cy, r, 0, i)
        while j >= 0:
            cx, cy, r = _circle_of_two(pts[i, 0], pts[i, 1], pts[j, 0], pts[j, 1])
            k = _outside(pts, cx, cy, r, 0, j)
            while k >= 0:
                cx, cy, r = _circle_of_three(pts, i, j, k)
                k = _outside(pts, cx, cy, r, k + 1, j)
            j = _outside(pts, cx, cy, r, j + 1, i)
        i = _outside(pts, cx, cy, r, i + 1, n)
    return cx, cy, r

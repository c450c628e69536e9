"""Compiled central angles between decoded geometries (``engine.blocks``), and bounds of
them that need no transcendental function: the nearest vertex-vertex chord and vertex-edge
sine of two geometries, and the elements of one near a point."""

from __future__ import annotations

import math

import numpy as np

from deconflict.geo.compiled import Floats, Ints, kernel


@kernel
def vertex_edge_sine(
    rows: Floats, i: int, sides: Floats, e: int,
) -> float:  # fmt: skip
    """|sin| of the angle from vertex i to the interior of edge e, or 2 when its foot falls
    outside the edge (the edge's ends then hold its nearest point)."""
    px, py, pz = rows[i, 0], rows[i, 1], rows[i, 2]
    a = px * sides[e, 3] + py * sides[e, 4] + pz * sides[e, 5]
    b = px * sides[e, 6] + py * sides[e, 7] + pz * sides[e, 8]
    if a > 0.0 and b > 0.0:
        return float(abs(px * sides[e, 0] + py * sides[e, 1] + pz * sides[e, 2]))
    return 2.0


@kernel
def vertex_chord2(rows_a: Floats, i: int, rows_b: Floats, j: int) -> float:
    dx = rows_a[i, 0] - rows_b[j, 0]
    dy = rows_a[i, 1] - rows_b[j, 1]
    dz = rows_a[i, 2] - rows_b[j, 2]
    return float(dx * dx + dy * dy + dz * dz)


@kernel
def central_angle(ax: float, ay: float, az: float, bx: float, by: float, bz: float) -> float:
    """The angle between two unit vectors, accurate near 0 and pi (unlike acos)."""
    cx = ay * bz - az * by
    cy = az * bx - ax * bz
    cz = ax * by - ay * bx
    return math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


@kernel
def angle_above(chord: float) -> float:
    """An upper bound of the central angle ``2 asin(c / 2)`` of a chord ``c < 2``:
    ``asin x <= x + x^3 / (6 (1 - x^2))``, every later coefficient of its series being
    below 1/6. Tight to ~c^5 for the small angles here, and free of transcendentals."""
    x = 0.5 * chord
    return chord + chord * chord * chord / (24.0 * (1.0 - x * x))


@kernel
def asin_above(sine: float) -> float:
    """An upper bound of ``asin s`` for 0 <= s < 1 (see ``angle_above``)."""
    return sine + sine * sine * sine / (6.0 * (1.0 - sine * sine))


@kernel
def chord_below(angle: float) -> float:
    """A lower bound of the chord ``2 sin(a / 2)`` of a central angle ``0 <= a``
    (an alternating series with decreasing terms: ``a - a^3 / 24 + ...``); -1 if a < 0."""
    if angle < 0.0:
        return -1.0
    return angle - angle * angle * angle / 24.0


@kernel
def sine_below(angle: float) -> float:
    """A lower bound of ``sin a`` for 0 <= a (``a - a^3 / 6``); -1 if a < 0."""
    if angle < 0.0:
        return -1.0
    return angle - angle * angle * angle / 6.0


@kernel
def nearest_raw(
    rows_a: Floats, verts_a: Ints, nva: int, sides_a: Floats, edges_a: Ints, nea: int,
    rows_b: Floats, rings_b: Ints, nrb: int, sides_b: Floats, neb: int,
    stop_chord: float, stop_sine: float,
) -> tuple[float, float, bool]:  # fmt: skip
    """The smallest chord between a vertex of one and a vertex of the other, and the
    smallest |sine| of the angle between a vertex of one and the interior of an edge of the
    other (touching not considered): the smallest central angle is ``min(2 asin(c / 2),
    asin(s))``. Of a, only the listed vertices and edges count. Stops (third value true) as
    soon as a chord ``<= stop_chord`` or a sine ``<= stop_sine`` turns up."""
    stop_c2 = stop_chord * stop_chord if stop_chord >= 0.0 else -1.0
    best_c2 = np.inf
    best_s = 2.0
    for k in range(nva):
        i = verts_a[k]
        for rb in range(nrb):
            for j in range(rings_b[rb, 0], rings_b[rb, 1]):
                c2 = vertex_chord2(rows_a, i, rows_b, j)
                if c2 < best_c2:
                    best_c2 = c2
                    if c2 <= stop_c2:
                        return math.sqrt(c2), best_s, True
        for e in range(neb):
            s = vertex_edge_sine(rows_a, i, sides_b, e)
            if s < best_s:
                best_s = s
                if s <= stop_sine:
                    return math.sqrt(best_c2), s, True
    for rb in range(nrb):
        for j in range(rings_b[rb, 0], rings_b[rb, 1]):
            for k in range(nea):
                s = vertex_edge_sine(rows_b, j, sides_a, edges_a[k])
                if s < best_s:
                    best_s = s
                    if s <= stop_sine:
                        return math.sqrt(best_c2), s, True
    return math.sqrt(best_c2), best_s, False


@kernel
def near_elements(
    px: float, py: float, pz: float, reach: float,
    rows: Floats, rings: Ints, nr: int, ends: Ints, sides: Floats, ne: int,
    verts_out: Ints, edges_out: Ints,
) -> tuple[int, int]:  # fmt: skip
    """The vertices and edges of a decoded geometry within ``reach`` radians of a unit
    vector (conservatively: a chord or a sine never exceeds its angle), listed in
    ``verts_out`` and ``edges_out``; returns their numbers. Two geometries within an angle
    ``d`` of each other, one inside a cap of radius ``r`` around that vector, have their
    closest points on elements within ``r + d`` of it: only those need comparing."""
    nv = 0
    for r in range(nr):
        for i in range(rings[r, 0], rings[r, 1]):
            dx, dy, dz = rows[i, 0] - px, rows[i, 1] - py, rows[i, 2] - pz
            if dx * dx + dy * dy + dz * dz <= reach * reach:
                verts_out[nv] = i
                nv += 1
    n_edges = 0
    for e in range(ne):
        near = False
        a = px * sides[e, 3] + py * sides[e, 4] + pz * sides[e, 5]
        b = px * sides[e, 6] + py * sides[e, 7] + pz * sides[e, 8]
        if a > 0.0 and b > 0.0:
            near = abs(px * sides[e, 0] + py * sides[e, 1] + pz * sides[e, 2]) <= reach
        for end in range(2):
            i = ends[e, end]
            dx, dy, dz = rows[i, 0] - px, rows[i, 1] - py, rows[i, 2] - pz
            near = near or dx * dx + dy * dy + dz * dz <= reach * reach
        if near:
            edges_out[n_edges] = e
            n_edges += 1
    return nv, n_edges


@kernel
def exact_angle(chord: float, sine: float) -> float:
    a = 2.0 * math.asin(min(chord / 2.0, 1.0)) if chord < np.inf else np.inf
    b = math.asin(min(sine, 1.0)) if sine <= 1.0 else np.inf
    return min(a, b)

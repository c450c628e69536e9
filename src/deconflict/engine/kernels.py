"""Compiled distance decision of the conflict engine for one pair of decoded geometries.

Geometries come as decoded blocks (``engine.blocks``). The question answered here is the
one ``geo.distance.within_m`` answers: is the geodesic distance between two geometries
(WGS84, great-circle edges) at most ``limit_m``? It is decided from the smallest central
angle ``psi`` between the two geometries on the unit sphere of geodetic positions
(``engine.angles``, after the touching tests of ``engine.touching``), using bounds that hold
for every path on the ellipsoid: a path spanning a central angle ``psi`` is at least
``M_min * psi`` and the image of the great-circle arc at most ``N_max * psi`` long, where
``M`` and ``N`` are the meridional and prime-vertical radii of curvature over the latitudes
the pair can reach. Only pairs whose distance falls between the two bounds (about 0.5 % of
the limit wide) are measured, with Vincenty's inverse formula on the same candidate point
pairs ``geo.distance`` measures (vertex-vertex and vertex to the spherical foot on an edge,
within the ratio of the radii of the smallest angle). A pair whose measured distance is
within ``BORDER_M`` of the limit is handed back to the caller, who asks
``geo.distance.within_m`` itself, so a decision never rests on the last millimetre of
Vincenty.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from deconflict.engine.angles import (
    angle_above,
    asin_above,
    chord_below,
    exact_angle,
    nearest_raw,
    sine_below,
    vertex_chord2,
    vertex_edge_sine,
)
from deconflict.engine.blocks import K_POLY
from deconflict.engine.touching import contains_projected, touches
from deconflict.geo.compiled import Floats, Ints, kernel
from deconflict.geo.earth import (
    EARTH_MIN_RADIUS_M,
    TOUCH_M,
    WGS84_A,
    WGS84_B,
    WGS84_E2,
    WGS84_F,
)

SLACK: Final = 1e-9
"""Radians added to every bound (6 mm): angles here come from unit vectors good to ~1e-15."""


VINCENTY_WORK: Final = 250
"""The work (``candidate_pass.WORK_SPENT`` units) one Vincenty inverse costs: about as long as
250 comparisons of a vertex with a vertex or an edge."""

BORDER_M: Final = 1e-5
BORDER_REL: Final = 1e-9
"""A measured distance within ``BORDER_M + BORDER_REL * limit`` of the limit is borderline:
Vincenty and ``pyproj.Geod`` (Karney) agree to far better than this on the distances here."""

# Results of a decision.
NO: Final = 0
YES: Final = 1
BORDER: Final = 2


# --------------------------------------------------------------------------- the ellipsoid


@kernel
def radii_bounds(zlo: float, zhi: float) -> tuple[float, float]:
    """(M_min, N_max): the smallest meridional and the largest prime-vertical radius of
    curvature of WGS84 over the latitudes whose sines lie in [zlo, zhi]. Both radii grow
    with |latitude|, and M <= N everywhere, so every path in that band spans at least
    M_min and at most N_max metres per radian of central angle."""
    zlo = max(zlo, -1.0)
    zhi = min(zhi, 1.0)
    zmin = 0.0 if zlo <= 0.0 <= zhi else min(abs(zlo), abs(zhi))
    zmax = max(abs(zlo), abs(zhi))
    w = 1.0 - WGS84_E2 * zmin * zmin
    m_min = WGS84_A * (1.0 - WGS84_E2) / (w * math.sqrt(w))
    n_max = WGS84_A / math.sqrt(1.0 - WGS84_E2 * zmax * zmax)
    return m_min, n_max


@kernel
def vincenty_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance on WGS84 (Vincenty's inverse formula), radians in; -1 when the
    iteration does not converge (nearly antipodal points, never the case here)."""
    dlon = lon2 - lon1
    if dlon > math.pi:
        dlon -= 2.0 * math.pi
    elif dlon < -math.pi:
        dlon += 2.0 * math.pi
    u1 = math.atan((1.0 - WGS84_F) * math.tan(lat1))
    u2 = math.atan((1.0 - WGS84_F) * math.tan(lat2))
    sin_u1, cos_u1 = math.sin(u1), math.cos(u1)
    sin_u2, cos_u2 = math.sin(u2), math.cos(u2)
    lam = dlon
    sin_sigma = cos_sigma = sigma = cos2_alpha = cos_2sm = 0.0
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        t1 = cos_u2 * sin_lam
        t2 = cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam
        sin_sigma = math.sqrt(t1 * t1 + t2 * t2)
        if sin_sigma == 0.0:
            return 0.0
        cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_sigma
        cos2_alpha = 1.0 - sin_alpha * sin_alpha
        cos_2sm = cos_sigma - 2.0 * sin_u1 * sin_u2 / cos2_alpha if cos2_alpha != 0.0 else 0.0
        c = WGS84_F / 16.0 * cos2_alpha * (4.0 + WGS84_F * (4.0 - 3.0 * cos2_alpha))
        previous = lam
        lam = dlon + (1.0 - c) * WGS84_F * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1.0 + 2.0 * cos_2sm * cos_2sm))
        )
        if abs(lam - previous) < 1e-14:
            break
    else:
        return -1.0
    u2_ = cos2_alpha * (WGS84_A * WGS84_A - WGS84_B * WGS84_B) / (WGS84_B * WGS84_B)
    big_a = 1.0 + u2_ / 16384.0 * (4096.0 + u2_ * (-768.0 + u2_ * (320.0 - 175.0 * u2_)))
    big_b = u2_ / 1024.0 * (256.0 + u2_ * (-128.0 + u2_ * (74.0 - 47.0 * u2_)))
    delta = big_b * sin_sigma * (
        cos_2sm
        + big_b
        / 4.0
        * (
            cos_sigma * (-1.0 + 2.0 * cos_2sm * cos_2sm)
            - big_b / 6.0 * cos_2sm * (-3.0 + 4.0 * sin_sigma * sin_sigma)
            * (-3.0 + 4.0 * cos_2sm * cos_2sm)
        )
    )  # fmt: skip
    return WGS84_B * big_a * (sigma - delta)


@kernel
def _vertex_to_vertex_m(rows_a: Floats, i: int, rows_b: Floats, j: int) -> float:
    return vincenty_m(
        math.radians(rows_a[i, 3]),
        math.radians(rows_a[i, 4]),
        math.radians(rows_b[j, 3]),
        math.radians(rows_b[j, 4]),
    )


@kernel
def _vertex_to_foot_m(rows_v: Floats, i: int, sides: Floats, e: int) -> float:
    """Vincenty from vertex i to its spherical perpendicular foot on edge e."""
    px, py, pz = rows_v[i, 0], rows_v[i, 1], rows_v[i, 2]
    nx, ny, nz = sides[e, 0], sides[e, 1], sides[e, 2]
    s = px * nx + py * ny + pz * nz
    fx, fy, fz = px - s * nx, py - s * ny, pz - s * nz
    norm = math.sqrt(fx * fx + fy * fy + fz * fz)
    fx /= norm
    fy /= norm
    fz /= norm
    lon = math.atan2(fy, fx)
    lat = math.atan2(fz, math.hypot(fx, fy))
    return vincenty_m(math.radians(rows_v[i, 3]), math.radians(rows_v[i, 4]), lon, lat)


@kernel
def measured_m(
    rows_a: Floats, verts_a: Ints, nva: int, sides_a: Floats, edges_a: Ints, nea: int,
    rows_b: Floats, rings_b: Ints, nrb: int, sides_b: Floats, neb: int,
    cutoff: float, work: Ints,
) -> float:  # fmt: skip
    """The shortest geodesic among the candidate pairs within ``cutoff`` radians: what
    ``geo.distance._Nearest.distance_m`` measures (without its millimetre rounding to 0).
    Of a, only the listed vertices and edges count. -1 when Vincenty fails on one of them.

    Each Vincenty costs ``VINCENTY_WORK`` in ``work`` (``candidate_pass.WORK_SPENT``);
    returns -2 as soon as the work exceeds the budget (``work[1]``)."""
    # Keep every pair within cutoff: a chord or a sine never exceeds its angle.
    cut_c2 = cutoff * cutoff
    cut_s = cutoff
    best = np.inf
    for k in range(nva):
        i = verts_a[k]
        for rb in range(nrb):
            for j in range(rings_b[rb, 0], rings_b[rb, 1]):
                if vertex_chord2(rows_a, i, rows_b, j) <= cut_c2:
                    work[0] += VINCENTY_WORK
                    if work[0] > work[1]:
                        return -2.0
                    d = _vertex_to_vertex_m(rows_a, i, rows_b, j)
                    if d < 0.0:
                        return -1.0
                    best = min(best, d)
        for e in range(neb):
            if vertex_edge_sine(rows_a, i, sides_b, e) <= cut_s:
                work[0] += VINCENTY_WORK
                if work[0] > work[1]:
                    return -2.0
                d = _vertex_to_foot_m(rows_a, i, sides_b, e)
                if d < 0.0:
                    return -1.0
                best = min(best, d)
    for rb in range(nrb):
        for j in range(rings_b[rb, 0], rings_b[rb, 1]):
            for k in range(nea):
                e = edges_a[k]
                if vertex_edge_sine(rows_b, j, sides_a, e) <= cut_s:
                    work[0] += VINCENTY_WORK
                    if work[0] > work[1]:
                        return -2.0
                    d = _vertex_to_foot_m(rows_b, j, sides_a, e)
                    if d < 0.0:
                        return -1.0
                    best = min(best, d)
    return best


# --------------------------------------------------------------------------- the decision


@kernel
def decide(
    rows_a: Floats, rings_a: Ints, parts_a: Ints, npa: int, ends_a: Ints, sides_a: Floats,
    plane_a: Floats, verts_a: Ints, nva: int, edges_a: Ints, nea: int,
    rows_b: Floats, rings_b: Ints, nrb: int, parts_b: Ints, npb: int, ends_b: Ints,
    sides_b: Floats, neb: int,
    limit_m: float, zlo: float, zhi: float, slack: float, measure: bool, work: Ints,
    improve_m: float,
) -> tuple[int, float]:  # fmt: skip
    """Whether the geodesic distance between a and b is at most ``limit_m``: ``YES``, ``NO``
    or ``BORDER`` (too close to the limit to tell; ask ``geo.distance.within_m``), and, with
    ``measure``, the distance of a ``YES`` (what ``geo.distance.min_distance_m`` reports).

    ``[zlo, zhi]`` holds the sines of the latitudes of both geometries; it is widened here by
    the farthest a path of interest can stray (``limit_m`` at the smallest radius). a's
    polygons are projected (``project``); of a's vertices and edges, only those listed are
    compared (``near_elements`` finds the ones that can matter). Returns ``NO`` at once
    when measuring would take the work over its budget (``measured_m``; the caller sees
    it in ``work``). A sure ``YES`` whose distance cannot be below ``improve_m`` (the
    nearest the caller already knows, padded) is not measured: its distance is inf.
    """
    floor = max(limit_m, TOUCH_M)
    pad = floor / EARTH_MIN_RADIUS_M + slack
    m_min, n_max = radii_bounds(zlo - pad, zhi + pad)
    no_angle = floor / m_min + slack
    # d < TOUCH_M is reported as 0, which is within any limit.
    yes_angle = max(limit_m, TOUCH_M * (1.0 - 1e-9)) / n_max - slack
    if measure:
        stop_chord = stop_sine = -1.0
    else:
        stop_chord, stop_sine = chord_below(yes_angle), sine_below(yes_angle)
    chord, sine, stopped = nearest_raw(
        rows_a, verts_a, nva, sides_a, edges_a, nea,
        rows_b, rings_b, nrb, sides_b, neb,
        stop_chord, stop_sine,
    )  # fmt: skip
    if stopped:
        return YES, np.nan
    if not measure and min(angle_above(chord), asin_above(sine)) <= yes_angle:
        return YES, np.nan
    if touches(
        rows_a, rings_a, parts_a, npa, ends_a, sides_a, edges_a, nea, plane_a,
        rows_b, rings_b, parts_b, npb, ends_b, sides_b, neb,
    ):  # fmt: skip
        return YES, 0.0
    if min(chord, sine) > no_angle:  # a chord or a sine never exceeds its angle
        return NO, np.nan
    psi = exact_angle(chord, sine)
    if psi > no_angle:
        return NO, np.nan
    if psi <= yes_angle and not measure:
        return YES, np.nan
    if psi <= yes_angle and (psi - slack) * m_min > improve_m:
        return YES, np.inf  # a conflict, and no nearer than one already measured
    # The ellipsoid can prefer a pair whose angle is larger by the ratio of its radii.
    cutoff = psi * (n_max / m_min) + 2.0 * slack
    distance = measured_m(
        rows_a, verts_a, nva, sides_a, edges_a, nea,
        rows_b, rings_b, nrb, sides_b, neb,
        cutoff, work,
    )  # fmt: skip
    if distance == -2.0:
        return NO, np.nan
    if distance < 0.0:
        return BORDER, np.nan
    if distance < TOUCH_M - BORDER_M:  # geometry reports 0 too, within any limit
        return YES, 0.0
    if distance < TOUCH_M:
        distance = 0.0
    if psi <= yes_angle:
        return YES, distance
    if abs(distance - limit_m) <= BORDER_M + BORDER_REL * limit_m:
        return BORDER, distance
    return (YES if distance <= limit_m else NO), distance


@kernel
def point_bounds(
    px: float, py: float, pz: float,
    rows: Floats, rings: Ints, nr: int, parts: Ints, npart: int, sides: Floats, ne: int,
    plane: Floats, stop: float,
) -> tuple[float, float]:  # fmt: skip
    """Lower and upper bounds of the central angle from a unit vector to a decoded geometry
    (its vertices, edges and polygon interiors, the polygons projected): 0 inside a polygon,
    else the smallest chord or edge sine (never above the angle) and their
    ``angle_above``/``asin_above``. As soon as the angle is known to be at most ``stop``,
    returns (0, stop)."""
    stop_c2 = chord_below(stop)
    stop_c2 = stop_c2 * stop_c2 if stop_c2 > 0.0 else -1.0
    stop_s = sine_below(stop)
    best_c2 = np.inf
    for r in range(nr):
        for i in range(rings[r, 0], rings[r, 1]):
            dx, dy, dz = rows[i, 0] - px, rows[i, 1] - py, rows[i, 2] - pz
            c2 = dx * dx + dy * dy + dz * dz
            if c2 < best_c2:
                best_c2 = c2
                if c2 <= stop_c2:
                    return 0.0, stop
    best_s = 2.0
    for e in range(ne):
        a = px * sides[e, 3] + py * sides[e, 4] + pz * sides[e, 5]
        b = px * sides[e, 6] + py * sides[e, 7] + pz * sides[e, 8]
        if a > 0.0 and b > 0.0:
            s = abs(px * sides[e, 0] + py * sides[e, 1] + pz * sides[e, 2])
            if s < best_s:
                best_s = s
                if s <= stop_s:
                    return 0.0, stop
    for p in range(npart):
        if parts[p, 3] == K_POLY and contains_projected(rows, rings, parts[p], plane, px, py, pz):
            return 0.0, 0.0
    chord = math.sqrt(best_c2)
    upper = angle_above(chord)
    if best_s < 1.0:
        upper = min(upper, asin_above(best_s))
    return min(chord, best_s), upper

"""Compiled touching tests of decoded geometries (``engine.blocks``): a vertex of one inside
a polygon of the other, or two edges crossing, means distance 0 (as ``geo.distance`` tests
it). Polygons are tested in the gnomonic projection of their own cap, where great-circle
edges are straight."""

from __future__ import annotations

import math

from deconflict.engine.blocks import K_POLY
from deconflict.geo.compiled import Floats, Ints, kernel


@kernel
def _contains(rows: Floats, rings: Ints, part: Ints, px: float, py: float, pz: float) -> bool:
    """Whether a unit vector lies inside a polygon part (holes excluded).

    Tested in the gnomonic projection centred on the part's cap, where great-circle edges
    are straight: even-odd crossings of a ray. On the boundary either answer may come out;
    the distance there is 0 anyway.
    """
    h = part[0]
    cx, cy, cz = rows[h, 0], rows[h, 1], rows[h, 2]
    w0 = px * cx + py * cy + pz * cz
    if w0 < rows[h, 4] - 1e-12 or w0 <= 0.0:
        return False
    if abs(cz) < 0.9:  # east = normalized(pole x c), as geo.caps.gnomonic_frame
        ex, ey, ez = -cy, cx, 0.0
    else:
        ex, ey, ez = 0.0, -cz, cy
    norm = math.sqrt(ex * ex + ey * ey + ez * ez)
    ex /= norm
    ey /= norm
    ez /= norm
    nx = cy * ez - cz * ey
    ny = cz * ex - cx * ez
    nz = cx * ey - cy * ex
    x = (px * ex + py * ey + pz * ez) / w0
    y = (px * nx + py * ny + pz * nz) / w0
    inside = False
    for r in range(part[1], part[2]):
        first = rings[r, 0]
        last = rings[r, 1]
        j = last - 1
        wj = rows[j, 0] * cx + rows[j, 1] * cy + rows[j, 2] * cz
        xj = (rows[j, 0] * ex + rows[j, 1] * ey + rows[j, 2] * ez) / wj
        yj = (rows[j, 0] * nx + rows[j, 1] * ny + rows[j, 2] * nz) / wj
        for i in range(first, last):
            wi = rows[i, 0] * cx + rows[i, 1] * cy + rows[i, 2] * cz
            xi = (rows[i, 0] * ex + rows[i, 1] * ey + rows[i, 2] * ez) / wi
            yi = (rows[i, 0] * nx + rows[i, 1] * ny + rows[i, 2] * nz) / wi
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            xj, yj = xi, yi
    return inside


@kernel
def project(rows: Floats, parts: Ints, npart: int, rings: Ints, plane: Floats) -> None:
    """Each polygon part's gnomonic frame (east and north, in its header's row of ``plane``)
    and its ring vertices in that plane (x, y): done once per query, which every candidate
    is then tested against."""
    for p in range(npart):
        if parts[p, 3] != K_POLY:
            continue
        h = parts[p, 0]
        cx, cy, cz = rows[h, 0], rows[h, 1], rows[h, 2]
        if abs(cz) < 0.9:  # east = normalized(pole x c), as geo.caps.gnomonic_frame
            ex, ey, ez = -cy, cx, 0.0
        else:
            ex, ey, ez = 0.0, -cz, cy
        norm = math.sqrt(ex * ex + ey * ey + ez * ez)
        ex /= norm
        ey /= norm
        ez /= norm
        plane[h, 0], plane[h, 1], plane[h, 2] = ex, ey, ez
        plane[h, 3] = cy * ez - cz * ey
        plane[h, 4] = cz * ex - cx * ez
        plane[h, 5] = cx * ey - cy * ex
        for r in range(parts[p, 1], parts[p, 2]):
            for i in range(rings[r, 0], rings[r, 1]):
                w = rows[i, 0] * cx + rows[i, 1] * cy + rows[i, 2] * cz
                plane[i, 0] = (rows[i, 0] * ex + rows[i, 1] * ey + rows[i, 2] * ez) / w
                plane[i, 1] = (
                    rows[i, 0] * plane[h, 3] + rows[i, 1] * plane[h, 4] + rows[i, 2] * plane[h, 5]
                ) / w


@kernel
def contains_projected(
    rows: Floats, rings: Ints, part: Ints, plane: Floats, px: float, py: float, pz: float
) -> bool:
    """``_contains``, with the part's frame and rings already projected (``project``)."""
    h = part[0]
    w0 = px * rows[h, 0] + py * rows[h, 1] + pz * rows[h, 2]
    if w0 < rows[h, 4] - 1e-12 or w0 <= 0.0:
        return False
    x = (px * plane[h, 0] + py * plane[h, 1] + pz * plane[h, 2]) / w0
    y = (px * plane[h, 3] + py * plane[h, 4] + pz * plane[h, 5]) / w0
    inside = False
    for r in range(part[1], part[2]):
        first = rings[r, 0]
        last = rings[r, 1]
        xj, yj = plane[last - 1, 0], plane[last - 1, 1]
        for i in range(first, last):
            xi, yi = plane[i, 0], plane[i, 1]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            xj, yj = xi, yi
    return inside


@kernel
def _any_contained_projected(
    rows_a: Floats, rings_a: Ints, parts_a: Ints, npa: int,
    rows_b: Floats, rings_b: Ints, parts_b: Ints, npb: int, plane_b: Floats,
) -> bool:  # fmt: skip
    """``_any_contained`` into a geometry whose polygons are projected."""
    for pb in range(npb):
        if parts_b[pb, 3] != K_POLY:
            continue
        for pa in range(npa):
            i = rings_a[parts_a[pa, 1], 0]
            if contains_projected(
                rows_b, rings_b, parts_b[pb], plane_b, rows_a[i, 0], rows_a[i, 1], rows_a[i, 2]
            ):
                return True
    return False


@kernel
def _any_contained(
    rows_a: Floats, rings_a: Ints, parts_a: Ints, npa: int,
    rows_b: Floats, rings_b: Ints, parts_b: Ints, npb: int,
) -> bool:  # fmt: skip
    """Whether the first vertex of some part of a lies inside some polygon part of b."""
    for pb in range(npb):
        if parts_b[pb, 3] != K_POLY:
            continue
        for pa in range(npa):
            i = rings_a[parts_a[pa, 1], 0]
            if _contains(rows_b, rings_b, parts_b[pb], rows_a[i, 0], rows_a[i, 1], rows_a[i, 2]):
                return True
    return False


@kernel
def _edges_cross(
    rows_a: Floats, ends_a: Ints, sides_a: Floats, edges_a: Ints, nea: int,
    rows_b: Floats, ends_b: Ints, sides_b: Floats, neb: int,
) -> bool:  # fmt: skip
    """Whether an edge of a (those listed) crosses an edge of b at a point interior to both
    (S2's CrossingSign, as geo.distance._edges_cross: all four signs non-zero and equal)."""
    for k in range(nea):
        ea = edges_a[k]
        ia, ja = ends_a[ea, 0], ends_a[ea, 1]
        nax, nay, naz = sides_a[ea, 0], sides_a[ea, 1], sides_a[ea, 2]
        for eb in range(neb):
            ib, jb = ends_b[eb, 0], ends_b[eb, 1]
            s1 = -(rows_b[ib, 0] * nax + rows_b[ib, 1] * nay + rows_b[ib, 2] * naz)
            s2 = rows_b[jb, 0] * nax + rows_b[jb, 1] * nay + rows_b[jb, 2] * naz
            if (s1 > 0.0 and s2 > 0.0) or (s1 < 0.0 and s2 < 0.0):
                nbx, nby, nbz = sides_b[eb, 0], sides_b[eb, 1], sides_b[eb, 2]
                s3 = -(rows_a[ja, 0] * nbx + rows_a[ja, 1] * nby + rows_a[ja, 2] * nbz)
                s4 = rows_a[ia, 0] * nbx + rows_a[ia, 1] * nby + rows_a[ia, 2] * nbz
                if s1 > 0.0:
                    if s3 > 0.0 and s4 > 0.0:
                        return True
                elif s3 < 0.0 and s4 < 0.0:
                    return True
    return False


@kernel
def touches(
    rows_a: Floats, rings_a: Ints, parts_a: Ints, npa: int, ends_a: Ints, sides_a: Floats,
    edges_a: Ints, nea: int, plane_a: Floats, rows_b: Floats, rings_b: Ints, parts_b: Ints,
    npb: int, ends_b: Ints, sides_b: Floats, neb: int,
) -> bool:  # fmt: skip
    """Whether one contains a vertex of the other or their edges cross (distance 0);
    a's polygons are projected (``project``), and only a's listed edges can cross."""
    if _any_contained(rows_a, rings_a, parts_a, npa, rows_b, rings_b, parts_b, npb):
        return True
    if _any_contained_projected(
        rows_b, rings_b, parts_b, npb, rows_a, rings_a, parts_a, npa, plane_a
    ):
        return True
    return _edges_cross(rows_a, ends_a, sides_a, edges_a, nea, rows_b, ends_b, sides_b, neb)

"""Compiled spherical geometry for the conflict engine: the distance decision for one pair.

Geometries are held as rows of an encoded block (see ``volume_store``): a row is
``[x, y, z, lon_deg, lat_deg]`` for a vertex (a unit vector and the original GeoJSON degrees),
or ``[cx, cy, cz, radius, cos_radius]`` for the header of a polygon part (a cap holding it).
A parallel ``int8`` code says what each row starts:

- ``POINT``: a point part (one row);
- ``LINE``: the first vertex of a line part; its other vertices follow as ``CONT``;
- ``POLY``: the header of a polygon part; its rings follow, each starting with ``RING``
  (the shell first, then holes), vertices without the closing position.

Consecutive duplicate positions are removed when a block is encoded, as ``geo/geometry.py`` does.

The question answered here is the one ``geometry.within_m`` answers: is the geodesic distance
between two geometries (WGS84, great-circle edges) at most ``limit_m``? It is decided from
the smallest central angle ``psi`` between the two geometries on the unit sphere of geodetic
positions, using bounds that hold for every path on the ellipsoid: a path spanning a central
angle ``psi`` is at least ``M_min * psi`` and the image of the great-circle arc at most
``N_max * psi`` long, where ``M`` and ``N`` are the meridional and prime-vertical radii of
curvature over the latitudes the pair can reach. Only pairs whose distance falls between
the two bounds (about 0.5 % of the limit wide) are measured, with Vincenty's inverse formula
on the same candidate point pairs ``geo/geometry.py`` measures (vertex-vertex and vertex to the
spherical foot on an edge, within the ratio of the radii of the smallest angle). A pair whose
measured distance is within ``BORDER_M`` of the limit is handed back to the caller, who asks
``geometry.within_m`` itself, so a decision never rests on the last millimetre of Vincenty.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int8]

F = TypeVar("F", bound=Callable[..., Any])
NUMBA_CONFIG: Any = numba.config  # settings numba read from NUMBA_* variables at import

ENGINE_MODULES: Final = (
    "engine/kernels.py",
    "engine/store.py",
    "engine/grid.py",
    "engine/candidate_pass.py",
    "engine/query_args.py",
    "engine/index.py",
)


def _cache_directory() -> str | None:
    """Where numba caches the engine's machine code: a directory named after a hash of every
    engine module, because numba checks only the timestamp of the file that defines a
    function, and the candidate pass inlines functions defined in other files. Beside the
    package if it is writable, else in the user's cache; None when neither is (numba then
    compiles at import). A NUMBA_CACHE_DIR set by the user wins."""
    if NUMBA_CONFIG.CACHE_DIR:
        return None
    package = Path(__file__).parent.parent
    digest = hashlib.sha256()
    for name in ENGINE_MODULES:
        digest.update((package / name).read_bytes())
    for base in (package / "__pycache__", Path.home() / ".cache" / "deconflict"):
        directory = base / f"numba-{digest.hexdigest()[:16]}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / ".writable").touch()
        except OSError:
            continue
        for stale in base.glob("numba-*"):  # caches of earlier versions of the engine
            if stale != directory:
                shutil.rmtree(stale, ignore_errors=True)
        return str(directory)
    return None


_CACHE = _cache_directory()
if _CACHE is not None:
    NUMBA_CONFIG.CACHE_DIR = _CACHE


def compiled(function: F) -> F:
    """``numba.njit`` with an on-disk cache, and without one where the package is read-only.

    Numba looks for a writable cache directory (``__pycache__`` beside the module, then a
    user-wide one) when the function is decorated and raises if there is none; the engine
    then compiles at import instead of loading the cache.
    """
    return _compile(function, {"nogil": True, "error_model": "numpy"})


def kernel(function: F) -> F:
    """``compiled``, for functions of the hot loop that allocate nothing: without numba's
    reference counting, which otherwise costs two atomic operations per array argument and
    per array view on every call."""
    return _compile(function, {"nogil": True, "error_model": "numpy", "_nrt": False})


def _compile(function: F, options: dict[str, Any]) -> F:
    try:
        return numba.njit(cache=True, **options)(function)  # type: ignore[no-any-return]
    except RuntimeError:
        return numba.njit(**options)(function)  # type: ignore[no-any-return]


@intrinsic
def _prefetch(typingctx: Any, address: Any) -> Any:
    del typingctx

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32])
        function = builder.module.declare_intrinsic("llvm.prefetch.p0", fnty=function_type)
        pointer = builder.inttoptr(args[0], byte_pointer)
        builder.call(function, [pointer, int32(0), int32(3), int32(1)])  # read, keep, data
        return context.get_dummy_value()

    return types.void(types.intp), codegen


prefetch = cast(Callable[[int], None], _prefetch)
"""Ask the processor to bring the cache line at an address (an integer) in, from compiled
code: the candidate pass reads rows scattered over hundreds of megabytes, and issuing the
loads of a batch of candidates together overlaps their latencies."""


# Row codes of an encoded geometry.
CONT: Final = 0
POINT: Final = 1
LINE: Final = 2
POLY: Final = 3
RING: Final = 4

# Ring and part kinds after decoding.
K_POINT: Final = 0
K_LINE: Final = 1
K_POLY: Final = 2

# WGS84.
_A: Final = 6_378_137.0
_F: Final = 1.0 / 298.257223563
_B: Final = _A * (1.0 - _F)
_E2: Final = _F * (2.0 - _F)

EARTH_MIN_RADIUS_M: Final = 6_335_000.0
"""Below the smallest radius of curvature of WGS84 (a(1-e^2) = 6,335,439 m): metres per radian
of central angle are never fewer, on any path."""

TOUCH_M: Final = 1e-3
"""As ``geometry.TOUCH_M``: distances below a millimetre are 0."""

SLACK: Final = 1e-9
"""Radians added to every bound (6 mm): angles here come from unit vectors good to ~1e-15."""

_SHORT_EDGE: Final = 1e-7
_SHORT_EDGE_SLACK: Final = 1e-6
# An edge shorter than _SHORT_EDGE radians (0.6 m) has a normal known to ~1e-16 / length
# only; pairs involving one decide with _SHORT_EDGE_SLACK instead of SLACK.

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


# --------------------------------------------------------------------------- decoding


@kernel
def decode(codes: Codes, start: int, count: int, rings: Ints, parts: Ints) -> tuple[int, int]:
    """Rings (first row, end row, kind, part) and parts (header row or -1, first ring,
    end ring, kind) of the block ``[start, start + count)``; returns their numbers."""
    end = start + count
    nr = 0
    npart = 0
    i = start
    while i < end:
        code = codes[i]
        if code in (POINT, LINE):  # one ring, one part: a point is a line of one
            j = i + 1
            while j < end and codes[j] == CONT:
                j += 1
            kind = K_POINT if code == POINT else K_LINE
            rings[nr, 0] = i
            rings[nr, 1] = j
            rings[nr, 2] = kind
            rings[nr, 3] = npart
            parts[npart, 0] = -1
            parts[npart, 1] = nr
            parts[npart, 2] = nr + 1
            parts[npart, 3] = kind
            nr += 1
            npart += 1
            i = j
        elif code == POLY:
            parts[npart, 0] = i
            parts[npart, 1] = nr
            parts[npart, 3] = K_POLY
            i += 1
            while i < end and codes[i] == RING:
                j = i + 1
                while j < end and codes[j] == CONT:
                    j += 1
                rings[nr, 0] = i
                rings[nr, 1] = j
                rings[nr, 2] = K_POLY
                rings[nr, 3] = npart
                nr += 1
                i = j
            parts[npart, 2] = nr
            npart += 1
        else:  # a stray continuation row: never written by the encoder
            i += 1
    return nr, npart


@kernel
def edges(rows: Floats, rings: Ints, nr: int, ends: Ints, sides: Floats) -> tuple[int, float]:
    """Each edge's end rows and, per edge, its great-circle normal ``n`` and the vectors
    ``n x u`` and ``v x n`` (a point with positive products with both has its perpendicular
    foot inside the edge). Returns the number of edges and the shortest edge's chord."""
    ne = 0
    shortest = np.inf
    for r in range(nr):
        kind = rings[r, 2]
        first = rings[r, 0]
        last = rings[r, 1]
        if kind == K_POINT:
            continue
        stop = last if kind == K_POLY else last - 1
        for i in range(first, stop):
            j = i + 1 if i + 1 < last else first
            ux, uy, uz = rows[i, 0], rows[i, 1], rows[i, 2]
            vx, vy, vz = rows[j, 0], rows[j, 1], rows[j, 2]
            # (u + v) x (v - u) = 2 u x v, but v - u is exact for close vertices.
            sx, sy, sz = ux + vx, uy + vy, uz + vz
            dx, dy, dz = vx - ux, vy - uy, vz - uz
            nx = sy * dz - sz * dy
            ny = sz * dx - sx * dz
            nz = sx * dy - sy * dx
            norm = math.sqrt(nx * nx + ny * ny + nz * nz)
            if norm > 0.0:
                nx /= norm
                ny /= norm
                nz /= norm
            chord = math.sqrt(dx * dx + dy * dy + dz * dz)
            shortest = min(shortest, chord)
            ends[ne, 0] = i
            ends[ne, 1] = j
            sides[ne, 0] = nx
            sides[ne, 1] = ny
            sides[ne, 2] = nz
            sides[ne, 3] = ny * uz - nz * uy
            sides[ne, 4] = nz * ux - nx * uz
            sides[ne, 5] = nx * uy - ny * ux
            sides[ne, 6] = vy * nz - vz * ny
            sides[ne, 7] = vz * nx - vx * nz
            sides[ne, 8] = vx * ny - vy * nx
            ne += 1
    return ne, shortest


# --------------------------------------------------------------------------- touching


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
    if abs(cz) < 0.9:  # east = normalized(pole x c), as geometry._gnomonic_frame
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
        if abs(cz) < 0.9:  # east = normalized(pole x c), as geometry._gnomonic_frame
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
def _contains_projected(
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
            if _contains_projected(
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
    (S2's CrossingSign, as geometry._edges_cross: all four signs non-zero and equal)."""
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


# --------------------------------------------------------------------------- nearest angles


@kernel
def _vertex_edge_sine(
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
def _vertex_chord2(rows_a: Floats, i: int, rows_b: Floats, j: int) -> float:
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
                c2 = _vertex_chord2(rows_a, i, rows_b, j)
                if c2 < best_c2:
                    best_c2 = c2
                    if c2 <= stop_c2:
                        return math.sqrt(c2), best_s, True
        for e in range(neb):
            s = _vertex_edge_sine(rows_a, i, sides_b, e)
            if s < best_s:
                best_s = s
                if s <= stop_sine:
                    return math.sqrt(best_c2), s, True
    for rb in range(nrb):
        for j in range(rings_b[rb, 0], rings_b[rb, 1]):
            for k in range(nea):
                s = _vertex_edge_sine(rows_b, j, sides_a, edges_a[k])
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
    w = 1.0 - _E2 * zmin * zmin
    m_min = _A * (1.0 - _E2) / (w * math.sqrt(w))
    n_max = _A / math.sqrt(1.0 - _E2 * zmax * zmax)
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
    u1 = math.atan((1.0 - _F) * math.tan(lat1))
    u2 = math.atan((1.0 - _F) * math.tan(lat2))
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
        c = _F / 16.0 * cos2_alpha * (4.0 + _F * (4.0 - 3.0 * cos2_alpha))
        previous = lam
        lam = dlon + (1.0 - c) * _F * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1.0 + 2.0 * cos_2sm * cos_2sm))
        )
        if abs(lam - previous) < 1e-14:
            break
    else:
        return -1.0
    u2_ = cos2_alpha * (_A * _A - _B * _B) / (_B * _B)
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
    return _B * big_a * (sigma - delta)


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
    ``geometry._Nearest.distance_m`` measures (without its millimetre rounding to 0).
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
                if _vertex_chord2(rows_a, i, rows_b, j) <= cut_c2:
                    work[0] += VINCENTY_WORK
                    if work[0] > work[1]:
                        return -2.0
                    d = _vertex_to_vertex_m(rows_a, i, rows_b, j)
                    if d < 0.0:
                        return -1.0
                    best = min(best, d)
        for e in range(neb):
            if _vertex_edge_sine(rows_a, i, sides_b, e) <= cut_s:
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
                if _vertex_edge_sine(rows_b, j, sides_a, e) <= cut_s:
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
    or ``BORDER`` (too close to the limit to tell; ask ``geometry.within_m``), and, with
    ``measure``, the distance of a ``YES`` (what ``geometry.min_distance_m`` reports).

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
        if parts[p, 3] == K_POLY and _contains_projected(rows, rings, parts[p], plane, px, py, pz):
            return 0.0, 0.0
    chord = math.sqrt(best_c2)
    upper = angle_above(chord)
    if best_s < 1.0:
        upper = min(upper, asin_above(best_s))
    return min(chord, best_s), upper


@compiled
def gilbert_direction(xyz: Floats) -> Floats:
    """Up to 16 steps of Gilbert's algorithm from the points' mean towards the point of
    their convex hull nearest the origin (not normalised): the direction of a near-smallest
    cap around them (``geometry._enclosing_cap``). Compiled because numpy's per-call cost
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

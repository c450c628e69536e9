"""The cells of the space-time grid: which groups a volume belongs to, and a query reads.

Space is cut into cells on the unit sphere, at several levels: latitude bands of height
``theta_j`` (``CELL_RAD * LEVEL_FACTOR ** j``), each band cut into as many equal longitude
cells as fit with a width of at least ``theta_j`` at its poleward edge (so the bands touching
a pole are one cell). Durations are sorted into time levels: windows no longer than
``SPAN_S * SPAN_FACTOR ** k`` seconds at level k, longer or open-ended ones at "forever".
A group is a (space level, time level, cell), keyed by ``group_key``; ``engine.grid`` holds
the groups' entries.

A volume is placed at the smallest space level where each element of its geometry -- a
point, a piece of a line no longer than a cell, a polygon's cap -- padded by its own buffer
fits in a cap of radius ``ELEMENT_FACTOR * theta_j``, in every cell one of those padded caps
meets. A query pads its own elements by its buffer plus the widest separation it has, and
visits, at every level pair that holds anything, the groups of the cells those caps meet.

Why this finds every conflict: if two volumes are within ``b_q + s + b_v`` metres on the
ellipsoid, the geodesic between their nearest points has a point ``m`` within ``b_q + s`` of
the query and ``b_v`` of the volume; a path of ``d`` metres spans at most
``d / EARTH_MIN_RADIUS_M`` radians, so ``m`` lies in both padded caps, and its cell's group
holds the volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from deconflict.engine.angles import central_angle
from deconflict.engine.blocks import CONT, LINE, POINT, POLY, RING
from deconflict.engine.kernels import SLACK
from deconflict.geo.compiled import Codes, Floats, Ints, compiled, kernel
from deconflict.geo.earth import EARTH_MIN_RADIUS_M

CELL_RAD: Final = 20_000.0 / 6_371_000.0
"""Angular size of the finest cells (about 20 km)."""
LEVEL_FACTOR: Final = 4.0
ELEMENT_FACTOR: Final = 1.0
SPAN_S: Final = 3600.0
SPAN_FACTOR: Final = 4.0
TIME_LEVELS: Final = 10  # the longest span is 1 h * 4^9, 30 years; "forever" is level 10
FOREVER: Final = TIME_LEVELS


def _space_levels() -> int:
    levels = 1
    while CELL_RAD * LEVEL_FACTOR ** (levels - 1) < math.pi:
        levels += 1
    return levels


SPACE_LEVELS: Final = _space_levels()
JK_COUNT: Final = SPACE_LEVELS * (TIME_LEVELS + 1)


@dataclass
class Levels:
    """The cells of every space level and the slot lengths of every time level."""

    theta: Floats  # (J,) nominal cell size in radians
    band_h: Floats  # (J,) band height
    bands: Ints  # (J,) number of bands
    band_cells: Ints  # (J, max bands) cells per band
    band_first: Ints  # (J, max bands) id of the band's first cell
    span_s: Floats  # (K,) longest window of each time level

    @classmethod
    def make(cls) -> Levels:
        theta = (CELL_RAD * LEVEL_FACTOR ** np.arange(SPACE_LEVELS)).astype(np.float64)
        bands = np.ceil(math.pi / theta).astype(np.int64)
        band_h = math.pi / bands
        width = int(bands.max())
        band_cells = np.zeros((SPACE_LEVELS, width), np.int64)
        band_first = np.zeros((SPACE_LEVELS, width), np.int64)
        for j in range(SPACE_LEVELS):
            b = np.arange(bands[j])
            south = -math.pi / 2 + b * band_h[j]
            poleward = np.maximum(np.abs(south), np.abs(south + band_h[j]))
            cells = np.floor(2 * math.pi * np.cos(poleward) / theta[j] + 1e-9).astype(np.int64)
            cells = np.maximum(cells, 1)
            band_cells[j, : bands[j]] = cells
            band_first[j, : bands[j]] = np.concatenate(([0], np.cumsum(cells)[:-1]))
            assert cells.sum() < 1 << 32
        span_s = (SPAN_S * SPAN_FACTOR ** np.arange(TIME_LEVELS)).astype(np.float64)
        return cls(theta, band_h, bands, band_cells, band_first, span_s)


# --------------------------------------------------------------------------- cells of caps


@kernel
def cells_of_cap(
    band_h: float, bands: int, band_cells: Ints, band_first: Ints,
    cx: float, cy: float, cz: float, radius: float, out: Ints, n: int,
) -> int:  # fmt: skip
    """Append the ids of the cells (of one level) that a cap meets, conservatively; returns
    the new length, or -1 when ``out`` is too short."""
    lat = math.atan2(cz, math.hypot(cx, cy))
    lon = math.atan2(cy, cx)
    half_pi = math.pi / 2
    polar = lat + radius >= half_pi or lat - radius <= -half_pi or radius >= half_pi
    b_lo = int((max(lat - radius, -half_pi) + half_pi) / band_h)
    b_hi = int((min(lat + radius, half_pi) + half_pi) / band_h)
    b_lo = min(max(b_lo, 0), bands - 1)
    b_hi = min(max(b_hi, 0), bands - 1)
    dlon = math.pi
    if not polar:
        dlon = math.asin(min(1.0, math.sin(radius) / math.cos(lat))) + 1e-12
    for b in range(b_lo, b_hi + 1):
        count = band_cells[b]
        first = band_first[b]
        width = 2.0 * math.pi / count
        a0 = math.floor((lon - dlon + math.pi) / width)
        a1 = math.floor((lon + dlon + math.pi) / width)
        if polar or a1 - a0 + 1 >= count:
            a0, a1 = 0, count - 1
        if n + a1 - a0 + 1 > len(out):
            return -1
        for a in range(a0, a1 + 1):
            out[n] = first + a % count
            n += 1
    return n


@kernel
def _arc_point(
    ux: float, uy: float, uz: float, vx: float, vy: float, vz: float, angle: float, t: float
) -> tuple[float, float, float]:
    """The point a fraction t along the great-circle arc from u to v (angle apart)."""
    if angle < 1e-12:
        return ux, uy, uz
    s = math.sin(angle)
    a = math.sin((1.0 - t) * angle) / s
    b = math.sin(t * angle) / s
    x, y, z = a * ux + b * vx, a * uy + b * vy, a * uz + b * vz
    norm = math.sqrt(x * x + y * y + z * z)
    return x / norm, y / norm, z / norm


@kernel
def block_cells(
    rows: Floats, codes: Codes, start: int, count: int, pad: float, theta: float,
    band_h: float, bands: int, band_cells: Ints, band_first: Ints, out: Ints, n: int,
) -> int:  # fmt: skip
    """Append the cells (of one level) met by the elements of a block padded by ``pad``:
    points, pieces of line edges no longer than ``theta``, and polygons' caps. Returns the
    new length, or -1 when ``out`` is too short."""
    end = start + count
    i = start
    while i < end:
        code = codes[i]
        if code == POINT:
            n = cells_of_cap(
                band_h, bands, band_cells, band_first,
                rows[i, 0], rows[i, 1], rows[i, 2], pad, out, n,
            )  # fmt: skip
            if n < 0:
                return -1
            i += 1
        elif code == LINE:
            j = i + 1
            while j < end and codes[j] == CONT:
                j += 1
            for k in range(i, j - 1):
                ux, uy, uz = rows[k, 0], rows[k, 1], rows[k, 2]
                vx, vy, vz = rows[k + 1, 0], rows[k + 1, 1], rows[k + 1, 2]
                angle = central_angle(ux, uy, uz, vx, vy, vz)
                pieces = max(1, math.ceil(angle / theta))
                half = angle / pieces / 2.0 + 1e-12
                for p in range(pieces):
                    mx, my, mz = _arc_point(ux, uy, uz, vx, vy, vz, angle, (p + 0.5) / pieces)
                    n = cells_of_cap(
                        band_h, bands, band_cells, band_first, mx, my, mz, half + pad, out, n
                    )
                    if n < 0:
                        return -1
            i = j
        elif code == POLY:
            n = cells_of_cap(
                band_h, bands, band_cells, band_first,
                rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3] + 1e-12 + pad, out, n,
            )  # fmt: skip
            if n < 0:
                return -1
            i += 1
            while i < end and (codes[i] == RING or codes[i] == CONT):
                i += 1
        else:
            i += 1
    return n


@compiled
def home_cells(caps: Floats, band_h: float, bands: int, band_cells: Ints,
               band_first: Ints) -> Ints:  # fmt: skip
    """The cell (of one level) holding each cap's centre: the order slots are laid out in."""
    out = np.empty(len(caps), np.int64)
    some = np.zeros(64, np.int64)
    for i in range(len(caps)):
        cells_of_cap(band_h, bands, band_cells, band_first,
                     caps[i, 0], caps[i, 1], caps[i, 2], 0.0, some, 0)  # fmt: skip
        out[i] = some[0]
    return out


@compiled
def _unique(values: Ints, n: int) -> int:
    """Sort values[:n] in place and move its distinct values to the front; their count."""
    if n <= 1:
        return n
    values[:n].sort()
    w = 1
    for i in range(1, n):
        if values[i] != values[w - 1]:
            values[w] = values[i]
            w += 1
    return w


@kernel
def space_level(rows: Floats, codes: Codes, start: int, count: int, pad: float,
                theta: Floats) -> int:  # fmt: skip
    """The smallest level whose cells are at least as big as every padded element."""
    widest_poly = 0.0
    longest_edge = 0.0
    end = start + count
    i = start
    while i < end:
        code = codes[i]
        if code == POLY:
            widest_poly = max(widest_poly, rows[i, 3])
        elif code == LINE:
            j = i + 1
            while j < end and codes[j] == CONT:
                longest_edge = max(
                    longest_edge,
                    central_angle(rows[j - 1, 0], rows[j - 1, 1], rows[j - 1, 2],
                           rows[j, 0], rows[j, 1], rows[j, 2]),
                )  # fmt: skip
                j += 1
            i = j
            continue
        i += 1
    for j in range(len(theta)):
        piece = min(longest_edge, theta[j]) / 2.0
        if max(widest_poly, piece) + pad <= ELEMENT_FACTOR * theta[j]:
            return j
    return len(theta) - 1


@kernel
def time_level(t0: float, t1: float, span_s: Floats) -> int:
    span = t1 - t0
    for k in range(len(span_s)):
        if span <= span_s[k]:
            return k
    return FOREVER


@kernel
def group_key(jk: int, cell: int) -> int:
    """The hash key of a group: level pair ``jk`` (space * (FOREVER + 1) + time), cell."""
    return (jk << 32) | cell


@kernel
def key_level(key: int) -> int:
    return key >> 32


@compiled
def level_cells(
    rows: Floats, codes: Codes, start: int, count: int, pad: float, j: int, theta: Floats,
    band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints, out: Ints,
) -> tuple[Ints, int]:  # fmt: skip
    """The distinct cells of level ``j`` met by a block's elements padded by ``pad``, at
    the front of ``out`` (grown if needed), and their number."""
    while True:
        n = block_cells(
            rows, codes, start, count, pad, theta[j],
            band_h[j], bands[j], band_cells[j], band_first[j], out, 0,
        )  # fmt: skip
        if n >= 0:
            break
        out = np.empty(4 * len(out), np.int64)
    return out, _unique(out, n)


@compiled
def volume_keys(
    rows: Floats, codes: Codes, start: int, count: int, buf: float, t0: float, t1: float,
    theta: Floats, band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints,
    span_s: Floats, out: Ints,
) -> tuple[Ints, int]:  # fmt: skip
    """The group keys of one stored volume (in ``out``, grown if needed) and their number."""
    pad = buf / EARTH_MIN_RADIUS_M + SLACK
    j = space_level(rows, codes, start, count, pad, theta)
    out, n = level_cells(rows, codes, start, count, pad, j, theta, band_h, bands, band_cells,
                         band_first, out)  # fmt: skip
    jk = j * (FOREVER + 1) + time_level(t0, t1, span_s)
    for c in range(n):
        out[c] = group_key(jk, out[c])
    return out, n

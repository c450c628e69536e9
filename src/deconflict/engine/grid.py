"""The space-time grid of the conflict engine: which stored volumes a query must look at.

Space is cut into cells on the unit sphere, at several levels: latitude bands of height
``theta_j`` (``CELL_RAD * LEVEL_FACTOR ** j``), each band cut into as many equal longitude
cells as fit with a width of at least ``theta_j`` at its poleward edge (so the bands touching
a pole are one cell). Durations are sorted into time levels: windows no longer than
``SPAN_S * SPAN_FACTOR ** k`` seconds at level k, longer or open-ended ones at "forever".
A group is a (space level, time level, cell); it holds one entry per volume that reaches into
the cell, sorted by start: the volume's slot, and its window and altitude band as float32
rounded outwards (start and lower bound down, end and upper bound up), so that a query
rejects most entries by time and altitude without reading the volume's row.

A volume is placed at the smallest space level where each element of its geometry -- a
point, a piece of a line no longer than a cell, a polygon's cap -- padded by its own buffer
fits in a cap of radius ``ELEMENT_FACTOR * theta_j``, in every cell one of those padded caps
meets. A query pads its own elements by its buffer plus the widest separation it has, and
visits, at every level pair that holds anything, the groups of the cells those caps meet;
in each it reads only the entries whose start lies in ``(start - span_k, end)``: a window
no longer than ``span_k`` that starts earlier ends before the query starts.

Why this finds every conflict: if two volumes are within ``b_q + s + b_v`` metres on the
ellipsoid, the geodesic between their nearest points has a point ``m`` within ``b_q + s`` of
the query and ``b_v`` of the volume; a path of ``d`` metres spans at most
``d / EARTH_MIN_RADIUS_M`` radians, so ``m`` lies in both padded caps, and its cell's group
holds the volume.

Groups are found through an open-addressing hash table keyed by ``int64`` (small: one key per
occupied cell and level pair). Pool runs grow by doubling and freed runs go to free lists by
size class. A write costs, per cell it touches, a hash look-up, a binary search and a shift
of the later entries of that cell's group (8 bytes each); loading many volumes sorted by
start only appends. Everything here is compiled; the arrays live in ``Grid``, which the index
locks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from deconflict.engine.angles import central_angle
from deconflict.engine.blocks import CONT, LINE, POINT, POLY, RING
from deconflict.engine.kernels import SLACK
from deconflict.geo.compiled import Codes, Floats, Ints, compiled, kernel
from deconflict.geo.earth import EARTH_MIN_RADIUS_M

Int32s = npt.NDArray[np.int32]
Float32s = npt.NDArray[np.float32]

CELL_RAD: Final = 20_000.0 / 6_371_000.0
"""Angular size of the finest cells (about 20 km)."""
LEVEL_FACTOR: Final = 4.0
ELEMENT_FACTOR: Final = 1.0
SPAN_S: Final = 3600.0
SPAN_FACTOR: Final = 4.0
TIME_LEVELS: Final = 10  # the longest span is 1 h * 4^9, 30 years; "forever" is level 10
FOREVER: Final = TIME_LEVELS

# meta[] fields of the hash table and the pool.
_M_KEYS: Final = 0
_M_GROUPS: Final = 1
_M_FREE_GROUP: Final = 2
_M_POOL: Final = 3
_M_FREE_RUNS: Final = 8  # free-list heads of pool runs of 2^c entries, c < 40
_META: Final = 48
_MIN_CLASS: Final = 2
BULK: Final = 256  # volumes from which Grid.add merges sorted runs instead of inserting


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


@kernel
def start_below(t: float) -> np.float32:
    """The largest float32 not above t (starts and lower bounds are kept so)."""
    f = np.float32(t)
    if np.float64(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


@kernel
def end_above(t: float) -> np.float32:
    """The smallest float32 not below t (ends and upper bounds are kept so)."""
    f = np.float32(t)
    if np.float64(f) < t:
        f = np.nextafter(f, np.float32(np.inf))
    return f


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


# --------------------------------------------------------------------------- hash table, pool


@kernel
def _slot_of(key: int, mask: int) -> int:
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    return int(np.int64(h & np.uint64(mask)))  # numba: int() of a uint64 stays unsigned


@kernel
def find_group(table: Ints, key: int) -> int:
    mask = len(table) - 1
    i = _slot_of(key, mask)
    while True:
        k = table[i, 0]
        if k == key:
            return int(table[i, 1])
        if k == -1:
            return -1
        i = (i + 1) & mask


@kernel
def _table_put(table: Ints, key: int, group: int) -> None:
    mask = len(table) - 1
    i = _slot_of(key, mask)
    while table[i, 0] != -1:
        i = (i + 1) & mask
    table[i, 0] = key
    table[i, 1] = group


@compiled
def _table_grow(table: Ints) -> Ints:
    grown = np.full((2 * len(table), 2), -1, np.int64)
    for i in range(len(table)):
        if table[i, 0] != -1:
            _table_put(grown, table[i, 0], table[i, 1])
    return grown


@compiled
def _add_group(table: Ints, groups: Ints, meta: Ints, key: int) -> tuple[Ints, Ints, int]:
    """A group row for a new ``key`` (a freed one, or a new one, growing ``groups``),
    entered in the hash table; its entry range is the caller's to set."""
    group = meta[_M_FREE_GROUP]
    if group >= 0:
        meta[_M_FREE_GROUP] = groups[group, 0]
    else:
        group = meta[_M_GROUPS]
        meta[_M_GROUPS] += 1
        if group >= len(groups):
            grown = np.empty((2 * len(groups), 3), np.int64)
            grown[: len(groups)] = groups
            groups = grown
    if 2 * (meta[_M_KEYS] + 1) > len(table):
        table = _table_grow(table)
    _table_put(table, key, group)
    meta[_M_KEYS] += 1
    return table, groups, group


@kernel
def _table_delete(table: Ints, key: int) -> None:
    """Linear probing deletion by backward shift (no tombstones)."""
    mask = len(table) - 1
    i = _slot_of(key, mask)
    while table[i, 0] != key:
        if table[i, 0] == -1:
            return
        i = (i + 1) & mask
    j = i
    while True:
        table[i, 0] = -1
        while True:
            j = (j + 1) & mask
            if table[j, 0] == -1:
                return
            home = _slot_of(table[j, 0], mask)
            # Move j back to i unless its home lies cyclically in (i, j].
            stays = (i < home <= j) if i <= j else (home > i or home <= j)
            if not stays:
                break
        table[i, 0] = table[j, 0]
        table[i, 1] = table[j, 1]
        i = j


@kernel
def _size_class(capacity: int) -> int:
    c = _MIN_CLASS
    while (1 << c) < capacity:
        c += 1
    return c


@compiled
def _alloc(bounds: Float32s, slots: Int32s, meta: Ints, size_class: int) -> tuple[
    Float32s, Int32s, int
]:  # fmt: skip
    """A run of 2^size_class entries: from the class's free list, or at the pool's end."""
    head = meta[_M_FREE_RUNS + size_class]
    if head >= 0:
        meta[_M_FREE_RUNS + size_class] = slots[head]
        return bounds, slots, head
    size = 1 << size_class
    used = meta[_M_POOL]
    if used + size > len(slots):
        capacity = max(2 * len(slots), used + size)
        grown_bounds = np.empty((capacity, 4), np.float32)
        grown_slots = np.empty(capacity, np.int32)
        grown_bounds[:used] = bounds[:used]
        grown_slots[:used] = slots[:used]
        bounds, slots = grown_bounds, grown_slots
    meta[_M_POOL] = used + size
    return bounds, slots, used


@kernel
def _release(slots: Int32s, meta: Ints, offset: int, capacity: int) -> None:
    """Put a run on the free list of the largest class it holds (runs of a compacted pool
    are exactly as long as their groups; others are powers of two)."""
    size_class = _size_class(capacity)
    if (1 << size_class) > capacity:
        size_class -= 1
    if size_class < _MIN_CLASS:
        return  # too small to reuse; the next compaction reclaims it
    slots[offset] = meta[_M_FREE_RUNS + size_class]
    meta[_M_FREE_RUNS + size_class] = offset


@kernel
def first_at_or_after(bounds: Float32s, offset: int, length: int, t: np.float32) -> int:
    """The first index in the sorted run [offset, offset + length) whose start >= t."""
    lo = offset
    hi = offset + length
    while lo < hi:
        mid = (lo + hi) >> 1
        if bounds[mid, 0] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@compiled
def add_entries(
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints, counts: Ints,
    keys: Ints, n: int, entry: Float32s, slot: int,
) -> tuple[Ints, Ints, Float32s, Int32s]:  # fmt: skip
    """Put ``slot`` with its ``entry`` (start, end, lower, upper) in the groups of
    ``keys[:n]``, creating them as needed."""
    t0 = entry[0]
    for i in range(n):
        key = keys[i]
        group = find_group(table, key)
        if group < 0:
            table, groups, group = _add_group(table, groups, meta, key)
            bounds, slots, offset = _alloc(bounds, slots, meta, _MIN_CLASS)
            groups[group, 0] = offset
            groups[group, 1] = 0
            groups[group, 2] = 1 << _MIN_CLASS
        offset, length, capacity = groups[group, 0], groups[group, 1], groups[group, 2]
        if length == capacity:
            bounds, slots, moved = _alloc(bounds, slots, meta, _size_class(capacity + 1))
            bounds[moved : moved + length] = bounds[offset : offset + length]
            slots[moved : moved + length] = slots[offset : offset + length]
            _release(slots, meta, offset, capacity)
            offset = moved
            groups[group, 0] = moved
            groups[group, 2] = 1 << _size_class(capacity + 1)
        # Keep the run sorted by start: after every entry starting no later.
        at = offset + length
        while at > offset and bounds[at - 1, 0] > t0:
            bounds[at] = bounds[at - 1]
            slots[at] = slots[at - 1]
            at -= 1
        bounds[at] = entry
        slots[at] = slot
        groups[group, 1] = length + 1
        counts[key_level(key)] += 1
    return table, groups, bounds, slots


@kernel
def remove_entries(
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints, counts: Ints,
    keys: Ints, n: int, t0: np.float32, slot: int,
) -> None:  # fmt: skip
    """Take ``slot`` (starting at ``t0``) out of the groups of ``keys[:n]``; empty groups
    are freed."""
    for i in range(n):
        key = keys[i]
        group = find_group(table, key)
        if group < 0:
            continue
        offset, length = groups[group, 0], groups[group, 1]
        end = offset + length
        e = first_at_or_after(bounds, offset, length, t0)
        while e < end and slots[e] != slot:
            e += 1
        if e == end:
            continue
        for f in range(e, end - 1):
            bounds[f, 0] = bounds[f + 1, 0]
            bounds[f, 1] = bounds[f + 1, 1]
            bounds[f, 2] = bounds[f + 1, 2]
            bounds[f, 3] = bounds[f + 1, 3]
            slots[f] = slots[f + 1]
        length -= 1
        groups[group, 1] = length
        counts[key_level(key)] -= 1
        if length == 0:
            _release(slots, meta, offset, groups[group, 2])
            _table_delete(table, key)
            meta[_M_KEYS] -= 1
            groups[group, 0] = meta[_M_FREE_GROUP]
            groups[group, 2] = 0
            meta[_M_FREE_GROUP] = group


@compiled
def add_volumes(
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints, counts: Ints,
    vol: Floats, order: Ints, vrows: Floats, vcodes: Codes,
    theta: Floats, band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints,
    span_s: Floats,
) -> tuple[Ints, Ints, Float32s, Int32s]:  # fmt: skip
    """Put stored volumes (slots, in this order) into the grid."""
    keys = np.empty(64, np.int64)
    entry = np.empty(4, np.float32)
    for slot in order:
        keys, n = volume_keys(
            vrows, vcodes, int(vol[slot, 14]), int(vol[slot, 15]), vol[slot, 4],
            vol[slot, 0], vol[slot, 1],
            theta, band_h, bands, band_cells, band_first, span_s, keys,
        )  # fmt: skip
        entry[0] = start_below(vol[slot, 0])
        entry[1] = end_above(vol[slot, 1])
        entry[2] = start_below(vol[slot, 2])
        entry[3] = end_above(vol[slot, 3])
        table, groups, bounds, slots = add_entries(
            table, groups, bounds, slots, meta, counts, keys, n, entry, slot
        )
    return table, groups, bounds, slots


@compiled
def add_volumes_bulk(
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints, counts: Ints,
    vol: Floats, order: Ints, vrows: Floats, vcodes: Codes,
    theta: Floats, band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints,
    span_s: Floats,
) -> tuple[Ints, Ints, Float32s, Int32s]:  # fmt: skip
    """Put many stored volumes (slots, in order of start) into the grid at once: their
    entries are sorted by group and merged into each group once, so a batch costs
    O(entries of the groups it touches) instead of a shift per entry."""
    keys = np.empty(64, np.int64)
    size = 4 * len(order) + 64
    all_keys = np.empty(size, np.int64)
    all_entries = np.empty((size, 4), np.float32)
    all_slots = np.empty(size, np.int32)
    m = 0
    for slot in order:
        keys, n = volume_keys(
            vrows, vcodes, int(vol[slot, 14]), int(vol[slot, 15]), vol[slot, 4],
            vol[slot, 0], vol[slot, 1],
            theta, band_h, bands, band_cells, band_first, span_s, keys,
        )  # fmt: skip
        if m + n > size:
            size = 2 * (m + n)
            grown_keys = np.empty(size, np.int64)
            grown_entries = np.empty((size, 4), np.float32)
            grown_slots = np.empty(size, np.int32)
            grown_keys[:m] = all_keys[:m]
            grown_entries[:m] = all_entries[:m]
            grown_slots[:m] = all_slots[:m]
            all_keys, all_entries, all_slots = grown_keys, grown_entries, grown_slots
        for i in range(n):
            all_keys[m] = keys[i]
            all_entries[m, 0] = start_below(vol[slot, 0])
            all_entries[m, 1] = end_above(vol[slot, 1])
            all_entries[m, 2] = start_below(vol[slot, 2])
            all_entries[m, 3] = end_above(vol[slot, 3])
            all_slots[m] = slot
            m += 1
    # Volumes came in order of start, so a stable sort by key keeps each run sorted.
    by_key = np.argsort(all_keys[:m], kind="mergesort")
    r = 0
    while r < m:
        key = all_keys[by_key[r]]
        stop = r + 1
        while stop < m and all_keys[by_key[stop]] == key:
            stop += 1
        table, groups, bounds, slots = _merge_run(
            table, groups, bounds, slots, meta, counts, key,
            by_key[r:stop], all_entries, all_slots,
        )  # fmt: skip
        r = stop
    return table, groups, bounds, slots


@compiled
def _merge_run(
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints, counts: Ints,
    key: int, run: Ints, entries: Float32s, new_slots: Int32s,
) -> tuple[Ints, Ints, Float32s, Int32s]:  # fmt: skip
    """Merge a run of new entries (sorted by start) into the group of ``key``."""
    group = find_group(table, key)
    old_offset = old_length = old_capacity = 0
    if group < 0:
        table, groups, group = _add_group(table, groups, meta, key)
    else:
        old_offset, old_length, old_capacity = groups[group, 0], groups[group, 1], groups[group, 2]
    total = old_length + len(run)
    size_class = _size_class(total)
    bounds, slots, offset = _alloc(bounds, slots, meta, size_class)
    a = old_offset
    a_end = old_offset + old_length
    b = 0
    for w in range(offset, offset + total):
        if b >= len(run) or (a < a_end and bounds[a, 0] <= entries[run[b], 0]):
            bounds[w] = bounds[a]
            slots[w] = slots[a]
            a += 1
        else:
            bounds[w] = entries[run[b]]
            slots[w] = new_slots[run[b]]
            b += 1
    if old_capacity:
        _release(slots, meta, old_offset, old_capacity)
    groups[group, 0] = offset
    groups[group, 1] = total
    groups[group, 2] = 1 << size_class
    counts[key_level(key)] += len(run)
    return table, groups, bounds, slots


@compiled
def compact(groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints) -> tuple[
    Float32s, Int32s
]:  # fmt: skip
    """The pool rewritten with every group's run exactly as long as it (no free runs): after
    a bulk load, the power-of-two runs and the runs freed by merges would double it."""
    total = 0
    for g in range(meta[_M_GROUPS]):
        if groups[g, 2] > 0:
            total += groups[g, 1]
    new_bounds = np.empty((total + total // 8 + 64, 4), np.float32)
    new_slots = np.empty(total + total // 8 + 64, np.int32)
    w = 0
    for g in range(meta[_M_GROUPS]):
        if groups[g, 2] == 0:  # a freed group (its first column links the free list)
            continue
        offset, length = groups[g, 0], groups[g, 1]
        new_bounds[w : w + length] = bounds[offset : offset + length]
        new_slots[w : w + length] = slots[offset : offset + length]
        groups[g, 0] = w
        groups[g, 2] = length
        w += length
    meta[_M_POOL] = w
    for c in range(_M_FREE_RUNS, _META):
        meta[c] = -1
    return new_bounds, new_slots


@compiled
def remove_volumes(
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, meta: Ints, counts: Ints,
    vol: Floats, order: Ints, vrows: Floats, vcodes: Codes,
    theta: Floats, band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints,
    span_s: Floats,
) -> None:  # fmt: skip
    """Take stored volumes out of the grid (before their slots are freed)."""
    keys = np.empty(64, np.int64)
    for slot in order:
        keys, n = volume_keys(
            vrows, vcodes, int(vol[slot, 14]), int(vol[slot, 15]), vol[slot, 4],
            vol[slot, 0], vol[slot, 1],
            theta, band_h, bands, band_cells, band_first, span_s, keys,
        )  # fmt: skip
        remove_entries(
            table, groups, bounds, slots, meta, counts, keys, n, start_below(vol[slot, 0]), slot
        )


@dataclass
class Grid:
    """The arrays of the grid; the compiled functions above work on them."""

    levels: Levels = field(default_factory=Levels.make)
    table: Ints = field(default_factory=lambda: np.full((1024, 2), -1, np.int64))
    groups: Ints = field(default_factory=lambda: np.zeros((1024, 3), np.int64))
    # Per entry: start, end, lower, upper (float32, rounded outwards), and the slot.
    bounds: Float32s = field(default_factory=lambda: np.zeros((4096, 4), np.float32))
    slots: Int32s = field(default_factory=lambda: np.zeros(4096, np.int32))
    meta: Ints = field(default_factory=lambda: _new_meta())
    counts: Ints = field(default_factory=lambda: np.zeros(JK_COUNT, np.int64))

    def add(self, vol: Floats, order: Ints, vrows: Floats, vcodes: Codes) -> None:
        """Put volumes in: one by one for a few, else merged in bulk."""
        lv = self.levels
        by_start = order[np.argsort(vol[order, 0], kind="stable")]
        insert = add_volumes_bulk if len(order) >= BULK else add_volumes
        self.table, self.groups, self.bounds, self.slots = insert(
            self.table, self.groups, self.bounds, self.slots, self.meta, self.counts,
            vol, by_start, vrows, vcodes,
            lv.theta, lv.band_h, lv.bands, lv.band_cells, lv.band_first, lv.span_s,
        )  # fmt: skip

    def compact(self) -> None:
        self.bounds, self.slots = compact(self.groups, self.bounds, self.slots, self.meta)

    def remove(self, vol: Floats, order: Ints, vrows: Floats, vcodes: Codes) -> None:
        lv = self.levels
        remove_volumes(
            self.table, self.groups, self.bounds, self.slots, self.meta, self.counts,
            vol, order, vrows, vcodes,
            lv.theta, lv.band_h, lv.bands, lv.band_cells, lv.band_first, lv.span_s,
        )  # fmt: skip

    def nbytes(self) -> int:
        arrays = (self.table, self.groups, self.bounds, self.slots, self.meta, self.counts)
        return sum(a.nbytes for a in arrays)


def _new_meta() -> Ints:
    meta = np.zeros(_META, np.int64)
    meta[_M_FREE_GROUP] = -1
    meta[_M_FREE_RUNS:] = -1
    return meta

"""The compiled query of the conflict engine: from a query's volumes to conflicting slots.

For each query volume, ``run_query`` plans which grid groups to read -- at every level pair
holding anything, the cells its padded elements meet (``spacetime_index``) -- then scans
them: within a group, only the entries starting in ``(start - span, end)``, rejected first by
the entry's own rounded copies of the window and altitude band, then each stored slot once
(a stamp per slot) by the rule's tests, cheapest first: the exact window, kind (the policy's
separations), owner and declaration, the vertical separation, the gap between the two caps,
the stored cap against the query's actual geometry (exact for stored points), and last the
distance decision of ``spherical.decide`` on the two geometries. When the groups hold more
entries than there are stored volumes, it reads every volume once instead. A query volume
with many entries to read is scanned by ``THREADS`` threads, each taking every other group.

Modes: ``IDS`` stops at the first conflicting pair of a declaration (a stamp per
declaration) and measures nothing; ``MEASURE`` reports every conflicting pair with the
distance ``geometry.min_distance_m`` would give; ``AREA`` is ``intersecting``: the query is an
area, the limit is the stored volume's buffer, and kinds, owners and altitudes do not matter.
Pairs the kernel cannot decide (``spherical.BORDER``) are reported with flag 1 for the caller
to decide with ``geometry``. With threads, a slot may be reported twice (the stamps are
shared without locks); callers remove duplicates.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

from deconflict.geometry import Shape, parse_geometry
from deconflict.policy import KINDS, Policy
from deconflict.spacetime_index import (
    FOREVER,
    Float32s,
    Int32s,
    block_cells,
    end_above,
    find_group,
    first_at_or_after,
    group_key,
    start_below,
)
from deconflict.spherical import (
    BORDER,
    EARTH_MIN_RADIUS_M,
    NO,
    NUMBA_CONFIG,
    SLACK,
    TOUCH_M,
    YES,
    Codes,
    Floats,
    Ints,
    compiled,
    decide,
    decode,
    edges,
    kernel,
    near_elements,
    point_bounds,
    project,
    radii_bounds,
)
from deconflict.volume_store import (
    BUF,
    COLUMNS,
    CR,
    CX,
    CY,
    CZ,
    DECL,
    HI,
    KO,
    LO,
    T0,
    T1,
    VCOUNT,
    VOFF,
    ZHI,
    ZLO,
    VolumeColumns,
)
from deconflict.volumes import Volume

IDS: Final = 0
MEASURE: Final = 1
AREA: Final = 2

STATS: Final = 10
"""``stats`` counts: entries read, distinct slots, in the window, past the kind, owner and
altitude tests, past the caps, conflicting, groups visited, pairs measured, query volumes
that read every slot, query volumes scanned by several threads."""

PARALLEL_ENTRIES: Final = 20_000
"""A query volume with more entries than this to read is scanned by several threads."""

# Numba's "workqueue" threads survive a fork (the service's workers, benchmarks); they must
# not be entered by two threads at once, hence LOCK around every call of run_query. A layer
# chosen with NUMBA_THREADING_LAYER wins.
if NUMBA_CONFIG.THREADING_LAYER == "default":
    NUMBA_CONFIG.THREADING_LAYER = "workqueue"
THREADS: Final = max(1, min(2, int(NUMBA_CONFIG.NUMBA_NUM_THREADS)))
LOCK: Final = threading.Lock()

_SHORT_CHORD: Final = 1e-7
_SHORT_SLACK: Final = 1e-6


@kernel
def _geometry(
    slot: int, qi: int, limit: float, zlo: float, zhi: float, mode: int, reach: float,
    vol: Floats, vrows: Floats, vcodes: Codes,
    qrows: Floats, rings_a: Ints, nra: int, parts_a: Ints, npa: int, ends_a: Ints,
    sides_a: Floats, nea: int, plane_a: Floats, short_a: float,
    rings_b: Ints, parts_b: Ints, ends_b: Ints, sides_b: Floats, near: Ints,
    out_slot: Ints, out_q: Ints, out_d: Floats, out_flag: Codes, n: int, stats: Ints,
) -> tuple[int, bool]:  # fmt: skip
    """The distance decision for one candidate, comparing only the query's vertices and
    edges within ``reach`` of the candidate's cap centre; returns the new number of
    outputs and whether it is a sure conflict."""
    start = int(vol[slot, VOFF])
    nrb, npb = decode(vcodes, start, int(vol[slot, VCOUNT]), rings_b, parts_b)
    neb, short_b = edges(vrows, rings_b, nrb, ends_b, sides_b)
    slack = SLACK if min(short_a, short_b) >= _SHORT_CHORD else _SHORT_SLACK
    nva, n_edges = near_elements(
        vol[slot, CX], vol[slot, CY], vol[slot, CZ], reach,
        qrows, rings_a, nra, ends_a, sides_a, nea, near[0], near[1],
    )  # fmt: skip
    result, distance = decide(
        qrows, rings_a, parts_a, npa, ends_a, sides_a, plane_a, near[0], nva, near[1], n_edges,
        vrows, rings_b, nrb, parts_b, npb, ends_b, sides_b, neb,
        limit, zlo, zhi, slack, mode == MEASURE,
    )  # fmt: skip
    if not math.isnan(distance):
        stats[7] += 1
    if result == NO:
        return n, False
    return _emit(slot, qi, distance, result == BORDER, out_slot, out_q, out_d, out_flag, n,
                 stats), result == YES  # fmt: skip


@kernel
def _emit(slot: int, qi: int, distance: float, border: bool, out_slot: Ints, out_q: Ints,
          out_d: Floats, out_flag: Codes, n: int, stats: Ints) -> int:  # fmt: skip
    stats[5] += 1
    if n < len(out_slot):
        out_slot[n] = slot
        out_q[n] = qi
        out_d[n] = distance
        out_flag[n] = 1 if border else 0
    return n + 1


@kernel
def scan(
    # what to read: the entry ranges visits[first::step] (pairs of begin and end), or with
    # ``full`` the slots [first, step)
    visits: Ints, first: int, step: int, nv: int, full: bool,
    bounds: Float32s, slots: Int32s,
    # the store
    vol: Floats, vrows: Floats, vcodes: Codes, slot_stamp: Int32s, decl_stamp: Int32s,
    stamp: int, qstamp: int,
    # the query volume and its rule
    q: Floats, qi: int, qrows: Floats, rings_a: Ints, nra: int, parts_a: Ints, npa: int,
    ends_a: Ints, sides_a: Floats, nea: int, plane_a: Floats, short_a: float,
    sep_h: Floats, sep_v: Floats, eligible: Ints, q_owner: int, q_decl: int, mode: int,
    widest_v: float,
    # scratch and output
    rings_b: Ints, parts_b: Ints, ends_b: Ints, sides_b: Floats, near: Ints,
    out_slot: Ints, out_q: Ints, out_d: Floats, out_flag: Codes, n: int, stats: Ints,
) -> int:  # fmt: skip
    """Test the entries of some groups (or a range of slots) against one query volume;
    returns the new number of outputs."""
    q_t0, q_t1, q_lo, q_hi = q[T0], q[T1], q[LO], q[HI]
    q_buf, q_cr, q_cx, q_cy, q_cz = q[BUF], q[CR], q[CX], q[CY], q[CZ]
    q_zlo, q_zhi = q[ZLO], q[ZHI]
    passes = range(0, 1) if full else range(first, nv, 2 * step)
    for v in passes:
        if full:
            e, end = first, step
        else:
            e, end = visits[v], visits[v + 1]
        begin = e
        while e < end:
            if full:
                slot = e
                e += 1
                if vol[slot, VCOUNT] == 0:
                    continue
            else:
                # The entry's copies, rounded outwards, reject without the row.
                e += 1
                if not (
                    q_t0 < bounds[e - 1, 1]
                    and q_lo - bounds[e - 1, 3] <= widest_v
                    and bounds[e - 1, 2] - q_hi <= widest_v
                ):
                    continue
                slot = slots[e - 1]
                if slot_stamp[slot] == qstamp:
                    continue
                slot_stamp[slot] = qstamp
            stats[1] += 1
            # The rule's cheap tests: time, kind, owner, altitude.
            if not (vol[slot, T0] < q_t1 and q_t0 < vol[slot, T1]):
                continue
            stats[2] += 1
            decl = int(vol[slot, DECL])
            if mode == AREA:
                limit = vol[slot, BUF]
            else:
                owner_kind = int(vol[slot, KO])
                kind = owner_kind & 7
                if eligible[kind] == 0 or owner_kind >> 3 == q_owner or decl == q_decl:
                    continue
                if max(q_lo - vol[slot, HI], vol[slot, LO] - q_hi) > sep_v[kind]:
                    continue
                limit = q_buf + vol[slot, BUF] + sep_h[kind]
            if mode != MEASURE and decl_stamp[decl] == stamp:
                continue  # the declaration is already in conflict
            stats[3] += 1
            # The caps: the geometries are farther apart than the caps' gap.
            floor = max(limit, TOUCH_M)
            zlo = min(q_zlo, vol[slot, ZLO])
            zhi = max(q_zhi, vol[slot, ZHI])
            margin = floor / EARTH_MIN_RADIUS_M + SLACK
            m_min, n_max = radii_bounds(zlo - margin, zhi + margin)
            no_angle = floor / m_min + 3.0 * SLACK
            sx, sy, sz, s_cr = vol[slot, CX], vol[slot, CY], vol[slot, CZ], vol[slot, CR]
            dx, dy, dz = q_cx - sx, q_cy - sy, q_cz - sz
            if math.sqrt(dx * dx + dy * dy + dz * dz) > q_cr + s_cr + no_angle:
                continue  # a chord never exceeds its angle
            # The stored cap against the query's own geometry: every point of the stored
            # geometry lies within s_cr of its cap's centre (exact for stored points).
            yes_angle = max(limit, TOUCH_M * (1.0 - 1e-9)) / n_max - 3.0 * SLACK
            stop = -1.0 if mode == MEASURE else yes_angle - s_cr
            lower, upper = point_bounds(sx, sy, sz, qrows, rings_a, nra, parts_a, npa,
                                        sides_a, nea, plane_a, stop)  # fmt: skip
            if lower - s_cr > no_angle:
                continue
            stats[4] += 1
            if mode != MEASURE and upper + s_cr <= yes_angle:
                n = _emit(slot, qi, np.nan, False, out_slot, out_q, out_d, out_flag, n, stats)
                decl_stamp[decl] = stamp
                continue
            # The geometries themselves, near the candidate (the ellipsoid's radii differ by
            # under 1 %: every pair measured lies within 1.01 no_angle).
            reach = s_cr + 1.01 * no_angle + 4.0 * SLACK
            n, sure = _geometry(
                slot, qi, limit, zlo, zhi, mode, reach, vol, vrows, vcodes,
                qrows, rings_a, nra, parts_a, npa, ends_a, sides_a, nea, plane_a, short_a,
                rings_b, parts_b, ends_b, sides_b, near,
                out_slot, out_q, out_d, out_flag, n, stats,
            )  # fmt: skip
            if sure and mode != MEASURE:
                decl_stamp[decl] = stamp
        stats[0] += e - begin
    return n


def _scan_in_threads(
    visits: Ints, nv: int, full: bool, high_water: int, bounds: Float32s, slots: Int32s,
    vol: Floats, vrows: Floats, vcodes: Codes, slot_stamp: Int32s, decl_stamp: Int32s,
    stamp: int, qstamp: int,
    q: Floats, qi: int, qrows: Floats, rings_a: Ints, nra: int, parts_a: Ints, npa: int,
    ends_a: Ints, sides_a: Floats, nea: int, plane_a: Floats, short_a: float,
    sep_h: Floats, sep_v: Floats, eligible: Ints, q_owner: int, q_decl: int, mode: int,
    widest_v: float,
    rings_b: Any, parts_b: Any, ends_b: Any, sides_b: Any, near: Any,
    out_slot: Any, out_q: Any, out_d: Any, out_flag: Any, found: Ints, stats: Any,
) -> None:  # fmt: skip
    """``scan`` by every thread at once: thread t reads ranges t, t + T, ... (or its share
    of the slots), with its own scratch, outputs and counts."""
    threads = len(found)
    for t in numba.prange(threads):
        if full:
            first, step = high_water * t // threads, high_water * (t + 1) // threads
        else:
            first, step = 2 * t, threads
        found[t] = scan(
            visits, first, step, nv, full, bounds, slots,
            vol, vrows, vcodes, slot_stamp, decl_stamp, stamp, qstamp,
            q, qi, qrows, rings_a, nra, parts_a, npa, ends_a, sides_a, nea, plane_a, short_a,
            sep_h, sep_v, eligible, q_owner, q_decl, mode, widest_v,
            rings_b[t], parts_b[t], ends_b[t], sides_b[t], near[t],
            out_slot[t], out_q[t], out_d[t], out_flag[t], found[t], stats[t],
        )  # fmt: skip


try:
    scan_in_threads = numba.njit(parallel=True, nogil=True, error_model="numpy", cache=True)(
        _scan_in_threads
    )
except RuntimeError:  # no writable cache directory (see spherical.compiled)
    scan_in_threads = numba.njit(parallel=True, nogil=True, error_model="numpy")(_scan_in_threads)


@compiled
def plan(
    table: Ints, groups: Ints, bounds: Float32s, counts: Ints,
    theta: Floats, band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints,
    span_s: Floats, qrows: Floats, qcodes: Codes, start: int, count: int, pad: float,
    t0: float, t1: float, cells: Ints, visits: Ints,
) -> tuple[Ints, Ints, int, int]:  # fmt: skip
    """The entries a query volume must read, as (begin, end) ranges of the pool in
    ``visits``: at every level pair holding anything, in the groups of the cells met by
    its elements padded by ``pad``, the entries starting in ``(t0 - span, t1)`` (a window
    of at most ``span`` that starts earlier is over by t0). Returns the (maybe grown)
    arrays, the ranges' length and the number of entries in them."""
    per_level = FOREVER + 1
    nv = 0
    entries = 0
    for j in range(len(theta)):
        used = False
        for k in range(per_level):
            used = used or counts[j * per_level + k] > 0
        if not used:
            continue
        while True:
            nc = block_cells(
                qrows, qcodes, start, count, pad, theta[j],
                band_h[j], bands[j], band_cells[j], band_first[j], cells, 0,
            )  # fmt: skip
            if nc >= 0:
                break
            cells = np.empty(4 * len(cells), np.int64)
        nc = _unique_head(cells, nc)
        for k in range(per_level):
            jk = j * per_level + k
            if counts[jk] == 0:
                continue
            after = start_below(t0 - span_s[k]) if k != FOREVER else np.float32(-np.inf)
            for c in range(nc):
                group = find_group(table, group_key(jk, cells[c]))
                if group < 0:
                    continue
                offset, length = groups[group, 0], groups[group, 1]
                begin = first_at_or_after(bounds, offset, length, after)
                # Starts are rounded down: an entry starting at or after t1 as float32 does.
                end = first_at_or_after(bounds, begin, offset + length - begin, end_above(t1))
                while end < offset + length and np.float64(bounds[end, 0]) < t1:
                    end += 1
                if end == begin:
                    continue
                if nv + 2 > len(visits):
                    grown = np.empty(4 * len(visits), np.int64)
                    grown[:nv] = visits[:nv]
                    visits = grown
                visits[nv] = begin
                visits[nv + 1] = end
                nv += 2
                entries += end - begin
    return cells, visits, nv, entries


@compiled
def run_query(
    # the grid
    table: Ints, groups: Ints, bounds: Float32s, slots: Int32s, counts: Ints,
    theta: Floats, band_h: Floats, bands: Ints, band_cells: Ints, band_first: Ints,
    span_s: Floats,
    # the store
    vol: Floats, high_water: int, vrows: Floats, vcodes: Codes, slot_stamp: Int32s,
    decl_stamp: Int32s, stamp: int,
    # the query and its rule
    qvol: Floats, qrows: Floats, qcodes: Codes, sep_h: Floats, sep_v: Floats,
    eligible: Ints, q_owner: int, q_decl: int, mode: int,
    # scratch (query, then per thread) and outputs (per thread)
    rings_a: Ints, parts_a: Ints, ends_a: Ints, sides_a: Floats, plane_a: Floats,
    rings_b: Any, parts_b: Any, ends_b: Any, sides_b: Any, near: Any,
    out_slot: Any, out_q: Any, out_d: Any, out_flag: Any, found: Ints, stats: Any,
) -> int:  # fmt: skip
    """Every stored slot in conflict with a query volume (see the module's docstring).

    Outputs, scratch and ``stats`` have one row per thread; ``found[t]`` says how many
    results thread t produced. Returns the largest; when it exceeds the output rows, only
    that many fit and the caller runs the query again with bigger ones (and a new
    ``stamp``).
    """
    widest = 0.0
    widest_v = 0.0
    for kind in range(len(sep_h)):
        if eligible[kind] != 0:
            widest = max(widest, sep_h[kind])
            widest_v = max(widest_v, sep_v[kind])
    if mode == AREA:
        widest_v = np.inf  # altitudes do not matter
    found[:] = 0
    cells = np.empty(256, np.int64)
    visits = np.empty(256, np.int64)
    for qi in range(len(qvol)):
        q = qvol[qi]
        start = int(q[VOFF])
        count = int(q[VCOUNT])
        nra, npa = decode(qcodes, start, count, rings_a, parts_a)
        nea, short_a = edges(qrows, rings_a, nra, ends_a, sides_a)
        project(qrows, parts_a, npa, rings_a, plane_a)
        pad = SLACK if mode == AREA else (q[BUF] + widest) / EARTH_MIN_RADIUS_M + SLACK
        cells, visits, nv, entries = plan(
            table, groups, bounds, counts, theta, band_h, bands, band_cells, band_first,
            span_s, qrows, qcodes, start, count, pad, q[T0], q[T1], cells, visits,
        )  # fmt: skip
        full = entries > 2 * high_water  # cheaper to read every slot once
        qstamp = stamp + qi
        stats[0, 8] += full
        if len(found) > 1 and min(entries, high_water) > PARALLEL_ENTRIES:
            stats[0, 9] += 1
            scan_in_threads(
                visits, nv, full, high_water, bounds, slots,
                vol, vrows, vcodes, slot_stamp, decl_stamp, stamp, qstamp,
                q, qi, qrows, rings_a, nra, parts_a, npa, ends_a, sides_a, nea, plane_a,
                short_a, sep_h, sep_v, eligible, q_owner, q_decl, mode, widest_v,
                rings_b, parts_b, ends_b, sides_b, near,
                out_slot, out_q, out_d, out_flag, found, stats,
            )  # fmt: skip
        else:
            stop = high_water if full else 1  # (no conditional inside a long call: numba)
            found[0] = scan(
                visits, 0, stop, nv, full, bounds, slots,
                vol, vrows, vcodes, slot_stamp, decl_stamp, stamp, qstamp,
                q, qi, qrows, rings_a, nra, parts_a, npa, ends_a, sides_a, nea, plane_a,
                short_a, sep_h, sep_v, eligible, q_owner, q_decl, mode, widest_v,
                rings_b[0], parts_b[0], ends_b[0], sides_b[0], near[0],
                out_slot[0], out_q[0], out_d[0], out_flag[0], found[0], stats[0],
            )  # fmt: skip
        stats[0, 6] += nv // 2
    return int(found.max())


@compiled
def _unique_head(values: Ints, end: int) -> int:
    """Sort values[:end] and compact its distinct values to the front; their count."""
    part = values[:end]
    if len(part) <= 1:
        return len(part)
    part.sort()
    w = 1
    for i in range(1, len(part)):
        if part[i] != part[w - 1]:
            part[w] = part[i]
            w += 1
    return w


# --------------------------------------------------------------------------- from Python


@compiled
def _query_table(t0: Floats, t1: Floats, lo: Floats, hi: Floats, buf: Floats, caps: Floats,
                 offsets: Ints) -> Floats:  # fmt: skip
    n = len(t0)
    table = np.zeros((n, COLUMNS))
    for i in range(n):
        table[i, T0] = t0[i]
        table[i, T1] = t1[i]
        table[i, LO] = lo[i]
        table[i, HI] = hi[i]
        table[i, BUF] = buf[i]
        for c in range(6):
            table[i, 5 + c] = caps[i, c]
        table[i, VOFF] = offsets[i]
        table[i, VCOUNT] = offsets[i + 1] - offsets[i]
    return table


@dataclass
class Query:
    """Query volumes encoded for the kernel, and how to get their shapes if it asks."""

    table: Floats
    rows: Floats
    codes: Codes
    volumes: Sequence[Volume] | None = None
    documents: Sequence[Mapping[str, Any]] | None = None

    @classmethod
    def of(cls, columns: VolumeColumns, **sources: Any) -> Query:
        b = columns.blocks
        table = _query_table(
            columns.t0, columns.t1, columns.lo, columns.hi, columns.buf, b.caps, b.offsets
        )
        return cls(table, b.rows, b.codes, **sources)

    def shape(self, number: int) -> Shape:
        if self.volumes is not None:
            return self.volumes[number].shape
        assert self.documents is not None
        return parse_geometry(self.documents[number]["geometry"], "query")


def rule_arrays(policy: Policy, kind: str) -> tuple[Floats, Floats, Ints]:
    """Per stored kind: horizontal and vertical separation from ``kind``, and whether the
    policy lets the two kinds conflict at all."""
    horizontal = np.zeros(len(KINDS))
    vertical = np.zeros(len(KINDS))
    eligible = np.zeros(len(KINDS), np.int64)
    for code, other in enumerate(KINDS):
        separation = policy.separation_for(kind, other)
        if separation is not None:
            horizontal[code] = separation.horizontal_m
            vertical[code] = separation.vertical_m
            eligible[code] = 1
    return horizontal, vertical, eligible


class Scratch:
    """Work arrays of the compiled pass, grown as needed (used under the index's lock):
    the query's, then one set per thread."""

    def __init__(self) -> None:
        self.rows_a = self.rows_b = 0
        self.out_size = 0
        self.found = np.zeros(THREADS, np.int64)
        self.stats = np.zeros((THREADS, STATS), np.int64)
        self.grow(64, 64, 1024)

    def grow(self, rows_a: int, rows_b: int, out: int) -> None:
        t = THREADS
        if rows_a > self.rows_a:
            self.rows_a = 2 * rows_a
            self.rings_a = np.zeros((self.rows_a, 4), np.int64)
            self.parts_a = np.zeros((self.rows_a, 4), np.int64)
            self.ends_a = np.zeros((self.rows_a, 2), np.int64)
            self.sides_a = np.zeros((self.rows_a, 9))
            self.plane_a = np.zeros((self.rows_a, 6))
            self.near = np.zeros((THREADS, 2, self.rows_a), np.int64)
        if rows_b > self.rows_b:
            self.rows_b = 2 * rows_b
            self.rings_b = np.zeros((t, self.rows_b, 4), np.int64)
            self.parts_b = np.zeros((t, self.rows_b, 4), np.int64)
            self.ends_b = np.zeros((t, self.rows_b, 2), np.int64)
            self.sides_b = np.zeros((t, self.rows_b, 9))
        if out > self.out_size:
            self.out_size = 2 * out
            self.out_slot = np.zeros((t, self.out_size), np.int64)
            self.out_q = np.zeros((t, self.out_size), np.int64)
            self.out_d = np.zeros((t, self.out_size))
            self.out_flag = np.zeros((t, self.out_size), np.int8)


@dataclass
class Hits:
    """Conflicting (stored slot, query volume) pairs found by the compiled pass."""

    slots: Ints
    queries: Ints
    distances: Floats
    borderline: npt.NDArray[np.bool_]  # left to geometry.within_m by the kernel
    threaded: bool = False  # scanned by several threads (duplicates removed)


def area_rule_arrays() -> tuple[Floats, Floats, Ints]:
    """For ``intersecting``: every kind, no separation."""
    n = len(KINDS)
    return np.zeros(n), np.zeros(n), np.ones(n, np.int64)

"""The compiled query of the conflict engine: from a query's volumes to conflicting slots.

For each query volume, ``run_query`` plans which grid groups to read -- at every level pair
holding anything, the cells its padded elements meet (``spacetime_index``) -- then scans
them: within a group, only the entries starting in ``(start - span, end)``, rejected first by
the entry's own rounded copies of the window and altitude band, then each stored slot once
(a stamp per slot) by the rule's tests, cheapest first: the exact window, kind (the policy's
separations), owner and declaration, the vertical separation, the gap between the two caps,
the stored cap against the query's actual geometry (exact for stored points), and last the
distance decision of ``spherical.decide`` on the two geometries. When the groups hold more
entries than there are stored volumes, it reads every volume once instead.

Modes: ``IDS`` stops at the first conflicting pair of a declaration (a stamp per
declaration) and measures nothing; ``MEASURE`` reports every conflicting pair with the
distance ``geo.distance.min_distance_m`` would give; ``AREA`` is ``intersecting``: the query is an
area, the limit is the stored volume's buffer, and kinds, owners and altitudes do not matter.
Pairs the kernel cannot decide (``spherical.BORDER``) are reported with flag 1 for the caller
to decide with ``geometry``.

Shares: several threads can run the same query, each testing only the slots of its share
(blocks of 16 consecutive slots, so no two threads write one cache line of slot stamps);
each reads every planned entry, which the branch-free filter makes cheap. A declaration may
then be reported by two threads; the caller keeps one (``first_of_each``).

Arguments: the named structures of ``query_args`` (the grid, the store, the stamps, the
query, the rule, the thread's scratch and its share), read by name. Over 600 lines: the
compiled pass and the Python holders it is given (``Query``, ``Scratch``) and returns
(``Hits``) are read together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from deconflict.engine.angles import near_elements
from deconflict.engine.blocks import decode, edges
from deconflict.engine.cells import FOREVER, group_key, level_cells
from deconflict.engine.grid import (
    BANDED_KIND,
    Float32s,
    Int32s,
    end_above,
    find_group,
    first_at_or_after,
    start_below,
)
from deconflict.engine.kernels import BORDER, NO, SLACK, YES, decide, point_bounds, radii_bounds
from deconflict.engine.query_args import (
    GridArrays,
    QueryArrays,
    QueryVolume,
    Rule,
    ScratchArrays,
    Share,
    Stamps,
    StoreArrays,
)
from deconflict.engine.store import (
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
from deconflict.engine.touching import project
from deconflict.geo.compiled import Codes, Floats, Ints, compiled, kernel, prefetch
from deconflict.geo.earth import EARTH_MIN_RADIUS_M, TOUCH_M
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape
from deconflict.policy import KINDS, Policy
from deconflict.volumes import Volume

IDS: Final = 0
MEASURE: Final = 1
AREA: Final = 2

WORK_SPENT: Final = 0
WORK_BUDGET: Final = 1
WORK_OVER: Final = 2
"""``work``: the work charged so far, the budget, and 1 once the budget was exceeded. A
unit is one vertex or edge of one geometry compared with one of the other."""

STATS: Final = 9
"""``stats`` counts: entries read, distinct slots, in the window, past the kind, owner and
altitude tests, past the caps, conflicting, groups visited, pairs measured, query volumes
that read every slot."""

BATCH: Final = 64  # candidates whose memory is fetched together (see scan)
CHUNK: Final = 512  # grid entries filtered at a time (see _entries_within)
ROW_BYTES: Final = 8 * COLUMNS

_SHORT_CHORD: Final = 1e-7
_SHORT_SLACK: Final = 1e-6


@kernel
def _geometry(
    slot: int, limit: float, zlo: float, zhi: float, mode: int, reach: float,
    store: StoreArrays, query: QueryArrays, a: QueryVolume, scratch: ScratchArrays, n: int,
    improve_m: float,
) -> tuple[int, bool]:  # fmt: skip
    """The distance decision for one candidate, comparing only the query's vertices and
    edges within ``reach`` of the candidate's cap centre; returns the new number of
    outputs and whether it is a sure conflict. Nothing is decided (and ``work`` says so)
    when the pair would take the work spent over the budget."""
    vol, work, near = store.table, scratch.work, scratch.near
    rings_b, parts_b = scratch.rings_b, scratch.parts_b
    ends_b, sides_b = scratch.ends_b, scratch.sides_b
    start = int(vol[slot, VOFF])
    nrb, npb = decode(store.codes, start, int(vol[slot, VCOUNT]), rings_b, parts_b)
    neb, short_b = edges(store.rows, rings_b, nrb, ends_b, sides_b)
    slack = SLACK if min(a.short, short_b) >= _SHORT_CHORD else _SHORT_SLACK
    nva, n_edges = near_elements(
        vol[slot, CX], vol[slot, CY], vol[slot, CZ], reach,
        query.rows, a.rings, a.nrings, a.ends, a.sides, a.nedges, near[0], near[1],
    )  # fmt: skip
    # Charged before the exact test, so a pair over what is left is never started.
    count_b = int(vol[slot, VCOUNT])
    work[WORK_SPENT] += count_b + neb + (nva + n_edges + 1) * (count_b + neb + 1)
    if work[WORK_SPENT] > work[WORK_BUDGET]:
        work[WORK_OVER] = 1
        return n, False
    result, distance = decide(
        query.rows, a.rings, a.parts, a.nparts, a.ends, a.sides, a.plane, near[0], nva,
        near[1], n_edges,
        store.rows, rings_b, nrb, parts_b, npb, ends_b, sides_b, neb,
        limit, zlo, zhi, slack, mode == MEASURE, work, improve_m,
    )  # fmt: skip
    if work[WORK_OVER] != 0 or work[WORK_SPENT] > work[WORK_BUDGET]:
        work[WORK_OVER] = 1
        return n, False
    if not math.isnan(distance):
        scratch.stats[7] += 1
    if result == NO:
        return n, False
    return _emit(slot, a.number, distance, result == BORDER, scratch, n), result == YES


@kernel
def _emit(slot: int, qi: int, distance: float, border: bool, scratch: ScratchArrays,
          n: int) -> int:  # fmt: skip
    scratch.stats[5] += 1
    if n < len(scratch.out_slot):
        scratch.out_slot[n] = slot
        scratch.out_q[n] = qi
        scratch.out_d[n] = distance
        scratch.out_flag[n] = 1 if border else 0
    return n + 1


@kernel
def _in_share(slot: int, part: int, parts: int) -> bool:
    """Whether a slot is tested by share ``part`` of ``parts``: by blocks of 16 slots, so
    that two threads never write one cache line of the slot stamps."""
    return (slot >> 4) % parts == part


@kernel
def _entries_within(
    bounds: Float32s, slots: Int32s, begin: int, end: int, q_t0: float, q_lo: float,
    q_hi: float, widest_v: float, part: int, parts: int, cand: Ints,
) -> int:  # fmt: skip
    """The slots of the entries ``[begin, end)`` whose copies of the window and altitude
    band (rounded outwards) can meet the query's, and of this share, written to ``cand``;
    their number. Branch-free: about half the entries pass, in no pattern a branch
    predictor could learn, and a mispredicted branch per entry cost more than the test."""
    bounds_at = bounds.ctypes.data
    k = 0
    for x in range(begin, end):
        # The hardware prefetcher stops at each 4 KiB page (256 entries); stay ahead of it.
        prefetch(bounds_at + 16 * (x + 64))
        slot = slots[x]
        ok = (
            (q_t0 < bounds[x, 1])
            & (q_lo - bounds[x, 3] <= widest_v)
            & (bounds[x, 2] - q_hi <= widest_v)
            & _in_share(slot, part, parts)
        )
        cand[k] = slot
        k += ok
    return k


@kernel
def _share_of_slots(begin: int, end: int, part: int, parts: int, cand: Ints) -> int:
    """The slots of ``[begin, end)`` in this share, written to ``cand``; their number."""
    k = 0
    for slot in range(begin, end):
        cand[k] = slot
        k += _in_share(slot, part, parts)
    return k


@kernel
def scan(
    # what to read: the entry ranges in visits[:nv] (pairs of begin and end), or with
    # ``full`` every slot below the store's high water
    visits: Ints, nv: int, full: bool, grid: GridArrays, store: StoreArrays,
    # the stamps (``qstamp`` for this query volume's slots), the query volume and its rule
    stamps: Stamps, qstamp: int, query: QueryArrays, a: QueryVolume, rule: Rule,
    widest_v: float,
    # the thread's arrays, the candidates' scratch, its share, MEASURE's pruning (with
    # ``prune``) and the number of outputs so far
    scratch: ScratchArrays, cand: Ints, part: int, parts: int, prune: bool, n: int,
) -> int:  # fmt: skip
    """Test the entries of some groups (or a range of slots) against one query volume;
    returns the new number of outputs.

    Candidates go in batches of ``BATCH``: their rows are prefetched while the batch is
    gathered, and the vertex blocks of those that need the full geometry while the batch's
    cheap tests run, so the cache misses of a batch overlap instead of queueing.

    MEASURE with ``prune`` keeps, per declaration already in conflict (``decl_stamp[decl]
    == stamp``), the smallest distance and the widest time overlap found so far in
    ``known``: a pair whose caps are farther apart than that distance and whose overlap
    lies inside that window can change nothing in the answer and is skipped, and one that
    can only widen the window is decided without being measured. Stops when the work
    charged (``work``) exceeds its budget.
    """
    bounds, slots = grid.bounds, grid.slots
    vol, high_water = store.table, store.high_water
    slot_stamp, decl_stamp, stamp = stamps.slot_stamps, stamps.decl_stamps, stamps.stamp
    only, only_mark = stamps.only, stamps.only_mark
    sep_h, sep_v, eligible = rule.sep_h, rule.sep_v, rule.eligible
    q_owner, q_decl, mode = rule.owner, rule.decl, rule.mode
    work, known, stats = scratch.work, scratch.known, scratch.stats
    batch, pending, out_d = scratch.batch, scratch.pending, scratch.out_d
    q = a.row
    q_t0, q_t1, q_lo, q_hi = q[T0], q[T1], q[LO], q[HI]
    q_buf, q_cr, q_cx, q_cy, q_cz = q[BUF], q[CR], q[CX], q[CY], q[CZ]
    q_zlo, q_zhi = q[ZLO], q[ZHI]
    q_cost = int(q[VCOUNT]) + a.nedges + 1
    vol_at, rows_at = vol.ctypes.data, store.rows.ctypes.data
    codes_at = store.codes.ctypes.data
    slot_stamps_at = slot_stamp.ctypes.data
    passes = range(0, 1) if full else range(0, nv, 2)
    for v in passes:
        if full:
            e, end = 0, high_water
        else:
            e, end = visits[v], visits[v + 1]
        stats[0] += end - e
        c = k = 0  # the next and the number of candidates in ``cand``
        while e < end or c < k:
            if work[WORK_SPENT] > work[WORK_BUDGET]:
                work[WORK_OVER] = 1
                return n
            # 1. A batch of distinct slots whose entries pass the window and altitude.
            nb = 0
            while nb < BATCH:
                if c == k:
                    if e == end:
                        break
                    upto = min(end, e + CHUNK)
                    if full:
                        k = _share_of_slots(e, upto, part, parts, cand)
                    else:
                        k = _entries_within(bounds, slots, e, upto, q_t0, q_lo, q_hi, widest_v,
                                            part, parts, cand)  # fmt: skip
                    c = 0
                    e = upto
                    continue
                if c + 16 < k:  # the stamp of a candidate a little ahead
                    prefetch(slot_stamps_at + 4 * cand[c + 16])
                slot = cand[c]
                c += 1
                # Without a branch: a third of the candidates are fresh, in no pattern.
                fresh = slot_stamp[slot] != qstamp
                slot_stamp[slot] = qstamp
                batch[nb] = slot
                nb += fresh
                prefetch(vol_at + slot * ROW_BYTES)
                prefetch(vol_at + slot * ROW_BYTES + 64)
            # 2. The rule's cheap tests, the caps, the stored cap against the query.
            if mode != MEASURE:
                stamps_at = decl_stamp.ctypes.data
                for b in range(nb):
                    prefetch(stamps_at + 4 * int(vol[batch[b], DECL]))
            ng = 0
            for b in range(nb):
                slot = batch[b]
                if full and vol[slot, VCOUNT] == 0:
                    continue
                stats[1] += 1
                if not (vol[slot, T0] < q_t1 and q_t0 < vol[slot, T1]):
                    continue
                stats[2] += 1
                decl = int(vol[slot, DECL])
                if only_mark != 0 and only[decl] != only_mark:
                    continue
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
                centres = math.sqrt(dx * dx + dy * dy + dz * dz)
                if centres > q_cr + s_cr + no_angle:
                    continue  # a chord never exceeds its angle
                time_only = False
                if mode == MEASURE and prune and decl_stamp[decl] == stamp:
                    # Farther than the nearest pair of the declaration found so far (by
                    # the caps' gap at the smallest radius), or that one touches.
                    best = known[decl, 0]
                    gap_m = (centres - q_cr - s_cr - 4.0 * SLACK) * m_min
                    time_only = best == 0.0 or gap_m > best * (1.0 + 1e-6) + 1e-3
                    inside = (
                        max(q_t0, vol[slot, T0]) >= known[decl, 1]
                        and min(q_t1, vol[slot, T1]) <= known[decl, 2]
                    )
                    if time_only and inside:
                        continue
                work[WORK_SPENT] += q_cost
                # The stored cap against the query's own geometry: every point of the
                # stored geometry lies within s_cr of its cap's centre (exact for points).
                yes_angle = max(limit, TOUCH_M * (1.0 - 1e-9)) / n_max - 3.0 * SLACK
                stop = -1.0 if mode == MEASURE else yes_angle - s_cr
                lower, upper = point_bounds(
                    sx, sy, sz, query.rows, a.rings, a.nrings, a.parts, a.nparts, a.sides,
                    a.nedges, a.plane, stop,
                )  # fmt: skip
                if lower - s_cr > no_angle:
                    continue
                stats[4] += 1
                if mode != MEASURE and upper + s_cr <= yes_angle:
                    n = _emit(slot, a.number, np.nan, False, scratch, n)
                    decl_stamp[decl] = stamp
                    continue
                # The geometries are needed: fetch the block, compare only the query's
                # elements near the candidate (the ellipsoid's radii differ by under 1 %:
                # every pair measured lies within 1.01 no_angle).
                start = int(vol[slot, VOFF])
                prefetch(codes_at + start)
                line = (rows_at + start * 40) & -64  # each line of the first few rows
                for _ in range(min(int(vol[slot, VCOUNT]) * 40 // 64 + 2, 8)):
                    prefetch(line)
                    line += 64
                batch[BATCH + ng] = slot
                pending[ng, 0] = limit
                pending[ng, 1] = zlo
                pending[ng, 2] = zhi
                pending[ng, 3] = s_cr + 1.01 * no_angle + 4.0 * SLACK
                pending[ng, 4] = 1.0 if time_only else 0.0
                ng += 1
            # 3. The geometries themselves.
            for g in range(ng):
                slot = batch[BATCH + g]
                decl = int(vol[slot, DECL])
                if mode != MEASURE and decl_stamp[decl] == stamp:
                    continue  # another volume of the declaration conflicted meanwhile
                time_only = pending[g, 4] != 0.0
                g_mode = IDS if time_only else mode
                improve_m = np.inf  # measure only what can be nearer than known so far
                if mode == MEASURE and prune and decl_stamp[decl] == stamp:
                    improve_m = known[decl, 0] * (1.0 + 1e-6) + 1e-3
                before = n
                n, sure = _geometry(
                    slot, pending[g, 0], pending[g, 1], pending[g, 2], g_mode, pending[g, 3],
                    store, query, a, scratch, n, improve_m,
                )  # fmt: skip
                if work[WORK_OVER] != 0:
                    return n
                if sure and mode != MEASURE:
                    decl_stamp[decl] = stamp
                elif sure and prune and before < len(out_d):
                    if time_only:
                        out_d[before] = np.inf  # no nearer than the declaration's best
                    p_t0 = max(q_t0, vol[slot, T0])
                    p_t1 = min(q_t1, vol[slot, T1])
                    _learn(decl, stamp, decl_stamp, known, out_d[before], p_t0, p_t1)
    return n


@kernel
def _learn(decl: int, stamp: int, decl_stamp: Int32s, known: Floats, distance: float,
           start: float, end: float) -> None:  # fmt: skip
    """Record a sure conflicting pair of a declaration for MEASURE's pruning (see scan)."""
    if decl_stamp[decl] != stamp:
        decl_stamp[decl] = stamp
        known[decl, 0] = distance
        known[decl, 1] = start
        known[decl, 2] = end
    else:
        known[decl, 0] = min(known[decl, 0], distance)
        known[decl, 1] = min(known[decl, 1], start)
        known[decl, 2] = max(known[decl, 2], end)


@compiled
def plan(
    grid: GridArrays, query: QueryArrays, start: int, count: int, pad: float, t0: float,
    t1: float, cells: Ints, visits: Ints,
) -> tuple[Ints, Ints, int, int]:  # fmt: skip
    """The entries a query volume must read, as (begin, end) ranges of the pool in
    ``visits``: at every level pair holding anything, in the groups of the cells met by
    its elements padded by ``pad``, the entries starting in ``(t0 - span, t1)`` (a window
    of at most ``span`` that starts earlier is over by t0). Returns the (maybe grown)
    arrays, the ranges' length and the number of entries in them."""
    table, groups, bounds, counts = grid.table, grid.groups, grid.bounds, grid.counts
    per_level = FOREVER + 1
    nv = 0
    entries = 0
    for j in range(len(grid.theta)):
        used = False
        for k in range(per_level):
            used = used or counts[j * per_level + k] > 0
        if not used:
            continue
        cells, nc = level_cells(
            query.rows, query.codes, start, count, pad, j, grid.theta, grid.band_h,
            grid.bands, grid.band_cells, grid.band_first, cells,
        )  # fmt: skip
        for k in range(per_level):
            jk = j * per_level + k
            if counts[jk] == 0:
                continue
            after = start_below(t0 - grid.span_s[k]) if k != FOREVER else np.float32(-np.inf)
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


def run_query(
    grid: GridArrays, store: StoreArrays, stamps: Stamps, query: QueryArrays, rule: Rule,
    scratch: ScratchArrays, share: Share,
) -> tuple[int, int]:  # fmt: skip
    """Every stored slot in conflict with the query volumes from ``share.first`` on (see
    the module's docstring), written to the outputs from ``share.n`` on; only the slots of
    share ``part`` of ``parts`` are tested (``_in_share``), so ``parts`` calls in as many
    threads share a query.

    Returns the new number of results and the query volume it stopped before: the end,
    or, with ``parts == 1``, a volume whose plan reads more than ``split_above`` entries,
    for the caller to share out. When the number exceeds the output arrays, only that
    many fit and the caller runs the query again with bigger ones (and a new ``stamp``).

    The structures cross into compiled code as plain tuples (``query_args`` says why),
    rebuilt there by the same classes, so each field keeps its name on both sides.
    """
    return _run_query(
        tuple(grid), tuple(store), tuple(stamps), tuple(query), tuple(rule), tuple(scratch),
        tuple(share),
    )  # fmt: skip


@compiled
def _run_query(
    grid_t: tuple[Any, ...], store_t: tuple[Any, ...], stamps_t: tuple[Any, ...],
    query_t: tuple[Any, ...], rule_t: tuple[Any, ...], scratch_t: tuple[Any, ...],
    share_t: tuple[Any, ...],
) -> tuple[int, int]:  # fmt: skip
    """``run_query``, in compiled code: the structures rebuilt here, in the function that
    reads them (rebuilt in another and passed on, they cost a reference count each)."""
    grid, store, stamps = GridArrays(*grid_t), StoreArrays(*store_t), Stamps(*stamps_t)
    query, rule, scratch = QueryArrays(*query_t), Rule(*rule_t), ScratchArrays(*scratch_t)
    share = Share(*share_t)
    sep_h, sep_v, eligible, mode = rule.sep_h, rule.sep_v, rule.eligible, rule.mode
    qvol, high_water, part, parts = query.table, store.high_water, share.part, share.parts
    widest = 0.0
    for kind in range(len(sep_h)):
        if eligible[kind] != 0:
            widest = max(widest, sep_h[kind])
    # The entries filter compares altitudes only for the entries that copy their band,
    # operations' (``grid.BANDED_KIND``): the others' copies are unbounded and pass it, so
    # an infinite separation from a protected kind leaves the pruning of operations intact.
    widest_v = sep_v[BANDED_KIND] if eligible[BANDED_KIND] != 0 else 0.0
    if mode == AREA:
        widest_v = np.inf  # altitudes do not matter
    cells = np.empty(256, np.int64)
    visits = np.empty(256, np.int64)
    cand = np.empty(CHUNK, np.int64)
    alone = parts == 1  # MEASURE prunes only in one thread (see scan)
    n = share.n
    for qi in range(share.first, len(qvol)):
        q = qvol[qi]
        start = int(q[VOFF])
        count = int(q[VCOUNT])
        rings_a, parts_a = scratch.rings_a, scratch.parts_a
        nra, npa = decode(query.codes, start, count, rings_a, parts_a)
        nea, short_a = edges(query.rows, rings_a, nra, scratch.ends_a, scratch.sides_a)
        project(query.rows, parts_a, npa, rings_a, scratch.plane_a)
        a = QueryVolume(
            row=q, number=qi, rings=rings_a, nrings=nra, parts=parts_a, nparts=npa,
            ends=scratch.ends_a, sides=scratch.sides_a, nedges=nea, plane=scratch.plane_a,
            short=short_a,
        )  # fmt: skip
        pad = SLACK if mode == AREA else (q[BUF] + widest) / EARTH_MIN_RADIUS_M + SLACK
        cells, visits, nv, entries = plan(
            grid, query, start, count, pad, q[T0], q[T1], cells, visits
        )
        if parts == 1 and entries > share.split_above:
            return n, qi
        full = entries > 2 * high_water  # cheaper to read every slot once
        n = scan(
            visits, nv, full, grid, store, stamps, stamps.stamp + qi, query, a, rule,
            widest_v, scratch, cand, part, parts, alone, n,
        )  # fmt: skip
        if scratch.work[WORK_OVER] != 0:
            return n, len(qvol)
        if part == 0:  # every share plans the same groups
            scratch.stats[6] += nv // 2
            scratch.stats[8] += full
    return n, len(qvol)


@compiled
def first_of_each(decls: Ints, marks: Int32s, mark: int) -> npt.NDArray[np.bool_]:
    """Which entries of ``decls`` are the first of their value, marking each value seen
    in ``marks`` with ``mark`` (a stamp no earlier call used): O(n), where sorting to find
    them took as long as the check itself for thousands of conflicts."""
    first = np.zeros(len(decls), np.bool_)
    for i in range(len(decls)):
        if marks[decls[i]] != mark:
            marks[decls[i]] = mark
            first[i] = True
    return first


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

    def part(self, start: int, stop: int) -> Query:
        """Volumes ``[start, stop)`` alone (sharing the vertex rows)."""
        if start == 0 and stop >= len(self.table):
            return self
        return Query(
            self.table[start:stop],
            self.rows,
            self.codes,
            None if self.volumes is None else self.volumes[start:stop],
            None if self.documents is None else self.documents[start:stop],
        )

    def arrays(self) -> QueryArrays:
        return QueryArrays(table=self.table, rows=self.rows, codes=self.codes)

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
    """Work arrays of the compiled pass, grown as needed (used under the index's lock)."""

    def __init__(self) -> None:
        self.rows_a = self.rows_b = 0
        self.out_size = 0
        self.stats = np.zeros(STATS, np.int64)
        self.batch = np.zeros(2 * BATCH, np.int64)
        self.pending = np.zeros((BATCH, 5))
        self.work = np.zeros(3, np.int64)
        self._known = np.zeros((0, 3))
        self._arrays: ScratchArrays | None = None
        self.grow(64, 64, 1024)

    @property
    def known(self) -> Floats:
        """What MEASURE knows of each declaration (see ``scan``); the reader sizes it."""
        return self._known

    @known.setter
    def known(self, known: Floats) -> None:
        self._known = known
        self._arrays = None

    def grow(self, rows_a: int, rows_b: int, out: int) -> None:
        if rows_a > self.rows_a:
            self.rows_a = 2 * rows_a
            self.rings_a = np.zeros((self.rows_a, 4), np.int64)
            self.parts_a = np.zeros((self.rows_a, 4), np.int64)
            self.ends_a = np.zeros((self.rows_a, 2), np.int64)
            self.sides_a = np.zeros((self.rows_a, 9))
            self.plane_a = np.zeros((self.rows_a, 6))
            self.near = np.zeros((2, self.rows_a), np.int64)
            self._arrays = None
        if rows_b > self.rows_b:
            self.rows_b = 2 * rows_b
            self.rings_b = np.zeros((self.rows_b, 4), np.int64)
            self.parts_b = np.zeros((self.rows_b, 4), np.int64)
            self.ends_b = np.zeros((self.rows_b, 2), np.int64)
            self.sides_b = np.zeros((self.rows_b, 9))
            self._arrays = None
        if out > self.out_size:
            self.out_size = 2 * out
            self.out_slot = np.zeros(self.out_size, np.int64)
            self.out_q = np.zeros(self.out_size, np.int64)
            self.out_d = np.zeros(self.out_size)
            self.out_flag = np.zeros(self.out_size, np.int8)
            self._arrays = None

    def arrays(self) -> ScratchArrays:
        """The arrays as they are now, for the compiled pass: built again only after
        ``grow`` or a new ``known`` replaced one (building them at every call cost about
        a microsecond a query)."""
        if self._arrays is None:
            self._arrays = ScratchArrays(
                work=self.work,
                known=self._known,
                rings_a=self.rings_a,
                parts_a=self.parts_a,
                ends_a=self.ends_a,
                sides_a=self.sides_a,
                plane_a=self.plane_a,
                near=self.near,
                rings_b=self.rings_b,
                parts_b=self.parts_b,
                ends_b=self.ends_b,
                sides_b=self.sides_b,
                batch=self.batch,
                pending=self.pending,
                out_slot=self.out_slot,
                out_q=self.out_q,
                out_d=self.out_d,
                out_flag=self.out_flag,
                stats=self.stats,
            )
        return self._arrays


@dataclass
class Hits:
    """Conflicting (stored slot, query volume) pairs found by the compiled pass."""

    slots: Ints
    queries: Ints
    distances: Floats
    borderline: npt.NDArray[np.bool_]  # left to geometry.within_m by the kernel
    shared: bool = False  # by threads, which may each report a declaration once
    work: int = 0  # charged by every thread together (``WORK_SPENT``)


def area_rule_arrays() -> tuple[Floats, Floats, Ints]:
    """For ``intersecting``: every kind, no separation."""
    n = len(KINDS)
    return np.zeros(n), np.zeros(n), np.ones(n, np.int64)

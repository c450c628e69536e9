"""The space-time grid of the conflict engine: which stored volumes a query must look at.

A group (a space level, a time level and a cell of ``engine.cells``) holds one entry per
volume that reaches into the cell, sorted by start: the volume's slot, and its window and
altitude band as float32 rounded outwards (start and lower bound down, end and upper bound
up), so that a query rejects most entries by time and altitude without reading the volume's
row. Only operations' entries copy their band (``BANDED_KIND``); the other kinds' copies
are unbounded. In each group a query reads only the entries whose start lies in ``(start - span_k,
end)``: a window no longer than ``span_k`` that starts earlier ends before the query starts.
``engine.cells`` says why the groups a query visits hold every volume it can conflict with.

Groups are found through an open-addressing hash table keyed by ``int64`` (small: one key per
occupied cell and level pair). Pool runs grow by doubling and freed runs go to free lists by
size class. A write costs, per cell it touches, a hash look-up, a binary search and a shift
of the later entries of that cell's group (8 bytes each); loading many volumes sorted by
start only appends. Everything here is compiled; the arrays live in ``Grid``, which the index
locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from deconflict.engine.cells import JK_COUNT, Levels, key_level, volume_keys
from deconflict.engine.store import KO
from deconflict.geo.compiled import Codes, Floats, Ints, compiled, kernel
from deconflict.policy import KINDS

Int32s = npt.NDArray[np.int32]
Float32s = npt.NDArray[np.float32]

# meta[] fields of the hash table and the pool.
_M_KEYS: Final = 0
_M_GROUPS: Final = 1
_M_FREE_GROUP: Final = 2
_M_POOL: Final = 3
_M_FREE_RUNS: Final = 8  # free-list heads of pool runs of 2^c entries, c < 40
_META: Final = 48
_MIN_CLASS: Final = 2
BULK: Final = 256  # volumes from which Grid.add merges sorted runs instead of inserting

BANDED_KIND: Final = KINDS.index("operation")
"""The one kind whose entries copy its altitude band; the others' copies are unbounded.
Under the default policy (``protection.altitude = "ignored"``) an operation's altitude never
separates it from a site or a movement, so an operation's query has an infinite vertical
separation from those kinds: were every entry banded, the entries filter could prune nothing
by altitude for it, and it would read (at 100k stored) 2.4 times as many slots. The copies
cannot follow the policy, which changes at run time: so only operations, the kind that is
separated by altitude from operations, keep theirs, and the other kinds' bands are tested
only at their slot (``candidate_pass.scan``), exactly, whatever the policy."""


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


@kernel
def _entry(vol: Floats, slot: int, entry: Float32s) -> None:
    """A volume's copies of its window and altitude band, rounded outwards. Only an
    operation's band is copied; every other kind's copy is unbounded (see ``BANDED_KIND``)."""
    entry[0] = start_below(vol[slot, 0])
    entry[1] = end_above(vol[slot, 1])
    if int(vol[slot, KO]) & 7 == BANDED_KIND:
        entry[2] = start_below(vol[slot, 2])
        entry[3] = end_above(vol[slot, 3])
    else:
        entry[2] = np.float32(-np.inf)
        entry[3] = np.float32(np.inf)


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
        _entry(vol, slot, entry)
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
            _entry(vol, slot, all_entries[m])
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

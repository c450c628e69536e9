"""The in-memory index that finds conflicts without scanning: ``ConflictIndex``.

``ConflictIndex`` is the conflict engine (docs/architecture.md, "The conflict engine"): volumes
in numpy columns (``engine.store``), a space-time grid (``engine.grid``) and one compiled
pass over the candidates (``engine.candidate_pass``, ``engine.kernels``) whose answers are
those of the rule of ``engine.rule``, exactly.

This module is over 600 lines because ``ConflictIndex`` is one class: every method reads or
changes the same state (declaration slots, name codes, the store and the grid) under one
lock, and cutting the class across files would spread that one invariant over them. What
is not the class lives beside it: the rule (``engine.rule``), the lock (``engine.lock``),
stored rows (``engine.rows``) and the warm-up (``engine.warm_up``). Its API:

- ``put(subject)``, ``remove(id)``, ``get(id)``, ``len(index)``, ``volume_count()``,
  ``applied_seq``: as the service keeps it equal to the committed state;
- ``put_many(items)``: many declarations at once, each a ``Subject`` or a ``(Declared,
  volume documents)`` pair; documents are API.md Volume objects as stored (already valid),
  read without pydantic or shapely (``put_documents`` for one);
- ``put_parsed(declared, volumes)``: one declaration from volumes this process parsed, their
  blocks as its own conflict search encoded them, the volumes not kept (a write, committed);
- ``apply_rows(rows)``: declaration rows as stored (``state``, ``change_seq``, JSON
  ``volumes`` and ``restricts``), the fast path of a restart;
- ``conflicts_of(policy, subject, budget=, only=)``: one ``Found`` per conflicting
  declaration, within a work budget (413 ``TooLarge`` over it), or among some declarations
  only; ``conflicts_at`` also says which ``applied_seq`` the answer holds for;
- ``conflicting_ids(policy, declared, volumes)``: the ids only, for what-if checks in bulk;
- ``intersecting(area, start_s, end_s)``: declarations meeting an area in a window;
- ``stats``: counts of what the compiled pass read and decided, for benchmarks.
"""

from __future__ import annotations

import gc
import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from deconflict.engine.blocks import blocks_of, geojson_of_block
from deconflict.engine.candidate_pass import (
    AREA,
    IDS,
    MEASURE,
    STATS,
    WORK_OVER,
    WORK_SPENT,
    Hits,
    Query,
    Scratch,
    area_rule_arrays,
    first_of_each,
    rule_arrays,
    run_query,
)
from deconflict.engine.cells import home_cells
from deconflict.engine.grid import BULK, Grid, Int32s
from deconflict.engine.lock import SharedLock
from deconflict.engine.query_args import (
    GridArrays,
    QueryArrays,
    Rule,
    Share,
    Stamps,
    StoreArrays,
)
from deconflict.engine.rows import declared_of_row, stored_documents
from deconflict.engine.rule import Declared, Found, Restricts, Subject, pair_rule
from deconflict.engine.store import (
    BUF,
    DECL,
    HI,
    KO,
    LO,
    NEXT,
    T0,
    T1,
    VCOUNT,
    ColumnsBuilder,
    VolumeColumns,
    VolumeStore,
    columns_from_documents,
    columns_of_volumes,
)
from deconflict.engine.warm_up import warm_up
from deconflict.errors import TooLarge
from deconflict.geo.compiled import Floats, Ints
from deconflict.geo.distance import min_distance_m, within_m
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape
from deconflict.policy import KINDS, Policy
from deconflict.settings import check_threads
from deconflict.volumes import (
    Volume,
)

KIND_CODES: Final[dict[str, int]] = {kind: code for code, kind in enumerate(KINDS)}

SHARE_ABOVE: Final = 16_384
"""Grid entries a query volume's plan must read before its slots are shared out to the
index's threads: about half a millisecond of work alone, against some 30 microseconds for
handing a share to another thread and waiting for it."""
_NEVER: Final = 1 << 62

READERS: Final = 4
"""Queries an index answers at once (each with its own scratch and stamps, about 32 bytes
per stored declaration and 4 per stored volume once used); more wait for one to finish."""

CHUNK_VOLUMES: Final = 4
"""Query volumes searched under one hold of the index's shared lock (see ``conflicts_at``)."""

CHANGE_LOG: Final = 100_000
"""Changes to the index remembered by id, for searches that span several holds of its lock."""

UNLIMITED: Final = (1 << 62) - 1
"""The work budget of a query that has none (``budget=None``)."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _share_pool() -> ThreadPoolExecutor:
    """The threads that test the other shares of a heavy query: one process-wide pool,
    started on first use (the compiled pass releases the GIL)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(thread_name_prefix="deconflict-share")
        return _pool


Item = Subject | tuple[Declared, Sequence[Mapping[str, Any]]]
"""What ``put_many`` takes: a Subject, or a declaration with its stored volume documents."""

# --------------------------------------------------------------------------- the index


class _Reader:
    """What one query in flight needs of its own: the scratch of each thread sharing it,
    the slot and declaration stamps, and the marks of ``only``."""

    def __init__(self, threads: int) -> None:
        self.scratch = Scratch()
        self.helpers = [Scratch() for _ in range(threads - 1)]
        self.slot_stamps: Int32s = np.zeros(0, np.int32)
        self.decl_stamps: Int32s = np.zeros(0, np.int32)
        self.only: Int32s = np.zeros(0, np.int32)
        self.stamp = 1
        self.only_mark = 0

    def ready(self, slots: int, decls: int) -> None:
        """Stamps for every slot and declaration of the index as it is now."""
        if len(self.slot_stamps) < slots:
            self.slot_stamps = np.zeros(slots, np.int32)
        if len(self.decl_stamps) < decls:
            self.decl_stamps = np.zeros(decls, np.int32)
            self.only = np.zeros(decls, np.int32)
        if len(self.scratch.known) < decls:
            self.scratch.known = np.zeros((len(self.decl_stamps), 3))

    def next_stamp(self, count: int) -> int:
        if self.stamp + count >= 2**31 - 1:
            self.slot_stamps[:] = 0
            self.decl_stamps[:] = 0
            self.stamp = 1
        stamp = self.stamp
        self.stamp += count + 1
        return stamp

    def mark_only(self, decls: Ints) -> int:
        """Mark the declarations a query is restricted to; returns the mark (never 0)."""
        if self.only_mark >= 2**31 - 2:
            self.only[:] = 0
            self.only_mark = 0
        self.only_mark += 1
        self.only[decls] = self.only_mark
        return self.only_mark


class ConflictIndex:
    """Active declarations in the conflict engine; a write costs O(cells touched).

    Thread-safe: up to ``READERS`` queries run at once, each in its own scratch; a change
    waits for the queries in flight and holds off new ones. The service keeps it equal to
    the committed database state (see ``Deployment.sync_index``); it never holds an
    uncommitted change.
    """

    def __init__(self, threads: int | None = None, share_above: int = SHARE_ABOVE) -> None:
        self._lock = SharedLock()
        self._store = VolumeStore()
        self._grid = Grid()
        # A query volume whose plan reads over ``share_above`` grid entries is shared out
        # to this many threads (``DECONFLICT_CHECK_THREADS`` by default).
        self._threads = max(1, check_threads() if threads is None else threads)
        self._share_above = share_above
        self._readers: list[_Reader] = []  # every one made, at most READERS
        self._idle: list[_Reader] = []
        self._readers_free = threading.Condition(threading.Lock())
        # Declarations, by slot; Python objects only for ids and versions.
        self._slot_of: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._vol_ids: npt.NDArray[np.object_] = np.empty(0, dtype=object)  # by volume slot
        self._versions: list[str] = []
        self._first = np.zeros(0, np.int64)  # first volume slot
        self._codes = np.zeros((0, 4), np.int32)  # kind, owner, role, category
        self._restricts: dict[int, Restricts] = {}
        self._subjects: dict[int, Subject] = {}
        self._free_decls: list[int] = []
        self._names: dict[int, list[str]] = {1: [], 2: [], 3: []}
        self._name_codes: dict[int, dict[str, int]] = {1: {}, 2: {}, 3: {}}
        self.applied_seq = 0
        self._version = 0  # bumped by every declaration put or removed, logged in _changes
        self._changes: deque[tuple[int, str]] = deque(maxlen=CHANGE_LOG)
        self._restrictions = 0  # restriction declarations held
        self._rules: dict[tuple[int, str], tuple[Policy, tuple[Floats, Floats, Ints]]] = {}
        warm_up()

    def __len__(self) -> int:
        return len(self._slot_of)

    @property
    def stats(self) -> Ints:
        """What the compiled pass read and decided, summed over queries and the threads
        that shared them (``STATS``; entries are counted by every thread that read them)."""
        total = np.zeros(STATS, np.int64)
        for reader in list(self._readers):
            for scratch in (reader.scratch, *reader.helpers):
                total += scratch.stats
        return total

    @property
    def threads(self) -> int:
        """The threads a check shares out to when it reads over ``share_above`` entries."""
        return self._threads

    @contextmanager
    def _reading(self) -> Iterator[_Reader]:
        """The shared lock and a reader of one's own, its stamps sized to the index."""
        with self._readers_free:
            while not self._idle and len(self._readers) >= READERS:
                self._readers_free.wait()
            if self._idle:
                reader = self._idle.pop()
            else:
                reader = _Reader(self._threads)
                self._readers.append(reader)
        try:
            with self._lock.shared():
                reader.ready(len(self._store.table), len(self._first))
                yield reader
        finally:
            with self._readers_free:
                self._idle.append(reader)
                self._readers_free.notify()

    def volume_count(self) -> int:
        return len(self._store)

    # -- writes -------------------------------------------------------------------------

    def put(self, subject: Subject) -> None:
        """Insert or replace an active declaration."""
        self.put_many([subject])

    def put_documents(self, declared: Declared, volumes: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace a declaration from its stored volume documents (API.md Volume
        objects, already validated): no pydantic, no shapely."""
        self.put_many([(declared, volumes)])

    def put_parsed(self, declared: Declared, volumes: Sequence[Volume]) -> None:
        """Insert or replace a declaration from volumes this process has parsed, and
        encoded for their own conflict search (``store.blocks_of`` keeps a shape's blocks
        while it lives): nothing is flattened or encoded again. Unlike ``put``, the volumes
        are not kept, so memory does not grow with what a process wrote: the index holds
        what ``put_documents`` of their stored documents would make."""
        self._put_chunk([(declared, ())], encoded=columns_of_volumes(volumes))

    def put_many(self, items: Iterable[Item], batch: int = 50_000) -> None:
        """Insert or replace many declarations; much faster than ``put`` one by one."""
        chunk: list[Item] = []
        ids: set[str] = set()
        added = 0
        # A load makes millions of small objects while the caller often holds millions of
        # parsed documents: every full collection would walk them all (a quarter of the
        # load's time at 1M). Nothing here makes cycles, so the collector waits.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for item in items:
                added += 1
                declared = item if isinstance(item, Subject) else item[0]
                assert declared.id is not None
                if declared.id in ids or len(chunk) >= batch:
                    self._put_chunk(chunk)
                    chunk, ids = [], set()
                chunk.append(item)
                ids.add(declared.id)
            if chunk:
                self._put_chunk(chunk)
            if added >= BULK:
                with self._lock.exclusive():
                    self._grid.compact()
        finally:
            if collecting:
                gc.enable()

    def remove(self, declaration_id: str) -> None:
        with self._lock.exclusive():
            decl = self._slot_of.pop(declaration_id, None)
            if decl is not None:
                self._drop(decl)
                self._log_change(declaration_id)

    def apply_rows(self, rows: Iterable[Mapping[Any, Any]]) -> None:
        """Apply stored declaration rows in ``change_seq`` order (joined with the owner's
        ``owner_role``): active ones are put, others removed.

        ``applied_seq`` moves past a row only once the index holds it: a row that cannot be
        read raises before the run of rows it belongs to changes the index (a run is put
        all or nothing), so a sync that fails is retried from the first row not applied,
        and never skips one."""
        pending: list[Item] = []
        pending_seq = self.applied_seq

        def put_pending() -> None:
            nonlocal pending
            self.put_many(pending)
            pending = []
            self.applied_seq = max(self.applied_seq, pending_seq)

        for row in rows:
            if row["state"] == "active":
                pending.append((declared_of_row(row), stored_documents(row["volumes"])))
                pending_seq = row["change_seq"]
                if len(pending) >= 50_000:
                    put_pending()
            else:
                put_pending()
                self.remove(row["id"])
                self.applied_seq = max(self.applied_seq, row["change_seq"])
        put_pending()

    def _put_chunk(self, items: list[Item], encoded: VolumeColumns | None = None) -> None:
        """``encoded``: the volumes of the chunk's one declaration, encoded already."""
        builder = ColumnsBuilder()
        counts: list[int] = []
        with self._lock.exclusive():
            for item in items:
                if isinstance(item, Subject):
                    for v in item.volumes:
                        builder.add(v.shape.geojson, v.buffer_m, v.lower_m, v.upper_m,
                                    v.start_s, v.end_s)  # fmt: skip
                    counts.append(len(item.volumes))
                else:
                    for document in item[1]:
                        builder.add_document(document)
                    counts.append(len(item[1]))
            # Built before any slot is taken: a chunk that cannot be read changes nothing.
            if encoded is None:
                columns = builder.build()
            else:
                columns, counts = encoded, [len(encoded.t0)]
            decls = self._new_decls(items)
            decl_of_volume = np.repeat(decls, counts)
            codes = self._codes[decl_of_volume].astype(np.int64)
            # Slots in space-time order: the volumes a bucket holds lie near one another.
            lv = self._grid.levels
            order = np.lexsort((columns.t0, home_cells(columns.blocks.caps, lv.band_h[0],
                               lv.bands[0], lv.band_cells[0], lv.band_first[0])))  # fmt: skip
            slots_in_order = self._store.add(
                columns.take(order), (codes[:, 1] * 8 + codes[:, 0])[order], decl_of_volume[order]
            )
            slots = np.empty_like(slots_in_order)
            slots[order] = slots_in_order
            # Link each declaration's volumes, in their order, through column NEXT.
            same = np.append(decl_of_volume[1:] == decl_of_volume[:-1], False)
            self._store.table[slots, NEXT] = np.where(same, np.append(slots[1:], -1), -1)
            starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
            has = np.array(counts) > 0
            self._first[decls[has]] = slots[starts[has]]
            self._first[decls[~has]] = -1
            self._grid.add(self._store.table, slots_in_order, self._store.rows, self._store.codes)
            self._place_ids(slots_in_order)

    def _place_ids(self, slots: Ints) -> None:
        """Each volume slot's declaration id, for answers by id. The strings are made anew
        here, in the slots' space-time order, so those of one query's conflicts lie near
        one another in memory: at a million declarations, reaching ids scattered over the
        heap costs more than the whole compiled pass."""
        if len(self._vol_ids) < len(self._store.table):
            grown = np.empty(len(self._store.table), dtype=object)
            grown[: len(self._vol_ids)] = self._vol_ids
            self._vol_ids = grown
        ids, slot_of = self._ids, self._slot_of
        placed: set[int] = set()
        vol_ids: list[str | None] = []
        for decl in self._store.table[slots, DECL].astype(np.int64).tolist():
            if decl not in placed:
                placed.add(decl)
                old = ids[decl]
                if old is not None:
                    new = ids[decl] = old.encode().decode()
                    del slot_of[old]  # the dict keeps its key object: give it the new one
                    slot_of[new] = decl
            vol_ids.append(ids[decl])
        self._vol_ids[slots] = vol_ids

    def _new_decls(self, items: list[Item]) -> Ints:
        """Slots for the items' declarations (replacing any with the same id)."""
        decls: list[int] = []
        codes: list[tuple[int, int, int, int]] = []
        slot_of, ids, versions, free = self._slot_of, self._ids, self._versions, self._free_decls
        owners, roles, categories = (self._name_codes[f] for f in (1, 2, 3))
        code = self._code
        for item in items:
            declared = item if isinstance(item, Subject) else item[0]
            identifier = declared.id
            assert identifier is not None
            old = slot_of.pop(identifier, None)
            if old is not None:
                self._drop(old)
            if free:
                decl = free.pop()
                ids[decl] = identifier
                versions[decl] = declared.version
            else:
                decl = len(ids)
                ids.append(identifier)
                versions.append(declared.version)
            owner = owners.get(declared.owner)
            role = roles.get(declared.owner_role)
            category = categories.get(declared.category)
            codes.append(
                (
                    KIND_CODES[declared.kind],
                    code(1, declared.owner) if owner is None else owner,
                    code(2, declared.owner_role) if role is None else role,
                    code(3, declared.category) if category is None else category,
                )
            )
            if declared.restricts is not None:
                self._restricts[decl] = declared.restricts
            if declared.kind == "restriction":
                self._restrictions += 1
            if isinstance(item, Subject):
                self._subjects[decl] = item
            slot_of[identifier] = decl
            decls.append(decl)
            self._log_change(identifier)
        if len(ids) > len(self._first):
            size = max(1024, 2 * len(ids))
            self._first = np.resize(self._first, size)
            grown = np.zeros((size, 4), np.int32)
            grown[: len(self._codes)] = self._codes
            self._codes = grown
        result = np.array(decls, dtype=np.int64)
        if codes:
            self._codes[result] = codes
        return result

    def _log_change(self, identifier: str) -> None:
        self._version += 1
        self._changes.append((self._version, identifier))

    def _code(self, field: int, name: str) -> int:
        codes = self._name_codes[field]
        code = codes.get(name)
        if code is None:
            code = codes[name] = len(self._names[field])
            self._names[field].append(name)
        return code

    def _drop(self, decl: int) -> None:
        self._restrictions -= int(self._codes[decl, 0]) == KIND_CODES["restriction"]
        slots = np.array(self._volume_slots(decl), dtype=np.int64)
        store = self._store
        self._grid.remove(store.table, slots, store.rows, store.codes)
        store.remove([int(s) for s in slots])
        self._ids[decl] = None
        self._versions[decl] = ""
        self._restricts.pop(decl, None)
        self._subjects.pop(decl, None)
        self._free_decls.append(decl)

    def _volume_slots(self, decl: int) -> list[int]:
        slots = []
        slot = int(self._first[decl])
        while slot >= 0:
            slots.append(slot)
            slot = int(self._store.table[slot, NEXT])
        return slots

    # -- reads --------------------------------------------------------------------------

    def get(self, declaration_id: str) -> Subject | None:
        """The declaration as a Subject (rebuilt from the columns if it was loaded in bulk:
        same geometry, without consecutive duplicate positions)."""
        with self._lock.shared():
            decl = self._slot_of.get(declaration_id)
            if decl is None:
                return None
            subject = self._subjects.get(decl)
            if subject is not None:
                return subject
            declared = self._declared(decl)
            volumes = tuple(self._volume(slot) for slot in self._volume_slots(decl))
        return declared.with_volumes(volumes)

    def conflicts_of(
        self,
        policy: Policy,
        subject: Subject,
        *,
        budget: int | None = None,
        only: Iterable[str] | None = None,
    ) -> list[Found]:
        """Every stored declaration that conflicts with ``subject``, one Found each.

        ``budget``: the most work (``candidate_pass.WORK_SPENT`` units) the search may
        take; over it, 413 ``too_large``. ``only``: the ids of the declarations to look
        at (the others are left out of the answer, unmeasured)."""
        return self.conflicts_at(policy, subject, budget=budget, only=only)[0]

    def conflicts_at(
        self,
        policy: Policy,
        subject: Subject,
        *,
        budget: int | None = None,
        only: Iterable[str] | None = None,
    ) -> tuple[list[Found], int]:
        """``conflicts_of``, and the ``applied_seq`` of the index it searched: its answer
        holds for every change up to that one (and maybe some later ones).

        The query's volumes are searched ``CHUNK_VOLUMES`` at a time, each chunk under the
        shared lock, so a change to the index (a write's sync) waits for one chunk, not for
        a whole heavy search. Declarations changed between the chunks are searched again,
        alone, under the last chunk's lock: the answer is the one a search of the index as
        it stood then would give."""
        query = Query.of(columns_of_volumes(subject.volumes), volumes=subject.volumes)
        rule = self._rule(policy, subject.kind)
        wanted = None if only is None else set(only)
        found: dict[str, list[Any]] = {}  # id: [distance, start, end, Declared]
        spent = [0]
        search = partial(self._search_into, found, policy, subject, rule, budget, spent)
        version = -1
        seq = self.applied_seq
        count = len(query.table)
        for lo in range(0, count, CHUNK_VOLUMES):
            with self._reading() as reader:
                if version < 0:
                    version = self._version
                search(reader, query.part(lo, lo + CHUNK_VOLUMES), wanted)
                if lo + CHUNK_VOLUMES < count:
                    continue
                seq = self.applied_seq
                if self._version != version:  # changed since the first chunk
                    changed = self._changed_since(version)
                    if changed is None:  # too much to say what: all again
                        found.clear()
                        search(reader, query, wanted)
                    else:
                        for identifier in changed:
                            found.pop(identifier, None)
                        again = changed if wanted is None else changed & wanted
                        if again:
                            search(reader, query, again)
        result = []
        for distance, start, end, other in found.values():
            reason = self._reason(policy, subject, other)
            if reason is not None:
                result.append(Found(other, reason, distance, start, end))
        result.sort(key=lambda f: (f.min_distance_m, f.other.id or ""))
        return result, seq

    def _search_into(
        self,
        found: dict[str, list[Any]],
        policy: Policy,
        subject: Subject,
        rule: tuple[Floats, Floats, Ints],
        budget: int | None,
        spent: list[int],
        reader: _Reader,
        query: Query,
        only: set[str] | None,
    ) -> None:
        """Search ``query`` (some of ``subject``'s volumes) and fold what conflicts into
        ``found``, by declaration id; ``spent`` carries the work across calls. Under the
        shared lock."""
        del policy  # the rule's arrays are in ``rule``
        only_mark = 0
        if only is not None:
            decls = [d for i in only if (d := self._slot_of.get(i)) is not None]
            if not decls:
                return
            only_mark = reader.mark_only(np.array(decls, np.int64))
        # What earlier chunks found seeds the pass's pruning (see ``candidate_pass.scan``):
        # a later chunk then skips what cannot improve on it, as one search would.
        seed_decls = []
        seed_values = []
        for identifier, (distance, start, end, _) in found.items():
            decl = self._slot_of.get(identifier)
            if decl is not None and math.isfinite(distance):
                seed_decls.append(decl)
                seed_values.append((distance, start, end))
        seed = None
        if seed_decls:
            seed = (np.array(seed_decls, np.int64), np.array(seed_values).reshape(-1, 3))
        hits = self._run(
            reader,
            query,
            rule,
            subject.owner,
            subject.id,
            MEASURE,
            budget,
            only_mark,
            spent[0],
            seed,
        )
        spent[0] += hits.work
        self._settle(query, hits, rule, measure=True)
        table = self._store.table
        by_decl: dict[int, list[float]] = {}
        for slot, number, distance in zip(
            hits.slots.tolist(), hits.queries.tolist(), hits.distances.tolist(), strict=True
        ):
            q = query.table[number]
            start = max(q[T0], table[slot, T0])
            end = min(q[T1], table[slot, T1])
            decl = int(table[slot, DECL])
            seen = by_decl.get(decl)
            if seen is None:
                by_decl[decl] = [distance, start, end]
            else:
                seen[0] = min(seen[0], distance)
                seen[1] = min(seen[1], start)
                seen[2] = max(seen[2], end)
        for decl, (distance, start, end) in by_decl.items():
            other = self._subjects.get(decl) or self._declared(decl)
            assert other.id is not None
            known = found.get(other.id)
            if known is None:
                found[other.id] = [distance, start, end, other]
            else:
                known[0] = min(known[0], distance)
                known[1] = min(known[1], start)
                known[2] = max(known[2], end)
                known[3] = other

    def _changed_since(self, version: int) -> set[str] | None:
        """The ids put or removed after ``version``, or None when the log no longer
        reaches back that far."""
        if self._version == version:
            return set()
        if not self._changes or self._changes[0][0] > version + 1:
            return None
        return {identifier for v, identifier in self._changes if v > version}

    def conflicting_ids(
        self,
        policy: Policy,
        declared: Declared,
        volumes: Sequence[Mapping[str, Any]] | Sequence[Volume],
    ) -> list[str]:
        """The ids of the stored declarations that would conflict with ``declared`` having
        these volumes (API.md Volume documents, trusted, or ``Volume`` objects): a what-if
        check that measures nothing and builds no ``Found``."""
        if volumes and isinstance(volumes[0], Volume):
            vols: Any = volumes
            query = Query.of(columns_of_volumes(vols), volumes=vols)
        else:
            docs: Any = volumes
            query = Query.of(columns_from_documents(docs), documents=docs)
        rule = self._rule(policy, declared.kind)
        restriction = KIND_CODES["restriction"]
        with self._reading() as reader:
            hits = self._run(reader, query, rule, declared.owner, declared.id, IDS)
            repeats = hits.shared or bool(hits.borderline.any())
            self._settle(query, hits, rule, measure=False)
            slots = hits.slots
            decls = self._store.table[slots, DECL].astype(np.int64)
            if repeats:  # else the pass reported each declaration once
                first = first_of_each(decls, reader.decl_stamps, reader.next_stamp(0))
                decls, slots = decls[first], slots[first]
            if declared.kind == "restriction":
                checked = decls
            elif self._restrictions:
                checked = decls[self._codes[decls, 0] == restriction]
            else:
                checked = decls[:0]
            if len(checked):  # restrictions restrict only some owners, roles and categories
                refused = {
                    int(d)
                    for d in checked
                    if pair_rule(policy, declared, self._subjects.get(d) or self._declared(d))
                    is None
                }
                slots = slots[[d not in refused for d in decls.tolist()]]
            return self._vol_ids[slots].tolist()  # type: ignore[no-any-return]

    def intersecting(self, area: Shape | None, start_s: float, end_s: float) -> list[Declared]:
        """Active declarations with a volume meeting ``area`` (buffers counted) in the window."""
        with self._reading() as reader:
            table = self._store.table[: self._store.high_water]
            if area is None:
                live = (table[:, VCOUNT] > 0) & (table[:, T0] < end_s) & (start_s < table[:, T1])
                decls = set(table[live, DECL].astype(np.int64).tolist())
            else:
                blocks = blocks_of(area)
                columns = VolumeColumns(
                    blocks,
                    np.array([start_s]),
                    np.array([end_s]),
                    np.array([-math.inf]),
                    np.array([math.inf]),
                    np.array([0.0]),
                )
                hits = self._run(reader, Query.of(columns), area_rule_arrays(), None, None, AREA)
                keep = ~hits.borderline
                for i in np.flatnonzero(hits.borderline):
                    slot = int(hits.slots[i])
                    keep[i] = within_m(area, self._shape(slot), float(table[slot, BUF]))
                decls = set(table[hits.slots[keep], DECL].astype(np.int64).tolist())
            return [self._subjects.get(d) or self._declared(d) for d in decls]

    # -- the compiled pass --------------------------------------------------------------

    def _run(
        self,
        reader: _Reader,
        query: Query,
        rule: tuple[Floats, Floats, Ints],
        owner: str | None,
        declaration_id: str | None,
        mode: int,
        budget: int | None = None,
        only_mark: int = 0,
        spent_before: int = 0,
        seed: tuple[Ints, Floats] | None = None,
    ) -> Hits:
        """The compiled pass over the query's volumes, in this thread until one of them
        reads more than ``share_above`` grid entries; from that one on, each of the index's
        threads tests its share of the slots (see ``candidate_pass.run_query``). 413 when
        the work of all threads together, and ``spent_before``, exceeds ``budget``.
        ``seed``: declarations already known to conflict, with their nearest distance and
        time overlap so far, for MEASURE's pruning."""
        owner_code = -1 if owner is None else self._name_codes[1].get(owner, -1)
        q_decl = -1 if declaration_id is None else self._slot_of.get(declaration_id, -1)
        scratches = [reader.scratch, *reader.helpers]
        for scratch in scratches:
            scratch.grow(len(query.codes) + 1, self._store.max_block + 1, 0)
        split_above = self._share_above if reader.helpers else _NEVER
        limit = UNLIMITED if budget is None else budget
        # The kernel's arguments, by name (``query_args``): under the shared lock, the
        # grid and the store stay as they are for the whole pass.
        grid, store = GridArrays.of(self._grid), StoreArrays.of(self._store)
        arrays = query.arrays()
        kernel_rule = Rule(
            sep_h=rule[0], sep_v=rule[1], eligible=rule[2], owner=owner_code, decl=q_decl,
            mode=mode,
        )  # fmt: skip
        while True:
            for scratch in scratches:
                scratch.work[:] = (0, limit - spent_before, 0)
            stamp = reader.next_stamp(len(query.table))
            if seed is not None and len(seed[0]):
                reader.decl_stamps[seed[0]] = stamp
                reader.scratch.known[seed[0]] = seed[1]
            stamps = Stamps(
                slot_stamps=reader.slot_stamps, decl_stamps=reader.decl_stamps, stamp=stamp,
                only=reader.only, only_mark=only_mark,
            )  # fmt: skip
            pass_ = partial(self._pass, grid, store, stamps, arrays, kernel_rule)
            alone = Share(first=0, n=0, part=0, parts=1, split_above=split_above)
            n, stopped = pass_(reader.scratch, alone)
            counts = [n]
            if stopped < len(query.table) and n <= reader.scratch.out_size:
                parts = len(scratches)
                shares = [
                    _share_pool().submit(
                        pass_,
                        helper,
                        Share(first=stopped, n=0, part=part, parts=parts, split_above=_NEVER),
                    )
                    for part, helper in enumerate(reader.helpers, start=1)
                ]
                own = Share(first=stopped, n=n, part=0, parts=parts, split_above=_NEVER)
                counts[0], _ = pass_(reader.scratch, own)
                counts += [share.result()[0] for share in shares]
            used = scratches[: len(counts)]
            spent = sum(int(s.work[WORK_SPENT]) for s in used)
            if any(s.work[WORK_OVER] for s in used) or spent_before + spent > limit:
                raise TooLarge(
                    f"this search needs more than the policy's budget of {limit:,} "
                    "vertex-pair comparisons (limits.work_per_request) among the stored "
                    "declarations near these volumes; send fewer, smaller or simpler volumes",
                    field="volumes",
                    extra={"budget": limit},
                )
            if all(c <= s.out_size for c, s in zip(counts, used, strict=True)):
                break
            for c, scratch in zip(counts, used, strict=True):
                scratch.grow(0, 0, c)
        outputs = list(zip(used, counts, strict=True))
        return Hits(
            np.concatenate([s.out_slot[:c] for s, c in outputs]),
            np.concatenate([s.out_q[:c] for s, c in outputs]),
            np.concatenate([s.out_d[:c] for s, c in outputs]),
            np.concatenate([s.out_flag[:c] != 0 for s, c in outputs]),
            shared=len(outputs) > 1,
            work=spent,
        )

    @staticmethod
    def _pass(
        grid: GridArrays,
        store: StoreArrays,
        stamps: Stamps,
        query: QueryArrays,
        rule: Rule,
        scratch: Scratch,
        share: Share,
    ) -> tuple[int, int]:
        """One call of the compiled pass, in one thread with its own scratch."""
        return run_query(grid, store, stamps, query, rule, scratch.arrays(), share)

    def _settle(
        self, query: Query, hits: Hits, rule: tuple[Floats, Floats, Ints], *, measure: bool
    ) -> None:
        """Decide the pairs the kernel left to ``geometry`` (within a hair of the limit)."""
        if not hits.borderline.any():
            return
        table = self._store.table
        keep = ~hits.borderline
        for i in np.flatnonzero(hits.borderline):
            slot = int(hits.slots[i])
            number = int(hits.queries[i])
            kind = int(table[slot, KO]) & 7
            shape_q = query.shape(number)
            shape_s = self._shape(slot)
            limit = float(query.table[number, BUF]) + float(table[slot, BUF]) + rule[0][kind]
            if within_m(shape_q, shape_s, limit):
                keep[i] = True
                if measure:
                    hits.distances[i] = min_distance_m(shape_q, shape_s)
        hits.slots = hits.slots[keep]
        hits.queries = hits.queries[keep]
        hits.distances = hits.distances[keep]
        hits.borderline = hits.borderline[keep]

    def _rule(self, policy: Policy, kind: str) -> tuple[Floats, Floats, Ints]:
        """The rule's arrays for a query of ``kind`` (policies are parsed once per text, so
        the same object comes back; keep it to be sure the id is not reused)."""
        cached = self._rules.get((id(policy), kind))
        if cached is None or cached[0] is not policy:
            cached = (policy, rule_arrays(policy, kind))
            self._rules[(id(policy), kind)] = cached
        return cached[1]

    def _reason(self, policy: Policy, subject: Declared, other: Declared) -> str | None:
        if subject.kind != "restriction" and other.kind != "restriction":
            return "separation"
        rule = pair_rule(policy, subject, other)
        return None if rule is None else rule[0]

    # -- rebuilding objects -------------------------------------------------------------

    def _declared(self, decl: int) -> Declared:
        kind, owner, role, category = (int(c) for c in self._codes[decl])
        return Declared(
            id=self._ids[decl],
            kind=KINDS[kind],
            owner=self._names[1][owner],
            owner_role=self._names[2][role],
            version=self._versions[decl],
            category=self._names[3][category],
            restricts=self._restricts.get(decl),
        )

    def _shape(self, slot: int) -> Shape:
        decl = int(self._store.table[slot, DECL])
        subject = self._subjects.get(decl)
        if subject is not None:
            return subject.volumes[self._volume_slots(decl).index(slot)].shape
        rows, codes = self._store.block(slot)
        return parse_geometry(geojson_of_block(rows, codes), "stored")

    def _volume(self, slot: int) -> Volume:
        row = self._store.table[slot]
        return Volume(
            shape=self._shape(slot),
            buffer_m=float(row[BUF]),
            lower_m=None if math.isinf(row[LO]) else float(row[LO]),
            upper_m=None if math.isinf(row[HI]) else float(row[HI]),
            start=datetime.fromtimestamp(float(row[T0]), UTC),
            end=None if math.isinf(row[T1]) else datetime.fromtimestamp(float(row[T1]), UTC),
        )

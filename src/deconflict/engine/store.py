"""The engine's columnar store of volumes: numbers in numpy arrays, no Python object per volume.

Every stored volume has a slot, a row of ``VolumeStore.table`` (float64, see the ``T0`` ...
``VCOUNT`` column numbers): its time window in seconds since the epoch (``T1`` is ``inf`` when
open-ended), its altitude band (``-inf``/``inf`` when unbounded), buffer, a cap holding its
geometry (centre and angular radius, and the sines of the latitudes the cap spans), its
declaration's owner and kind codes as ``owner * 8 + kind``, the next volume of the same
declaration (``-1`` after the last), its declaration's slot, and where its geometry lies in the
vertex pool. A row is 128 bytes: the candidate pass reads one per candidate. Freed slots are
reused.

The vertex pool holds every geometry as a block of rows, as ``engine.blocks`` describes: unit
vectors with the original GeoJSON degrees, a header per polygon part, and one ``int8`` code per
row. Blocks are appended; when more than half the pool is garbage it is compacted (amortised
O(1) per write). Volumes come in as ``VolumeColumns``, from stored documents or from parsed
volumes, without pydantic or shapely.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from deconflict.engine.blocks import Blocks, blocks_of, encode_flat, flatten, take_blocks
from deconflict.geo.compiled import Codes, Floats, Ints
from deconflict.volumes import Volume

# Columns of VolumeStore.table.
T0, T1, LO, HI, BUF, CX, CY, CZ, CR, ZLO, ZHI, KO, NEXT, DECL, VOFF, VCOUNT = range(16)
COLUMNS: Final = 16
ROW_ALIGN: Final = 8 * COLUMNS  # bytes: a row is two cache lines (see aligned_table)


# --------------------------------------------------------------------------- times and docs


_NO_ALTITUDE: Final[Mapping[str, Any]] = {}


def seconds(text: str) -> float:
    """An RFC 3339 time as ``datetime.timestamp()`` gives it (the same float)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # never stored so; read as UTC rather than local time
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class VolumeColumns:
    """Volumes ready for ``VolumeStore.add``: blocks and one row of numbers each."""

    blocks: Blocks
    t0: Floats
    t1: Floats
    lo: Floats
    hi: Floats
    buf: Floats

    def take(self, order: Ints) -> VolumeColumns:
        """The same volumes in another order."""
        b = self.blocks
        rows, codes, offsets = take_blocks(b.rows, b.codes, b.offsets, order)
        return VolumeColumns(
            Blocks(rows, codes, offsets, b.caps[order]),
            self.t0[order],
            self.t1[order],
            self.lo[order],
            self.hi[order],
            self.buf[order],
        )


class ColumnsBuilder:
    """Collects volumes, from documents or from ``Volume``-like objects, and encodes them
    all at once (one compiled call per batch, not per volume)."""

    def __init__(self) -> None:
        self.t0: list[float] = []
        self.t1: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.buf: list[float] = []
        self.lons: list[float] = []
        self.lats: list[float] = []
        self.codes: list[int] = []
        self.offsets = [0]

    def add_document(self, document: Mapping[str, Any]) -> None:
        """An API.md Volume document (``geometry``, ``buffer_m``, ``altitude``, ``time``),
        trusted to be valid."""
        time = document["time"]
        start = datetime.fromisoformat(time["start"])
        self.t0.append(start.timestamp() if start.tzinfo is not None else seconds(time["start"]))
        end = time.get("end")
        self.t1.append(math.inf if end is None else seconds(end))
        altitude = document.get("altitude") or _NO_ALTITUDE
        lower = altitude.get("lower_m")
        upper = altitude.get("upper_m")
        self.lo.append(-math.inf if lower is None else float(lower))
        self.hi.append(math.inf if upper is None else float(upper))
        self.buf.append(float(document.get("buffer_m", 0.0)))
        codes = self.codes
        flatten(document["geometry"], self.lons, self.lats, codes)
        self.offsets.append(len(codes))

    def add(self, geometry: Mapping[str, Any], buffer_m: float, lower_m: float | None,
            upper_m: float | None, start_s: float, end_s: float) -> None:  # fmt: skip
        """A volume already parsed (``end_s`` is ``inf`` when open-ended)."""
        self.t0.append(start_s)
        self.t1.append(end_s)
        self.lo.append(-math.inf if lower_m is None else lower_m)
        self.hi.append(math.inf if upper_m is None else upper_m)
        self.buf.append(buffer_m)
        flatten(geometry, self.lons, self.lats, self.codes)
        self.offsets.append(len(self.codes))

    def build(self) -> VolumeColumns:
        blocks = encode_flat(
            np.array(self.lons, dtype=np.float64),
            np.array(self.lats, dtype=np.float64),
            np.array(self.codes, dtype=np.int8),
            np.array(self.offsets, dtype=np.int64),
        )
        return VolumeColumns(
            blocks,
            np.array(self.t0, dtype=np.float64),
            np.array(self.t1, dtype=np.float64),
            np.array(self.lo, dtype=np.float64),
            np.array(self.hi, dtype=np.float64),
            np.array(self.buf, dtype=np.float64),
        )


def columns_from_documents(documents: Iterable[Mapping[str, Any]]) -> VolumeColumns:
    """Volumes from API.md Volume documents, trusted to be valid: no pydantic, no shapely."""
    builder = ColumnsBuilder()
    for document in documents:
        builder.add_document(document)
    return builder.build()


def columns_of_volumes(volumes: Sequence[Volume]) -> VolumeColumns:
    """Volumes already parsed (their shapes' blocks are reused)."""
    blocks = [blocks_of(v.shape) for v in volumes]
    sizes = [len(b.codes) for b in blocks]
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    merged = Blocks(
        np.concatenate([b.rows for b in blocks]) if blocks else np.zeros((0, 5)),
        np.concatenate([b.codes for b in blocks]) if blocks else np.zeros(0, np.int8),
        offsets,
        np.concatenate([b.caps for b in blocks]) if blocks else np.zeros((0, 6)),
    )
    return VolumeColumns(
        merged,
        np.array([v.start_s for v in volumes], dtype=np.float64),
        np.array([v.end_s for v in volumes], dtype=np.float64),
        np.array([-math.inf if v.lower_m is None else v.lower_m for v in volumes], np.float64),
        np.array([math.inf if v.upper_m is None else v.upper_m for v in volumes], np.float64),
        np.array([v.buffer_m for v in volumes], dtype=np.float64),
    )


# --------------------------------------------------------------------------- the store


class VolumeStore:
    """Slots of volumes and the vertex pool. Not thread-safe: the index locks around it."""

    def __init__(self) -> None:
        self.table: Floats = aligned_table(0)
        self.rows: Floats = np.zeros((0, 5))
        self.codes: Codes = np.zeros(0, np.int8)
        self.used_rows = 0
        self.live_rows = 0
        self.high_water = 0  # slots ever used: [0, high_water)
        self._free: list[int] = []
        self.max_block = 1

    def __len__(self) -> int:
        return self.high_water - len(self._free)

    def add(self, columns: VolumeColumns, owner_kind: Ints, decl: Ints) -> Ints:
        """Store volumes (``owner_kind`` is ``owner * 8 + kind``); returns their slots. The
        caller links each declaration's volumes (column ``NEXT``)."""
        blocks = columns.blocks
        n = len(columns.t0)
        slots = self._take_slots(n)
        base = self._append_rows(blocks.rows, blocks.codes)
        table = self.table
        table[slots, T0] = columns.t0
        table[slots, T1] = columns.t1
        table[slots, LO] = columns.lo
        table[slots, HI] = columns.hi
        table[slots, BUF] = columns.buf
        table[slots, CX : ZHI + 1] = blocks.caps
        table[slots, KO] = owner_kind
        table[slots, DECL] = decl
        table[slots, VOFF] = base + blocks.offsets[:-1]
        sizes = np.diff(blocks.offsets)
        table[slots, VCOUNT] = sizes
        if n:
            self.max_block = max(self.max_block, int(sizes.max()))
        return slots

    def remove(self, slots: Sequence[int]) -> None:
        for slot in slots:
            self.live_rows -= int(self.table[slot, VCOUNT])
            self.table[slot, VCOUNT] = 0
            self.table[slot, DECL] = -1
            self._free.append(slot)
        if self.used_rows > 1024 and self.live_rows < self.used_rows // 2:
            self._compact()

    def block(self, slot: int) -> tuple[Floats, Codes]:
        start = int(self.table[slot, VOFF])
        end = start + int(self.table[slot, VCOUNT])
        return self.rows[start:end], self.codes[start:end]

    def _take_slots(self, n: int) -> Ints:
        reused = [self._free.pop() for _ in range(min(n, len(self._free)))]
        fresh = n - len(reused)
        if self.high_water + fresh > len(self.table):
            grown = aligned_table(_grown(len(self.table), self.high_water + fresh))
            grown[: self.high_water] = self.table[: self.high_water]
            self.table = grown
        new = np.arange(self.high_water, self.high_water + fresh, dtype=np.int64)
        self.high_water += fresh
        return np.concatenate((np.array(reused, dtype=np.int64), new))

    def _append_rows(self, rows: Floats, codes: Codes) -> int:
        n = len(rows)
        if self.used_rows + n > len(self.rows):
            size = _grown(len(self.rows), self.used_rows + n)
            grown_rows = np.zeros((size, 5))
            grown_codes = np.zeros(size, np.int8)
            grown_rows[: self.used_rows] = self.rows[: self.used_rows]
            grown_codes[: self.used_rows] = self.codes[: self.used_rows]
            self.rows, self.codes = grown_rows, grown_codes
        base = self.used_rows
        self.rows[base : base + n] = rows
        self.codes[base : base + n] = codes
        self.used_rows += n
        self.live_rows += n
        return base

    def _compact(self) -> None:
        live = np.flatnonzero(self.table[: self.high_water, VCOUNT] > 0)
        starts = self.table[live, VOFF].astype(np.int64)
        sizes = self.table[live, VCOUNT].astype(np.int64)
        order = np.argsort(starts)
        live, starts, sizes = live[order], starts[order], sizes[order]
        new_starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        total = int(sizes.sum())
        index = np.repeat(starts - new_starts, sizes) + np.arange(total)
        rows = np.zeros((_grown(0, total), 5))
        codes = np.zeros(len(rows), np.int8)
        rows[:total] = self.rows[index]
        codes[:total] = self.codes[index]
        self.rows, self.codes = rows, codes
        self.table[live, VOFF] = new_starts
        self.used_rows = self.live_rows = total


def aligned_table(rows: int) -> Floats:
    """A zeroed table of ``rows`` rows of ``COLUMNS`` float64, each starting on a 128-byte
    boundary.

    numpy aligns big arrays to 16 bytes only, so each 128-byte row of the table would
    straddle three cache lines instead of two; a query reads tens of thousands of rows,
    each one a cache miss, and prefetches exactly the two lines a row is meant to take.
    """
    size = rows * COLUMNS * 8
    raw = np.zeros(size + ROW_ALIGN, np.uint8)
    skip = -raw.ctypes.data % ROW_ALIGN
    return raw[skip : skip + size].view(np.float64).reshape(rows, COLUMNS)


def _grown(size: int, needed: int) -> int:
    """A new capacity: doubling while small, then by a quarter (amortised O(1) either way,
    and at a million volumes a doubled table is a fifth of the memory for nothing)."""
    factor = 2.0 if size < 1 << 16 else 1.25
    return max(4096, needed, int(size * factor))

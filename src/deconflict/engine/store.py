"""The engine's columnar store of volumes: numbers in numpy arrays, no Python object per volume.

Every stored volume has a slot, a row of ``VolumeStore.table`` (float64, see the ``T0`` ...
``VCOUNT`` column numbers): its time window in seconds since the epoch (``T1`` is ``inf`` when
open-ended), its altitude band (``-inf``/``inf`` when unbounded), buffer, a cap holding its
geometry (centre and angular radius, and the sines of the latitudes the cap spans), its
declaration's owner and kind codes as ``owner * 8 + kind``, the next volume of the same
declaration (``-1`` after the last), its declaration's slot, and where its geometry lies in the
vertex pool. A row is 128 bytes: the candidate pass reads one per candidate. Freed slots are
reused.

The vertex pool holds every geometry as a block of rows, as ``spherical`` describes: unit
vectors with the original GeoJSON degrees, a header per polygon part, and one ``int8`` code per
row. Blocks are appended; when more than half the pool is garbage it is compacted (amortised
O(1) per write).

``encode_geometries`` turns GeoJSON geometries (already validated: stored rows were checked
when they were accepted) into blocks without pydantic or shapely. It removes consecutive
duplicate positions as ``geometry.parse_geometry`` does, so both see the same vertices.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from deconflict.engine.kernels import (
    CONT,
    LINE,
    POINT,
    POLY,
    RING,
    Codes,
    Floats,
    Ints,
    central_angle,
    compiled,
    kernel,
)
from deconflict.geo.geometry import Shape, enclosing_cap
from deconflict.volumes import Volume

# Columns of VolumeStore.table.
T0, T1, LO, HI, BUF, CX, CY, CZ, CR, ZLO, ZHI, KO, NEXT, DECL, VOFF, VCOUNT = range(16)
COLUMNS: Final = 16
ROW_ALIGN: Final = 8 * COLUMNS  # bytes: a row is two cache lines (see aligned_table)

# Two positions closer than this on the unit sphere are one (geometry._SAME_POSITION).
_SAME_POSITION: Final = 1e-12
# A polygon part's cap must stay well inside a hemisphere for its gnomonic projection.
_WIDE_PART: Final = math.radians(85.0)


@dataclass
class Blocks:
    """Encoded geometries: rows, codes, and where each geometry's block starts (``offsets``
    has one more entry than there are geometries)."""

    rows: Floats
    codes: Codes
    offsets: Ints
    caps: Floats  # (n, 6): cx, cy, cz, radius, zlo, zhi


# --------------------------------------------------------------------------- flattening


def flatten(
    geometry: Mapping[str, Any], lons: list[float], lats: list[float], codes: list[int]
) -> None:
    """Append a GeoJSON geometry's positions with their row codes (polygon parts get a
    header row, to be filled by the encoder; closing positions are left out)."""
    kind = geometry["type"]
    coordinates = geometry["coordinates"]
    if kind == "Point":
        codes.append(POINT)
        lons.append(coordinates[0])
        lats.append(coordinates[1])
    elif kind == "LineString":
        _run(coordinates, LINE, lons, lats, codes)
    elif kind == "Polygon":
        _polygon(coordinates, lons, lats, codes)
    elif kind == "MultiPolygon":
        for polygon in coordinates:
            _polygon(polygon, lons, lats, codes)
    else:
        raise ValueError(f"not a stored geometry type: {kind!r}")


def _run(positions: Sequence[Sequence[float]], first: int, lons: list[float],
         lats: list[float], codes: list[int]) -> None:  # fmt: skip
    codes.append(first)
    codes.extend([CONT] * (len(positions) - 1))
    for position in positions:
        lons.append(position[0])
        lats.append(position[1])


def _polygon(rings: Sequence[Sequence[Sequence[float]]], lons: list[float],
             lats: list[float], codes: list[int]) -> None:  # fmt: skip
    codes.append(POLY)
    lons.append(0.0)
    lats.append(0.0)
    for ring in rings:
        _run(ring[:-1], RING, lons, lats, codes)


def encode_geometries(geometries: Iterable[Mapping[str, Any]]) -> Blocks:
    """Blocks for GeoJSON geometries (Point, LineString, Polygon, MultiPolygon)."""
    lons: list[float] = []
    lats: list[float] = []
    codes: list[int] = []
    offsets = [0]
    for geometry in geometries:
        flatten(geometry, lons, lats, codes)
        offsets.append(len(codes))
    return encode_flat(
        np.array(lons, dtype=np.float64),
        np.array(lats, dtype=np.float64),
        np.array(codes, dtype=np.int8),
        np.array(offsets, dtype=np.int64),
    )


def encode_flat(lons: Floats, lats: Floats, codes: Codes, offsets: Ints) -> Blocks:
    """Blocks from flattened positions (see ``flatten``)."""
    rows, out_codes, out_offsets, caps, wide = _encode(lons, lats, codes, offsets)
    for row in np.flatnonzero(wide):
        _fix_wide_part(rows, out_codes, int(row))
    if len(wide) and wide.any():
        caps = _volume_caps(rows, out_codes, out_offsets)
    return Blocks(rows, out_codes, out_offsets, caps)


def _fix_wide_part(rows: Floats, codes: Codes, header: int) -> None:
    """A polygon whose vertex-mean cap is too wide for a gnomonic projection: use
    geometry's near-smallest enclosing cap instead (validated parts fit in 60 degrees)."""
    end = header + 2  # the shell: its RING row and the CONT rows after it
    while end < len(codes) and codes[end] == CONT:
        end += 1
    center, radius = enclosing_cap(rows[header + 1 : end, :3])
    rows[header, :3] = center
    rows[header, 3] = radius
    rows[header, 4] = math.cos(radius)


# --------------------------------------------------------------------------- compiled encoding


@kernel
def _unit(lon_deg: float, lat_deg: float) -> tuple[float, float, float]:
    lon = math.radians(lon_deg)
    lat = math.radians(lat_deg)
    c = math.cos(lat)
    return c * math.cos(lon), c * math.sin(lon), math.sin(lat)


@kernel
def _cap(rows: Floats, codes: Codes, start: int, end: int, skip_headers: bool) -> tuple[
    float, float, float, float
]:  # fmt: skip
    """Centre (normalised mean) and radius of a cap holding the vertex rows [start, end)."""
    sx = sy = sz = 0.0
    for i in range(start, end):
        if skip_headers and codes[i] == POLY:
            continue
        sx += rows[i, 0]
        sy += rows[i, 1]
        sz += rows[i, 2]
    norm = math.sqrt(sx * sx + sy * sy + sz * sz)
    if norm < 1e-9:
        return rows[start, 0], rows[start, 1], rows[start, 2], math.pi
    sx /= norm
    sy /= norm
    sz /= norm
    radius = 0.0
    for i in range(start, end):
        if skip_headers and codes[i] == POLY:
            continue
        radius = max(radius, central_angle(sx, sy, sz, rows[i, 0], rows[i, 1], rows[i, 2]))
    return sx, sy, sz, radius


@kernel
def cap_sines(cx: float, cy: float, cz: float, radius: float) -> tuple[float, float]:
    """Sines of the lowest and highest latitude of a cap."""
    lat = math.atan2(cz, math.hypot(cx, cy))
    lo = lat - radius - 1e-12
    hi = lat + radius + 1e-12
    zlo = -1.0 if lo <= -math.pi / 2 else math.sin(lo)
    zhi = 1.0 if hi >= math.pi / 2 else math.sin(hi)
    return zlo, zhi


@compiled
def _encode(lons: Floats, lats: Floats, codes: Codes, offsets: Ints) -> tuple[
    Floats, Codes, Ints, Floats, Ints
]:  # fmt: skip
    n = len(codes)
    rows = np.empty((n, 5))
    out = np.empty(n, np.int8)
    count = len(offsets) - 1
    new_offsets = np.empty(count + 1, np.int64)
    wide = np.zeros(n, np.int64)
    xyz = np.empty((n, 3))
    for i in range(n):
        if codes[i] != POLY:
            xyz[i, 0], xyz[i, 1], xyz[i, 2] = _unit(lons[i], lats[i])
    w = 0
    for g in range(count):
        new_offsets[g] = w
        i = offsets[g]
        end = offsets[g + 1]
        while i < end:
            code = codes[i]
            if code == POLY:
                rows[w, :] = 0.0
                out[w] = POLY
                w += 1
                i += 1
                continue
            j = i + 1
            while j < end and codes[j] == CONT:
                j += 1
            # The run [i, j) is a point, a line or a ring; drop positions equal to the
            # previous one (for a ring, the first is compared with the last).
            closed = code == RING
            first_w = w
            for k in range(i, j):
                first_of_ring = j - 1 if closed else -1
                prev = first_of_ring if k == i else k - 1
                keep = True
                if prev >= 0 and prev != k:
                    dx = xyz[k, 0] - xyz[prev, 0]
                    dy = xyz[k, 1] - xyz[prev, 1]
                    dz = xyz[k, 2] - xyz[prev, 2]
                    keep = math.sqrt(dx * dx + dy * dy + dz * dz) >= _SAME_POSITION
                if keep:
                    rows[w, 0] = xyz[k, 0]
                    rows[w, 1] = xyz[k, 1]
                    rows[w, 2] = xyz[k, 2]
                    rows[w, 3] = lons[k]
                    rows[w, 4] = lats[k]
                    out[w] = CONT
                    w += 1
            if w == first_w:  # a ring of one repeated position keeps it
                rows[w, 0] = xyz[i, 0]
                rows[w, 1] = xyz[i, 1]
                rows[w, 2] = xyz[i, 2]
                rows[w, 3] = lons[i]
                rows[w, 4] = lats[i]
                w += 1
            out[first_w] = code
            i = j
        new_offsets[g + 1] = w
    new_offsets[count] = w
    # Polygon headers: the cap of each shell.
    for g in range(count):
        start = new_offsets[g]
        end = new_offsets[g + 1]
        i = start
        while i < end:
            if out[i] == POLY:
                j = i + 2
                while j < end and out[j] == CONT:
                    j += 1
                cx, cy, cz, radius = _cap(rows, out, i + 1, j, False)
                rows[i, 0] = cx
                rows[i, 1] = cy
                rows[i, 2] = cz
                rows[i, 3] = radius
                rows[i, 4] = math.cos(radius)
                if radius >= _WIDE_PART:
                    wide[i] = 1
                i = j
            else:
                i += 1
    caps = _volume_caps(rows[:w], out[:w], new_offsets)
    return rows[:w].copy(), out[:w].copy(), new_offsets, caps, wide[:w].copy()


@compiled
def _volume_caps(rows: Floats, codes: Codes, offsets: Ints) -> Floats:
    count = len(offsets) - 1
    caps = np.empty((count, 6))
    for g in range(count):
        cx, cy, cz, radius = _cap(rows, codes, offsets[g], offsets[g + 1], True)
        if radius >= math.pi / 2 - 1e-9:
            radius = math.pi  # not convex: take the whole sphere (never for real volumes)
        radius += 1e-12
        caps[g, 0] = cx
        caps[g, 1] = cy
        caps[g, 2] = cz
        caps[g, 3] = radius
        caps[g, 4], caps[g, 5] = cap_sines(cx, cy, cz, radius)
    return caps


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
        rows, codes, offsets = _take_blocks(b.rows, b.codes, b.offsets, order)
        return VolumeColumns(
            Blocks(rows, codes, offsets, b.caps[order]),
            self.t0[order],
            self.t1[order],
            self.lo[order],
            self.hi[order],
            self.buf[order],
        )


@compiled
def _take_blocks(rows: Floats, codes: Codes, offsets: Ints, order: Ints) -> tuple[
    Floats, Codes, Ints
]:  # fmt: skip
    new_rows = np.empty_like(rows)
    new_codes = np.empty_like(codes)
    new_offsets = np.empty(len(order) + 1, np.int64)
    w = 0
    for g in range(len(order)):
        new_offsets[g] = w
        for i in range(offsets[order[g]], offsets[order[g] + 1]):
            new_rows[w] = rows[i]
            new_codes[w] = codes[i]
            w += 1
    new_offsets[len(order)] = w
    return new_rows, new_codes, new_offsets


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


# --------------------------------------------------------------------------- shapes


# Encoded blocks of shapes already seen (queries are often checked twice: before and after).
_BLOCKS: weakref.WeakKeyDictionary[Shape, Blocks] = weakref.WeakKeyDictionary()


def blocks_of(shape: Shape) -> Blocks:
    """The block of a parsed geometry (remembered while the Shape lives)."""
    blocks = _BLOCKS.get(shape)
    if blocks is None:
        blocks = encode_geometries([shape.geojson])
        _BLOCKS[shape] = blocks
    return blocks


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


def geojson_of_block(rows: Floats, codes: Codes) -> dict[str, Any]:
    """The GeoJSON geometry of an encoded block (positions as the engine keeps them)."""
    parts: list[tuple[str, Any]] = []
    for code, positions in _runs(rows, codes):
        if code == POINT:
            parts.append(("Point", positions[0]))
        elif code == LINE:
            parts.append(("LineString", positions))
        elif code == POLY:
            parts.append(("Polygon", []))
        else:  # a ring of the last polygon
            parts[-1][1].append([*positions, positions[0]])
    if len(parts) == 1:
        kind, coordinates = parts[0]
        return {"type": kind, "coordinates": coordinates}
    return {"type": "MultiPolygon", "coordinates": [c for _, c in parts]}


def _runs(rows: Floats, codes: Codes) -> Iterator[tuple[int, list[list[float]]]]:
    i = 0
    while i < len(codes):
        code = int(codes[i])
        j = i + 1
        if code != POLY:
            while j < len(codes) and codes[j] == CONT:
                j += 1
        positions = [[float(rows[k, 3]), float(rows[k, 4])] for k in range(i, j)]
        yield (RING if code == RING else code), positions
        i = j


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

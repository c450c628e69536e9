"""The block format of the engine: geometries as rows of numbers, encoded and decoded.

Geometries are held as rows of an encoded block: a row is ``[x, y, z, lon_deg, lat_deg]``
for a vertex (a unit vector and the original GeoJSON degrees), or ``[cx, cy, cz, radius,
cos_radius]`` for the header of a polygon part (a cap holding it). A parallel ``int8`` code
says what each row starts:

- ``POINT``: a point part (one row);
- ``LINE``: the first vertex of a line part; its other vertices follow as ``CONT``;
- ``POLY``: the header of a polygon part; its rings follow, each starting with ``RING``
  (the shell first, then holes), vertices without the closing position.

``encode_geometries`` turns GeoJSON geometries (already validated: stored rows were checked
when they were accepted) into blocks without pydantic or shapely. It removes consecutive
duplicate positions as ``geo.geojson.parse_geometry`` does, so both see the same vertices.
``decode`` and ``edges`` give the compiled kernels a block's rings, parts and edges;
``geojson_of_block`` turns a block back into GeoJSON.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from deconflict.engine.angles import central_angle
from deconflict.geo.caps import enclosing_cap
from deconflict.geo.compiled import Codes, Floats, Ints, compiled, kernel
from deconflict.geo.earth import SAME_POSITION
from deconflict.geo.shape import Shape

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
                    keep = math.sqrt(dx * dx + dy * dy + dz * dz) >= SAME_POSITION
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


@compiled
def take_blocks(rows: Floats, codes: Codes, offsets: Ints, order: Ints) -> tuple[
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


# Encoded blocks of shapes already seen (queries are often checked twice: before and after).
_BLOCKS: weakref.WeakKeyDictionary[Shape, Blocks] = weakref.WeakKeyDictionary()


def blocks_of(shape: Shape) -> Blocks:
    """The block of a parsed geometry (remembered while the Shape lives)."""
    blocks = _BLOCKS.get(shape)
    if blocks is None:
        blocks = encode_geometries([shape.geojson])
        _BLOCKS[shape] = blocks
    return blocks


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

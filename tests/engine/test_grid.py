"""Tests of the engine's space-time grid (``engine.cells``, ``engine.grid``): the cells a cap
or a block is said to meet hold every point of it, and every stored volume is an entry of
each group it belongs to, with its window rounded outwards.

The candidate pass finds a conflict only if the two volumes share a group; these are the
facts that proof rests on (``engine.cells``'s docstring), checked one by one.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from deconflict.engine.blocks import encode_geometries
from deconflict.engine.cells import (
    FOREVER,
    SPACE_LEVELS,
    Levels,
    cells_of_cap,
    home_cells,
    level_cells,
    time_level,
    volume_keys,
)
from deconflict.engine.grid import Grid, end_above, find_group, start_below
from deconflict.engine.store import BUF, T0, T1, VCOUNT, VOFF, VolumeStore, columns_from_documents
from support import offset, point, square, volume

LEVELS = Levels.make()
RNG = np.random.default_rng(12)


def _unit(lon: float, lat: float) -> tuple[float, float, float]:
    lo, la = math.radians(lon), math.radians(lat)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def _cell_of(j: int, xyz: tuple[float, float, float]) -> int:
    caps = np.array([[*xyz, 0.0]])
    lv = LEVELS
    return int(home_cells(caps, lv.band_h[j], lv.bands[j], lv.band_cells[j], lv.band_first[j])[0])


def _cap_cells(j: int, xyz: tuple[float, float, float], radius: float) -> set[int]:
    lv = LEVELS
    out = np.zeros(1 << 16, np.int64)
    n = cells_of_cap(
        lv.band_h[j], lv.bands[j], lv.band_cells[j], lv.band_first[j], *xyz, radius, out, 0
    )
    assert n >= 0
    return set(out[:n].tolist())


CENTRES = [(10.0, 45.0), (179.9, -17.0), (-180.0, 0.0), (30.0, 89.5), (-120.0, -89.9), (0, 0)]


@pytest.mark.parametrize("j", [0, 1, 3, SPACE_LEVELS - 2])
@pytest.mark.parametrize("centre", CENTRES, ids=[f"{lon},{lat}" for lon, lat in CENTRES])
def test_the_cells_of_a_cap_hold_every_point_of_it(j: int, centre: tuple[float, float]) -> None:
    theta = float(LEVELS.theta[j])
    for radius in (0.0, theta / 3, theta, 2.5 * theta):
        radius = min(radius, 1.0)
        cells = _cap_cells(j, _unit(*centre), radius)
        for _ in range(200):
            # A point at a random angle up to the radius, in a random direction.
            distance = radius * math.sqrt(RNG.random()) * 6_371_000.0 * 0.999
            lon, lat = offset(centre, RNG.uniform(-180, 180), distance)
            assert _cell_of(j, _unit(lon, lat)) in cells


def test_the_cells_of_a_line_hold_every_point_along_it() -> None:
    line = {"type": "LineString", "coordinates": [[179.0, 10.0], [-178.0, 12.0], [-177.5, 9.0]]}
    blocks = encode_geometries([line])
    lv = LEVELS
    for j in (0, 2):
        out, n = level_cells(
            blocks.rows, blocks.codes, 0, len(blocks.codes), 0.0, j, lv.theta,
            lv.band_h, lv.bands, lv.band_cells, lv.band_first, np.zeros(4, np.int64),
        )  # fmt: skip
        cells = set(out[:n].tolist())
        assert len(cells) == n, "distinct cells"
        coordinates = line["coordinates"]
        for (lon1, lat1), (lon2, lat2) in itertools.pairwise(coordinates):
            u, v = np.array(_unit(lon1, lat1)), np.array(_unit(lon2, lat2))
            for t in np.linspace(0.0, 1.0, 400):
                p = (1 - t) * u + t * v
                p /= np.linalg.norm(p)  # a point of the great-circle arc
                assert _cell_of(j, (p[0], p[1], p[2])) in cells


def test_time_levels_hold_windows_no_longer_than_their_span() -> None:
    span_s = LEVELS.span_s
    for k, span in enumerate(span_s.tolist()):
        assert time_level(0.0, span, span_s) == k
        if k + 1 < len(span_s):
            assert time_level(0.0, span * 1.01, span_s) == k + 1
    assert time_level(0.0, math.inf, span_s) == FOREVER


@pytest.mark.parametrize("t", [0.0, 1.5, 1e9 + 0.3, 1_780_000_000.123, -5.5, 2.5e11])
def test_entry_bounds_are_rounded_outwards(t: float) -> None:
    assert float(start_below(t)) <= t
    assert float(end_above(t)) >= t
    assert np.float32(start_below(t)) == np.float32(t) or float(np.float32(t)) > t


def test_every_volume_is_an_entry_of_each_of_its_groups() -> None:
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    docs = []
    for i in range(300):
        lon, lat = offset((10.0, 45.0), float(RNG.uniform(-180, 180)), float(RNG.uniform(0, 2e5)))
        geometry = point(lon, lat) if i % 2 else square(lon, lat, 0.02)
        hours = None if i % 7 == 0 else float(RNG.integers(1, 500))
        docs.append(volume(geometry, buffer_m=float(RNG.uniform(0, 30_000)), start=start,
                           start_h=float(RNG.integers(0, 100)), hours=hours))  # fmt: skip
    columns = columns_from_documents(docs)
    store = VolumeStore()
    slots = store.add(columns, np.zeros(len(docs), np.int64), np.arange(len(docs)))
    grid = Grid()
    grid.add(store.table, slots, store.rows, store.codes)
    lv = grid.levels
    table = store.table
    total = 0
    for slot in slots.tolist():
        keys, n = volume_keys(
            store.rows, store.codes, int(table[slot, VOFF]), int(table[slot, VCOUNT]),
            table[slot, BUF], table[slot, T0], table[slot, T1],
            lv.theta, lv.band_h, lv.bands, lv.band_cells, lv.band_first, lv.span_s,
            np.zeros(16, np.int64),
        )  # fmt: skip
        assert n >= 1
        total += n
        for key in keys[:n].tolist():
            group = find_group(grid.table, key)
            assert group >= 0
            first, length = int(grid.groups[group, 0]), int(grid.groups[group, 1])
            entries = grid.slots[first : first + length].tolist()
            assert slot in entries
            bounds = grid.bounds[first : first + length]
            assert (np.diff(bounds[:, 0]) >= 0).all(), "sorted by start"
            entry = bounds[entries.index(slot)]
            assert entry[0] <= table[slot, T0] and entry[1] >= table[slot, T1]
    assert int(grid.counts.sum()) == total
    grid.remove(store.table, slots, store.rows, store.codes)
    assert int(grid.counts.sum()) == 0

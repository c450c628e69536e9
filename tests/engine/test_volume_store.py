"""Tests of the engine's columnar store (``engine.store``): volumes in, their rows and blocks
out, slots reused, the vertex pool compacted without moving anything a slot points at."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from deconflict.engine.blocks import encode_geometries, geojson_of_block
from deconflict.engine.store import (
    BUF,
    COLUMNS,
    DECL,
    HI,
    KO,
    LO,
    T0,
    T1,
    VCOUNT,
    VolumeStore,
    aligned_table,
    columns_from_documents,
    seconds,
)
from support import Doc, point, square, volume

START = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T06:00:00Z",
        "2026-03-01T06:00:00.123456Z",
        "2026-03-01T08:00:00+02:00",
        "1969-12-31T23:59:59.5Z",
        "9999-12-31T23:00:00Z",
    ],
)
def test_times_read_as_datetime_reads_them(text: str) -> None:
    assert seconds(text) == datetime.fromisoformat(text).timestamp()


def _documents(count: int) -> list[Doc]:
    docs = []
    for i in range(count):
        geometry = point(i * 0.01, 45.0) if i % 2 else square(i * 0.01, 45.0, 0.004)
        docs.append(
            volume(
                geometry,
                buffer_m=float(i),
                lower_m=None if i % 3 == 0 else 100.0,
                upper_m=None if i % 5 == 0 else 900.0,
                start=START,
                start_h=i,
                hours=None if i % 4 == 0 else 2,
            )
        )
    return docs


def test_a_stored_volume_keeps_its_numbers_and_its_block() -> None:
    docs = _documents(40)
    store = VolumeStore()
    slots = store.add(
        columns_from_documents(docs), np.arange(40, dtype=np.int64) * 8 + 1, np.arange(40)
    )
    assert len(store) == 40
    for slot, (i, doc) in zip(slots.tolist(), enumerate(docs), strict=True):
        row = store.table[slot]
        assert row[T0] == (START + timedelta(hours=i)).timestamp()
        assert row[T1] == (math.inf if i % 4 == 0 else row[T0] + 7200)
        assert row[LO] == (-math.inf if i % 3 == 0 else 100.0)
        assert row[HI] == (math.inf if i % 5 == 0 else 900.0)
        assert row[BUF] == float(i)
        assert (row[KO], row[DECL]) == (i * 8 + 1, i)
        rows, codes = store.block(slot)
        assert row[VCOUNT] == len(codes)
        assert geojson_of_block(rows, codes) == geojson_of_block(*_block_of(doc["geometry"]))


def _block_of(geometry: Doc) -> tuple[np.ndarray, np.ndarray]:
    blocks = encode_geometries([geometry])
    return blocks.rows, blocks.codes


def test_freed_slots_are_reused_and_the_pool_compacted() -> None:
    docs = _documents(600)
    store = VolumeStore()
    slots = store.add(columns_from_documents(docs), np.zeros(600, np.int64), np.arange(600))
    high_water = store.high_water
    removed = slots[:450].tolist()
    store.remove(removed)
    assert len(store) == 150
    # More than half the pool was garbage: compacted to the live rows alone.
    assert store.used_rows == store.live_rows == int(store.table[slots[450:], VCOUNT].sum())
    for slot, doc in zip(slots[450:].tolist(), docs[450:], strict=True):
        assert geojson_of_block(*store.block(slot)) == geojson_of_block(*_block_of(doc["geometry"]))
    again = store.add(columns_from_documents(docs[:10]), np.zeros(10, np.int64), np.arange(10))
    assert set(again.tolist()) <= set(removed)
    assert store.high_water == high_water
    assert (store.table[again, DECL] == np.arange(10)).all()


def test_the_table_is_aligned_to_pairs_of_cache_lines() -> None:
    for rows in (1, 7, 4096):
        table = aligned_table(rows)
        assert table.shape == (rows, COLUMNS)
        assert table.strides == (128, 8)
        assert table.ctypes.data % 128 == 0
        assert not table.any()

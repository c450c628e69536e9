"""Tests of the engine's block format (``engine.blocks``): GeoJSON encoded as rows of unit
vectors with their degrees, decoded back into rings, parts and edges, and into GeoJSON.

The engine reads stored geometries without pydantic or shapely; these tests check that what
it reads is what ``geo`` parses: the same vertices, the same parts, caps that hold them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from deconflict.engine.blocks import (
    CONT,
    K_LINE,
    K_POINT,
    K_POLY,
    LINE,
    POINT,
    POLY,
    RING,
    decode,
    edges,
    encode_geometries,
    geojson_of_block,
)
from deconflict.geo.distance import min_distance_m
from deconflict.geo.geojson import parse_geometry

Doc = dict[str, Any]

MESSY = [
    pytest.param({"type": "Point", "coordinates": [180.0, 0.0]}, id="point-on-180"),
    pytest.param({"type": "Point", "coordinates": [12.0, 90.0]}, id="point-at-the-pole"),
    pytest.param(
        {
            "type": "LineString",
            "coordinates": [[1, 1], [1, 1], [2, 2], [2, 2.0000000000001], [3, 1]],
        },
        id="line-with-repeated-positions",
    ),
    pytest.param(
        {"type": "Polygon", "coordinates": [[[-180, 0], [179, 0], [179, 1], [-180, 1], [180, 0]]]},
        id="ring-closed-on-the-other-side-of-180",
    ),
    pytest.param(
        {
            "type": "Polygon",
            "coordinates": [
                [[0, 0], [0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                [[1, 1], [1, 2], [2, 2], [2, 1], [1, 1]],
            ],
        },
        id="polygon-with-hole-and-repeat",
    ),
    pytest.param(
        {
            "type": "MultiPolygon",
            "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 5]]]],
        },
        id="multipolygon",
    ),
]

# Geometries without repeated positions: they come back exactly as they went in.
CLEAN: list[Doc] = [
    {"type": "Point", "coordinates": [10.5, -45.25]},
    {"type": "LineString", "coordinates": [[179.5, 10.0], [-179.5, 10.5], [-178.0, 11.0]]},
    {
        "type": "Polygon",
        "coordinates": [
            [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]],
            [[1.0, 1.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0], [1.0, 1.0]],
        ],
    },
    {
        "type": "Polygon",
        "coordinates": [[[0.0, 89.0], [90.0, 89.0], [180.0, 89.0], [-90.0, 89.0], [0.0, 89.0]]],
    },
    {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]],
            [[[5.0, 5.0], [6.0, 5.0], [6.0, 6.0], [5.0, 5.0]]],
        ],
    },
]


@pytest.mark.parametrize("geometry", MESSY)
def test_encoding_keeps_the_vertices_geometry_keeps(geometry: Doc) -> None:
    blocks = encode_geometries([geometry])
    shape = parse_geometry(geometry, "g")
    kept = blocks.rows[blocks.codes != 3][:, 3:5]  # the rows of vertices, not headers
    expected = np.vstack([part.xyz for part in shape.parts])
    assert len(kept) == len(expected)
    assert len(kept) == len(expected)
    rebuilt = parse_geometry(geojson_of_block(blocks.rows, blocks.codes), "rebuilt")
    probe = parse_geometry({"type": "Point", "coordinates": [3.0, 2.5]}, "probe")
    assert min_distance_m(rebuilt, probe) == pytest.approx(min_distance_m(shape, probe))
    # The cap holds the geometry: every vertex is within its radius of its centre.
    cx, cy, cz, radius = blocks.caps[0, :4]
    angles = np.arccos(np.clip(expected @ np.array([cx, cy, cz]), -1, 1))
    assert (angles <= radius + 1e-9).all()


@pytest.mark.parametrize("geometry", CLEAN, ids=[g["type"] for g in CLEAN])
def test_a_block_decodes_to_the_geojson_it_was_encoded_from(geometry: Doc) -> None:
    blocks = encode_geometries([geometry])
    assert geojson_of_block(blocks.rows, blocks.codes) == geometry


def test_blocks_of_several_geometries_stay_apart() -> None:
    blocks = encode_geometries(CLEAN)
    assert len(blocks.offsets) == len(CLEAN) + 1
    assert blocks.offsets[0] == 0 and blocks.offsets[-1] == len(blocks.codes)
    for g, geometry in enumerate(CLEAN):
        start, end = blocks.offsets[g], blocks.offsets[g + 1]
        assert geojson_of_block(blocks.rows[start:end], blocks.codes[start:end]) == geometry


def test_rows_hold_unit_vectors_and_the_original_degrees() -> None:
    geometry = CLEAN[1]
    blocks = encode_geometries([geometry])
    assert blocks.codes.tolist() == [LINE, CONT, CONT]
    for row, (lon, lat) in zip(blocks.rows, geometry["coordinates"], strict=True):
        assert (row[3], row[4]) == (lon, lat)
        lo, la = math.radians(lon), math.radians(lat)
        expected = [math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)]
        assert row[:3].tolist() == pytest.approx(expected, abs=1e-15)


def test_a_polygon_header_holds_the_cap_of_its_shell() -> None:
    blocks = encode_geometries([CLEAN[2]])
    assert blocks.codes.tolist() == [POLY, RING, CONT, CONT, CONT, RING, CONT, CONT, CONT]
    header = blocks.rows[0]
    shell = blocks.rows[1:5, :3]
    angles = np.arccos(np.clip(shell @ header[:3], -1.0, 1.0))
    assert (angles <= header[3] + 1e-12).all()
    assert header[4] == pytest.approx(math.cos(header[3]))


def _decoded(geometry: Doc) -> tuple[np.ndarray, np.ndarray, int, int]:
    blocks = encode_geometries([geometry])
    n = len(blocks.codes)
    rings = np.zeros((n, 4), np.int64)
    parts = np.zeros((n, 4), np.int64)
    nr, npart = decode(blocks.codes, 0, n, rings, parts)
    return rings, parts, nr, npart


def test_decoding_finds_the_rings_and_parts() -> None:
    rings, parts, nr, npart = _decoded(CLEAN[0])
    assert (nr, npart) == (1, 1)
    assert rings[0].tolist() == [0, 1, K_POINT, 0]
    assert parts[0].tolist() == [-1, 0, 1, K_POINT]

    rings, parts, nr, npart = _decoded(CLEAN[1])
    assert (nr, npart) == (1, 1)
    assert rings[0].tolist() == [0, 3, K_LINE, 0]

    rings, parts, nr, npart = _decoded(CLEAN[2])  # a shell and a hole: one part, two rings
    assert (nr, npart) == (2, 1)
    assert rings[:2].tolist() == [[1, 5, K_POLY, 0], [5, 9, K_POLY, 0]]
    assert parts[0].tolist() == [0, 0, 2, K_POLY]

    rings, parts, nr, npart = _decoded(CLEAN[4])
    assert (nr, npart) == (2, 2)
    assert parts[:2, 3].tolist() == [K_POLY, K_POLY]


@pytest.mark.parametrize(
    ("geometry", "count"),
    [(CLEAN[0], 0), (CLEAN[1], 2), (CLEAN[2], 8), (CLEAN[4], 6)],
    ids=["point", "line", "polygon-with-hole", "multipolygon"],
)
def test_edges_join_consecutive_vertices_and_close_rings(geometry: Doc, count: int) -> None:
    blocks = encode_geometries([geometry])
    rings, _, nr, _ = _decoded(geometry)
    n = len(blocks.codes)
    ends = np.zeros((n, 2), np.int64)
    sides = np.zeros((n, 9))
    ne, shortest = edges(blocks.rows, rings, nr, ends, sides)
    assert ne == count
    for e in range(ne):
        u, v = blocks.rows[ends[e, 0], :3], blocks.rows[ends[e, 1], :3]
        normal = sides[e, :3]
        assert np.linalg.norm(normal) == pytest.approx(1.0)
        assert abs(normal @ u) < 1e-12 and abs(normal @ v) < 1e-12
        assert shortest <= np.linalg.norm(v - u) + 1e-15
    if ne:
        assert shortest > 0.0
    if geometry["type"] == "Point":
        assert POINT in blocks.codes

"""Tests of deconflict.geometry against a brute-force reference built here from pyproj.

The reference knows nothing of the module: it samples every edge along its great circle
(pyproj's spherical Geod, since edges are great circles on lon/lat), measures sample pairs on
WGS84, zooms in around the best pairs until the samples are millimetres apart, and decides
containment by the winding of spherical azimuths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pyproj import Geod

from deconflict.errors import InvalidGeometry, TooLarge
from deconflict.geometry import (
    Shape,
    min_distance_m,
    parse_geometry,
    within_m,
)

WGS84 = Geod(ellps="WGS84")
SPHERE = Geod(a=6_371_000.0, b=6_371_000.0)  # great circles of lon/lat: what an edge is
TOLERANCE = 5e-4  # the 0.05 % we aim for


# --------------------------------------------------------------------------- reference


def _polygons(geojson: dict[str, Any]) -> list[list[list[list[float]]]]:
    if geojson["type"] == "Polygon":
        return [geojson["coordinates"]]
    if geojson["type"] == "MultiPolygon":
        return list(geojson["coordinates"])
    return []


def _arcs(geojson: dict[str, Any]) -> np.ndarray:
    """Every edge as (lon1, lat1, lon2, lat2); a point is an edge of length 0."""
    kind, coords = geojson["type"], geojson["coordinates"]
    if kind == "Point":
        runs = [[coords, coords]]
    elif kind == "LineString":
        runs = [coords]
    else:
        runs = [ring for polygon in _polygons(geojson) for ring in polygon]
    arcs = [(*p[:2], *q[:2]) for run in runs for p, q in zip(run[:-1], run[1:], strict=True)]
    return np.array(arcs, dtype=float)


def _vertices(geojson: dict[str, Any]) -> np.ndarray:
    return _arcs(geojson)[:, :2]


class _Sampler:
    def __init__(self, arcs: np.ndarray) -> None:
        self.arcs = arcs
        self.az, _, self.length = SPHERE.inv(arcs[:, 0], arcs[:, 1], arcs[:, 2], arcs[:, 3])

    def at(self, index: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self.arcs[index]
        lon, lat, _ = SPHERE.fwd(a[:, 0], a[:, 1], self.az[index], t * self.length[index])
        return lon, lat


def _winds_around(lon: float, lat: float, ring: list[list[float]]) -> bool:
    ring_ll = np.array(ring, dtype=float)[:, :2]
    n = len(ring_ll)
    az, _, dist = SPHERE.inv(np.full(n, lon), np.full(n, lat), ring_ll[:, 0], ring_ll[:, 1])
    if np.any(dist < 1e-6):
        return False  # on a vertex: the sampled distance is 0 anyway
    turn = (np.diff(az) + 180.0) % 360.0 - 180.0
    return bool(abs(turn.sum()) > 180.0)


def _inside(point: np.ndarray, geojson: dict[str, Any]) -> bool:
    for polygon in _polygons(geojson):
        shell, *holes = polygon
        if _winds_around(*point, shell) and not any(_winds_around(*point, h) for h in holes):
            return True
    return False


def reference_distance_m(ga: dict[str, Any], gb: dict[str, Any]) -> float:
    if any(_inside(v, gb) for v in _vertices(ga)) or any(_inside(v, ga) for v in _vertices(gb)):
        return 0.0
    sa, sb = _Sampler(_arcs(ga)), _Sampler(_arcs(gb))
    n0 = 40
    grid = np.linspace(0.0, 1.0, n0)
    ia, ta = (x.ravel() for x in np.meshgrid(np.arange(len(sa.arcs)), grid, indexing="ij"))
    ib, tb = (x.ravel() for x in np.meshgrid(np.arange(len(sb.arcs)), grid, indexing="ij"))
    lon_a, lat_a = sa.at(ia, ta)
    lon_b, lat_b = sb.at(ib, tb)
    _, _, d = WGS84.inv(*np.broadcast_arrays(lon_a[:, None], lat_a[:, None], lon_b, lat_b))
    i, j = np.unravel_index(np.argsort(d, axis=None)[:12], d.shape)
    # Zoom: around each of the best sample pairs, resample both edges 9 x 9 and shrink by 4.
    edge_a, t_a, edge_b, t_b = ia[i], ta[i], ib[j], tb[j]
    half = 1.0 / (n0 - 1)
    steps = np.linspace(-1.0, 1.0, 9)
    rows = np.arange(len(edge_a))
    for _ in range(18):
        t1 = np.clip(t_a[:, None, None] + half * steps[None, :, None], 0.0, 1.0)
        t2 = np.clip(t_b[:, None, None] + half * steps[None, None, :], 0.0, 1.0)
        t1, t2 = (x.reshape(len(rows), -1) for x in np.broadcast_arrays(t1, t2))
        lon1, lat1 = sa.at(np.repeat(edge_a, t1.shape[1]), t1.ravel())
        lon2, lat2 = sb.at(np.repeat(edge_b, t2.shape[1]), t2.ravel())
        dist = WGS84.inv(lon1, lat1, lon2, lat2)[2].reshape(t1.shape)
        pick = dist.argmin(axis=1)
        t_a, t_b = t1[rows, pick], t2[rows, pick]
        half /= 4.0
    result = float(dist.min())
    return 0.0 if result < 1e-3 else result


# --------------------------------------------------------------------------- builders


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def line(*positions: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(p) for p in positions]}


def ring(*positions: tuple[float, float]) -> list[list[float]]:
    return [list(p) for p in (*positions, positions[0])]


def polygon(*positions: tuple[float, float], holes: tuple[Any, ...] = ()) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring(*positions), *holes]}


def multipolygon(*polygons: dict[str, Any]) -> dict[str, Any]:
    return {"type": "MultiPolygon", "coordinates": [p["coordinates"] for p in polygons]}


def moved(lon: float, lat: float, azimuth: float, metres: float) -> tuple[float, float]:
    lon2, lat2, _ = WGS84.fwd(lon, lat, azimuth, metres)
    return (float(lon2), float(lat2))


def star(lon: float, lat: float, radii: list[float], azimuths: list[float]) -> dict[str, Any]:
    """A polygon star-shaped around (lon, lat): simple whatever the radii."""
    return polygon(*(moved(lon, lat, a, r) for a, r in zip(azimuths, radii, strict=True)))


def shape(geojson: dict[str, Any]) -> Shape:
    return parse_geometry(geojson, "geometry")


SQUARE = polygon((0, 0), (1, 0), (1, 1), (0, 1))
# Long non-meridian edge: distances to its middle depend on it being a great circle.
SLANT = line((0.0, 45.0), (3.0, 46.5))


def great_circle_middle(lon1: float, lat1: float, lon2: float, lat2: float) -> tuple[float, float]:
    azimuth, _, length = SPHERE.inv(lon1, lat1, lon2, lat2)
    lon, lat, _ = SPHERE.fwd(lon1, lat1, azimuth, length / 2)
    return (float(lon), float(lat))


SLANT_MID = great_circle_middle(0.0, 45.0, 3.0, 46.5)
POLAR_RING = polygon(*((lon, 85.0) for lon in (-180.0, -120.0, -60.0, 0.0, 60.0, 120.0)))

# (id, a, b, expected distance or None to trust the reference only)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], float | None]] = [
    ("point-point-10m", point(10, 50), point(*moved(10, 50, 30, 10)), 10.0),
    ("point-point-500km", point(10, 50), point(*moved(10, 50, 120, 500_000)), 500_000.0),
    (
        "point-corridor-100m",
        line((0, 0), (0.5, 0.0), (1, 0.3)),
        point(*moved(0.25, 0.0, 0, 100)),
        None,
    ),
    ("point-slant-edge-middle-10m", SLANT, point(*moved(*SLANT_MID, 315, 10)), None),
    ("point-slant-edge-middle-2km", SLANT, point(*moved(*SLANT_MID, 135, 2_000)), None),
    ("point-inside-polygon", SQUARE, point(0.5, 0.5), 0.0),
    ("point-on-vertex", SQUARE, point(1, 1), 0.0),
    ("point-outside-polygon", SQUARE, point(2, 0.5), None),
    ("polygons-sharing-edge", SQUARE, polygon((1, 0), (2, 0), (2, 1), (1, 1)), 0.0),
    ("polygons-t-junction", SQUARE, polygon((1, 0.5), (2, 0), (2, 1)), 0.0),
    (
        "polygons-crossing-no-vertex-inside",
        polygon((-1, 0.4), (2, 0.4), (2, 0.6), (-1, 0.6)),
        SQUARE,
        0.0,
    ),
    ("polygon-inside-polygon", SQUARE, polygon((0.4, 0.4), (0.6, 0.4), (0.5, 0.6)), 0.0),
    (
        "polygon-in-hole",
        polygon(
            (0, 0),
            (1, 0),
            (1, 1),
            (0, 1),
            holes=(ring((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)),),
        ),
        polygon((0.4, 0.4), (0.6, 0.4), (0.5, 0.6)),
        None,
    ),
    (
        "polygons-300m",
        SQUARE,
        polygon(*(moved(lon, lat, 90, 300) for lon, lat in [(1, 0.2), (1, 0.7), (1.5, 0.5)])),
        None,
    ),
    ("lines-crossing", line((-1, -1), (1, 1)), line((-1, 1), (1, -1)), 0.0),
    ("line-through-polygon", line((-1, 0.5), (2, 0.6)), SQUARE, 0.0),
    ("lines-apart", line((-1, -1), (1, 1)), line((-1, 1), (-0.5, 0.5)), None),
    (
        "corridors-near-parallel-25m",
        line((10, 50), (10.5, 50.2)),
        line(moved(10, 50, 0, 25), moved(10.5, 50.2, 0, 40)),
        None,
    ),
    (
        "multipolygon-second-part",
        multipolygon(SQUARE, polygon((5, 5), (6, 5), (6, 6))),
        point(6.2, 5.5),
        None,
    ),
    (
        "multipolygon-inside-second-part",
        multipolygon(SQUARE, polygon((5, 5), (6, 5), (6, 6))),
        point(5.8, 5.3),
        0.0,
    ),
    (
        "antimeridian-polygon-contains",
        polygon((179.5, 0), (-179.5, 0), (-179.5, 1), (179.5, 1)),
        point(180, 0.5),
        0.0,
    ),
    (
        "antimeridian-polygon-east",
        polygon((179.5, 0), (-179.5, 0), (-179.5, 1), (179.5, 1)),
        point(-179.3, 0.5),
        None,
    ),
    (
        "antimeridian-corridor-2km",
        line((179.9, 10), (-179.8, 10.2)),
        point(*moved(180.0, 10.1, 0, 2_000)),
        None,
    ),
    (
        "antimeridian-polygons-20km",
        polygon((179.0, -20), (179.9, -20), (179.9, -19)),
        polygon(
            *(
                moved(lon, lat, 90, 20_000)
                for lon, lat in [(179.9, -20.5), (179.9, -19.6), (-179.0, -20)]
            )
        ),
        None,
    ),
    (
        "near-pole-polygons",
        polygon((0, 88), (10, 88), (10, 89.9), (0, 89.9)),
        polygon((120, 88), (130, 88), (130, 89.5)),
        None,
    ),
    ("across-pole-edge", line((0, 89), (180, 89)), point(90, 89.95), None),
    ("ring-around-pole-contains-pole", POLAR_RING, point(0, 90), 0.0),
    ("ring-around-pole-point-outside", POLAR_RING, point(30, 80), None),
    (
        "ring-around-pole-south",
        polygon(*((lon, -88.0) for lon in (-170, -50, 70))),
        point(0, -89.99),
        0.0,
    ),
    ("far-polygons-500km", SQUARE, polygon((5.5, 0), (6, 0), (6, 1)), None),
]


@pytest.mark.parametrize(("a", "b", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_min_distance_matches_reference(
    a: dict[str, Any], b: dict[str, Any], expected: float | None
) -> None:
    reference = reference_distance_m(a, b)
    if expected is not None:
        assert reference == pytest.approx(expected, rel=1e-6, abs=1e-3)
    got = min_distance_m(shape(a), shape(b))
    if reference == 0.0:
        assert got == 0.0
    else:
        assert got == pytest.approx(reference, rel=TOLERANCE)
        assert got >= reference * (1 - TOLERANCE)  # never smaller: it decides conflicts
    assert within_m(shape(a), shape(b), got)
    assert not within_m(shape(a), shape(b), got * (1 - 1e-9) - 1e-6)


# --------------------------------------------------------------------------- parsing

BOWTIE = ring((0, 0), (1, 1), (1, 0), (0, 1))
G = "volumes[2].geometry"
C = f"{G}.coordinates"

# (id, geometry, expected error, field)
BAD: list[tuple[str, object, type[Exception], str]] = [
    ("not-an-object", [1, 2], InvalidGeometry, G),
    ("type-missing", {"coordinates": [0, 0]}, InvalidGeometry, f"{G}.type"),
    ("type-unknown", {"type": "Circle", "coordinates": [0, 0]}, InvalidGeometry, f"{G}.type"),
    (
        "type-collection",
        {"type": "GeometryCollection", "geometries": []},
        InvalidGeometry,
        f"{G}.type",
    ),
    ("type-not-string", {"type": 3, "coordinates": [0, 0]}, InvalidGeometry, f"{G}.type"),
    ("coordinates-missing", {"type": "Point"}, InvalidGeometry, C),
    ("point-not-a-position", {"type": "Point", "coordinates": "0,0"}, InvalidGeometry, C),
    ("point-one-number", {"type": "Point", "coordinates": [1]}, InvalidGeometry, C),
    ("point-four-numbers", {"type": "Point", "coordinates": [1, 2, 3, 4]}, InvalidGeometry, C),
    ("point-string-member", {"type": "Point", "coordinates": ["1", 2]}, InvalidGeometry, C),
    ("point-bool-member", {"type": "Point", "coordinates": [True, 2]}, InvalidGeometry, C),
    ("point-none-member", {"type": "Point", "coordinates": [None, 2]}, InvalidGeometry, C),
    ("point-nan", {"type": "Point", "coordinates": [math.nan, 2]}, InvalidGeometry, C),
    ("point-inf", {"type": "Point", "coordinates": [1, -math.inf]}, InvalidGeometry, C),
    ("point-nan-altitude", {"type": "Point", "coordinates": [1, 2, math.nan]}, InvalidGeometry, C),
    ("point-huge-int", {"type": "Point", "coordinates": [10**400, 2]}, InvalidGeometry, C),
    ("point-lon-181", {"type": "Point", "coordinates": [181, 0]}, InvalidGeometry, C),
    ("point-lon-minus-180.1", {"type": "Point", "coordinates": [-180.1, 0]}, InvalidGeometry, C),
    ("point-lat-91", {"type": "Point", "coordinates": [0, 90.5]}, InvalidGeometry, C),
    ("line-not-array", {"type": "LineString", "coordinates": 5}, InvalidGeometry, C),
    ("line-one-position", line((0, 0)), InvalidGeometry, C),
    ("line-same-position", line((0, 0), (0, 0), (0, 0)), InvalidGeometry, C),
    ("line-pole-any-longitude", line((0, 90), (120, 90)), InvalidGeometry, C),
    ("line-bad-position", line((0, 0), (1, 95)), InvalidGeometry, f"{C}[1]"),
    ("polygon-no-rings", {"type": "Polygon", "coordinates": []}, InvalidGeometry, C),
    ("polygon-ring-not-array", {"type": "Polygon", "coordinates": [7]}, InvalidGeometry, f"{C}[0]"),
    (
        "polygon-three-positions",
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
        InvalidGeometry,
        f"{C}[0]",
    ),
    (
        "polygon-unclosed",
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
        InvalidGeometry,
        f"{C}[0]",
    ),
    (
        "polygon-bad-position",
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, "x"], [0, 0]]]},
        InvalidGeometry,
        f"{C}[0][3]",
    ),
    (
        "polygon-two-distinct",
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 0], [0, 0], [0, 0]]]},
        InvalidGeometry,
        f"{C}[0]",
    ),
    ("polygon-collinear", polygon((0, 0), (1, 0), (2, 0)), InvalidGeometry, f"{C}[0]"),
    ("polygon-bowtie", {"type": "Polygon", "coordinates": [BOWTIE]}, InvalidGeometry, f"{C}[0]"),
    (
        "polygon-hole-outside",
        polygon((0, 0), (1, 0), (1, 1), (0, 1), holes=(ring((2, 2), (3, 2), (3, 3)),)),
        InvalidGeometry,
        f"{C}[1]",
    ),
    (
        "polygon-hole-far-outside",
        polygon((0, 0), (1, 0), (1, 1), (0, 1), holes=(ring((100, 2), (101, 2), (101, 3)),)),
        InvalidGeometry,
        f"{C}[1]",
    ),
    (
        "polygon-hole-crossing-shell",
        polygon((0, 0), (1, 0), (1, 1), (0, 1), holes=(ring((0.5, 0.5), (1.5, 0.5), (0.5, 0.8)),)),
        InvalidGeometry,
        f"{C}[1]",
    ),
    (
        "polygon-hole-self-intersecting",
        {"type": "Polygon", "coordinates": [ring((-1, -1), (2, -1), (2, 2), (-1, 2)), BOWTIE]},
        InvalidGeometry,
        f"{C}[1]",
    ),
    (
        "polygon-holes-overlapping",
        polygon(
            (0, 0),
            (1, 0),
            (1, 1),
            (0, 1),
            holes=(
                ring((0.1, 0.1), (0.6, 0.1), (0.6, 0.6), (0.1, 0.6)),
                ring((0.4, 0.4), (0.9, 0.4), (0.9, 0.9), (0.4, 0.9)),
            ),
        ),
        InvalidGeometry,
        C,
    ),
    ("polygon-half-the-world", polygon((0, 0), (120, 0), (-120, 0), (0, 10)), TooLarge, G),
    ("multipolygon-empty", {"type": "MultiPolygon", "coordinates": []}, InvalidGeometry, C),
    (
        "multipolygon-part-not-array",
        {"type": "MultiPolygon", "coordinates": [3]},
        InvalidGeometry,
        f"{C}[0]",
    ),
    (
        "multipolygon-second-part-bowtie",
        {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"], [BOWTIE]]},
        InvalidGeometry,
        f"{C}[1][0]",
    ),
    (
        "multipolygon-bad-position",
        {
            "type": "MultiPolygon",
            "coordinates": [SQUARE["coordinates"], [[[0, 0], [1, 0], [1, 1], [0, None], [0, 0]]]],
        },
        InvalidGeometry,
        f"{C}[1][0][3]",
    ),
]


@pytest.mark.parametrize(
    ("geometry", "error", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_parse_refuses(geometry: object, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        parse_geometry(geometry, G)
    assert caught.type is error
    assert [e["field"] for e in caught.value.errors] == [field]  # type: ignore[attr-defined]


# (id, geometry): valid despite looking odd
GOOD: list[tuple[str, dict[str, Any]]] = [
    ("altitude-ignored", {"type": "Point", "coordinates": [1, 2, 300]}),
    ("integers", {"type": "Point", "coordinates": [1, 2]}),
    ("extremes", line((-180, -90), (180, -89))),
    ("north-pole", point(180, 90)),
    (
        "consecutive-duplicates",
        {"type": "Polygon", "coordinates": [[[0, 0], [0, 0], [1, 0], [1, 1], [1, 1], [0, 0]]]},
    ),
    ("line-crossing-itself", line((0, 0), (1, 1), (1, 0), (0, 1))),
    ("clockwise-shell", polygon((0, 0), (0, 1), (1, 1), (1, 0))),
    ("antimeridian-ring", polygon((179.5, 0), (-179.5, 0), (-179.5, 1), (180, 1), (179.5, 1))),
    ("ring-around-pole", POLAR_RING),
    (
        "hole-touching-shell-at-a-point",
        polygon((0, 0), (1, 0), (1, 1), (0, 1), holes=(ring((0, 0), (0.5, 0.2), (0.2, 0.5)),)),
    ),
    ("overlapping-multipolygon-parts", multipolygon(SQUARE, polygon((0.5, 0.5), (2, 0.5), (2, 2)))),
    ("extra-members", {"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, 1, 2]}),
]


@pytest.mark.parametrize("geometry", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_parse_accepts(geometry: dict[str, Any]) -> None:
    parsed = parse_geometry(geometry, G)
    assert parsed.kind == geometry["type"]
    assert parsed.geojson["type"] == geometry["type"]
    assert 0.0 <= parsed.radius_rad < math.pi / 2
    assert np.linalg.norm(parsed.center) == pytest.approx(1.0)


def test_parse_normalises_geojson_to_2d_floats() -> None:
    parsed = parse_geometry({"type": "LineString", "coordinates": [[1, 2, 3], [4, 5]]}, G)
    assert parsed.geojson == {"type": "LineString", "coordinates": [[1.0, 2.0], [4.0, 5.0]]}
    assert all(type(v) is float for p in parsed.geojson["coordinates"] for v in p)
    assert parsed.vertex_count == 2


def test_vertex_count_includes_closing_positions() -> None:
    assert shape(multipolygon(SQUARE, SQUARE)).vertex_count == 10


def test_vertex_limit() -> None:
    assert parse_geometry(SQUARE, G, max_vertices=5).vertex_count == 5
    with pytest.raises(TooLarge) as caught:
        parse_geometry(SQUARE, G, max_vertices=4)
    assert caught.value.errors[0]["field"] == G


def test_radius_limit() -> None:
    # SQUARE's cap: from its centre to a corner, about 78.6 km.
    assert parse_geometry(SQUARE, G, max_radius_m=80_000).radius_rad > 0.0
    with pytest.raises(TooLarge) as caught:
        parse_geometry(SQUARE, G, max_radius_m=75_000)
    assert caught.value.errors[0]["field"] == G


def test_cap_contains_edges_bulging_over_the_pole() -> None:
    # The edge from (0, 60) to (180, 60) runs over the pole, 30 degrees from both ends.
    parsed = shape(line((0, 60), (180, 60)))
    assert parsed.center[2] == pytest.approx(1.0)
    assert parsed.radius_rad == pytest.approx(math.radians(30))

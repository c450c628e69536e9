"""Tests of deconflict.geo.geometry against a brute-force reference built here from pyproj.

The reference knows nothing of the module: it samples every edge along its great circle
(pyproj's spherical Geod, since edges are great circles on lon/lat), measures sample pairs on
WGS84, zooms in along each edge from each vertex until the samples are micrometres apart,
decides crossings by which side of each other's great circle the ends lie (spherical
azimuths), and containment by the winding of spherical azimuths.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from deconflict.errors import InvalidGeometry, TooLarge
from deconflict.geo.boxes import bbox_shape, reach_box
from deconflict.geo.distance import min_distance_m, within_m
from deconflict.geo.earth import EARTH_MIN_RADIUS_M
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape

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
    arcs = [(*p[:2], *q[:2]) for run in runs for p, q in itertools.pairwise(run)]
    return np.array(arcs, dtype=float)


def _vertices(geojson: dict[str, Any]) -> np.ndarray:
    arcs = _arcs(geojson)
    return np.vstack((arcs[:, :2], arcs[-1:, 2:]))


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
    if _arcs_cross(sa, sb):
        return 0.0
    # Two arcs that do not cross are closest at an end of one of them (on the sphere; the
    # ellipsoid moves this by less than 1e-5), so zooming along each arc from each vertex
    # finds the minimum; the plain sampled minimum is an upper bound kept as a check.
    result = min(
        _vertices_to_arcs(_vertices(ga), sb),
        _vertices_to_arcs(_vertices(gb), sa),
        _sampled_pairs(sa, sb),
    )
    return 0.0 if result < 1e-3 else result


def _vertices_to_arcs(vertices: np.ndarray, arcs: _Sampler) -> float:
    """Sample every (vertex, arc) pair coarsely, then zoom in on each that may hold the min."""
    v, e = (x.ravel() for x in np.meshgrid(np.arange(len(vertices)), np.arange(len(arcs.arcs))))
    grid = np.linspace(0.0, 1.0, 17)
    d = _vertex_arc_distances(vertices, arcs, v, e, grid[None, :])
    # A pair's true minimum is at most half a sample spacing below its sampled minimum.
    spacing = arcs.length[e] / 16 * 1.01
    keep = np.flatnonzero(d.min(axis=1) - spacing / 2 <= d.min() + 1e-9)
    v, e = v[keep], e[keep]
    t = grid[d[keep].argmin(axis=1)]
    half = 1.0 / 16
    steps = np.linspace(-1.0, 1.0, 9)
    for _ in range(22):  # 4^-22 of an edge: well under a millimetre
        ts = np.clip(t[:, None] + half * steps[None, :], 0.0, 1.0)
        d = _vertex_arc_distances(vertices, arcs, v, e, ts)
        t = ts[np.arange(len(t)), d.argmin(axis=1)]
        half /= 4.0
    return float(d.min())


def _vertex_arc_distances(
    vertices: np.ndarray, arcs: _Sampler, v: np.ndarray, e: np.ndarray, ts: np.ndarray
) -> np.ndarray:
    ts = np.broadcast_to(ts, (len(v), ts.shape[1]))
    lon, lat = arcs.at(np.repeat(e, ts.shape[1]), ts.ravel())
    here = vertices[np.repeat(v, ts.shape[1])]
    return np.asarray(WGS84.inv(here[:, 0], here[:, 1], lon, lat)[2]).reshape(ts.shape)


def _side(arcs: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """-1 or 1: on which side of each arc's great circle each point lies (0: on it)."""
    n, m = len(arcs), len(lon)
    lon1, lat1 = np.repeat(arcs[:, 0], m), np.repeat(arcs[:, 1], m)
    towards_end = np.repeat(SPHERE.inv(arcs[:, 0], arcs[:, 1], arcs[:, 2], arcs[:, 3])[0], m)
    towards_point = SPHERE.inv(lon1, lat1, np.tile(lon, n), np.tile(lat, n))[0]
    turn = (towards_point - towards_end + 180.0) % 360.0 - 180.0
    return np.sign(turn).reshape(n, m)


def _arcs_cross(sa: _Sampler, sb: _Sampler) -> bool:
    """Whether an arc of a and one of b cross: each one's ends on both sides of the other."""
    a, b = sa.arcs[sa.length > 0], sb.arcs[sb.length > 0]
    if not len(a) or not len(b):
        return False
    b_ends_on_a = _side(a, b[:, 0], b[:, 1]) * _side(a, b[:, 2], b[:, 3])  # (na, nb)
    a_ends_on_b = _side(b, a[:, 0], a[:, 1]) * _side(b, a[:, 2], a[:, 3])  # (nb, na)
    return bool(np.any((b_ends_on_a < 0) & (a_ends_on_b.T < 0)))


def _sampled_pairs(sa: _Sampler, sb: _Sampler) -> float:
    """The plain brute force: 8 samples along every arc, every pair measured."""
    grid = np.linspace(0.0, 1.0, 8)
    ia, ta = (x.ravel() for x in np.meshgrid(np.arange(len(sa.arcs)), grid, indexing="ij"))
    ib, tb = (x.ravel() for x in np.meshgrid(np.arange(len(sb.arcs)), grid, indexing="ij"))
    lon_a, lat_a = sa.at(ia, ta)
    lon_b, lat_b = sb.at(ib, tb)
    _, _, d = WGS84.inv(*np.broadcast_arrays(lon_a[:, None], lat_a[:, None], lon_b, lat_b))
    return float(d.min())


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
    # Regression: edge normals from u x v lost 0.05 mm on a 7.5 m edge (now (u+v) x (v-u)).
    (
        "point-3cm-from-7m-edge",
        line((-69.9999875342651, -32.99996767137294), (-70.00001246574399, -33.00003232862566)),
        point(-69.99999998903483, -32.99999909837032),
        None,
    ),
    (
        "point-1cm-from-1m-edge",
        line((-70.0, -33.0), moved(-70.0, -33.0, 30, 1.0)),
        point(*moved(*great_circle_middle(-70.0, -33.0, *moved(-70.0, -33.0, 30, 1.0)), 120, 0.01)),
        None,
    ),
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


# --------------------------------------------------------------------------- properties

SPOTS = [
    (10.0, 50.0),
    (179.95, 0.0),  # on the antimeridian
    (-179.9, 64.0),
    (0.0, 89.6),  # shapes reaching over the north pole
    (100.0, -89.2),
    (-70.0, -33.0),
]
CENTRES = st.one_of(
    st.sampled_from(SPOTS),
    st.tuples(st.floats(-180.0, 180.0), st.floats(-89.0, 89.0)),
)
SIZES = st.floats(1.0, 5.3).map(lambda e: 10.0**e)  # 10 m to 200 km


@st.composite
def geometries(draw: st.DrawFn, centre: tuple[float, float], size_m: float) -> dict[str, Any]:
    lon, lat = centre
    kind = draw(st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon"]))
    if kind == "Point":
        return point(*moved(lon, lat, draw(st.floats(0, 360)), draw(st.floats(0, size_m))))
    if kind == "LineString":
        n = draw(st.integers(2, 5))
        jitter = draw(st.lists(st.floats(-0.4, 0.4), min_size=n, max_size=n))
        azimuths = [(i + j) * 360.0 / n for i, j in enumerate(jitter)]  # distinct positions
        radii = draw(st.lists(st.floats(0.1, 1.0), min_size=n, max_size=n))
        order = draw(st.permutations(range(n)))
        return line(*(moved(lon, lat, azimuths[i], radii[i] * size_m) for i in order))
    stars = []
    for offset in [0.0] if kind == "Polygon" else [0.0, 3.0 * size_m]:
        c = moved(lon, lat, draw(st.floats(0, 360)), offset)
        n = draw(st.integers(4, 8))
        # Vertices in azimuth order, consecutive ones less than 180 degrees apart: simple.
        jitter = draw(st.lists(st.floats(-0.4, 0.4), min_size=n, max_size=n))
        azimuths = [(i + j) * 360.0 / n for i, j in enumerate(jitter)]
        radii = draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))
        stars.append(star(*c, [r * size_m for r in radii], azimuths))
    return stars[0] if kind == "Polygon" else multipolygon(*stars)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    centre = draw(CENTRES)
    a = draw(geometries(centre, draw(SIZES)))
    separation = draw(st.sampled_from([0.0, 10.0, 1_000.0, 50_000.0, 500_000.0]))
    other = moved(*centre, draw(st.floats(0, 360)), separation * draw(st.floats(0.5, 1.5)))
    return a, draw(geometries(other, draw(SIZES)))


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(pairs())
def test_random_pairs_match_reference(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = pair
    reference = reference_distance_m(a, b)
    got = min_distance_m(shape(a), shape(b))
    assert got == pytest.approx(reference, rel=TOLERANCE, abs=2e-3)


@st.composite
def big_and_small(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A polygon or line of 49 to 200 vertices (several chunks) and a small geometry."""
    centre = draw(CENTRES)
    size = draw(SIZES)
    n = draw(st.integers(49, 200))
    radii = draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n))
    azimuths = [i * 360.0 / n for i in range(n)]
    big = star(*centre, [r * size for r in radii], azimuths)
    if draw(st.booleans()):
        big = line(*big["coordinates"][0][: draw(st.integers(49, n))])
    other = moved(*centre, draw(st.floats(0, 360)), size * draw(st.floats(0.0, 2.0)))
    return big, draw(geometries(other, size / 10))


@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(big_and_small())
def test_many_vertices_match_reference(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = pair
    reference = reference_distance_m(a, b)
    got = min_distance_m(shape(a), shape(b))
    assert got == pytest.approx(reference, rel=TOLERANCE, abs=2e-3)


@settings(deadline=None, max_examples=150)
@given(pairs())
def test_min_distance_is_symmetric(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = shape(pair[0]), shape(pair[1])
    assert min_distance_m(a, b) == pytest.approx(min_distance_m(b, a), rel=1e-12, abs=1e-9)


@settings(deadline=None, max_examples=150)
@given(pairs(), st.floats(0.0, 2.0))
def test_within_agrees_with_min_distance(
    pair: tuple[dict[str, Any], dict[str, Any]], factor: float
) -> None:
    a, b = shape(pair[0]), shape(pair[1])
    d = min_distance_m(a, b)
    for limit in (d, d * (1 + 1e-12), d * (1 - 1e-12) - 1e-9, d + 1e-3, d - 1e-3, d * factor, 0):
        assert within_m(a, b, limit) == (d <= limit), limit


def _boxes_overlap(p: tuple[float, ...], q: tuple[float, ...]) -> bool:
    return all(p[k] <= q[k + 3] and q[k] <= p[k + 3] for k in range(3))


@settings(deadline=None, max_examples=150)
@given(pairs(), st.floats(0.0, 1.0), st.floats(1.0, 1.5))
def test_reach_boxes_overlap_when_pads_cover_the_distance(
    pair: tuple[dict[str, Any], dict[str, Any]], split: float, slack: float
) -> None:
    a, b = shape(pair[0]), shape(pair[1])
    d = min_distance_m(a, b)
    assert within_m(a, b, d)
    assert _boxes_overlap(reach_box(a, d * split * slack), reach_box(b, d * (1 - split) * slack))


def _unit(lon: float, lat: float) -> np.ndarray:
    lo, la = math.radians(lon), math.radians(lat)
    return np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])


@settings(deadline=None, max_examples=100)
@given(pairs(), SIZES, st.floats(0, 360), st.floats(0.0, 1.0))
def test_reach_box_holds_every_point_within_the_pad(
    pair: tuple[dict[str, Any], dict[str, Any]], pad: float, azimuth: float, fraction: float
) -> None:
    geojson = pair[0]
    box = reach_box(shape(geojson), pad)
    # From vertices and from edge middles (where great-circle edges bulge), in any direction.
    arcs = _arcs(geojson)
    starts = [tuple(a[:2]) for a in arcs]
    middles = [great_circle_middle(*a) for a in arcs]
    for lon, lat in starts + middles:
        u = _unit(*moved(lon, lat, azimuth, pad * fraction))
        assert all(box[k] <= u[k] <= box[k + 3] for k in range(3))


def test_reach_box_is_tight_around_a_point() -> None:
    box = reach_box(shape(point(0, 0)), 10_000)
    half_width = 10_000 / EARTH_MIN_RADIUS_M
    assert box[4] == pytest.approx(half_width, rel=1e-3)
    assert box[3] == 1.0 or box[3] == pytest.approx(1.0)


def test_reach_box_of_polar_ring_reaches_the_pole() -> None:
    assert reach_box(shape(POLAR_RING), 0)[5] == 1.0


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["type", "coordinates"]), inner, max_size=2)
    ),
    max_leaves=20,
)
SMALL = st.floats(-1.0, 1.0)


@st.composite
def messy_geometries(draw: st.DrawFn) -> object:
    kind = draw(st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon", "Box"]))
    position = st.lists(
        st.one_of(SMALL, st.sampled_from([180.0, -180.0, 90.0])), min_size=2, max_size=3
    )
    positions = st.lists(position, min_size=0, max_size=6)
    rings = st.lists(positions.map(lambda r: r + r[:1]), min_size=0, max_size=3)
    coordinates = {
        "Point": position,
        "LineString": positions,
        "Polygon": rings,
        "MultiPolygon": st.lists(rings, max_size=2),
    }.get(kind, JSON)
    return {"type": kind, "coordinates": draw(st.one_of(coordinates, JSON))}


@settings(deadline=None, max_examples=300)
@given(st.one_of(JSON, messy_geometries()))
def test_parse_raises_only_its_own_errors(obj: object) -> None:
    try:
        parsed = parse_geometry(obj, G, max_vertices=50, max_radius_m=1e6)
    except (InvalidGeometry, TooLarge) as exc:
        assert exc.errors[0]["field"].startswith(G)
    else:
        assert min_distance_m(parsed, parsed) == 0.0


# --------------------------------------------------------------------------- query boxes

# (id, bbox, point, inside)
BOX_CASES: list[tuple[str, tuple[float, float, float, float], tuple[float, float], bool]] = [
    ("small-inside", (10, 40, 20, 50), (15, 45), True),
    ("small-outside", (10, 40, 20, 50), (21, 45), False),
    ("north-edge-inside-5m", (10, 40, 20, 50), moved(15, 50, 180, 5), True),
    ("north-edge-outside-5m", (10, 40, 20, 50), moved(15, 50, 0, 5), False),
    ("south-edge-inside-5m", (10, 40, 20, 50), moved(12, 40, 0, 5), True),
    ("south-edge-outside-5m", (10, 40, 20, 50), moved(12, 40, 180, 5), False),
    ("southern-hemisphere-north-edge-inside", (10, -50, 20, -40), moved(13, -40, 180, 5), True),
    ("southern-hemisphere-north-edge-outside", (10, -50, 20, -40), moved(13, -40, 0, 5), False),
    ("antimeridian-inside-west", (170, -10, -170, 10), (179.9, 0), True),
    ("antimeridian-inside-east", (170, -10, -170, 10), (-175, 5), True),
    ("antimeridian-outside", (170, -10, -170, 10), (160, 0), False),
    ("continent-inside", (-25, 34, 45, 72), (2.35, 48.85), True),
    ("continent-north-edge-inside-5m", (-25, 34, 45, 72), moved(10, 72, 180, 5), True),
    ("continent-north-edge-outside-5m", (-25, 34, 45, 72), moved(10, 72, 0, 5), False),
    ("continent-south-edge-inside-5m", (-25, 34, 45, 72), moved(10, 34, 0, 5), True),
    ("continent-south-edge-outside-5m", (-25, 34, 45, 72), moved(10, 34, 180, 5), False),
    ("continent-outside", (-25, 34, 45, 72), (-74, 40.7), False),
    ("world-north-pole", (-180, -90, 180, 90), (0, 90), True),
    ("world-anywhere", (-180, -90, 180, 90), (-123.4, -45.6), True),
    ("polar-cap-pole", (-180, 80, 180, 90), (77, 90), True),
    ("polar-cap-inside", (-180, 80, 180, 90), (33, 85), True),
    ("polar-cap-outside", (-180, 80, 180, 90), (33, 79.9), False),
    ("polar-wedge-outside", (0, 80, 90, 90), (-45, 85), False),
]


@pytest.mark.parametrize(
    ("bbox", "where", "inside"), [c[1:] for c in BOX_CASES], ids=[c[0] for c in BOX_CASES]
)
def test_bbox_intersection(
    bbox: tuple[float, float, float, float], where: tuple[float, float], inside: bool
) -> None:
    box = bbox_shape(*bbox)
    assert within_m(box, shape(point(*where)), 0.0) is inside
    assert (min_distance_m(box, shape(point(*where))) == 0.0) is inside


@settings(deadline=None, max_examples=60)
@given(
    st.floats(-180, 180),
    st.floats(1, 300),
    st.floats(-89, 88),
    st.floats(0.5, 120),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_bbox_holds_what_is_inside_and_not_what_is_outside(
    west: float, width: float, south: float, height: float, fx: float, fy: float
) -> None:
    north = min(89.0, south + height)
    east = (west + width + 180.0) % 360.0 - 180.0
    box = bbox_shape(west, south, east, north)
    lat = south + (north - south) * (0.001 + 0.998 * fy)
    lon = (west + width * (0.001 + 0.998 * fx) + 180.0) % 360.0 - 180.0
    assert within_m(box, shape(point(lon, lat)), 0.0)
    outside_lat = north + 0.01 if fy > 0.5 else south - 0.01
    assert not within_m(box, shape(point(lon, outside_lat)), 0.0)
    if width < 359.0:
        outside_lon = (west - 1e-3 * fx * (360 - width) - 1e-4 + 180.0) % 360.0 - 180.0
        assert not within_m(box, shape(point(outside_lon, lat)), 0.0)


BAD_BOXES = [
    ("nan", (math.nan, 0, 1, 1)),
    ("inf", (0, 0, math.inf, 1)),
    ("lon-out-of-range", (-181, 0, 1, 1)),
    ("lat-out-of-range", (0, -91, 1, 1)),
    ("lat-reversed", (0, 2, 1, 1)),
    ("zero-height", (0, 1, 1, 1)),
    ("zero-width", (5, 0, 5, 1)),
    ("thinner-than-a-micrometre", (0, 0, 1e-12, 1)),
    ("bool", (True, 0, 1, 1)),
]


@pytest.mark.parametrize("bbox", [b[1] for b in BAD_BOXES], ids=[b[0] for b in BAD_BOXES])
def test_bbox_refuses(bbox: tuple[float, float, float, float]) -> None:
    with pytest.raises(InvalidGeometry) as caught:
        bbox_shape(*bbox)
    assert caught.value.errors[0]["field"] == "bbox"

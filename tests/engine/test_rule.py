"""Tests of the conflict rule (deconflict.engine.rule) and of the index against it.

The rule is checked case by case: every pair of kinds under the default policy, restrictions,
owners, vertical separation, unbounded altitudes, touching and open-ended times, the
antimeridian, the poles, corridors and MultiPolygons. The index is checked against the brute
force (``brute_force``: ``conflict_between`` over every stored declaration) on seeded random
workloads spread over 300 km regions, mid-latitude, across the antimeridian and around both
poles, and by Hypothesis, with the algebra of the rule (symmetry, monotonicity in buffers and
separations).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from brute_force import (
    PROTECTIONS,
    RandomVolumes,
    assert_index_agrees,
    assert_intersecting_agrees,
    intersecting_by_brute_force,
    protection_policy,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deconflict.engine.index import ConflictIndex
from deconflict.engine.rule import (
    Found,
    Restricts,
    Subject,
    conflict_between,
    pair_rule,
    volumes_conflict,
)
from deconflict.geo.distance import min_distance_m
from deconflict.policy import DECLARED_BY, Policy, default_policy, parse_policy
from support import Doc, Position, build, geodesic_m, max_horizontal_m, offset, point, quad, volume

POLICY = default_policy()
T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
EVERYONE = Restricts()


# --------------------------------------------------------------------------- builders


def line(*positions: Position) -> Doc:
    return {"type": "LineString", "coordinates": [list(p) for p in positions]}


def rectangle(west: float, south: float, east: float, north: float) -> list[list[list[float]]]:
    """The rings of a lon/lat rectangle (edges are great circles, so only nearly one)."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return [ring]


def polygon(west: float, south: float, east: float, north: float) -> Doc:
    return {"type": "Polygon", "coordinates": rectangle(west, south, east, north)}


def multipolygon(*rings: list[list[list[float]]]) -> Doc:
    return {"type": "MultiPolygon", "coordinates": list(rings)}


# A Volume document starting ``start_h`` hours after this module's T0, lasting ``hours``.
vol = partial(volume, start=T0)


_numbers = itertools.count()


def subject(
    kind: str,
    owner: str,
    *docs: Doc,
    role: str | None = None,
    category: str = "combat",
    restricts: Restricts | None = None,
    id: str | None = None,
    version: str = "v1",
) -> Subject:
    return Subject(
        id=id if id is not None else f"{kind}-{next(_numbers)}",
        kind=kind,
        owner=owner,
        owner_role=role or DECLARED_BY[kind],  # type: ignore[index]
        version=version,
        category=category,
        restricts=restricts,
        volumes=build(docs),
    )


def op(owner: str, *docs: Doc, **fields: Any) -> Subject:
    return subject("operation", owner, *docs, **fields)


def site(owner: str, *docs: Doc, **fields: Any) -> Subject:
    return subject("site", owner, *docs, **fields)


def movement(owner: str, *docs: Doc, **fields: Any) -> Subject:
    return subject("movement", owner, *docs, **fields)


def restriction(owner: str, *docs: Doc, restricts: Restricts | None = EVERYONE) -> Subject:
    return subject("restriction", owner, *docs, restricts=restricts)


# --------------------------------------------------------------------------- places

HERE: Position = (10.0, 45.0)
AT_9_KM = offset(HERE, 90.0, 9_000.0)
AT_10_KM = offset(HERE, 90.0, 10_000.0)
AT_1_KM = offset(HERE, 30.0, 1_000.0)
D_1_KM = geodesic_m(HERE, AT_1_KM)  # the exact geodesic that the rule will measure
HERE_SQUARE = polygon(9.95, 44.95, 10.05, 45.05)
NEXT_SQUARE = polygon(10.05, 44.95, 10.15, 45.05)  # shares HERE_SQUARE's eastern edge
EAST_179_99: Position = (179.99, 0.0)
WEST_179_99: Position = (-179.99, 0.0)
D_ANTIMERIDIAN = geodesic_m(EAST_179_99, WEST_179_99)  # 2.2 km, across lon 180
NORTH_POLE: Position = (0.0, 90.0)
D_POLE_89_9 = geodesic_m((0.0, 89.9), (180.0, 89.9))  # 22.3 km, across the pole
D_POLE_89_96 = geodesic_m((0.0, 89.96), (180.0, 89.96))  # 8.9 km, across the pole
CORRIDOR = line((10.0, 45.0), (10.2, 45.0))  # about 15.7 km east-west
CORRIDOR_MIDDLE_NORTH_2_KM = offset((10.1, 45.0), 0.0, 2_000.0)  # ~1,995 m from the arc
CORRIDOR_BEYOND_END_1_KM = offset((10.2, 45.0), 90.0, 1_000.0)
TWO_SQUARES = multipolygon(
    rectangle(9.95, 44.95, 10.05, 45.05), rectangle(10.95, 44.95, 11.05, 45.05)
)


@dataclasses.dataclass(frozen=True)
class Case:
    a: Subject
    b: Subject
    reason: str | None  # None: no conflict
    distance_m: float | None = None  # the expected min_distance_m, when known


def conflict(a: Subject, b: Subject, reason: str, distance_m: float | None = None) -> Case:
    return Case(a, b, reason, distance_m)


def no_conflict(a: Subject, b: Subject) -> Case:
    return Case(a, b, None)


DEFAULT_CASES = [
    # ---- every pair of kinds
    pytest.param(
        conflict(op("n", vol(point(*HERE))), op("s", vol(point(*AT_9_KM))), "separation", 9_000),
        id="operation-operation-9km-within-9260m",
    ),
    pytest.param(
        no_conflict(op("n", vol(point(*HERE))), op("s", vol(point(*AT_10_KM)))),
        id="operation-operation-10km-beyond-9260m",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), buffer_m=400)),
            op("s", vol(point(*AT_10_KM), buffer_m=400)),
            "separation",
            10_000,
        ),
        id="operation-operation-10km-buffers-reach",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), buffer_m=D_1_KM / 2)),
            site("r", vol(point(*AT_1_KM), buffer_m=D_1_KM / 2)),
            "separation",
            D_1_KM,
        ),
        id="operation-site-buffers-touching",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), buffer_m=(D_1_KM - 1) / 2)),
            site("r", vol(point(*AT_1_KM), buffer_m=(D_1_KM - 1) / 2)),
        ),
        id="operation-site-buffers-1m-apart",
    ),
    pytest.param(
        conflict(op("n", vol(HERE_SQUARE)), site("r", vol(NEXT_SQUARE)), "separation", 0.0),
        id="operation-site-polygons-sharing-an-edge",
    ),
    pytest.param(
        conflict(op("n", vol(HERE_SQUARE)), site("r", vol(point(*HERE))), "separation", 0.0),
        id="operation-site-point-inside-polygon",
    ),
    pytest.param(
        conflict(
            movement("r", vol(point(*HERE), buffer_m=D_1_KM / 2)),
            op("n", vol(point(*AT_1_KM), buffer_m=D_1_KM / 2)),
            "separation",
            D_1_KM,
        ),
        id="movement-operation-buffers-touching",
    ),
    pytest.param(
        no_conflict(
            movement("r", vol(point(*HERE), buffer_m=(D_1_KM - 1) / 2)),
            op("n", vol(point(*AT_1_KM), buffer_m=(D_1_KM - 1) / 2)),
        ),
        id="movement-operation-buffers-1m-apart",
    ),
    pytest.param(
        no_conflict(site("r", vol(HERE_SQUARE)), site("w", vol(HERE_SQUARE))),
        id="site-site-never",
    ),
    pytest.param(
        no_conflict(movement("r", vol(point(*HERE))), movement("w", vol(point(*HERE)))),
        id="movement-movement-not-listed-never",
    ),
    pytest.param(
        no_conflict(site("r", vol(point(*HERE))), movement("w", vol(point(*HERE)))),
        id="site-movement-not-listed-never",
    ),
    pytest.param(
        no_conflict(restriction("c", vol(HERE_SQUARE)), restriction("d", vol(HERE_SQUARE))),
        id="restriction-restriction-never",
    ),
    pytest.param(
        no_conflict(restriction("c", vol(HERE_SQUARE)), site("r", vol(point(*HERE)))),
        id="restriction-site-never",
    ),
    pytest.param(
        no_conflict(restriction("c", vol(HERE_SQUARE)), movement("r", vol(point(*HERE)))),
        id="restriction-movement-never",
    ),
    # ---- restrictions: whom they restrict, and allowed categories
    pytest.param(
        conflict(op("n", vol(point(*HERE))), restriction("c", vol(HERE_SQUARE)), "restriction", 0),
        id="restriction-everyone-when-no-party-nor-role",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(HERE_SQUARE), restricts=Restricts(parties=("n",))),
            op("n", vol(point(*HERE))),
            "restriction",
            0.0,
        ),
        id="restriction-by-party-restricts-it",
    ),
    pytest.param(
        no_conflict(
            restriction("c", vol(HERE_SQUARE), restricts=Restricts(parties=("s",))),
            op("n", vol(point(*HERE))),
        ),
        id="restriction-by-party-spares-others",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(HERE_SQUARE), restricts=Restricts(roles=("operator",))),
            op("n", vol(point(*HERE))),
            "restriction",
            0.0,
        ),
        id="restriction-by-role-restricts-it",
    ),
    pytest.param(
        no_conflict(
            restriction("c", vol(HERE_SQUARE), restricts=Restricts(roles=("humanitarian",))),
            op("n", vol(point(*HERE))),
        ),
        id="restriction-by-role-spares-other-roles",
    ),
    pytest.param(
        conflict(
            restriction(
                "c", vol(HERE_SQUARE), restricts=Restricts(parties=("s",), roles=("operator",))
            ),
            op("n", vol(point(*HERE))),
            "restriction",
            0.0,
        ),
        id="restriction-by-party-or-role-either-matches",
    ),
    pytest.param(
        no_conflict(
            restriction("c", vol(HERE_SQUARE), restricts=Restricts(allowed_categories=("aid",))),
            op("n", vol(point(*HERE)), category="aid"),
        ),
        id="restriction-allowed-category-spared",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(HERE_SQUARE), restricts=Restricts(allowed_categories=("aid",))),
            op("n", vol(point(*HERE)), category="combat"),
            "restriction",
            0.0,
        ),
        id="restriction-other-category-restricted",
    ),
    pytest.param(
        no_conflict(
            restriction(
                "c",
                vol(HERE_SQUARE),
                restricts=Restricts(parties=("n",), allowed_categories=("aid", "transport")),
            ),
            op("n", vol(point(*HERE)), category="transport"),
        ),
        id="restriction-by-party-with-allowed-category",
    ),
    pytest.param(
        no_conflict(restriction("c", vol(HERE_SQUARE), restricts=None), op("n", vol(point(*HERE)))),
        id="restriction-without-restricts-never",
    ),
    pytest.param(
        no_conflict(restriction("c", vol(NEXT_SQUARE)), op("n", vol(point(10.04, 45.0)))),
        id="restriction-everyone-but-not-intersecting",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(NEXT_SQUARE)),
            op("n", vol(point(10.04, 45.0), buffer_m=900)),
            "restriction",
        ),
        id="restriction-reached-by-operation-buffer",
    ),
    pytest.param(
        no_conflict(
            restriction("c", vol(HERE_SQUARE, lower_m=None, upper_m=1000)),
            op("n", vol(point(*HERE), lower_m=1000.5, upper_m=2000)),
        ),
        id="restriction-operation-above-its-ceiling",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(HERE_SQUARE, lower_m=None, upper_m=1000)),
            op("n", vol(point(*HERE), lower_m=1000, upper_m=2000)),
            "restriction",
            0.0,
        ),
        id="restriction-operation-touching-its-ceiling",
    ),
    # ---- owners
    pytest.param(
        no_conflict(op("n", vol(point(*HERE))), op("n", vol(point(*HERE)))),
        id="same-owner-operations-never",
    ),
    pytest.param(
        no_conflict(
            op("c", vol(point(*HERE)), role="coordinator"), restriction("c", vol(HERE_SQUARE))
        ),
        id="same-owner-restriction-never",
    ),
    pytest.param(
        no_conflict(op("n", vol(point(*HERE)), id="same"), op("s", vol(point(*HERE)), id="same")),
        id="same-declaration-id-never",
    ),
    # ---- vertical separation (operation-operation: 300 m; operation-site: 0 m)
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=0, upper_m=1000)),
            op("s", vol(point(*HERE), lower_m=1300, upper_m=2000)),
            "separation",
            0.0,
        ),
        id="vertical-exactly-300m-conflicts",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), lower_m=0, upper_m=1000)),
            op("s", vol(point(*HERE), lower_m=1300.5, upper_m=2000)),
        ),
        id="vertical-300.5m-does-not",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), lower_m=1300.5, upper_m=2000)),
            op("s", vol(point(*HERE), lower_m=0, upper_m=1000)),
        ),
        id="vertical-300.5m-above-does-not",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=None, upper_m=1000)),
            op("s", vol(point(*HERE), lower_m=1300, upper_m=None)),
            "separation",
        ),
        id="unbounded-below-and-above-300m-apart",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), lower_m=None, upper_m=1000)),
            op("s", vol(point(*HERE), lower_m=1301, upper_m=None)),
        ),
        id="unbounded-below-and-above-301m-apart",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=None, upper_m=None)),
            op("s", vol(point(*HERE), lower_m=50_000, upper_m=60_000)),
            "separation",
        ),
        id="unbounded-both-ways-meets-everything",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=None, upper_m=100)),
            op("s", vol(point(*HERE), lower_m=None, upper_m=5000)),
            "separation",
        ),
        id="both-unbounded-below",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=9000, upper_m=None)),
            op("s", vol(point(*HERE), lower_m=100, upper_m=None)),
            "separation",
        ),
        id="both-unbounded-above",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=100, upper_m=500)),
            site("r", vol(point(*HERE), lower_m=0, upper_m=100)),
            "separation",
        ),
        id="operation-site-altitudes-touching",
    ),
    # ---- protection: altitude never hides an operation over a site or a movement
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=100.5, upper_m=500)),
            site("r", vol(point(*HERE), lower_m=0, upper_m=100)),
            "separation",
            0.0,
        ),
        id="operation-site-altitudes-0.5m-apart-altitude-ignored",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*AT_1_KM), buffer_m=2_000, lower_m=6_000, upper_m=12_000)),
            site("r", vol(point(*HERE), lower_m=0, upper_m=50)),
            "separation",
            D_1_KM,
        ),
        id="strike-at-6-12km-over-a-hospital-at-0-50m",
    ),
    pytest.param(
        conflict(
            movement("r", vol(CORRIDOR, lower_m=None, upper_m=10)),
            op(
                "n",
                vol(
                    point(*CORRIDOR_MIDDLE_NORTH_2_KM), buffer_m=2_100, lower_m=8_000, upper_m=None
                ),
            ),
            "separation",
        ),
        id="operation-unbounded-above-over-a-convoy-unbounded-below",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), buffer_m=(D_1_KM - 1) / 2, lower_m=6_000, upper_m=None)),
            site("r", vol(point(*AT_1_KM), buffer_m=(D_1_KM - 1) / 2, lower_m=0, upper_m=50)),
        ),
        id="protection-still-separates-by-distance",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), lower_m=6_000, upper_m=12_000, start_h=0, hours=4)),
            site("r", vol(point(*HERE), lower_m=0, upper_m=50, start_h=4, hours=None)),
        ),
        id="protection-still-separates-by-time",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), lower_m=6_000, upper_m=12_000)),
            site("n", vol(point(*HERE), lower_m=0, upper_m=50), role="operator"),
        ),
        id="protection-never-of-the-same-owner",
    ),
    # ---- time windows are half-open; end None is open-ended
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), start_h=0, hours=4)),
            op("s", vol(point(*HERE), start_h=4, hours=4)),
        ),
        id="time-touching-end-equals-start",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), start_h=4, hours=4)),
            op("s", vol(point(*HERE), start_h=0, hours=4)),
        ),
        id="time-touching-start-equals-end",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), start_h=0, hours=4)),
            op("s", vol(point(*HERE), start_h=4 - 1 / 3600, hours=4)),
            "separation",
        ),
        id="time-overlapping-by-one-second",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), start_h=0, hours=None)),
            op("s", vol(point(*HERE), start_h=24 * 365, hours=1)),
            "separation",
        ),
        id="time-open-ended-meets-a-year-later",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), start_h=0, hours=None)),
            op("s", vol(point(*HERE), start_h=-10, hours=10)),
        ),
        id="time-open-ended-after-an-earlier-window",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), start_h=0, hours=None)),
            op("s", vol(point(*HERE), start_h=1000, hours=None)),
            "separation",
        ),
        id="time-both-open-ended",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), start_h=0, hours=1)),
            op("s", vol(point(*HERE), start_h=1, hours=None)),
        ),
        id="time-open-ended-starting-at-the-end",
    ),
    # ---- the antimeridian and the poles
    pytest.param(
        conflict(
            op("n", vol(point(*EAST_179_99))),
            op("s", vol(point(*WEST_179_99))),
            "separation",
            D_ANTIMERIDIAN,
        ),
        id="antimeridian-operations-2km-apart",
    ),
    pytest.param(
        no_conflict(op("n", vol(point(*EAST_179_99))), site("r", vol(point(*WEST_179_99)))),
        id="antimeridian-operation-site-2km-apart",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*EAST_179_99), buffer_m=1_200)),
            site("r", vol(point(*WEST_179_99), buffer_m=1_200)),
            "separation",
            D_ANTIMERIDIAN,
        ),
        id="antimeridian-operation-site-buffers-reach",
    ),
    pytest.param(
        conflict(
            op("n", vol(polygon(179.95, -0.05, -179.95, 0.05))),
            site("r", vol(point(*WEST_179_99))),
            "separation",
            0.0,
        ),
        id="antimeridian-polygon-across-contains-point",
    ),
    pytest.param(
        conflict(
            op("n", vol(line((179.9, -0.1), (-179.9, 0.1)))),
            movement("r", vol(line((179.9, 0.1), (-179.9, -0.1)))),
            "separation",
            0.0,
        ),
        id="antimeridian-lines-crossing-on-it",
    ),
    pytest.param(
        no_conflict(op("n", vol(point(0.0, 89.9))), op("s", vol(point(180.0, 89.9)))),
        id="pole-operations-22km-apart-across-it",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(0.0, 89.96))),
            op("s", vol(point(180.0, 89.96))),
            "separation",
            D_POLE_89_96,
        ),
        id="pole-operations-9km-apart-across-it",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(0.0, 89.9), buffer_m=D_POLE_89_9 / 2)),
            site("r", vol(point(180.0, 89.9), buffer_m=D_POLE_89_9 / 2)),
            "separation",
            D_POLE_89_9,
        ),
        id="pole-buffers-touching-across-it",
    ),
    pytest.param(
        conflict(
            op("n", vol({"type": "Polygon", "coordinates": [quad(NORTH_POLE, 11_000.0)]})),
            site("r", vol(point(*NORTH_POLE))),
            "separation",
            0.0,
        ),
        id="pole-polygon-surrounding-it-contains-it",
    ),
    pytest.param(
        conflict(
            op("n", vol({"type": "Polygon", "coordinates": [quad(NORTH_POLE, 11_000.0)]})),
            site("r", vol(point(-135.0, 89.95))),
            "separation",
            0.0,
        ),
        id="pole-polygon-surrounding-it-contains-point-beside-it",
    ),
    pytest.param(
        no_conflict(
            op("n", vol({"type": "Polygon", "coordinates": [quad(NORTH_POLE, 11_000.0)]})),
            site("r", vol(point(45.0, 89.8))),
        ),
        id="pole-polygon-surrounding-it-point-outside",
    ),
    # ---- corridors and MultiPolygons
    pytest.param(
        conflict(
            op("n", vol(CORRIDOR, buffer_m=2_100)),
            site("r", vol(point(*CORRIDOR_MIDDLE_NORTH_2_KM))),
            "separation",
        ),
        id="corridor-reaches-point-beside-its-middle",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(CORRIDOR, buffer_m=1_900)),
            site("r", vol(point(*CORRIDOR_MIDDLE_NORTH_2_KM))),
        ),
        id="corridor-misses-point-beside-its-middle",
    ),
    pytest.param(
        conflict(
            movement("r", vol(CORRIDOR, buffer_m=1_010)),
            op("n", vol(point(*CORRIDOR_BEYOND_END_1_KM))),
            "separation",
            1_000,
        ),
        id="corridor-round-end-reaches-point-beyond",
    ),
    pytest.param(
        no_conflict(
            movement("r", vol(CORRIDOR, buffer_m=990)),
            op("n", vol(point(*CORRIDOR_BEYOND_END_1_KM))),
        ),
        id="corridor-round-end-misses-point-beyond",
    ),
    pytest.param(
        conflict(op("n", vol(TWO_SQUARES)), site("r", vol(point(11.0, 45.0))), "separation", 0),
        id="multipolygon-second-part-contains-point",
    ),
    pytest.param(
        no_conflict(op("n", vol(TWO_SQUARES)), site("r", vol(point(10.5, 45.0)))),
        id="multipolygon-point-between-parts",
    ),
    pytest.param(
        conflict(
            op("n", vol(TWO_SQUARES)),
            op("s", vol(point(10.1, 45.0))),  # 3.9 km east of the first part
            "separation",
        ),
        id="multipolygon-operation-near-a-part-within-9260m",
    ),
    pytest.param(
        no_conflict(op("n", vol(TWO_SQUARES)), op("s", vol(point(10.5, 45.0)))),
        id="multipolygon-operation-between-parts-35km-from-both",
    ),
    # ---- several volumes: any pair of them decides
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), start_h=0), vol(point(20.0, 50.0), start_h=48)),
            site("r", vol(point(20.0, 50.0), start_h=50), vol(point(*HERE), start_h=10)),
            "separation",
            0.0,
        ),
        id="several-volumes-one-pair-meets",
    ),
    pytest.param(
        no_conflict(
            op("n", vol(point(*HERE), start_h=0), vol(point(20.0, 50.0), start_h=48)),
            site("r", vol(point(20.0, 50.0), start_h=10), vol(point(*HERE), start_h=50)),
        ),
        id="several-volumes-meet-in-space-not-in-time",
    ),
]


def assert_found(found: Found | None, case: Case) -> None:
    if case.reason is None:
        assert found is None
        return
    assert found is not None
    assert found.reason == case.reason
    if case.distance_m is not None:
        assert found.min_distance_m == pytest.approx(case.distance_m, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("case", DEFAULT_CASES)
def test_rule_under_the_default_policy(case: Case) -> None:
    found = conflict_between(POLICY, case.a, case.b)
    assert_found(found, case)
    assert found is None or found.other is case.b


@pytest.mark.parametrize("case", DEFAULT_CASES)
def test_rule_is_the_same_both_ways(case: Case) -> None:
    assert_found(conflict_between(POLICY, case.b, case.a), case)


@pytest.mark.parametrize("case", DEFAULT_CASES)
def test_index_finds_the_same_as_the_rule(case: Case) -> None:
    index = ConflictIndex()
    index.put(case.b)
    found = index.conflicts_of(POLICY, case.a)
    assert [f.other.id for f in found] == ([] if case.reason is None else [case.b.id])
    if found:
        assert_found(found[0], case)


# --------------------------------------------------------------------------- pair_rule

PAIR_RULES = [
    pytest.param("operation", "operation", ("separation", 9260.0, 300.0), id="op-op"),
    # Protected kinds: no vertical separation from an operation (altitude = "ignored").
    pytest.param("operation", "site", ("separation", 0.0, math.inf), id="op-site"),
    pytest.param("site", "operation", ("separation", 0.0, math.inf), id="site-op"),
    pytest.param("operation", "movement", ("separation", 0.0, math.inf), id="op-movement"),
    pytest.param("movement", "operation", ("separation", 0.0, math.inf), id="movement-op"),
    pytest.param("operation", "restriction", ("restriction", 0.0, 0.0), id="op-restriction"),
    pytest.param("restriction", "operation", ("restriction", 0.0, 0.0), id="restriction-op"),
    pytest.param("site", "site", None, id="site-site"),
    pytest.param("movement", "movement", None, id="movement-movement"),
    pytest.param("site", "movement", None, id="site-movement"),
    pytest.param("restriction", "restriction", None, id="restriction-restriction"),
    pytest.param("restriction", "site", None, id="restriction-site"),
    pytest.param("movement", "restriction", None, id="movement-restriction"),
]


@pytest.mark.parametrize(("kind_a", "kind_b", "expected"), PAIR_RULES)
def test_pair_rule_of_every_pair_of_kinds(
    kind_a: str, kind_b: str, expected: tuple[str, float, float] | None
) -> None:
    def make(kind: str, owner: str) -> Subject:
        restricts = EVERYONE if kind == "restriction" else None
        return subject(kind, owner, vol(point(*HERE)), restricts=restricts)

    assert pair_rule(POLICY, make(kind_a, "a"), make(kind_b, "b")) == expected


INF = math.inf
PROTECTED_PAIR_RULES = [
    pytest.param("separated", "operation", "site", ("separation", 0, 0), id="sep-op-site"),
    pytest.param("separated", "movement", "operation", ("separation", 0, 0), id="sep-mv-op"),
    pytest.param("separated", "operation", "operation", ("separation", 9260, 300), id="sep-op-op"),
    pytest.param("sites-only", "site", "operation", ("separation", 0, INF), id="sites-site-op"),
    pytest.param("sites-only", "operation", "movement", ("separation", 0, 0), id="sites-op-mv"),
    pytest.param(
        "sites-restrictions", "operation", "restriction", ("restriction", 0, INF), id="r-op-r"
    ),
    pytest.param("sites-restrictions", "operation", "movement", ("separation", 0, 0), id="r-op-mv"),
    pytest.param("ignored", "operation", "operation", ("separation", 9260, 300), id="ign-op-op"),
    pytest.param("ignored", "operation", "restriction", ("restriction", 0, 0), id="ign-op-r"),
    pytest.param("ignored", "site", "movement", None, id="ign-site-mv"),
]


@pytest.mark.parametrize(("protection", "kind_a", "kind_b", "expected"), PROTECTED_PAIR_RULES)
def test_pair_rule_under_each_protection(
    protection: str, kind_a: str, kind_b: str, expected: tuple[str, float, float] | None
) -> None:
    policy = protection_policy(*PROTECTIONS[protection])

    def make(kind: str, owner: str) -> Subject:
        restricts = EVERYONE if kind == "restriction" else None
        return subject(kind, owner, vol(point(*HERE)), restricts=restricts)

    assert pair_rule(policy, make(kind_a, "a"), make(kind_b, "b")) == expected


def test_volumes_conflict_decides_one_pair_of_volumes() -> None:
    (a,) = build([vol(point(*HERE), lower_m=0, upper_m=100)])
    (b,) = build([vol(point(*AT_1_KM), lower_m=150, upper_m=200)])
    assert volumes_conflict(a, b, D_1_KM, 50.0)
    assert not volumes_conflict(a, b, D_1_KM - 0.5, 50.0)
    assert not volumes_conflict(a, b, D_1_KM, 49.5)


def test_found_reports_the_time_overlap_and_distance() -> None:
    a = op("n", vol(point(*HERE), start_h=0, hours=4))
    b = op("s", vol(point(*AT_9_KM), start_h=2, hours=None), id="b-id", version="v7")
    found = conflict_between(POLICY, a, b)
    assert found is not None
    assert found.overlap_start == (T0 + timedelta(hours=2)).timestamp()
    assert found.overlap_end == (T0 + timedelta(hours=4)).timestamp()
    assert found.to_json() == {
        "declaration": {"id": "b-id", "kind": "operation", "owner": "s", "version": "v7"},
        "reason": "separation",
        "min_distance_m": round(found.min_distance_m, 1),
        "time_overlap": {"start": "2026-12-04T08:00:00Z", "end": "2026-12-04T10:00:00Z"},
    }
    both_open = conflict_between(POLICY, op("n", vol(point(*HERE), hours=None)), b)
    assert both_open is not None
    assert math.isinf(both_open.overlap_end)
    assert both_open.to_json()["time_overlap"] == {"start": "2026-12-04T08:00:00Z", "end": None}


def test_found_takes_the_closest_of_the_conflicting_volume_pairs() -> None:
    a = op("n", vol(point(*HERE)), vol(point(*AT_9_KM), start_h=100))
    b = op("s", vol(point(*AT_9_KM)), vol(point(*AT_9_KM), start_h=10))
    found = conflict_between(POLICY, a, b)
    assert found is not None
    # The coincident pair never overlaps in time, so only the 9 km pair counts.
    assert found.min_distance_m == pytest.approx(9_000, rel=1e-6)


def test_restricts_json_round_trip() -> None:
    restricts = Restricts(parties=("p",), roles=("operator",), allowed_categories=("aid",))
    assert Restricts.from_json(restricts.to_json()) == restricts
    assert Restricts.from_json(None) is None
    assert Restricts.from_json({}) == EVERYONE


# --------------------------------------------------------------------------- custom policy

CUSTOM_POLICY_TEXT = """
[separation.operation-operation]
horizontal_m = 20000
vertical_m = 600

[separation.movement-movement]
horizontal_m = 1000
vertical_m = 100

[separation.site-operation]
horizontal_m = 0
vertical_m = 0

[separation.restriction-operation]
horizontal_m = 500
vertical_m = 0

[separation.movement-restriction]
horizontal_m = 0
vertical_m = 0

[visibility]
operation = ["operator", "coordinator"]
site = ["*"]
movement = ["*"]
restriction = ["*"]
"""


def custom_policy() -> Policy:
    return parse_policy(CUSTOM_POLICY_TEXT)


CUSTOM_CASES = [
    pytest.param(
        conflict(
            movement("r", vol(point(*HERE))),
            movement("w", vol(point(*offset(HERE, 10.0, 900.0)))),
            "separation",
            900,
        ),
        id="movement-movement-900m-within-1000m",
    ),
    pytest.param(
        no_conflict(
            movement("r", vol(point(*HERE))),
            movement("w", vol(point(*offset(HERE, 10.0, 1_100.0)))),
        ),
        id="movement-movement-1100m-beyond-1000m",
    ),
    pytest.param(
        no_conflict(
            movement("r", vol(point(*HERE), lower_m=0, upper_m=100)),
            movement("w", vol(point(*HERE), lower_m=200.5, upper_m=300)),
        ),
        id="movement-movement-vertical-100.5m-beyond-100m",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE))),
            op("s", vol(point(*offset(HERE, 200.0, 15_000.0)))),
            "separation",
            15_000,
        ),
        id="operation-operation-15km-within-20km",
    ),
    pytest.param(
        no_conflict(op("n", vol(point(*HERE))), op("s", vol(point(*offset(HERE, 200.0, 21_000))))),
        id="operation-operation-21km-beyond-20km",
    ),
    pytest.param(
        conflict(
            op("n", vol(point(*HERE), lower_m=0, upper_m=1000)),
            op("s", vol(point(*HERE), lower_m=1600, upper_m=2000)),
            "separation",
        ),
        id="operation-operation-vertical-exactly-600m",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(NEXT_SQUARE)),
            op("n", vol(point(*offset((10.05, 45.0), 270.0, 400.0)))),
            "restriction",
        ),
        id="restriction-margin-500m-reaches-operation-400m-outside",
    ),
    pytest.param(
        conflict(
            restriction("c", vol(NEXT_SQUARE), restricts=Restricts(roles=("humanitarian",))),
            movement("r", vol(point(10.1, 45.0))),
            "restriction",
            0.0,
        ),
        id="restriction-of-movements-when-listed",
    ),
    pytest.param(
        no_conflict(op("n", vol(point(*HERE))), movement("r", vol(point(*HERE)))),
        id="operation-movement-not-listed-never",
    ),
]


@pytest.mark.parametrize("case", CUSTOM_CASES)
def test_rule_under_a_custom_policy(case: Case) -> None:
    policy = custom_policy()
    assert_found(conflict_between(policy, case.a, case.b), case)
    assert_found(conflict_between(policy, case.b, case.a), case)
    index = ConflictIndex()
    index.put(case.b)
    found = index.conflicts_of(policy, case.a)
    assert [f.other.id for f in found] == ([] if case.reason is None else [case.b.id])


# --------------------------------------------------------------------------- protection

HOSPITAL = vol(point(*HERE), lower_m=0, upper_m=50)
STRIKE_OVER_IT = vol(point(*AT_1_KM), buffer_m=2_000, lower_m=6_000, upper_m=12_000)
CONVOY = vol(CORRIDOR, lower_m=None, upper_m=10)
OVER_THE_CONVOY = vol(
    point(*CORRIDOR_MIDDLE_NORTH_2_KM), buffer_m=2_100, lower_m=8_000, upper_m=None
)

# The cases of (protection variant, case): under "separated", the altitude bands and
# vertical_m apply to an operation and a site or movement as to any other pair; with only
# sites protected, movements are separated by altitude again; with restrictions protected,
# an operation above a restriction's ceiling is in it.
PROTECTION_CASES = [
    pytest.param(
        "separated",
        no_conflict(
            op("n", vol(point(*HERE), lower_m=100.5, upper_m=500)),
            site("r", vol(point(*HERE), lower_m=0, upper_m=100)),
        ),
        id="separated-operation-site-altitudes-0.5m-apart",
    ),
    pytest.param(
        "separated",
        conflict(
            op("n", vol(point(*HERE), lower_m=100, upper_m=500)),
            site("r", vol(point(*HERE), lower_m=0, upper_m=100)),
            "separation",
        ),
        id="separated-operation-site-altitudes-touching",
    ),
    pytest.param(
        "separated",
        no_conflict(op("n", STRIKE_OVER_IT), site("r", HOSPITAL)),
        id="separated-strike-over-a-hospital-hidden",
    ),
    pytest.param(
        "separated",
        no_conflict(movement("r", CONVOY), op("n", OVER_THE_CONVOY)),
        id="separated-operation-over-a-convoy-hidden",
    ),
    pytest.param(
        "separated",
        conflict(
            movement("r", vol(CORRIDOR, lower_m=None, upper_m=8_000)),
            op("n", OVER_THE_CONVOY),
            "separation",
        ),
        id="separated-convoy-reaching-the-operation",
    ),
    pytest.param(
        "ignored",
        conflict(op("n", STRIKE_OVER_IT), site("r", HOSPITAL), "separation", D_1_KM),
        id="ignored-strike-over-a-hospital",
    ),
    pytest.param(
        "ignored",
        no_conflict(
            op("n", vol(point(*HERE), lower_m=0, upper_m=1000)),
            op("s", vol(point(*HERE), lower_m=1300.5, upper_m=2000)),
        ),
        id="ignored-operations-still-separated-by-300m",
    ),
    pytest.param(
        "sites-only",
        conflict(op("n", STRIKE_OVER_IT), site("r", HOSPITAL), "separation", D_1_KM),
        id="sites-only-strike-over-a-hospital",
    ),
    pytest.param(
        "sites-only",
        no_conflict(movement("r", CONVOY), op("n", OVER_THE_CONVOY)),
        id="sites-only-operation-over-a-convoy-separated",
    ),
    pytest.param(
        "sites-restrictions",
        conflict(
            restriction("c", vol(HERE_SQUARE, lower_m=None, upper_m=1000)),
            op("n", vol(point(*HERE), lower_m=1000.5, upper_m=2000)),
            "restriction",
            0.0,
        ),
        id="sites-restrictions-operation-above-the-ceiling",
    ),
    pytest.param(
        "sites-restrictions",
        no_conflict(
            restriction("c", vol(HERE_SQUARE, lower_m=None, upper_m=1000), restricts=None),
            op("n", vol(point(*HERE), lower_m=1000.5, upper_m=2000)),
        ),
        id="sites-restrictions-still-only-whom-it-restricts",
    ),
]


@pytest.mark.parametrize(("protection", "case"), PROTECTION_CASES)
def test_rule_under_each_protection(protection: str, case: Case) -> None:
    policy = protection_policy(*PROTECTIONS[protection])
    assert_found(conflict_between(policy, case.a, case.b), case)
    assert_found(conflict_between(policy, case.b, case.a), case)
    for query, stored in ((case.a, case.b), (case.b, case.a)):
        index = ConflictIndex()
        index.put(stored)
        found = index.conflicts_of(policy, query)
        assert [f.other.id for f in found] == ([] if case.reason is None else [stored.id])
        if found:
            assert_found(found[0], case)
        ids = index.conflicting_ids(policy, query.declared(), list(query.volumes))
        assert ids == [f.other.id for f in found]


def test_custom_policy_changes_what_the_default_decides() -> None:
    a = op("n", vol(point(*HERE)))
    b = op("s", vol(point(*offset(HERE, 200.0, 15_000.0))))
    assert conflict_between(POLICY, a, b) is None
    assert conflict_between(custom_policy(), a, b) is not None
    assert max_horizontal_m(custom_policy(), "operation") == 20_000
    assert max_horizontal_m(custom_policy(), "site") == 0
    assert max_horizontal_m(POLICY, "operation") == 9_260


# --------------------------------------------------------------------------- random workloads

REGIONS: dict[str, Position] = {
    "mid-latitude": (10.0, 45.0),
    "antimeridian": (180.0, -17.0),
    "north-pole": (30.0, 89.0),  # 150 km reaches 39 km beyond the pole
    "south-pole": (-120.0, -89.3),
}
REGION_RADIUS_M = 150_000.0  # a 300 km region
OPERATORS = [f"operator-{i}" for i in range(6)]
HUMANITARIANS = [f"humanitarian-{i}" for i in range(4)]
COORDINATORS = ["coordinator-0", "coordinator-1"]
CATEGORIES = ["combat", "non-combat", "transport", "surveillance"]


class Workload(RandomVolumes):
    """Seeded random declarations of mixed kinds and owners around one centre."""

    def __init__(self, seed: int, center: Position, *, banded: bool = False) -> None:
        super().__init__(seed, center, T0, banded=banded)

    def position(self, near: Position | None = None, radius_m: float | None = None) -> Position:
        rng = self.rng
        origin = near or self.center
        if near is None and rng.random() < 0.03:
            return (rng.uniform(-180, 180), 90.0 if origin[1] > 0 else -90.0)
        reach = REGION_RADIUS_M if radius_m is None else radius_m
        return offset(origin, rng.uniform(-180, 180), reach * math.sqrt(rng.random()))

    def geometry(self, near: Position) -> Doc:
        rng = self.rng
        shape = rng.choice(["Point", "Point", "LineString", "Polygon", "MultiPolygon"])
        if shape == "Point":
            return point(*near)
        if shape == "LineString":
            positions = [near]
            for _ in range(rng.randint(1, 3)):
                positions.append(
                    offset(positions[-1], rng.uniform(-180, 180), rng.uniform(500, 20_000))
                )
            return line(*positions)
        if shape == "Polygon":
            ring = quad(near, rng.uniform(300, 15_000), rng.uniform(0, 90))
            return {"type": "Polygon", "coordinates": [ring]}
        parts = [[quad(near, rng.uniform(300, 8_000), rng.uniform(0, 90))]]
        other = quad(self.position(near, 20_000), rng.uniform(300, 8_000), rng.uniform(0, 90))
        parts.append([other])
        return multipolygon(*parts)

    def restricts(self) -> Restricts:
        rng = self.rng
        who = rng.choice(["everyone", "parties", "roles", "both"])
        parties = tuple(rng.sample(OPERATORS, 2)) if who in ("parties", "both") else ()
        roles = (rng.choice(["operator", "humanitarian"]),) if who in ("roles", "both") else ()
        allowed = tuple(rng.sample(CATEGORIES, rng.randint(0, 2)))
        return Restricts(parties=parties, roles=roles, allowed_categories=allowed)

    def subject(self, id: str | None = None) -> Subject:
        rng = self.rng
        kind = rng.choices(["operation", "site", "movement", "restriction"], [45, 20, 20, 15])[0]
        owner = rng.choice(
            {"operation": OPERATORS, "restriction": COORDINATORS}.get(kind, HUMANITARIANS)
        )
        return Subject(
            id=id if id is not None else f"d-{next(self.serial)}",
            kind=kind,
            owner=owner,
            owner_role=DECLARED_BY[kind],  # type: ignore[index]
            version=f"v-{rng.getrandbits(32)}",
            category=rng.choice(CATEGORIES),
            restricts=self.restricts() if kind == "restriction" else None,
            volumes=build(self.volumes(kind)),
        )

    def updated(self, old: Subject) -> Subject:
        """The same declaration (id, kind, owner) with a new version and new volumes."""
        new = self.subject(old.id)
        restricts = self.restricts() if old.kind == "restriction" else None
        if self.banded:  # volumes in the band of its own kind
            new = dataclasses.replace(new, volumes=build(self.volumes(old.kind)))
        return dataclasses.replace(
            new, kind=old.kind, owner=old.owner, owner_role=old.owner_role, restricts=restricts
        )


def assert_agrees(
    policy: Policy, index: ConflictIndex, query: Subject, stored: Sequence[Subject]
) -> int:
    """The index's answer equals the brute force's, naming the very Subjects stored; returns
    how many conflicts there were."""
    found = assert_index_agrees(policy, index, query, stored, same=id, rel=1e-6, abs_m=1e-9)
    return len(found)


def assert_index_agrees_for_all(
    policy: Policy, index: ConflictIndex, stored: dict[str, Subject], extra: Sequence[Subject]
) -> int:
    assert len(index) == len(stored)
    assert index.volume_count() == sum(len(s.volumes) for s in stored.values())
    others = list(stored.values())
    return sum(assert_agrees(policy, index, q, others) for q in [*others, *extra])


@pytest.mark.parametrize(
    ("region", "policy_name"),
    [pytest.param(region, "default", id=f"{region}-default") for region in REGIONS]
    + [pytest.param("mid-latitude", "custom", id="mid-latitude-custom")]
    + [pytest.param("antimeridian", "custom", id="antimeridian-custom")],
)
def test_index_agrees_with_brute_force_on_a_random_workload(region: str, policy_name: str) -> None:
    policy = POLICY if policy_name == "default" else custom_policy()
    workload = Workload(seed=sum(map(ord, region + policy_name)), center=REGIONS[region])
    index = ConflictIndex()
    stored: dict[str, Subject] = {}
    for _ in range(400):
        s = workload.subject()
        index.put(s)
        stored[s.id or ""] = s
    fresh = [workload.subject() for _ in range(20)]  # never stored: queries of new declarations
    fresh.append(dataclasses.replace(workload.subject(), id=None))
    conflicts = assert_index_agrees_for_all(policy, index, stored, fresh)
    assert conflicts >= 100, "the workload must be dense enough to test something"

    rng = random.Random(7)
    for declaration_id in rng.sample(sorted(stored), 80):  # withdrawals
        index.remove(declaration_id)
        del stored[declaration_id]
    for declaration_id in rng.sample(sorted(stored), 80):  # updates: same id, new volumes
        new = workload.updated(stored[declaration_id])
        index.put(new)
        stored[declaration_id] = new
    for _ in range(40):  # new declarations
        s = workload.subject()
        index.put(s)
        stored[s.id or ""] = s
    index.remove("never-stored")  # a no-op
    assert_index_agrees_for_all(policy, index, stored, fresh)


def protected_pairs(policy: Policy, index: ConflictIndex, stored: Sequence[Subject]) -> int:
    """How many (operation, protected declaration) conflicts the index finds among these."""
    return sum(
        policy.protects(query.kind, found.other.kind)
        for query in stored
        if query.kind == "operation"
        for found in index.conflicts_of(policy, query)
    )


@pytest.mark.parametrize("protection", list(PROTECTIONS))
@pytest.mark.parametrize("region", ["mid-latitude", "antimeridian", "north-pole"])
def test_index_agrees_with_brute_force_on_banded_altitudes(region: str, protection: str) -> None:
    # Sites and movements at 0-50 m, operations at 6,000-12,000 m (either maybe unbounded the
    # other way): an operation meets a protected declaration only where altitude is ignored.
    policy = protection_policy(*PROTECTIONS[protection])
    workload = Workload(seed=sum(map(ord, region)) + 13, center=REGIONS[region], banded=True)
    index = ConflictIndex()
    stored: dict[str, Subject] = {}
    for _ in range(300):
        s = workload.subject()
        index.put(s)
        stored[s.id or ""] = s
    fresh = [workload.subject() for _ in range(20)]
    fresh.append(dataclasses.replace(workload.subject(), id=None))
    conflicts = assert_index_agrees_for_all(policy, index, stored, fresh)
    assert conflicts >= 50, "the workload must be dense enough to test something"
    protected = protected_pairs(policy, index, list(stored.values()))
    if protection == "separated":
        assert protected == 0  # the bands are disjoint: altitude separates every such pair
    else:
        assert protected >= 20
    rng = random.Random(11)
    for declaration_id in rng.sample(sorted(stored), 60):  # updates, then withdrawals
        new = workload.updated(stored[declaration_id])
        index.put(new)
        stored[declaration_id] = new
    for declaration_id in rng.sample(sorted(stored), 60):
        index.remove(declaration_id)
        del stored[declaration_id]
    assert_index_agrees_for_all(policy, index, stored, fresh)


def test_index_get_put_remove() -> None:
    index = ConflictIndex()
    a = op("n", vol(point(*HERE)), vol(point(*AT_1_KM)), id="a")
    index.put(a)
    assert index.get("a") is a
    assert (len(index), index.volume_count()) == (1, 2)
    b = dataclasses.replace(a, version="v2", volumes=build([vol(point(*AT_10_KM))]))
    index.put(b)
    assert index.get("a") is b
    assert (len(index), index.volume_count()) == (1, 1)
    query = op("s", vol(point(*HERE)))
    assert index.conflicts_of(POLICY, query) == []  # the old volumes are gone
    index.remove("a")
    assert index.get("a") is None
    assert (len(index), index.volume_count()) == (0, 0)
    index.remove("a")


@pytest.mark.parametrize("region", list(REGIONS))
def test_intersecting_agrees_with_brute_force(region: str) -> None:
    workload = Workload(seed=len(region), center=REGIONS[region])
    index = ConflictIndex()
    stored = [workload.subject() for _ in range(300)]
    for s in stored:
        index.put(s)
    hits = assert_intersecting_agrees(index, stored, workload, random.Random(3), rounds=25)
    start = T0.timestamp() + 3600 * 10
    everything = {s.id for s in index.intersecting(None, start, math.inf)}
    assert everything == intersecting_by_brute_force(stored, None, start, math.inf)
    assert hits > 0


# --------------------------------------------------------------------------- properties

# Hypothesis draws declarations in a 40 km region around one of these centres, so that
# conflicts are common; each volume is a point, a corridor, a polygon or a MultiPolygon.
CENTRES = [(10.0, 45.0), (180.0, 0.0), (-179.99, 65.0), (0.0, 89.9), (100.0, -89.95)]

azimuths = st.floats(-180, 180, allow_nan=False)
distances = st.floats(0, 20_000, allow_nan=False)


@st.composite
def geometries(draw: st.DrawFn, centre: Position) -> Doc:
    here = offset(centre, draw(azimuths), draw(distances))
    shape = draw(st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon"]))
    if shape == "Point":
        return point(*here)
    if shape == "LineString":
        return line(here, offset(here, draw(azimuths), draw(st.floats(100, 10_000))))
    size = st.floats(100, 5_000)
    rotation = st.floats(0, 90)
    first = [quad(here, draw(size), draw(rotation))]
    if shape == "Polygon":
        return {"type": "Polygon", "coordinates": first}
    second = [quad(offset(here, draw(azimuths), draw(distances)), draw(size), draw(rotation))]
    return multipolygon(first, second)


altitudes = st.one_of(st.none(), st.integers(0, 40).map(lambda n: n * 100.0))


@st.composite
def banded_altitudes(draw: st.DrawFn, kind: str) -> tuple[float | None, float | None]:
    """An altitude band in the kind's own band of ``brute_force.BANDS`` (restrictions: any):
    an operation from 6,000 m up, maybe unbounded above; a site or movement up to 50 m, maybe
    unbounded below. They never overlap: only an ignored altitude makes them conflict."""
    if kind == "operation":
        lower = float(draw(st.integers(6_000, 12_000)))
        upper = draw(st.one_of(st.none(), st.floats(lower, 12_000)))
        return lower, upper
    if kind in ("site", "movement"):
        upper = float(draw(st.integers(0, 50)))
        return draw(st.one_of(st.none(), st.floats(0, upper))), upper
    return draw(plain_altitudes())


@st.composite
def plain_altitudes(draw: st.DrawFn) -> tuple[float | None, float | None]:
    lower, upper = draw(altitudes), draw(altitudes)
    if lower is not None and upper is not None and lower > upper:
        lower, upper = upper, lower
    return lower, upper


@st.composite
def volume_docs(
    draw: st.DrawFn, centre: Position, open_ended: bool = True, band: str | None = None
) -> Doc:
    """``band``: the kind whose band of ``banded_altitudes`` the volume is in (None: any)."""
    lower, upper = draw(plain_altitudes() if band is None else banded_altitudes(band))
    durations = st.integers(1, 12) if not open_ended else st.one_of(st.none(), st.integers(1, 12))
    return vol(
        draw(geometries(centre)),
        buffer_m=draw(st.one_of(st.just(0.0), st.floats(0, 5_000))),
        lower_m=lower,
        upper_m=upper,
        start_h=draw(st.integers(0, 24)),
        hours=draw(durations),
    )


@st.composite
def subjects(
    draw: st.DrawFn, centre: Position | None = None, open_ended: bool = True, banded: bool = False
) -> tuple[Subject, list[Doc]]:
    """A Subject and the volume documents it was built from; ``banded``: its altitudes in
    its kind's band (``banded_altitudes``)."""
    centre = centre or draw(st.sampled_from(CENTRES))
    kind = draw(st.sampled_from(["operation", "operation", "site", "movement", "restriction"]))
    band = kind if banded else None
    docs = draw(st.lists(volume_docs(centre, open_ended, band), min_size=1, max_size=3))
    restricts = None
    if kind == "restriction":
        restricts = Restricts(
            parties=tuple(draw(st.lists(st.sampled_from(["p0", "p1", "p2"]), max_size=2))),
            roles=tuple(draw(st.lists(st.sampled_from(["operator", "humanitarian"]), max_size=1))),
            allowed_categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES[:2]), max_size=1))),
        )
    made = subject(
        kind,
        draw(st.sampled_from(["p0", "p1", "p2"])),
        *docs,
        category=draw(st.sampled_from(CATEGORIES[:2])),
        restricts=restricts,
    )
    return made, docs


@st.composite
def pairs(draw: st.DrawFn, open_ended: bool = True) -> tuple[Subject, list[Doc], Subject]:
    """Two declarations near one centre; in half the draws, each in its kind's band."""
    centre = draw(st.sampled_from(CENTRES))
    banded = draw(st.booleans())
    a, a_docs = draw(subjects(centre, open_ended, banded))
    b, _ = draw(subjects(centre, banded=banded))
    return a, a_docs, b


PROPERTY = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])


@settings(PROPERTY, max_examples=200)
@given(pairs())
def test_property_conflict_is_symmetric(pair: tuple[Subject, list[Doc], Subject]) -> None:
    a, _, b = pair
    ab, ba = conflict_between(POLICY, a, b), conflict_between(POLICY, b, a)
    assert (ab is None) == (ba is None)
    if ab is not None and ba is not None:
        assert ab.reason == ba.reason
        assert ab.min_distance_m == pytest.approx(ba.min_distance_m, rel=1e-9, abs=1e-9)
        assert (ab.overlap_start, ab.overlap_end) == (ba.overlap_start, ba.overlap_end)


def by_definition(policy: Policy, a: Subject, b: Subject) -> str | None:
    """PRODUCT.md's "Conflict", restated without the module's helpers: the reason, or None."""
    if a.owner == b.owner or {a.kind, b.kind} in ({"site"}, {"restriction"}):
        return None
    separation = policy.separation.get("-".join(sorted((a.kind, b.kind))))
    if separation is None:
        return None
    # Protection: an operation and a protected kind are never apart in altitude, unless the
    # policy says altitude separates them (PRODUCT.md, "Protection").
    protected = policy.protection.kinds
    altitude_ignored = policy.protection.altitude == "ignored" and (
        (a.kind == "operation" and b.kind in protected)
        or (b.kind == "operation" and a.kind in protected)
    )
    reason = "separation"
    if "restriction" in (a.kind, b.kind):
        restriction, other = (a, b) if a.kind == "restriction" else (b, a)
        restricts = restriction.restricts
        if restricts is None or other.category in restricts.allowed_categories:
            return None
        everyone = not restricts.parties and not restricts.roles
        if not (
            everyone or other.owner in restricts.parties or other.owner_role in restricts.roles
        ):
            return None
        reason = "restriction"
    far_future = datetime.max.replace(tzinfo=UTC)
    for v, w in itertools.product(a.volumes, b.volumes):
        overlap = v.start < (w.end or far_future) and w.start < (v.end or far_future)
        gaps = [v.lower_m - w.upper_m] if v.lower_m is not None and w.upper_m is not None else []
        if w.lower_m is not None and v.upper_m is not None:
            gaps.append(w.lower_m - v.upper_m)
        vertical = altitude_ignored or all(gap <= separation.vertical_m for gap in gaps)
        limit = v.buffer_m + w.buffer_m + separation.horizontal_m
        if overlap and vertical and min_distance_m(v.shape, w.shape) <= limit:
            return reason
    return None


@PROPERTY
@given(pairs())
def test_property_rule_matches_its_definition(pair: tuple[Subject, list[Doc], Subject]) -> None:
    a, _, b = pair
    for policy in every_policy():
        found = conflict_between(policy, a, b)
        assert (found and found.reason) == by_definition(policy, a, b)
        if found is not None:  # the distance reported is that of a conflicting pair
            widest = max(v.buffer_m for v in a.volumes) + max(w.buffer_m for w in b.volumes)
            rule = pair_rule(policy, a, b)
            assert rule is not None
            assert found.min_distance_m <= (widest + rule[1]) * (1 + 1e-12)


@PROPERTY
@given(pairs(open_ended=False), st.integers(0, 48))
def test_property_disjoint_time_windows_never_conflict(
    pair: tuple[Subject, list[Doc], Subject], gap_h: int
) -> None:
    a, _, b = pair
    a_end = max(v.end_s for v in a.volumes)
    b_start = min(v.start_s for v in b.volumes)
    shift = timedelta(seconds=a_end - b_start, hours=gap_h)  # b starts when (or after) a ends
    later = [
        dataclasses.replace(v, start=v.start + shift, end=None if v.end is None else v.end + shift)
        for v in b.volumes
    ]
    b_later = dataclasses.replace(b, volumes=tuple(later))
    assert conflict_between(POLICY, a, b_later) is None
    assert conflict_between(POLICY, b_later, a) is None


@PROPERTY
@given(pairs(), st.data())
def test_property_growing_a_buffer_never_removes_a_conflict(
    pair: tuple[Subject, list[Doc], Subject], data: st.DataObject
) -> None:
    a, a_docs, b = pair
    before = conflict_between(POLICY, a, b)
    grown = [
        {**doc, "buffer_m": doc["buffer_m"] + data.draw(st.floats(0, 20_000))} for doc in a_docs
    ]
    a_grown = dataclasses.replace(a, volumes=build(grown))
    after = conflict_between(POLICY, a_grown, b)
    if before is not None:
        assert after is not None
        assert after.min_distance_m <= before.min_distance_m * (1 + 1e-9)


def separation_policy(values: dict[str, tuple[float, float]]) -> Policy:
    text = "".join(
        f"[separation.{pair}]\nhorizontal_m = {h!r}\nvertical_m = {v!r}\n\n"
        for pair, (h, v) in values.items()
    )
    visibility = 'operation = ["*"]\nsite = ["*"]\nmovement = ["*"]\nrestriction = ["*"]\n'
    return parse_policy(f"{text}[visibility]\n{visibility}")


SEPARATED_PAIRS = [
    "operation-operation",
    "operation-site",
    "operation-movement",
    "operation-restriction",
    "movement-movement",
]
separations = st.tuples(st.floats(0, 20_000), st.floats(0, 1_000))


@PROPERTY
@given(pairs(), st.data())
def test_property_raising_a_separation_never_removes_a_conflict(
    pair: tuple[Subject, list[Doc], Subject], data: st.DataObject
) -> None:
    a, _, b = pair
    low = {name: data.draw(separations) for name in SEPARATED_PAIRS}
    high = {
        name: (h + data.draw(st.floats(0, 20_000)), v + data.draw(st.floats(0, 1_000)))
        for name, (h, v) in low.items()
    }
    before = conflict_between(separation_policy(low), a, b)
    after = conflict_between(separation_policy(high), a, b)
    if before is not None:
        assert after is not None
        assert after.reason == before.reason


def every_policy() -> list[Policy]:
    """The default and custom policies, and each protection variant of both."""
    variants = [protection_policy(*PROTECTIONS[name]) for name in PROTECTIONS]
    separated = protection_policy(*PROTECTIONS["separated"], base=CUSTOM_POLICY_TEXT)
    return [POLICY, custom_policy(), *variants, separated]


def declaration_lists(centre: Position) -> st.SearchStrategy[list[tuple[Subject, list[Doc]]]]:
    """2 to 14 declarations near ``centre``: all in their kind's band, or none."""
    return st.booleans().flatmap(
        lambda banded: st.lists(subjects(centre, banded=banded), min_size=2, max_size=14)
    )


@settings(PROPERTY, max_examples=40)
@given(st.sampled_from(CENTRES).flatmap(declaration_lists))
def test_property_index_agrees_with_brute_force(drawn: list[tuple[Subject, list[Doc]]]) -> None:
    index = ConflictIndex()
    stored = {s.id or "": s for s, _ in drawn}
    for s in stored.values():
        index.put(s)
    for policy in every_policy():
        assert_index_agrees_for_all(policy, index, stored, [])

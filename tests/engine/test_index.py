"""Tests of the conflict engine's index (``ConflictIndex``) against the brute force.

The reference is the rule itself, pair by pair (``brute_force``: ``geo.distance.within_m``,
whose distances are pyproj ``Geod`` geodesics on WGS84 between the closest points), over
declarations built the slow way (pydantic and shapely). The engine loads the same
declarations from their stored JSON documents (``put_many``, ``apply_rows``) or as Subjects
(``put``), and must find exactly the same conflicts, report the same distances (within 1e-4)
and time overlaps, on random workloads around the antimeridian, both poles and mid-latitude:
points, corridors, polygons with holes and MultiPolygons, touching edges, exact-limit
distances, open-ended windows, unbounded altitudes and restrictions. Large workloads of
points check large scans and the read-everything path against a vectorised Geod.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pytest
from brute_force import (
    PROTECTIONS,
    RandomVolumes,
    assert_index_agrees,
    assert_intersecting_agrees,
    protection_policy,
)

from deconflict.engine.index import CHUNK_VOLUMES, ConflictIndex
from deconflict.engine.rule import Declared, Restricts, Subject, conflict_between
from deconflict.engine.store import columns_from_documents, seconds
from deconflict.errors import TooLarge
from deconflict.geo.distance import min_distance_m
from deconflict.geo.geojson import parse_geometry
from deconflict.policy import DECLARED_BY, Policy, default_policy, parse_policy
from deconflict.volumes import volumes_from_json
from support import GEOD, Doc, Position, build, geodesic_m, offset, point, quad
from support import volume as volume_doc

POLICY = default_policy()
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
CATEGORIES = ["combat", "transport", "surveillance"]
Item = tuple[Declared, list[Doc]]

WIDE_POLICY = parse_policy(
    """
[separation.operation-operation]
horizontal_m = 20000
vertical_m = 600

[separation.movement-movement]
horizontal_m = 1000
vertical_m = 100

[separation.operation-site]
horizontal_m = 500
vertical_m = 0

[separation.operation-restriction]
horizontal_m = 300
vertical_m = 0

[visibility]
operation = ["*"]
site = ["*"]
movement = ["*"]
restriction = ["*"]
"""
)


# --------------------------------------------------------------------------- builders


# An API.md Volume document in the stored form (times in Z), ``start_h`` hours after T0.
volume = partial(volume_doc, start=T0)


def subject_of(declared: Declared, docs: Sequence[Doc]) -> Subject:
    """The declaration built the slow way: pydantic, parse_geometry, shapely."""
    return declared.with_volumes(build(docs))


REGIONS: dict[str, Position] = {
    "mid-latitude": (10.0, 45.0),
    "antimeridian": (180.0, -17.0),
    "north-pole": (30.0, 89.2),
    "south-pole": (-120.0, -89.4),
}


class Workload(RandomVolumes):
    """Seeded random declarations of every kind around one centre, as stored documents."""

    widest_buffer_m = 250_000.0

    def __init__(
        self, seed: int, center: Position, radius_m: float = 120_000.0, *, banded: bool = False
    ) -> None:
        super().__init__(seed, center, T0, banded=banded)
        self.radius_m = radius_m

    def position(self, near: Position | None = None, radius_m: float | None = None) -> Position:
        rng = self.rng
        if near is None and rng.random() < 0.03 and abs(self.center[1]) > 80:
            return (rng.uniform(-180, 180), 90.0 if self.center[1] > 0 else -90.0)
        origin = near or self.center
        reach = self.radius_m if radius_m is None else radius_m
        return offset(origin, rng.uniform(-180, 180), reach * math.sqrt(rng.random()))

    def geometry(self, near: Position) -> Doc:
        rng = self.rng
        shape = rng.choice(["Point", "Point", "LineString", "Polygon", "Holed", "MultiPolygon"])
        if shape == "Point":
            return {"type": "Point", "coordinates": list(near)}
        if shape == "LineString":  # a corridor; around lon 180 they cross the antimeridian
            positions = [near]
            for _ in range(rng.randint(1, 4)):
                positions.append(
                    offset(positions[-1], rng.uniform(-180, 180), rng.uniform(300, 25_000))
                )
            if rng.random() < 0.2:  # a repeated position, as clients send them
                positions.insert(1, positions[0])
            return {"type": "LineString", "coordinates": [list(p) for p in positions]}
        size = rng.uniform(400, 12_000)
        shell = quad(near, size, rng.uniform(0, 90))
        if shape == "Polygon":
            return {"type": "Polygon", "coordinates": [shell]}
        if shape == "Holed":
            return {"type": "Polygon", "coordinates": [shell, quad(near, size / 3, 0.0)[::-1]]}
        other = quad(self.position(near, 25_000), rng.uniform(300, 6_000), rng.uniform(0, 90))
        return {"type": "MultiPolygon", "coordinates": [[shell], [other]]}

    def item(self, declaration_id: str | None = None, kind: str | None = None) -> Item:
        rng = self.rng
        if kind is None:
            kind = rng.choices(["operation", "site", "movement", "restriction"], [45, 20, 20, 15])[
                0
            ]
        owner = f"{kind}-owner-{rng.randrange(5)}"
        restricts = None
        if kind == "restriction":
            who = rng.choice(["everyone", "parties", "roles"])
            restricts = Restricts(
                parties=tuple(f"operation-owner-{i}" for i in range(2)) if who == "parties" else (),
                roles=("humanitarian",) if who == "roles" else (),
                allowed_categories=tuple(rng.sample(CATEGORIES, rng.randint(0, 1))),
            )
        docs = self.volumes(kind)
        declared = Declared(
            id=declaration_id or f"d-{next(self.serial)}",
            kind=kind,
            owner=owner,
            owner_role=DECLARED_BY[kind],  # type: ignore[index]
            version=f"v-{rng.getrandbits(32)}",
            category=rng.choice(CATEGORIES),
            restricts=restricts,
        )
        return declared, docs


def declared_as(subject: Subject) -> tuple[str, str, str]:
    """What a declaration loaded from documents keeps of the Subject it was built as."""
    return (subject.kind, subject.owner, subject.version)


def assert_agrees(
    policy: Policy, index: ConflictIndex, query: Subject, stored: Sequence[Subject]
) -> int:
    """The index answers exactly as the brute force, by ``conflicts_of`` and by
    ``conflicting_ids``; returns the number of conflicts."""
    found = assert_index_agrees(
        policy, index, query, stored, same=declared_as, rel=1e-4, abs_m=1e-3
    )
    declared = query.declared()
    ids = index.conflicting_ids(policy, declared, list(query.volumes))
    assert sorted(ids) == sorted(f.other.id for f in found)
    return len(found)


def load_documents(items: Sequence[Item], **options: int) -> ConflictIndex:
    index = ConflictIndex(**options)
    index.put_many(items)
    return index


# --------------------------------------------------------------------------- workloads


@pytest.mark.parametrize(
    ("region", "policy_name"),
    [pytest.param(r, "default", id=f"{r}-default") for r in REGIONS]
    + [pytest.param("antimeridian", "wide", id="antimeridian-wide")],
)
def test_engine_agrees_with_brute_force(region: str, policy_name: str) -> None:
    policy = POLICY if policy_name == "default" else WIDE_POLICY
    workload = Workload(seed=len(region) * 7 + len(policy_name), center=REGIONS[region])
    items = [workload.item() for _ in range(400)]
    index = load_documents(items)  # the fast path: documents, no pydantic, no shapely
    stored = [subject_of(*item) for item in items]
    assert (len(index), index.volume_count()) == (400, sum(len(d) for _, d in items))
    queries = stored[:100] + [subject_of(*workload.item()) for _ in range(30)]
    conflicts = sum(assert_agrees(policy, index, q, stored) for q in queries)
    assert conflicts >= 100, "the workload must be dense enough to test something"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("protection", list(PROTECTIONS))
def test_engine_agrees_with_brute_force_on_banded_altitudes(protection: str, threads: int) -> None:
    """Sites and movements at 0-50 m, operations from 6,000 m up (``brute_force.BANDS``),
    loaded as stored documents; with two threads every query is shared out."""
    policy = protection_policy(*PROTECTIONS[protection])
    workload = Workload(seed=len(protection) + 101, center=REGIONS["mid-latitude"], banded=True)
    items = [workload.item() for _ in range(400)]
    index = load_documents(items, threads=threads, share_above=0 if threads > 1 else 16_384)
    stored = [subject_of(*item) for item in items]
    queries = stored[:100] + [subject_of(*workload.item()) for _ in range(30)]
    conflicts = sum(assert_agrees(policy, index, q, stored) for q in queries)
    assert conflicts >= 50, "the workload must be dense enough to test something"
    protected = sum(
        policy.protects(q.kind, f.other.kind)
        for q in queries
        for f in index.conflicts_of(policy, q)
    )
    assert (protected == 0) if protection == "separated" else (protected >= 20)


def test_the_entries_filter_still_prunes_operations_by_altitude() -> None:
    """An operation 6 km above a site is in conflict with it (altitude ignored), but the
    operation beside the site, far below, is still rejected by the grid entries' copies of
    its band, before its slot is read: the pass reads one slot, the site's (it read both
    when every entry copied its band and a protected kind's infinite vertical separation
    widened the entries filter for every kind)."""
    here = (36.2, 36.2)
    low = {"lower_m": 0.0, "upper_m": 50.0}
    items: list[Item] = []
    for kind, owner in (("site", "aid"), ("operation", "other-operator")):
        declared = Declared(kind, kind, owner, DECLARED_BY[kind], "1", "", None)  # type: ignore[index]
        items.append((declared, [{**volume(point(*here), buffer_m=500), "altitude": low}]))
    index = load_documents(items, threads=1)
    query = subject_of(
        Declared(None, "operation", "striker", "operator", "1", "", None),
        [
            {
                **volume(point(*here), buffer_m=2_000),
                "altitude": {"lower_m": 6_000.0, "upper_m": 12_000.0},
            }
        ],
    )
    separated = protection_policy(*PROTECTIONS["separated"])
    for policy, expected in ((POLICY, ["site"]), (separated, [])):
        distinct = 1
        before = index.stats[distinct]
        assert index.conflicting_ids(policy, query.declared(), list(query.volumes)) == expected
        assert [f.other.id for f in index.conflicts_of(policy, query)] == expected
        assert index.stats[distinct] - before == 2  # the site's slot, once per search


def test_bulk_load_equals_incremental_load() -> None:
    workload = Workload(seed=11, center=REGIONS["antimeridian"])
    items = [workload.item() for _ in range(200)]
    bulk = load_documents(items)
    one_by_one = ConflictIndex()
    for item in items:
        one_by_one.put(subject_of(*item))
    for declared, docs in [workload.item() for _ in range(30)] + items[:20]:
        query = subject_of(declared, docs)
        a = bulk.conflicts_of(POLICY, query)
        b = one_by_one.conflicts_of(POLICY, query)
        assert [(f.other.id, f.reason, f.overlap_start, f.overlap_end) for f in a] == [
            (f.other.id, f.reason, f.overlap_start, f.overlap_end) for f in b
        ]
        for fa, fb in zip(a, b, strict=True):
            assert fa.min_distance_m == pytest.approx(fb.min_distance_m, rel=1e-9, abs=1e-9)


def test_removals_and_updates_keep_agreeing() -> None:
    workload = Workload(seed=5, center=REGIONS["mid-latitude"])
    items = {d.id or "": (d, docs) for d, docs in (workload.item() for _ in range(250))}
    index = load_documents(list(items.values()))
    rng = random.Random(9)
    for declaration_id in rng.sample(sorted(items), 60):  # withdrawals
        index.remove(declaration_id)
        del items[declaration_id]
    for declaration_id in rng.sample(sorted(items), 60):  # updates: same id, new volumes
        declared, _ = items[declaration_id]
        _, docs = workload.item(declaration_id, kind=declared.kind)
        items[declaration_id] = (declared, docs)
        index.put_documents(declared, docs)
    for declared, docs in (workload.item() for _ in range(30)):  # some one by one
        index.put(subject_of(declared, docs))
        items[declared.id or ""] = (declared, docs)
    index.remove("never-stored")
    stored = [subject_of(*item) for item in items.values()]
    assert len(index) == len(stored)
    assert index.volume_count() == sum(len(s.volumes) for s in stored)
    for query in stored[:25] + [subject_of(*workload.item()) for _ in range(15)]:
        assert_agrees(POLICY, index, query, stored)


def test_stored_rows_restart_the_index() -> None:
    """``apply_rows`` reads declaration rows as stored: JSON text, states, change_seq."""
    workload = Workload(seed=3, center=REGIONS["north-pole"])
    items = [workload.item() for _ in range(120)]
    rows = []
    for seq, (declared, docs) in enumerate(items, start=1):
        rows.append(
            {
                "id": declared.id,
                "kind": declared.kind,
                "owner": declared.owner,
                "owner_role": declared.owner_role,
                "version": declared.version,
                "category": declared.category,
                "restricts": json.dumps(declared.restricts.to_json())
                if declared.restricts
                else None,
                "volumes": json.dumps(docs),
                "state": "active" if seq % 10 else "withdrawn",
                "change_seq": seq,
            }
        )
    index = ConflictIndex()
    index.apply_rows(rows)
    assert index.applied_seq == len(rows)
    active = [
        subject_of(*item) for item, row in zip(items, rows, strict=True) if row["state"] == "active"
    ]
    assert len(index) == len(active)
    for query in active[:20]:
        assert_agrees(POLICY, index, query, active)
    # A declaration loaded from rows comes back as a Subject with the same geometry.
    again = index.get(active[0].id or "")
    assert again is not None and again.version == active[0].version
    for v, w in zip(again.volumes, active[0].volumes, strict=True):
        assert (v.start_s, v.end_s, v.lower_m, v.upper_m, v.buffer_m) == (
            w.start_s,
            w.end_s,
            w.lower_m,
            w.upper_m,
            w.buffer_m,
        )
        probe = parse_geometry({"type": "Point", "coordinates": [30.0, 88.9]}, "probe")
        assert min_distance_m(v.shape, probe) == pytest.approx(min_distance_m(w.shape, probe))


# --------------------------------------------------------------------------- exact cases


HERE: Position = (179.99, 0.0)  # beside the antimeridian


def op(declaration_id: str, owner: str, *docs: Doc) -> Item:
    return Declared(declaration_id, "operation", owner, "operator", "1", "combat", None), list(docs)


def site(declaration_id: str, owner: str, *docs: Doc) -> Item:
    return Declared(declaration_id, "site", owner, "humanitarian", "1", "aid", None), list(docs)


ACROSS = (-179.985, 0.004)  # 1.8 km from HERE, across lon 180
D_ACROSS = geodesic_m(HERE, ACROSS)
POLAR_A, POLAR_B = (0.0, 89.95), (180.0, 89.95)  # 11 km apart, across the pole
D_POLAR = geodesic_m(POLAR_A, POLAR_B)

EXACT_CASES = [
    pytest.param(
        op("a", "n", volume(point(*HERE), buffer_m=D_ACROSS / 2)),
        site("b", "s", volume(point(*ACROSS), buffer_m=D_ACROSS / 2)),
        True,
        id="buffers-touching-exactly-across-the-antimeridian",
    ),
    pytest.param(
        op("a", "n", volume(point(*HERE), buffer_m=D_ACROSS / 2 - 0.001)),
        site("b", "s", volume(point(*ACROSS), buffer_m=D_ACROSS / 2)),
        False,
        id="buffers-a-millimetre-short-across-the-antimeridian",
    ),
    pytest.param(
        op("a", "n", volume(point(*POLAR_A), buffer_m=D_POLAR / 2)),
        site("b", "s", volume(point(*POLAR_B), buffer_m=D_POLAR / 2)),
        True,
        id="buffers-touching-exactly-across-the-pole",
    ),
    pytest.param(
        op("a", "n", volume({"type": "Polygon", "coordinates": [quad((0.0, 90.0), 9_000, 0)]})),
        site("b", "s", volume(point(77.0, 89.99))),
        True,
        id="polygon-around-the-pole-holds-a-point",
    ),
    pytest.param(
        op(
            "a",
            "n",
            volume(
                {
                    "type": "Polygon",
                    "coordinates": [
                        [[179.9, -0.1], [-179.9, -0.1], [-179.9, 0.1], [179.9, 0.1], [179.9, -0.1]]
                    ],
                }
            ),
        ),
        site(
            "b",
            "s",
            volume(
                {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [-179.9, -0.1],
                            [-179.8, -0.1],
                            [-179.8, 0.1],
                            [-179.9, 0.1],
                            [-179.9, -0.1],
                        ]
                    ],
                }
            ),
        ),
        True,
        id="polygons-sharing-an-edge-east-of-the-antimeridian",
    ),
    pytest.param(
        op(
            "a",
            "n",
            volume({"type": "LineString", "coordinates": [[179.95, -0.05], [-179.95, 0.05]]}),
        ),
        site(
            "b",
            "s",
            volume({"type": "LineString", "coordinates": [[179.95, 0.05], [-179.95, -0.05]]}),
        ),
        True,
        id="corridors-crossing-on-the-antimeridian",
    ),
    pytest.param(
        op("a", "n", volume(point(*HERE), lower_m=None, upper_m=None, hours=None)),
        site("b", "s", volume(point(*HERE), lower_m=50_000, upper_m=None, start_h=24 * 365)),
        True,
        id="unbounded-altitude-and-open-ended-meet-a-year-later",
    ),
    pytest.param(
        op("a", "n", volume(point(*HERE), start_h=0, hours=4)),
        site("b", "s", volume(point(*HERE), start_h=4, hours=None)),
        False,
        id="windows-touching-do-not-overlap",
    ),
    pytest.param(
        op("a", "n", volume(point(*HERE), lower_m=0, upper_m=1000)),
        op("b", "s", volume(point(*HERE), lower_m=1300, upper_m=2000)),
        True,
        id="vertical-separation-exactly-300m",
    ),
    pytest.param(
        op("a", "n", volume(point(*HERE), lower_m=0, upper_m=1000)),
        op("b", "s", volume(point(*HERE), lower_m=1300.001, upper_m=2000)),
        False,
        id="vertical-separation-a-millimetre-more",
    ),
]


@pytest.mark.parametrize(("query", "stored", "conflicts"), EXACT_CASES)
def test_exact_cases(query: Item, stored: Item, conflicts: bool) -> None:
    reference = conflict_between(POLICY, subject_of(*query), subject_of(*stored))
    assert (reference is not None) == conflicts
    index = load_documents([stored])  # bulk loaded: no Shape kept
    found = index.conflicts_of(POLICY, subject_of(*query))
    assert [f.other.id for f in found] == (["b"] if conflicts else [])
    if reference is not None:
        assert found[0].min_distance_m == pytest.approx(
            reference.min_distance_m, rel=1e-4, abs=1e-3
        )
    assert index.conflicting_ids(POLICY, query[0], query[1]) == (["b"] if conflicts else [])


# --------------------------------------------------------------------------- large workloads


def points_workload(n: int, seed: int, spread_m: float) -> tuple[list[Item], np.ndarray]:
    """Many stored points (all operations of distinct owners) and their numbers."""
    rng = np.random.default_rng(seed)
    lon, lat, _ = GEOD.fwd(
        np.full(n, 37.0),
        np.full(n, 34.0),
        rng.uniform(0, 360, n),
        spread_m * np.sqrt(rng.random(n)),
    )
    buf = rng.uniform(5000, 15000, n).round()  # each in several cells
    lo = rng.integers(0, 5000, n).astype(float)
    hi = lo + 500
    start_h = rng.integers(0, 96, n) / 4
    open_ended = rng.random(n) < 0.3
    items = [
        op(
            f"p{i}",
            f"o{i}",
            volume(
                point(float(lon[i]), float(lat[i])),
                buffer_m=float(buf[i]),
                lower_m=float(lo[i]),
                upper_m=float(hi[i]),
                start_h=float(start_h[i]),
                hours=None if open_ended[i] else 6.0,
            ),
        )
        for i in range(n)
    ]
    table = np.column_stack((lon, lat, buf, lo, hi, start_h, np.where(open_ended, np.inf, 6.0)))
    return items, table


def expected_points(table: np.ndarray, query: Doc) -> set[str]:
    """Brute force for stored points: the rule with Geod.inv on every pair."""
    lon, lat = query["geometry"]["coordinates"]
    n = len(table)
    _, _, d = GEOD.inv(np.full(n, lon), np.full(n, lat), table[:, 0], table[:, 1])
    q_start = (seconds(query["time"]["start"]) - T0.timestamp()) / 3600
    q_end = (
        math.inf
        if query["time"]["end"] is None
        else ((seconds(query["time"]["end"]) - T0.timestamp()) / 3600)
    )
    limit = query["buffer_m"] + table[:, 2] + 9260.0
    within = np.where(d < 1e-3, 0.0, d) <= limit
    time = (table[:, 5] < q_end) & (q_start < table[:, 5] + table[:, 6])
    lower, upper = query["altitude"]["lower_m"], query["altitude"]["upper_m"]
    lower = -math.inf if lower is None else lower
    upper = math.inf if upper is None else upper
    gap = np.maximum(lower - table[:, 4], table[:, 3] - upper)
    return {f"p{i}" for i in np.flatnonzero(within & time & (gap <= 300.0))}


def test_large_and_exhaustive_scans_agree_with_brute_force() -> None:
    items, table = points_workload(30_000, seed=1, spread_m=40_000)
    index = load_documents(items)
    queries = [
        volume(point(37.0, 34.0), buffer_m=30_000, lower_m=0, upper_m=9000, hours=None),
        volume(point(37.1, 34.1), buffer_m=5_000, lower_m=1000, upper_m=2000, start_h=12),
        volume(point(36.9, 33.9), buffer_m=200_000, lower_m=None, upper_m=None, hours=None),
    ]
    for number, query in enumerate(queries):
        ids = index.conflicting_ids(POLICY, op(None, "q", query)[0], [query])  # type: ignore[arg-type]
        assert len(ids) == len(set(ids))
        assert set(ids) == expected_points(table, query), number
    assert index.stats[8] >= 1, "the last query reaches every cell: it reads every slot"


# --------------------------------------------------------------------------- parts


def test_documents_read_as_the_service_reads_them() -> None:
    workload = Workload(seed=2, center=REGIONS["mid-latitude"])
    docs = [doc for _, d in (workload.item() for _ in range(50)) for doc in d]
    columns = columns_from_documents(docs)
    volumes = volumes_from_json(docs)
    assert columns.t0.tolist() == [v.start_s for v in volumes]
    assert columns.t1.tolist() == [v.end_s for v in volumes]
    assert columns.buf.tolist() == [v.buffer_m for v in volumes]
    assert columns.lo.tolist() == [-math.inf if v.lower_m is None else v.lower_m for v in volumes]
    assert columns.hi.tolist() == [math.inf if v.upper_m is None else v.upper_m for v in volumes]


def test_intersecting_after_a_bulk_load() -> None:
    workload = Workload(seed=8, center=REGIONS["south-pole"])
    items = [workload.item() for _ in range(150)]
    index = load_documents(items)
    stored = [subject_of(*item) for item in items]
    assert_intersecting_agrees(index, stored, workload, random.Random(1), rounds=15)
    everything = {s.id for s in index.intersecting(None, -math.inf, math.inf)}
    assert everything == {s.id for s in stored}


@pytest.mark.parametrize("threads", [2, 3])
def test_queries_shared_out_to_threads_agree_with_brute_force(threads: int) -> None:
    """A heavy query's slots are tested by several threads, each its share: every query
    here is shared (``share_above=0``), and the answers are still exactly the brute
    force's, with each declaration once although its volumes fall in different shares."""
    workload = Workload(seed=31 + threads, center=REGIONS["mid-latitude"])
    items = [workload.item() for _ in range(300)]
    shared = load_documents(items, threads=threads, share_above=0)
    alone = load_documents(items, threads=1)
    stored = [subject_of(*item) for item in items]
    assert any(len(docs) > 1 for _, docs in items), "some declarations must span shares"
    queries = stored[:40] + [subject_of(*workload.item()) for _ in range(20)]
    conflicts = sum(assert_agrees(POLICY, shared, q, stored) for q in queries)
    assert conflicts >= 40
    for query in queries:
        declared = query.declared()
        ids = shared.conflicting_ids(POLICY, declared, list(query.volumes))
        assert len(ids) == len(set(ids)), "a declaration is reported once"
    # The same slots were read, split: every slot tested by exactly one thread. (One
    # thread alone also skips pairs that cannot change a declaration's answer, so it
    # reports fewer conflicting pairs.)
    distinct, conflicting = 1, 5
    work = []
    for index in (shared, alone):
        before = index.stats
        for query in queries:
            index.conflicts_of(POLICY, query)
        work.append((index.stats - before)[[distinct, conflicting]].tolist())
    assert work[0][0] == work[1][0]
    assert work[0][1] >= work[1][1] >= 40
    assert_intersecting_agrees(shared, stored, workload, random.Random(3), rounds=10)


def test_volume_rows_start_on_cache_line_pairs() -> None:
    """Each stored volume's row is two cache lines, not three (numpy aligns to 16 bytes)."""
    workload = Workload(seed=4, center=REGIONS["mid-latitude"])
    index = load_documents([workload.item() for _ in range(5_000)])
    table = index._store.table
    assert table.ctypes.data % 128 == 0
    assert table.strides == (128, 8)


class ManyVolumes(Workload):
    """Declarations of 6 to 12 volumes close together, windows apart or nested: a
    declaration's pairs then differ in distance and in time overlap, which is what the
    pass's pruning by the best pair found so far must get right."""

    def volumes(self, kind: str | None = None) -> list[Doc]:
        first = self.position()
        return [
            self.volume(first if n == 0 else self.position(first, 15_000), kind)
            for n in range(self.rng.randint(6, 12))
        ]


def test_declarations_of_many_volumes_agree_with_brute_force() -> None:
    workload = ManyVolumes(seed=71, center=REGIONS["mid-latitude"], radius_m=40_000.0)
    items = [workload.item() for _ in range(60)]
    index = load_documents(items, threads=1)
    stored = [subject_of(*item) for item in items]
    queries = stored[:25] + [subject_of(*workload.item()) for _ in range(15)]
    assert sum(assert_agrees(POLICY, index, q, stored) for q in queries) >= 100


def test_a_search_restricted_to_some_declarations_answers_for_those_alone() -> None:
    """``only`` (how a write settles what changed since its search) gives exactly the
    unrestricted answer's conflicts with those declarations."""
    workload = ManyVolumes(seed=72, center=REGIONS["antimeridian"], radius_m=40_000.0)
    items = [workload.item() for _ in range(60)]
    index = load_documents(items)
    rng = random.Random(5)
    for declared, docs in items[:20]:
        query = subject_of(declared, docs)
        full = index.conflicts_of(POLICY, query)
        only = {d.id for d, _ in rng.sample(items, 25) if d.id is not None} | {"not-stored"}
        part = index.conflicts_of(POLICY, query, only=only)
        assert [f.to_json() for f in part] == [f.to_json() for f in full if f.other.id in only]


def test_a_search_over_its_work_budget_raises_too_large() -> None:
    workload = ManyVolumes(seed=73, center=REGIONS["north-pole"], radius_m=40_000.0)
    items = [workload.item() for _ in range(40)]
    index = load_documents(items)
    query = subject_of(*workload.item())
    answer = [f.to_json() for f in index.conflicts_of(POLICY, query, budget=10**12)]
    assert answer == [f.to_json() for f in index.conflicts_of(POLICY, query)]
    assert answer, "the query conflicts with something"
    with pytest.raises(TooLarge) as refused:
        index.conflicts_of(POLICY, query, budget=10)
    assert refused.value.errors[0]["field"] == "volumes"
    # The index is unharmed: the next search answers as before.
    assert [f.to_json() for f in index.conflicts_of(POLICY, query)] == answer


def test_a_change_between_the_chunks_of_a_search_is_in_its_answer() -> None:
    """A search holds the index's lock a few volumes at a time: a change that lands in
    between (here, forced to land right after the first chunk) is searched again under the
    last hold, so the answer is exactly that of a search of the index after the change,
    and the applied_seq it reports is the one after."""
    workload = ManyVolumes(seed=74, center=REGIONS["mid-latitude"], radius_m=30_000.0)
    items = [workload.item() for _ in range(40)]
    index = load_documents(items, threads=1)
    query = subject_of(*workload.item(kind="operation"))
    assert len(query.volumes) > CHUNK_VOLUMES, "the search spans several chunks"
    before = index.conflicts_of(POLICY, query)
    assert len(before) >= 2
    gone = before[0].other.id
    # A new declaration of the query's own shape, by another owner: surely a conflict.
    added = Declared("new", "operation", "someone-else", "operator", "v-new", "", None)
    added_docs = [volume_doc_of(v) for v in query.volumes]
    landed = threading.Event()

    def change() -> None:
        landed.wait()
        assert gone is not None
        index.remove(gone)
        index.put_documents(added, added_docs)
        index.applied_seq = 7

    search = index._search_into
    calls: list[int] = []

    def first_chunk_then_wait(*args: Any, **kwargs: Any) -> None:
        search(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # let the change queue for the lock before the next chunk
            landed.set()
            while not index._lock._waiting:
                time.sleep(0.001)

    index._search_into = first_chunk_then_wait  # type: ignore[method-assign]
    writer = threading.Thread(target=change)
    writer.start()
    found, seq = index.conflicts_at(POLICY, query)
    writer.join()
    del index._search_into
    expected = index.conflicts_of(POLICY, query)
    assert [f.to_json() for f in found] == [f.to_json() for f in expected]
    ids = {f.other.id for f in found}
    assert "new" in ids and gone not in ids
    assert seq == 7


def volume_doc_of(v: Any) -> Doc:
    return {
        "geometry": v.shape.geojson,
        "buffer_m": v.buffer_m,
        "altitude": {"lower_m": v.lower_m, "upper_m": v.upper_m},
        "time": {
            "start": v.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": None if v.end is None else v.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }

"""The one brute-force oracle of the engine's tests: the rule applied pair by pair.

``brute_force`` runs ``engine.rule.conflict_between`` against every stored declaration;
``intersecting_by_brute_force`` tests every stored volume with ``geo.distance.within_m``.
The rule's tests (``test_rule``) and the index's tests (``test_index``) compare the index
with these, on the seeded random workloads of ``RandomVolumes``.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest

from deconflict.engine.index import ConflictIndex
from deconflict.engine.rule import Found, Subject, conflict_between
from deconflict.geo.distance import within_m
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape
from deconflict.policy import Policy, default_policy_text, parse_policy
from support import Doc, Position, volume


class RandomVolumes:
    """Seeded random volume documents around a centre, timed from ``t0``. Subclasses say where
    positions fall and what geometries are drawn; the draws here keep their order, so that a
    seed gives the same workload every run."""

    widest_buffer_m = 300_000.0  # the rare wide buffer reaches across a whole region

    def __init__(self, seed: int, center: Position, t0: datetime, *, banded: bool = False) -> None:
        self.rng = random.Random(seed)
        self.center = center
        self.t0 = t0
        self.serial = itertools.count()
        # Banded: each kind in its own altitude band (``BANDS``), so that a pair of an
        # operation and a site or movement conflicts only if altitude is ignored.
        self.banded = banded

    def position(self, near: Position | None = None, radius_m: float | None = None) -> Position:
        raise NotImplementedError

    def geometry(self, near: Position) -> Doc:
        raise NotImplementedError

    def buffer_m(self) -> float:
        rng = self.rng
        if rng.random() < 0.01:  # rare and wide
            return rng.uniform(50_000, self.widest_buffer_m)
        return 0.0 if rng.random() < 0.4 else rng.uniform(0, 5_000)

    def altitudes(self, kind: str | None) -> tuple[float | None, float | None]:
        rng = self.rng
        if self.banded and kind in BANDS:
            bottom, top = BANDS[kind]
            lower = None if rng.random() < 0.2 else float(rng.randrange(bottom, top, 10))
            upper = (
                None
                if rng.random() < 0.2
                else float(rng.randrange(int(lower or bottom), top + 1, 10))
            )
            if kind != "operation" and upper is None:
                upper = float(top)  # protected kinds stay on the ground, unbounded below
            if kind == "operation" and lower is None:
                lower = float(bottom)  # operations stay high, unbounded above
            return lower, upper
        lower = None if rng.random() < 0.15 else float(rng.randrange(0, 6_000, 50))
        upper = None if rng.random() < 0.15 else (lower or 0.0) + rng.randrange(0, 3_000, 50)
        return lower, upper

    def volume(self, near: Position, kind: str | None = None) -> Doc:
        rng = self.rng
        lower, upper = self.altitudes(kind)
        return volume(
            self.geometry(near),
            buffer_m=self.buffer_m(),
            lower_m=lower,
            upper_m=upper,
            start=self.t0,
            start_h=rng.randrange(0, 48 * 4) / 4,  # on quarter hours, so windows touch
            hours=None if rng.random() < 0.15 else rng.randrange(1, 12 * 4) / 4,
        )

    def volumes(self, kind: str | None = None) -> list[Doc]:
        """One to three volumes of one declaration, the others near the first."""
        first = self.position()
        count = 1 if self.rng.random() < 0.7 else self.rng.randint(2, 3)
        return [
            self.volume(first if n == 0 else self.position(first, 30_000), kind)
            for n in range(count)
        ]


# Disjoint altitude bands per kind for banded workloads (metres): a hospital or a convoy on
# the ground, operations from 6 km up (an operation's lower bound is at least 6,000 m and a
# protected volume's upper bound at most 50 m; either may be unbounded the other way).
BANDS: dict[str, tuple[int, int]] = {
    "site": (0, 50),
    "movement": (0, 50),
    "operation": (6_000, 12_000),
}


def protection_policy(
    kinds: Sequence[str] = ("site", "movement"), altitude: str = "ignored", base: str | None = None
) -> Policy:
    """The default policy (or the policy text ``base``) with this ``[protection]`` table."""
    text = default_policy_text() if base is None else base
    table = f"[protection]\nkinds = {json.dumps(list(kinds))}\naltitude = {json.dumps(altitude)}\n"
    if "[protection]" in text:
        head, _, rest = text.partition("[protection]")
        after = rest.find("\n[")
        text = head + table + (rest[after:] if after >= 0 else "")
    else:
        text = text + "\n" + table
    policy = parse_policy(text)
    assert policy.protection.kinds == tuple(kinds) and policy.protection.altitude == altitude
    return policy


# The protection variants every agreement test runs under: the default (altitude ignored for
# sites and movements), altitude separated, sites alone protected (movements separated by
# altitude again), and restrictions protected as well.
PROTECTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ignored": (("site", "movement"), "ignored"),
    "separated": (("site", "movement"), "separated"),
    "sites-only": (("site",), "ignored"),
    "sites-restrictions": (("site", "restriction"), "ignored"),
}


def brute_force(policy: Policy, query: Subject, stored: Sequence[Subject]) -> dict[str, Found]:
    """The rule applied pair by pair: each stored declaration in conflict, by id."""
    found: dict[str, Found] = {}
    for other in stored:
        conflict = conflict_between(policy, query, other)
        if conflict is not None:
            assert other.id is not None
            found[other.id] = conflict
    return found


def assert_index_agrees(
    policy: Policy,
    index: ConflictIndex,
    query: Subject,
    stored: Sequence[Subject],
    *,
    same: Callable[[Subject], object],
    rel: float,
    abs_m: float,
) -> list[Found]:
    """The index answers as the brute force: one Found per conflicting declaration, nearest
    first, each with the same reason, time overlap and (within ``rel``/``abs_m``) distance, and
    the same ``same(other)``; returns what the index found."""
    expected = brute_force(policy, query, stored)
    found = index.conflicts_of(policy, query)
    ids = [f.other.id for f in found]
    assert len(ids) == len(set(ids)), "one Found per declaration"
    assert set(ids) == set(expected), query.id
    for f in found:
        e = expected[f.other.id or ""]
        assert same(f.other) == same(e.other)
        assert f.reason == e.reason
        assert f.min_distance_m == pytest.approx(e.min_distance_m, rel=rel, abs=abs_m)
        assert (f.overlap_start, f.overlap_end) == (e.overlap_start, e.overlap_end)
    assert [f.min_distance_m for f in found] == sorted(f.min_distance_m for f in found)
    return found


def intersecting_by_brute_force(
    stored: Sequence[Subject], area: Shape | None, start_s: float, end_s: float
) -> set[str | None]:
    """The declarations with a volume in ``area`` (None: anywhere) during [start_s, end_s)."""
    return {
        s.id
        for s in stored
        if any(
            v.start_s < end_s
            and start_s < v.end_s
            and (area is None or within_m(area, v.shape, v.buffer_m))
            for v in s.volumes
        )
    }


def assert_intersecting_agrees(
    index: ConflictIndex,
    stored: Sequence[Subject],
    workload: RandomVolumes,
    rng: random.Random,
    rounds: int,
) -> int:
    """``intersecting`` answers as the brute force for ``rounds`` random areas of the
    workload's region and windows in its first two days; returns how many hits there were."""
    hits = 0
    for _ in range(rounds):
        area = parse_geometry(workload.geometry(workload.position()), "area")
        start = (workload.t0 + timedelta(hours=rng.randrange(0, 48))).timestamp()
        end = start + 3600 * rng.randrange(1, 24)
        expected = intersecting_by_brute_force(stored, area, start, end)
        assert {s.id for s in index.intersecting(area, start, end)} == expected
        hits += len(expected)
    return hits

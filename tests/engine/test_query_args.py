"""Tests of the compiled pass's named arguments (``engine/query_args``).

Each structure is built with keywords from the object whose attributes it names, so each
field must be that very array; the kernel reads them by name, so handing it the horizontal
separations as the vertical ones (two float64 arrays of one shape, which positionally
would compile) changes its answer, and the answer under the right names is the rule's,
pair by pair, on small random sets.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import pytest
from brute_force import assert_index_agrees, brute_force

from deconflict.engine.candidate_pass import IDS, Query, Scratch, rule_arrays, run_query
from deconflict.engine.index import UNLIMITED, ConflictIndex
from deconflict.engine.query_args import (
    GridArrays,
    Rule,
    Share,
    Stamps,
    StoreArrays,
)
from deconflict.engine.rule import Declared, Subject
from deconflict.engine.store import columns_of_volumes
from deconflict.policy import Policy, parse_policy
from support import Doc, build, point, square, volume

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)

# Horizontal and vertical separations far apart, so that one read for the other shows.
POLICY = parse_policy(
    """
[separation.operation-operation]
horizontal_m = 3000
vertical_m = 100

[visibility]
operation = ["*"]
site = ["*"]
movement = ["*"]
restriction = ["*"]
"""
)


def random_subjects(seed: int, count: int) -> list[Subject]:
    """Operations of a few owners within some 20 km: points and small squares, altitude
    bands apart by up to a few kilometres, windows that mostly overlap."""
    rng = random.Random(seed)
    subjects = []
    for number in range(count):
        docs: list[Doc] = []
        for _ in range(rng.randint(1, 2)):
            lon, lat = 10.0 + rng.uniform(-0.15, 0.15), 45.0 + rng.uniform(-0.1, 0.1)
            geometry = point(lon, lat) if rng.random() < 0.5 else square(lon, lat, 0.004)
            lower = float(rng.randrange(0, 4_000, 50))
            docs.append(
                volume(
                    geometry,
                    buffer_m=rng.choice([0.0, 100.0, 500.0]),
                    lower_m=lower,
                    upper_m=lower + rng.randrange(0, 500, 50),
                    start=T0,
                    start_h=rng.randrange(0, 8),
                    hours=rng.randrange(1, 8),
                )
            )
        subjects.append(
            Subject(
                id=f"d{number}",
                kind="operation",
                owner=f"owner-{rng.randrange(4)}",
                owner_role="operator",
                version="1",
                category="",
                restricts=None,
                volumes=build(docs),
            )
        )
    return subjects


def loaded(subjects: list[Subject], **options: Any) -> ConflictIndex:
    index = ConflictIndex(**options)
    for subject in subjects:
        index.put(subject)
    return index


def source_of(structure: NamedTuple, field: str, *holders: object) -> object:
    """The attribute ``field`` of the first holder that has it."""
    for holder in holders:
        if hasattr(holder, field):
            return getattr(holder, field)
    raise AssertionError(f"{type(structure).__name__}.{field} names nothing")


def assert_fields_are_their_sources(structure: NamedTuple, *holders: object) -> None:
    for field in structure._fields:
        assert getattr(structure, field) is source_of(structure, field, *holders), field
    arrays = [value for value in structure if isinstance(value, np.ndarray)]
    assert len({id(a) for a in arrays}) == len(arrays), "no array twice"


def test_each_field_is_the_array_it_names() -> None:
    index = loaded(random_subjects(seed=1, count=40))
    grid, store = index._grid, index._store
    assert_fields_are_their_sources(GridArrays.of(grid), grid, grid.levels)
    assert_fields_are_their_sources(StoreArrays.of(store), store)
    scratch = Scratch()
    assert_fields_are_their_sources(scratch.arrays(), scratch)
    subject = random_subjects(seed=2, count=1)[0]
    query = Query.of(columns_of_volumes(subject.volumes), volumes=subject.volumes)
    assert_fields_are_their_sources(query.arrays(), query)
    # Same dtypes side by side: what a positional call could have swapped unseen.
    fields = GridArrays.of(grid)
    assert fields.theta.dtype == fields.band_h.dtype == fields.span_s.dtype
    assert fields.bands.dtype == fields.band_cells.dtype == fields.band_first.dtype


def test_grown_scratch_hands_over_the_new_arrays() -> None:
    scratch = Scratch()
    before = scratch.arrays()
    scratch.grow(10_000, 10_000, 100_000)
    after = scratch.arrays()
    assert_fields_are_their_sources(after, scratch)
    assert after.out_slot is not before.out_slot and len(after.out_slot) >= 100_000
    assert after.rings_a is not before.rings_a and after.rings_b is not before.rings_b
    assert scratch.arrays() is after, "kept while nothing is replaced"
    scratch.known = np.zeros((50, 3))  # as a reader sizes it to the index
    assert_fields_are_their_sources(scratch.arrays(), scratch)


def ids_by_the_pass(index: ConflictIndex, subject: Subject, rule: Rule) -> set[str]:
    """The declarations the compiled pass reports (IDS) under ``rule``, called as the
    index calls it but with the rule given here."""
    query = Query.of(columns_of_volumes(subject.volumes), volumes=subject.volumes)
    with index._reading() as reader:
        scratch = reader.scratch
        scratch.grow(len(query.codes) + 1, index._store.max_block + 1, len(index._store))
        scratch.work[:] = (0, UNLIMITED, 0)
        stamps = Stamps(
            slot_stamps=reader.slot_stamps,
            decl_stamps=reader.decl_stamps,
            stamp=reader.next_stamp(len(query.table)),
            only=reader.only,
            only_mark=0,
        )
        n, stopped = run_query(
            GridArrays.of(index._grid),
            StoreArrays.of(index._store),
            stamps,
            query.arrays(),
            rule,
            scratch.arrays(),
            Share(first=0, n=0, part=0, parts=1, split_above=UNLIMITED),
        )
        assert stopped == len(query.table) and n <= len(scratch.out_slot)
        assert not scratch.out_flag[:n].any(), "no pair within a hair of the limit"
        return set(index._vol_ids[scratch.out_slot[:n]].tolist())


def test_the_pass_reads_the_rule_by_name() -> None:
    stored = random_subjects(seed=3, count=120)
    index = loaded(stored)
    sep_h, sep_v, eligible = rule_arrays(POLICY, "operation")
    assert sep_h.dtype == sep_v.dtype and sep_h.shape == sep_v.shape
    changed = 0
    for drawn in random_subjects(seed=4, count=25):
        query = Subject(**{**vars_of(drawn), "id": None, "owner": "asker"})
        named = Rule(sep_h=sep_h, sep_v=sep_v, eligible=eligible, owner=-1, decl=-1, mode=IDS)
        swapped = named._replace(sep_h=sep_v, sep_v=sep_h)
        expected = set(brute_force(POLICY, query, stored))
        assert ids_by_the_pass(index, query, named) == expected
        changed += ids_by_the_pass(index, query, swapped) != expected
    assert changed >= 5, "the workload must tell the two separations apart"


def vars_of(subject: Subject) -> dict[str, Any]:
    return {f: getattr(subject, f) for f in (*Declared.__slots__, "volumes")}


@pytest.mark.parametrize(("threads", "share_above"), [(1, 16_384), (2, 0)], ids=["alone", "shared"])
def test_index_agrees_with_brute_force_on_small_random_sets(threads: int, share_above: int) -> None:
    """Through the index (every argument built by ``_run``), alone and with every query
    shared out to two threads (``Share`` with ``parts == 2``)."""
    for seed in range(3):
        stored = random_subjects(seed=10 + seed, count=80)
        index = loaded(stored, threads=threads, share_above=share_above)
        conflicts = 0
        for query in stored[:20] + random_subjects(seed=20 + seed, count=10):
            conflicts += assert_same_as_brute_force(POLICY, index, query, stored)
        assert conflicts >= 20, "the workload must be dense enough to test something"


def assert_same_as_brute_force(
    policy: Policy, index: ConflictIndex, query: Subject, stored: list[Subject]
) -> int:
    """The shared oracle's check of ``conflicts_of``, and ``conflicting_ids`` (the pass's
    other mode) against the same answer; returns how many conflicts there were."""
    found = assert_index_agrees(
        policy, index, query, stored, same=lambda s: s.id, rel=1e-4, abs_m=1e-3
    )
    declared = query.declared()
    ids = index.conflicting_ids(policy, declared, list(query.volumes))
    assert sorted(ids) == sorted(f.other.id for f in found)
    return len(found)

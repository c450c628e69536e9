"""The conflict rule, and the in-memory index that finds conflicts without scanning.

Two declarations of different owners conflict when, for some pair of their volumes, the
geodesic distance between the geometries is at most ``buffer_a + buffer_b + separation_h``,
the altitude bands are within ``separation_v`` and the time windows overlap. The separations
come from the policy per pair of kinds; a pair the policy does not list never conflicts, and
sites never conflict with sites. A declaration conflicts with a restriction when the
restriction restricts its owner (by party, by role, or everyone when it names neither), its
category is not allowed, and their volumes meet under the same rule.

The index is an R-tree over 4-D boxes: the volume's reach on the unit sphere (x, y, z, padded
by its buffer) and its time window. A query box is padded by the query's buffer and the widest
separation, so the R-tree returns a superset of the conflicts and the exact rule decides.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rtree import index as rtree_index

from deconflict.clock import format_time
from deconflict.geometry import Shape, min_distance_m, reach_box, within_m
from deconflict.policy import Policy
from deconflict.volumes import (
    Volume,
    time_windows_overlap,
    within_vertical_separation,
)

# Times in the R-tree are hours since the epoch; open-ended windows reach this far.
FAR_FUTURE_H = 1e9


@dataclass(frozen=True)
class Restricts:
    """Whom a restriction restricts, and which operation categories stay allowed inside it."""

    parties: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    allowed_categories: tuple[str, ...] = ()

    def applies_to(self, owner: str, owner_role: str, category: str) -> bool:
        targeted = (not self.parties and not self.roles) or (
            owner in self.parties or owner_role in self.roles
        )
        return targeted and category not in self.allowed_categories

    def to_json(self) -> dict[str, list[str]]:
        return {
            "parties": list(self.parties),
            "roles": list(self.roles),
            "allowed_categories": list(self.allowed_categories),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any] | None) -> Restricts | None:
        if document is None:
            return None
        return cls(
            parties=tuple(document.get("parties", [])),
            roles=tuple(document.get("roles", [])),
            allowed_categories=tuple(document.get("allowed_categories", [])),
        )


@dataclass(frozen=True, eq=False)
class Subject:
    """A declaration as far as the rule is concerned: stored, or one about to be made."""

    id: str | None
    kind: str
    owner: str
    owner_role: str
    version: str
    category: str
    restricts: Restricts | None
    volumes: tuple[Volume, ...]


@dataclass
class Found:
    """A conflict between the checked declaration and ``other``."""

    other: Subject
    reason: str  # "separation" | "restriction"
    min_distance_m: float
    overlap_start: float
    overlap_end: float  # math.inf when open-ended

    def to_json(self) -> dict[str, Any]:
        end = None if math.isinf(self.overlap_end) else _format_epoch(self.overlap_end)
        return {
            "declaration": {
                "id": self.other.id,
                "kind": self.other.kind,
                "owner": self.other.owner,
                "version": self.other.version,
            },
            "reason": self.reason,
            "min_distance_m": round(self.min_distance_m, 1),
            "time_overlap": {"start": _format_epoch(self.overlap_start), "end": end},
        }


def _format_epoch(seconds: float) -> str:
    return format_time(datetime.fromtimestamp(seconds, UTC))


def pair_rule(policy: Policy, a: Subject, b: Subject) -> tuple[str, float, float] | None:
    """Which rule applies between two declarations: (reason, horizontal_m, vertical_m)."""
    if a.owner == b.owner or (a.id is not None and a.id == b.id):
        return None
    separation = policy.separation_for(a.kind, b.kind)
    if separation is None:
        return None
    if a.kind == "restriction" or b.kind == "restriction":
        restriction, other = (a, b) if a.kind == "restriction" else (b, a)
        if restriction.restricts is None or not restriction.restricts.applies_to(
            other.owner, other.owner_role, other.category
        ):
            return None
        return "restriction", separation.horizontal_m, separation.vertical_m
    return "separation", separation.horizontal_m, separation.vertical_m


def volumes_conflict(a: Volume, b: Volume, horizontal_m: float, vertical_m: float) -> bool:
    """The 4-D rule for one pair of volumes; cheap tests first."""
    return (
        time_windows_overlap(a, b)
        and within_vertical_separation(a, b, vertical_m)
        and within_m(a.shape, b.shape, a.buffer_m + b.buffer_m + horizontal_m)
    )


def conflict_between(policy: Policy, a: Subject, b: Subject) -> Found | None:
    """The conflict of ``a`` with ``b``, by brute force over their volumes (no index)."""
    rule = pair_rule(policy, a, b)
    if rule is None:
        return None
    return _found(a, b, rule, itertools.product(a.volumes, b.volumes))


def _found(
    a: Subject,
    b: Subject,
    rule: tuple[str, float, float],
    pairs: Iterable[tuple[Volume, Volume]],
) -> Found | None:
    reason, horizontal_m, vertical_m = rule
    hits = [(v, w) for v, w in pairs if volumes_conflict(v, w, horizontal_m, vertical_m)]
    if not hits:
        return None
    return Found(
        other=b,
        reason=reason,
        min_distance_m=min(min_distance_m(v.shape, w.shape) for v, w in hits),
        overlap_start=min(max(v.start_s, w.start_s) for v, w in hits),
        overlap_end=max(min(v.end_s, w.end_s) for v, w in hits),
    )


@dataclass
class _Entry:
    subject: Subject
    keys: list[int] = field(default_factory=list)


def _box(shape: Shape, pad_m: float, start_s: float, end_s: float) -> tuple[float, ...]:
    xmin, ymin, zmin, xmax, ymax, zmax = reach_box(shape, pad_m)
    return (xmin, ymin, zmin, _hours(start_s), xmax, ymax, zmax, _hours(end_s))


class ConflictIndex:
    """Active declarations in an R-tree; insert and delete are O(log n).

    Thread-safe. The service keeps it equal to the committed database state (see
    ``Deployment.sync_index``); it never holds an uncommitted change.
    """

    def __init__(self) -> None:
        properties = rtree_index.Property()
        properties.dimension = 4
        self._tree = rtree_index.Index(properties=properties, interleaved=True)
        self._entries: dict[str, _Entry] = {}
        self._volumes: dict[int, tuple[str, int]] = {}
        self._boxes: dict[int, tuple[float, ...]] = {}
        self._next_key = 0
        self._lock = threading.RLock()
        self.applied_seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def volume_count(self) -> int:
        return len(self._volumes)

    def get(self, declaration_id: str) -> Subject | None:
        entry = self._entries.get(declaration_id)
        return None if entry is None else entry.subject

    def put(self, subject: Subject) -> None:
        """Insert or replace an active declaration."""
        assert subject.id is not None
        with self._lock:
            self.remove(subject.id)
            entry = _Entry(subject)
            for number, volume in enumerate(subject.volumes):
                key = self._next_key
                self._next_key += 1
                box = _box(volume.shape, volume.buffer_m, volume.start_s, volume.end_s)
                self._tree.insert(key, box)
                self._volumes[key] = (subject.id, number)
                self._boxes[key] = box
                entry.keys.append(key)
            self._entries[subject.id] = entry

    def remove(self, declaration_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(declaration_id, None)
            if entry is None:
                return
            for key in entry.keys:
                self._tree.delete(key, self._boxes.pop(key))
                del self._volumes[key]

    def _candidates(self, volume: Volume, pad_m: float) -> Iterator[tuple[Subject, Volume]]:
        box = _box(volume.shape, volume.buffer_m + pad_m, volume.start_s, volume.end_s)
        for key in self._tree.intersection(box):
            declaration_id, number = self._volumes[key]
            subject = self._entries[declaration_id].subject
            yield subject, subject.volumes[number]

    def conflicts_of(self, policy: Policy, subject: Subject) -> list[Found]:
        """Every stored declaration that conflicts with ``subject``, one Found each."""
        pad_m = policy.max_horizontal_m(subject.kind)
        with self._lock:
            pairs: dict[str, list[tuple[Volume, Volume]]] = {}
            others: dict[str, Subject] = {}
            for volume in subject.volumes:
                for other, other_volume in self._candidates(volume, pad_m):
                    assert other.id is not None
                    pairs.setdefault(other.id, []).append((volume, other_volume))
                    others[other.id] = other
        found: list[Found] = []
        for other_id, candidate_pairs in pairs.items():
            other = others[other_id]
            rule = pair_rule(policy, subject, other)
            if rule is None:
                continue
            conflict = _found(subject, other, rule, candidate_pairs)
            if conflict is not None:
                found.append(conflict)
        found.sort(key=lambda f: (f.min_distance_m, f.other.id or ""))
        return found

    def intersecting(self, area: Shape | None, start_s: float, end_s: float) -> list[Subject]:
        """Active declarations with a volume meeting ``area`` (buffers counted) in the window."""
        with self._lock:
            if area is None:
                box = (-2.0, -2.0, -2.0, _hours(start_s), 2.0, 2.0, 2.0, _hours(end_s))
                keys = list(self._tree.intersection(box))
            else:
                keys = list(self._tree.intersection(_box(area, 0.0, start_s, end_s)))
            hits: dict[str, Subject] = {}
            for key in keys:
                declaration_id, number = self._volumes[key]
                if declaration_id in hits:
                    continue
                subject = self._entries[declaration_id].subject
                volume = subject.volumes[number]
                if not (volume.start_s < end_s and start_s < volume.end_s):
                    continue
                if area is None or within_m(area, volume.shape, volume.buffer_m):
                    hits[declaration_id] = subject
        return list(hits.values())


def _hours(seconds: float) -> float:
    """Seconds since the epoch as R-tree hours; infinities become the far past or future."""
    if math.isinf(seconds):
        return FAR_FUTURE_H if seconds > 0 else -FAR_FUTURE_H
    return seconds / 3600.0

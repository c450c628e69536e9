"""The conflict rule: the spec that the index (``engine.index``) answers exactly, faster.

Two declarations of different owners conflict when, for some pair of their volumes, the
geodesic distance between the geometries is at most ``buffer_a + buffer_b + separation_h``,
the altitude bands are within ``separation_v`` and the time windows overlap. The separations
come from the policy per pair of kinds; a pair the policy does not list never conflicts, and
sites never conflict with sites. A declaration conflicts with a restriction when the
restriction restricts its owner (by party, by role, or everyone when it names neither), its
category is not allowed, and their volumes meet under the same rule.

``conflict_between`` applies the rule by brute force to one pair of declarations; it is
the reference the index's tests compare against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deconflict.clock import format_time
from deconflict.geo.distance import min_distance_m, within_m
from deconflict.policy import Policy
from deconflict.volumes import Volume, time_windows_overlap, within_vertical_separation


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


@dataclass(frozen=True, eq=False, slots=True)
class Declared:
    """What the rule needs of a declaration besides its volumes.

    The index hands these out for declarations it holds only as columns (loaded in bulk);
    ``Found.other`` is one, or the ``Subject`` that was put.
    """

    id: str | None
    kind: str
    owner: str
    owner_role: str
    version: str
    category: str
    restricts: Restricts | None

    def declared(self) -> Declared:
        """Only what the rule needs besides the volumes (a ``Subject`` without them)."""
        return Declared(**self._fields())

    def with_volumes(self, volumes: tuple[Volume, ...]) -> Subject:
        """The ``Subject`` of this declaration with these volumes."""
        return Subject(**self._fields(), volumes=volumes)

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Declared.__slots__}


@dataclass(frozen=True, eq=False)
class Subject(Declared):
    """A declaration as far as the rule is concerned: stored, or one about to be made."""

    volumes: tuple[Volume, ...]


@dataclass
class Found:
    """A conflict between the checked declaration and ``other``."""

    other: Declared
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


def pair_rule(policy: Policy, a: Declared, b: Declared) -> tuple[str, float, float] | None:
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


# --------------------------------------------------------------------------- queries

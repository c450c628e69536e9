"""The deployment's policy: separations, minimum notice, visibility, broadcast and limits.

A policy is a TOML document. ``deconflict init`` writes the defaults (``policy_default.toml``),
and the policy in force is stored in the database, so every process applies the same one and
every change enters the record.

The objects here are plain and immutable: the TOML document is validated at the boundary, by
the models of ``requests`` (``parse_policy``), and what the rest of the tree reads is this.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from deconflict.errors import InvalidRequest
from deconflict.geo.shape import Shape

Kind = Literal["operation", "site", "movement", "restriction"]
Role = Literal["operator", "humanitarian", "coordinator", "observer"]
KINDS: tuple[Kind, ...] = ("operation", "site", "movement", "restriction")
ROLES: tuple[Role, ...] = ("operator", "humanitarian", "coordinator", "observer")

# Which role declares which kind (API.md, POST /v1/declarations).
DECLARED_BY: dict[Kind, Role] = {
    "operation": "operator",
    "site": "humanitarian",
    "movement": "humanitarian",
    "restriction": "coordinator",
}

EVERY_ROLE = "*"


@dataclass(frozen=True)
class Separation:
    horizontal_m: float
    vertical_m: float


@dataclass(frozen=True)
class Acknowledgment:
    deadline_minutes: float = 60


Altitude = Literal["ignored", "separated"]
Disclosure = Literal["redacted", "full", "none"]
ALTITUDE_MODES: tuple[Altitude, ...] = ("ignored", "separated")
DISCLOSURES: tuple[Disclosure, ...] = ("redacted", "full", "none")


@dataclass(frozen=True)
class Protection:
    """The protected kinds (API.md v1.1, PRODUCT.md "Protection").

    ``altitude = "ignored"``: an operation's altitude never separates it from a protected
    declaration (a strike flown at 8,000 m still lands on the hospital below); "separated"
    applies the band and ``vertical_m`` as for any other pair. ``disclose_to_owner``: what
    the protected declaration's owner is told of an operation that conflicts with it; by
    default ``redacted`` (when and how close, not whose operation, what or where), since the
    owner may not see operations and its alerts would otherwise locate them.
    """

    kinds: tuple[Kind, ...] = ("site", "movement")
    altitude: Altitude = "ignored"
    disclose_to_owner: Disclosure = "redacted"

    def to_json(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "altitude": self.altitude,
            "disclose_to_owner": self.disclose_to_owner,
        }


@dataclass(frozen=True)
class Limits:
    """The defaults here are the policy's when its TOML leaves a value out (the bounds of
    each value are in ``requests.Limits``)."""

    volumes_per_declaration: int = 100
    vertices_per_declaration: int = 10_000
    body_bytes: int = 4 * 1024 * 1024
    buffer_m: float = 500_000
    geometry_radius_m: float = 1_000_000
    # The most work one conflict search may take, in vertex-pair comparisons (see
    # policy_default.toml); over it, 413.
    work_per_request: int = 400_000_000
    # One import (POST /v1/declarations/import): its rows (or features) and its body, which
    # replaces ``body_bytes`` for that route only.
    import_rows: int = 10_000
    import_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class RateLimits:
    """Token buckets per party and per client address, in each worker process."""

    writes_per_second: float = 20
    writes_burst: int = 200
    checks_per_second: float = 100
    checks_burst: int = 500
    failed_auth_per_window: int = 50
    failed_auth_window_s: float = 60
    failed_auth_lockout_s: float = 60


@dataclass(frozen=True)
class AreaOfOperations:
    """Where the deployment's declarations lie (a Polygon or MultiPolygon, as written in the
    policy): a declaration with a position outside it is refused, ``invalid_geometry``, which
    catches most swapped or mistyped coordinates (``geo.area`` says what "outside" is)."""

    name: str
    geometry: dict[str, Any]
    shape: Shape = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "geometry": self.geometry}


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A parsed policy. ``separation`` is keyed by ``pair_key`` (``a-b``, sorted). The fields
    are in the order of ``GET /v1/policy``'s ``policy``."""

    separation: dict[str, Separation]
    minimum_notice_hours: dict[Kind, float] = field(default_factory=dict)
    visibility: dict[Kind, list[str]]
    broadcast: dict[Kind, list[str]] = field(default_factory=dict)
    acknowledgment: Acknowledgment = field(default_factory=Acknowledgment)
    limits: Limits = field(default_factory=Limits)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    protection: Protection = field(default_factory=Protection)
    area_of_operations: AreaOfOperations | None = None  # None: declarations may lie anywhere

    def separation_for(self, kind_a: str, kind_b: str) -> Separation | None:
        """The separation minima between two kinds, or None when they never conflict. Under
        ``protection.altitude = "ignored"`` the vertical minimum between an operation and a
        protected kind is infinite: no altitude band separates them. The engine's rule
        (``engine.rule.pair_rule``) and its compiled pass (``candidate_pass.rule_arrays``)
        both read it here, so the index answers the same rule exactly."""
        if kind_a == "site" and kind_b == "site":
            return None
        if kind_a == "restriction" and kind_b == "restriction":
            return None
        separation = self.separation.get(pair_key(kind_a, kind_b))
        if separation is not None and self.altitude_ignored(kind_a, kind_b):
            return Separation(separation.horizontal_m, math.inf)
        return separation

    def is_protected(self, kind: str) -> bool:
        return kind in self.protection.kinds

    def protects(self, kind_a: str, kind_b: str) -> bool:
        """Whether a conflict between these kinds is one of an operation with a protected
        declaration (justification, protection alerts)."""
        return (kind_a == "operation" and self.is_protected(kind_b)) or (
            kind_b == "operation" and self.is_protected(kind_a)
        )

    def altitude_ignored(self, kind_a: str, kind_b: str) -> bool:
        return self.protection.altitude == "ignored" and self.protects(kind_a, kind_b)

    def can_see(self, role: str, kind: str) -> bool:
        """Whether a party of ``role`` may see another party's declaration of ``kind``."""
        roles = self.visibility.get(kind, [])  # type: ignore[call-overload]
        return EVERY_ROLE in roles or role in roles

    def visible_to(self, viewer_id: str, viewer_role: str, kind: str, owner: str) -> bool:
        """Whether a party sees a declaration: its own, every one for the coordinator (who
        "sees everything", PRODUCT.md), else by the visibility table."""
        return owner == viewer_id or viewer_role == "coordinator" or self.can_see(viewer_role, kind)

    def broadcast_to(self, role: str, kind: str) -> bool:
        roles = self.broadcast.get(kind, [])  # type: ignore[call-overload]
        return EVERY_ROLE in roles or role in roles

    def minimum_notice(self, kind: str) -> timedelta:
        hours = self.minimum_notice_hours.get(kind, 0.0)  # type: ignore[call-overload]
        return timedelta(hours=hours)

    def acknowledgment_deadline(self) -> timedelta:
        return timedelta(minutes=self.acknowledgment.deadline_minutes)

    def to_json(self) -> dict[str, Any]:
        """The policy as ``GET /v1/policy`` shows it (``policy``)."""
        return {
            "separation": {pair: _as_json(minima) for pair, minima in self.separation.items()},
            "minimum_notice_hours": dict(self.minimum_notice_hours),
            "visibility": {kind: list(roles) for kind, roles in self.visibility.items()},
            "broadcast": {kind: list(roles) for kind, roles in self.broadcast.items()},
            "acknowledgment": _as_json(self.acknowledgment),
            "limits": _as_json(self.limits),
            "rate_limits": _as_json(self.rate_limits),
            "protection": self.protection.to_json(),
            "area_of_operations": (
                None if self.area_of_operations is None else self.area_of_operations.to_json()
            ),
        }


def _as_json(values: Separation | Acknowledgment | Limits | RateLimits) -> dict[str, Any]:
    # A float holds a float in JSON even when its default is written as an integer, as it
    # did when this was a pydantic model (and as the value read from the TOML is).
    return {
        item.name: float(value) if item.type == "float" else value
        for item in dataclasses.fields(values)
        for value in [getattr(values, item.name)]
    }


def pair_key(kind_a: str, kind_b: str) -> str:
    first, second = sorted((kind_a, kind_b))
    return f"{first}-{second}"


def default_policy_text() -> str:
    return resources.files("deconflict").joinpath("policy_default.toml").read_text("utf-8")


@lru_cache(maxsize=16)
def parse_policy(text: str) -> Policy:
    """Parse and validate a policy's TOML text; errors name the field."""
    # Imported here: ``requests`` imports the kinds and roles from this module.
    from deconflict.requests import validate_policy

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"the policy is not valid TOML: {exc}", field="policy") from exc
    return validate_policy(document)


def default_policy() -> Policy:
    return parse_policy(default_policy_text())

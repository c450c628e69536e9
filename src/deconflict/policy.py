"""The deployment's policy: separations, minimum notice, visibility, broadcast and limits.

A policy is a TOML document. ``deconflict init`` writes the defaults (``policy_default.toml``),
and the policy in force is stored in the database, so every process applies the same one and
every change enters the record.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from deconflict.errors import InvalidRequest

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


class Separation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizontal_m: float = Field(ge=0, le=1_000_000)
    vertical_m: float = Field(ge=0, le=100_000)


class Acknowledgment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadline_minutes: float = Field(default=60, gt=0)


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volumes_per_declaration: int = Field(default=100, ge=1)
    vertices_per_declaration: int = Field(default=10_000, ge=1)
    body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    buffer_m: float = Field(default=500_000, ge=0)
    geometry_radius_m: float = Field(default=1_000_000, gt=0, le=3_000_000)
    # The most work one conflict search may take, in vertex-pair comparisons (see
    # policy_default.toml); over it, 413. At least enough for a declaration at the vertex
    # limit against one stored point, so no legal request is refused with nothing near it.
    work_per_request: int = Field(default=400_000_000, ge=100_000, le=10_000_000_000)


class RateLimits(BaseModel):
    """Token buckets per party and per client address, in each worker process."""

    model_config = ConfigDict(extra="forbid")

    writes_per_second: float = Field(default=20, gt=0, le=100_000)
    writes_burst: int = Field(default=200, ge=1, le=1_000_000)
    checks_per_second: float = Field(default=100, gt=0, le=100_000)
    checks_burst: int = Field(default=500, ge=1, le=1_000_000)
    failed_auth_per_window: int = Field(default=50, ge=1, le=1_000_000)
    failed_auth_window_s: float = Field(default=60, gt=0, le=86_400)
    failed_auth_lockout_s: float = Field(default=60, gt=0, le=86_400)


class Policy(BaseModel):
    """A parsed policy. Kind pairs are written ``a-b`` in either order."""

    model_config = ConfigDict(extra="forbid")

    separation: dict[str, Separation]
    minimum_notice_hours: dict[Kind, float] = Field(default_factory=dict)
    visibility: dict[Kind, list[str]]
    broadcast: dict[Kind, list[str]] = Field(default_factory=dict)
    acknowledgment: Acknowledgment = Field(default_factory=Acknowledgment)
    limits: Limits = Field(default_factory=Limits)
    rate_limits: RateLimits = Field(default_factory=RateLimits)

    @field_validator("separation")
    @classmethod
    def _pairs_are_kinds(cls, value: dict[str, Separation]) -> dict[str, Separation]:
        normalised: dict[str, Separation] = {}
        for pair, separation in value.items():
            first, _, second = pair.partition("-")
            if first not in KINDS or second not in KINDS:
                raise ValueError(f"{pair!r} is not a pair of kinds such as 'operation-site'")
            normalised[pair_key(first, second)] = separation
        return normalised

    @field_validator("visibility", "broadcast")
    @classmethod
    def _roles_exist(cls, value: dict[Kind, list[str]]) -> dict[Kind, list[str]]:
        for roles in value.values():
            for role in roles:
                if role != EVERY_ROLE and role not in ROLES:
                    raise ValueError(f"{role!r} is not a role")
        return value

    def separation_for(self, kind_a: str, kind_b: str) -> Separation | None:
        """The separation minima between two kinds, or None when they never conflict."""
        if kind_a == "site" and kind_b == "site":
            return None
        if kind_a == "restriction" and kind_b == "restriction":
            return None
        return self.separation.get(pair_key(kind_a, kind_b))

    def max_horizontal_m(self, kind: str) -> float:
        """The widest horizontal separation between ``kind`` and any kind, for index queries."""
        widths = [s.horizontal_m for k in KINDS if (s := self.separation_for(kind, k))]
        return max(widths, default=0.0)

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


def pair_key(kind_a: str, kind_b: str) -> str:
    first, second = sorted((kind_a, kind_b))
    return f"{first}-{second}"


def default_policy_text() -> str:
    return resources.files("deconflict").joinpath("policy_default.toml").read_text("utf-8")


@lru_cache(maxsize=16)
def parse_policy(text: str) -> Policy:
    """Parse and validate a policy's TOML text; errors name the field."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"the policy is not valid TOML: {exc}", field="policy") from exc
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        raise InvalidRequest("the policy is not valid", errors=errors) from exc


def default_policy() -> Policy:
    return parse_policy(default_policy_text())

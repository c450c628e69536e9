"""Request bodies: parsing JSON and validating it into typed models, with field paths.

Every pydantic model of deconflict is here: the HTTP bodies, a volume as a client sends it,
the policy's TOML document and the scenario file (a policy and a scenario are requests too).
Every validation error names its field the way API.md writes it (``volumes[0].time.end``), so
a client can point at the offending input. The objects the rest of the tree works with are
plain (``volumes.Volume``, ``policy.Policy``): they are built from these models at the
boundary.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from deconflict import policy
from deconflict.clock import RANGE_TEXT, RFC3339, in_range, repair_stored_time
from deconflict.errors import InvalidRequest
from deconflict.geo.geojson import parse_geometry
from deconflict.policy import EVERY_ROLE, KINDS, ROLES, Kind, Role, pair_key

Model = TypeVar("Model", bound=BaseModel)


def field_path(location: tuple[int | str, ...], within: str = "", root: str = "body") -> str:
    """``("volumes", 0, "time", "end")`` → ``volumes[0].time.end``; below ``within`` when
    given (``steps[3].volumes[0]``), ``root`` for the whole document."""
    path = within
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or root


BODY_DEPTH = 64
"""Levels of objects and arrays a JSON body may nest (the body itself is one)."""
METADATA_DEPTH = 32
"""Levels ``metadata`` may nest (the metadata object itself is one)."""
MAX_QUERY_INT = 2**63 - 1
"""The largest integer a query parameter may hold: SQLite and PostgreSQL compare columns
with signed 64-bit integers, and a larger one fails in the driver."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Integers beyond ±this are refused: JavaScript and many JSON readers hold every number as
a float64, which cannot tell 2**53 + 1 from 2**53."""


def parse_body(raw: bytes, model: type[Model]) -> Model:
    """Decode and validate a JSON body; 400 ``invalid_request`` naming each bad field."""
    document = decode_json(raw) if raw else None
    if not isinstance(document, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    return validate(document, model)


def decode_json(raw: bytes) -> Any:
    """A request body as JSON, strictly: UTF-8 without a byte order mark (API.md: "All bodies
    are JSON (UTF-8)"), no ``NaN``/``Infinity``, and only values every part of the service and
    every JSON reader takes back (``check_json_value``, over at most ``BODY_DEPTH`` levels).
    400 ``invalid_request`` naming the field otherwise."""
    encoding = json.detect_encoding(raw)
    if raw.startswith(b"\xef\xbb\xbf") or encoding != "utf-8":
        found = "a byte order mark" if encoding == "utf-8-sig" else encoding.upper()
        raise InvalidRequest(
            f"the body must be JSON in UTF-8 without a byte order mark; this is {found}",
            field="body",
        )
    try:
        text = raw.decode("utf-8")  # strict: encoded surrogates and bad bytes are refused
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not valid UTF-8: {exc}", field="body") from exc
    document = parse_json(text, "the body", field="body")
    check_json_value(document, "", BODY_DEPTH)
    return document


def parse_json(text: str, source: str, *, field: str) -> Any:
    """JSON text, strictly: ``NaN`` and ``Infinity`` (which ``json`` takes by default) are
    refused. 400 ``invalid_request`` on ``field`` saying what ``source`` is otherwise."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise InvalidRequest(
            f"{source} nests more than {BODY_DEPTH} levels of objects and arrays", field=field
        ) from exc
    except ValueError as exc:
        raise InvalidRequest(f"{source} is not valid JSON: {exc}", field=field) from exc


def check_json_value(value: Any, field: str, max_depth: int) -> None:
    """Refuse, naming the field, what some reader of a stored value could not take back:
    nesting deeper than ``max_depth``, non-finite numbers, integers beyond
    ±``MAX_SAFE_INTEGER``, and strings that are not Unicode text (a lone surrogate such as
    ``"\\ud800"``, which UTF-8 cannot encode) or hold U+0000 (which PostgreSQL cannot store).
    Iterative, so that no depth makes it recurse."""
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidRequest(
                    f"nested more than {max_depth} levels deep", field=path or "body"
                )
            if isinstance(item, dict):
                for key, member in item.items():
                    # The field's name is shown in the answer, which must be UTF-8 itself.
                    name = key.encode("utf-8", "backslashreplace").decode("utf-8")
                    child = f"{path}.{name}" if path else name
                    _check_string(key, child)
                    stack.append((member, child, depth + 1))
            else:
                stack.extend((member, f"{path}[{n}]", depth + 1) for n, member in enumerate(item))
        elif isinstance(item, str):
            _check_string(item, path or "body")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                raise InvalidRequest(
                    f"the integer {item} is beyond ±(2^53 - 1), which not every JSON reader "
                    "holds exactly",
                    field=path or "body",
                )
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequest("numbers must be finite", field=path or "body")


def _check_string(text: str, field: str) -> None:
    if "\x00" in text:
        raise InvalidRequest("strings may not hold U+0000", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            "strings must be Unicode text: this one holds a lone surrogate", field=field
        ) from exc


def validate(
    document: Any,
    model: type[Model],
    *,
    within: str = "",
    root: str = "body",
    error: type[InvalidRequest] = InvalidRequest,
    context: dict[str, Any] | None = None,
) -> Model:
    """``model`` from ``document``; else ``error`` naming each bad field (``field_path``)."""
    try:
        return model.model_validate(document, context=context)
    except ValidationError as exc:
        errors = [
            {"field": field_path(tuple(e["loc"]), within, root), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0]
        raise error(f"{first['field']}: {first['message']}", errors=errors) from exc


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    # Also where bodies do not come through ``decode_json``: scenario files, direct calls.
    check_json_value(value, "metadata", METADATA_DEPTH)
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_check_metadata)]
"""A declaration's free-form metadata: any JSON object within the limits of
``check_json_value`` and at most ``METADATA_DEPTH`` levels deep."""


# -- a volume -----------------------------------------------------------------------------

STORED = {"stored": True}
"""The validation context of stored volumes (see ``TimeIn``)."""


def _stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("stored"))


class AltitudeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lower_m: float | None = Field(default=None, allow_inf_nan=False, ge=-1000, le=1_000_000)
    upper_m: float | None = Field(default=None, allow_inf_nan=False, ge=-1000, le=1_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> AltitudeIn:
        if self.lower_m is not None and self.upper_m is not None and self.lower_m > self.upper_m:
            raise ValueError("lower_m must not be above upper_m")
        return self


class TimeIn(BaseModel):
    """A window. Each time is an RFC 3339 string (a number of seconds is refused: it reads as
    a Unix time to some clients and as something else to others) in the accepted range
    (``clock.EARLIEST``..``clock.LATEST``). Stored windows are read with the context
    ``{"stored": True}``: they were checked when accepted, and older rows may lie outside
    the range of today (they must still load)."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(
                "must be an RFC 3339 time string such as 2026-12-01T00:00:00Z, not a number"
            )
        if _stored(info):
            return repair_stored_time(value)
        if not RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
        return value

    @field_validator("start", "end")
    @classmethod
    def _representable_in_utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # 9999-12-31T23:00:00-02:00 is a valid RFC 3339 time but falls past year 9999 in UTC.
        if value is None:
            return None
        try:
            moment = value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError(f"must be between {RANGE_TEXT}") from exc
        return moment if _stored(info) else in_range(moment)

    @model_validator(mode="after")
    def _ordered(self) -> TimeIn:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class VolumeIn(BaseModel):
    """A volume as a client sends it (API.md ``Volume``); ``volumes.build_volumes`` makes it
    a ``Volume``."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any]
    buffer_m: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    altitude: AltitudeIn = Field(default_factory=AltitudeIn)
    time: TimeIn


# -- declarations, subscriptions, parties ---------------------------------------------------


class RestrictsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parties: list[str] = Field(default_factory=list, max_length=1000)
    roles: list[Role] = Field(default_factory=list)
    allowed_categories: list[str] = Field(default_factory=list, max_length=1000)


MAX_JUSTIFICATION = 2000


def _check_justification(text: str) -> str:
    if not text.strip():
        raise ValueError("a justification must say something: it is only whitespace")
    return text


# An operation's written reason for conflicting with a protected declaration (API.md v1.1):
# 1-2,000 characters, kept as sent (no trimming), not only whitespace.
Justification = Annotated[
    str,
    Field(min_length=1, max_length=MAX_JUSTIFICATION),
    AfterValidator(_check_justification),
]


class DeclarationIn(BaseModel):
    """``POST /v1/declarations``. Unknown top-level fields are ignored, so a client may send
    back a declaration it read."""

    kind: Kind
    volumes: list[VolumeIn]
    key: list[str] = Field(default_factory=list, max_length=100_000)
    category: str = Field(default="", max_length=200)
    metadata: Metadata = Field(default_factory=dict)
    restricts: RestrictsIn | None = None
    justification: Justification | None = None


class DeclarationUpdate(BaseModel):
    """``PUT /v1/declarations/{id}``: the new volumes; category, metadata and restricts are
    kept when left out."""

    version: str = Field(min_length=1, max_length=64)
    volumes: list[VolumeIn]
    key: list[str] = Field(default_factory=list, max_length=100_000)
    category: str | None = Field(default=None, max_length=200)
    metadata: Metadata | None = None
    restricts: RestrictsIn | None = None
    # Not kept from the version it replaces: each version says its own (or none).
    justification: Justification | None = None


class CheckIn(BaseModel):
    """``POST /v1/conflicts/check``: a declaration the caller would make."""

    kind: Kind
    volumes: list[VolumeIn]
    category: str = Field(default="", max_length=200)
    restricts: RestrictsIn | None = None


class SubscriptionIn(BaseModel):
    volumes: list[VolumeIn]
    kinds: list[Kind] = Field(default_factory=list)


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role
    webhook_url: str | None = Field(default=None, max_length=2000)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)


Response = Literal["acknowledged", "assured", "cannot_assure", "denied"]
"""A recipient's answer to a notification (PRODUCT.md, "Response"): received and understood;
it will keep clear; it cannot assure that; it refuses."""
RESPONSES: tuple[Response, ...] = ("acknowledged", "assured", "cannot_assure", "denied")


class AckIn(BaseModel):
    response: Response = "acknowledged"
    comment: str = Field(default="", max_length=10_000)

    @property
    def response_sent(self) -> Response | None:
        """The response, None when it was left out: then a later acknowledgment keeps the
        answer given before instead of taking it back (``service.responses``)."""
        return self.response if "response" in self.model_fields_set else None


# -- the policy (a TOML document; ``policy.parse_policy``) -------------------------------------
# The nested models keep the names of the plain objects they become: pydantic names the class
# in some of its messages ("Input should be a valid dictionary or instance of Limits").

_LIMITS = policy.Limits()
_RATES = policy.RateLimits()


class Separation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizontal_m: float = Field(ge=0, le=1_000_000)
    vertical_m: float = Field(ge=0, le=100_000)


class Acknowledgment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadline_minutes: float = Field(default=policy.Acknowledgment.deadline_minutes, gt=0)


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volumes_per_declaration: int = Field(default=_LIMITS.volumes_per_declaration, ge=1)
    vertices_per_declaration: int = Field(default=_LIMITS.vertices_per_declaration, ge=1)
    body_bytes: int = Field(default=_LIMITS.body_bytes, ge=1024)
    buffer_m: float = Field(default=_LIMITS.buffer_m, ge=0)
    geometry_radius_m: float = Field(default=_LIMITS.geometry_radius_m, gt=0, le=3_000_000)
    # At least enough for a declaration at the vertex limit against one stored point, so no
    # legal request is refused with nothing near it.
    work_per_request: int = Field(default=_LIMITS.work_per_request, ge=100_000, le=10_000_000_000)
    import_rows: int = Field(default=_LIMITS.import_rows, ge=1, le=1_000_000)
    import_bytes: int = Field(default=_LIMITS.import_bytes, ge=1024, le=1024 * 1024 * 1024)


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    writes_per_second: float = Field(default=_RATES.writes_per_second, gt=0, le=100_000)
    writes_burst: int = Field(default=_RATES.writes_burst, ge=1, le=1_000_000)
    checks_per_second: float = Field(default=_RATES.checks_per_second, gt=0, le=100_000)
    checks_burst: int = Field(default=_RATES.checks_burst, ge=1, le=1_000_000)
    failed_auth_per_window: int = Field(default=_RATES.failed_auth_per_window, ge=1, le=1_000_000)
    failed_auth_window_s: float = Field(default=_RATES.failed_auth_window_s, gt=0, le=86_400)
    failed_auth_lockout_s: float = Field(default=_RATES.failed_auth_lockout_s, gt=0, le=86_400)


ProtectedKind = Literal["site", "movement", "restriction"]


def _protected_by_default() -> list[ProtectedKind]:
    return ["site", "movement"]


class Protection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # An operation is never protected from operations: they deconflict by separation.
    kinds: list[ProtectedKind] = Field(default_factory=_protected_by_default, max_length=3)
    altitude: policy.Altitude = policy.Protection.altitude
    disclose_to_owner: policy.Disclosure = policy.Protection.disclose_to_owner


class AreaOfOperationsIn(BaseModel):
    """``[area_of_operations]``: a name people recognise and a GeoJSON Polygon or
    MultiPolygon, validated as a declaration's geometry is (``to_policy``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any]

    @field_validator("geometry")
    @classmethod
    def _an_area(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError("the area of operations must be a GeoJSON Polygon or MultiPolygon")
        return value

    def to_area(self) -> policy.AreaOfOperations:
        # Any size the geometry validation allows (parts within 60 degrees): the area is the
        # coordinator's, not a party's, so the declaration limits do not apply to it.
        shape = parse_geometry(self.geometry, "area_of_operations.geometry")
        return policy.AreaOfOperations(name=self.name, geometry=self.geometry, shape=shape)


class PolicyIn(BaseModel):
    """A policy document. Kind pairs are written ``a-b`` in either order."""

    model_config = ConfigDict(extra="forbid")

    separation: dict[str, Separation]
    minimum_notice_hours: dict[Kind, float] = Field(default_factory=dict)
    visibility: dict[Kind, list[str]]
    broadcast: dict[Kind, list[str]] = Field(default_factory=dict)
    acknowledgment: Acknowledgment = Field(default_factory=Acknowledgment)
    limits: Limits = Field(default_factory=Limits)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    protection: Protection = Field(default_factory=Protection)
    area_of_operations: AreaOfOperationsIn | None = None

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

    def to_policy(self) -> policy.Policy:
        return policy.Policy(
            separation={
                pair: policy.Separation(**minima.model_dump())
                for pair, minima in self.separation.items()
            },
            minimum_notice_hours=dict(self.minimum_notice_hours),
            visibility={kind: list(roles) for kind, roles in self.visibility.items()},
            broadcast={kind: list(roles) for kind, roles in self.broadcast.items()},
            acknowledgment=policy.Acknowledgment(**self.acknowledgment.model_dump()),
            limits=policy.Limits(**self.limits.model_dump()),
            rate_limits=policy.RateLimits(**self.rate_limits.model_dump()),
            protection=policy.Protection(
                kinds=tuple(dict.fromkeys(self.protection.kinds)),
                altitude=self.protection.altitude,
                disclose_to_owner=self.protection.disclose_to_owner,
            ),
            area_of_operations=(
                None if self.area_of_operations is None else self.area_of_operations.to_area()
            ),
        )


def validate_policy(document: dict[str, Any]) -> policy.Policy:
    """A policy from its parsed TOML; errors name each field with dots
    (``separation.operation-site.horizontal_m``, ``visibility.site.0``)."""
    try:
        return PolicyIn.model_validate(document).to_policy()
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        raise InvalidRequest("the policy is not valid", errors=errors) from exc


# -- the scenario file (``docs/scenario.md``; ``scenario.format``) ----------------------------


class PartySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    role: Role


class ClockSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = "+0m"


class ScenarioHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    name: str = ""
    description: str = ""
    clock: ClockSpec = Field(default_factory=ClockSpec)
    parties: list[PartySpec] = Field(default_factory=list)
    steps: list[Any] = Field(default_factory=list)


class _Step(BaseModel):
    """What every step by a party has: who acts, and an optional note for the reader."""

    model_config = ConfigDict(extra="forbid")

    actor: str = Field(alias="as", min_length=1)
    note: str = ""


class DeclareStep(_Step):
    ref: str = Field(min_length=1, max_length=100)
    kind: Kind
    category: str = Field(default="", max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    volumes: list[VolumeIn]
    restricts: RestrictsIn | None = None
    acknowledge_conflicts: bool = False
    justification: Justification | None = None


class UpdateStep(_Step):
    update: str = Field(min_length=1)
    volumes: list[VolumeIn]
    category: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    restricts: RestrictsIn | None = None
    acknowledge_conflicts: bool = False
    justification: Justification | None = None


class WithdrawStep(_Step):
    withdraw: str = Field(min_length=1)


class SubscribeStep(_Step):
    subscribe: SubscriptionIn


class ReadInboxStep(_Step):
    read_inbox: Literal[True]


class AcknowledgeStep(_Step):
    acknowledge: Literal["all"] | list[str]
    response: Response = "acknowledged"
    comment: str = Field(default="", max_length=10_000)

    @property
    def response_sent(self) -> Response | None:
        """As ``AckIn.response_sent``."""
        return self.response if "response" in self.model_fields_set else None


class AdvanceStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance: str
    note: str = ""


Step: TypeAlias = (
    DeclareStep
    | UpdateStep
    | WithdrawStep
    | SubscribeStep
    | ReadInboxStep
    | AcknowledgeStep
    | AdvanceStep
)

STEP_ACTIONS: dict[str, type[Step]] = {
    "kind": DeclareStep,
    "update": UpdateStep,
    "withdraw": WithdrawStep,
    "subscribe": SubscribeStep,
    "read_inbox": ReadInboxStep,
    "acknowledge": AcknowledgeStep,
    "advance": AdvanceStep,
}
"""The key that says what a step does, and its model."""

"""Scenarios: parties and ordered steps in a JSON file, applied through the service's own rules.

A scenario (format in ``docs/scenario.md``) registers parties, then declares, updates,
withdraws, subscribes, reads inboxes and acknowledges, step by step. Every step goes through
the same functions as the HTTP API, so it meets the same validation, awareness keys,
notifications and record; nothing is written to a table directly.

The whole file is checked before the first write (fields, times, geometries, references), so a
bad file names its first error (``steps[7].volumes[0].time.end``) and changes nothing. A step
that the service refuses while loading (say, an update of a declaration that an earlier step
could not make) stops the load; the steps before it stay, like any accepted write.

Times in volumes may be offsets from the load time (``"+2d6h"``, ``"-1h"``), counted from the
start of the current UTC hour so that windows fall on the hour. The scenario's own clock, which
stamps every write, starts at ``clock.start`` (an offset from the exact load time) and moves
only with ``advance`` steps; it may never pass the load time, so whatever is written after
the load is never older than the scenario's history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from deconflict.clock import Clock, format_time
from deconflict.errors import DeconflictError, InvalidRequest, MissingAwareness
from deconflict.policy import DECLARED_BY, KINDS, Kind, Limits, Role
from deconflict.requests import (
    DeclarationIn,
    DeclarationUpdate,
    RestrictsIn,
    SubscriptionIn,
    field_path,
)
from deconflict.service.bootstrap import first_coordinator
from deconflict.service.declaration_reads import declaration_conflicts
from deconflict.service.declarations import (
    Written,
    create_declaration,
    update_declaration,
    withdraw_declaration,
)
from deconflict.service.deployment import Deployment
from deconflict.service.notifications import MAX_INBOX_PAGE, acknowledge, overdue, read_inbox
from deconflict.service.parties import Party, register_party
from deconflict.service.subscriptions import create_subscription
from deconflict.storage.declarations import StoredDeclaration
from deconflict.storage.schema import notifications
from deconflict.volumes import VolumeIn, build_volumes

COORDINATOR_REF = "coordinator"
# How often a declaration is re-sent with newly missed versions before giving up: only writes
# made by others between two attempts can make a second attempt miss something.
AWARENESS_ATTEMPTS = 3

_OFFSET = re.compile(
    r"^(?P<sign>[+-])(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$"
)
_DURATION = re.compile(r"^\+?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_TIME_HINT = (
    "use RFC 3339 with a zone (2026-05-01T06:00:00Z) or an offset from the load time "
    "such as +2d6h, +30m or -1h"
)


# -- the file format --------------------------------------------------------------------------


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


class UpdateStep(_Step):
    update: str = Field(min_length=1)
    volumes: list[VolumeIn]
    category: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    restricts: RestrictsIn | None = None
    acknowledge_conflicts: bool = False


class WithdrawStep(_Step):
    withdraw: str = Field(min_length=1)


class SubscribeStep(_Step):
    subscribe: SubscriptionIn


class ReadInboxStep(_Step):
    read_inbox: Literal[True]


class AcknowledgeStep(_Step):
    acknowledge: Literal["all"] | list[str]
    comment: str = Field(default="", max_length=10_000)


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

# The key that says what a step does, and its model.
ACTIONS: dict[str, type[BaseModel]] = {
    "kind": DeclareStep,
    "update": UpdateStep,
    "withdraw": WithdrawStep,
    "subscribe": SubscribeStep,
    "read_inbox": ReadInboxStep,
    "acknowledge": AcknowledgeStep,
    "advance": AdvanceStep,
}


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: times resolved, references known to be consistent."""

    name: str
    clock_start: datetime
    parties: list[PartySpec]
    steps: list[Step]


# -- times ------------------------------------------------------------------------------------


def _delta(match: re.Match[str]) -> timedelta:
    parts = {unit: int(match.group(unit) or 0) for unit in ("d", "h", "m", "s")}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def parse_offset(text: str) -> timedelta | None:
    """``"+2d6h"`` → 2 days 6 hours, ``"-30m"`` → minus 30 minutes; None if not an offset."""
    match = _OFFSET.match(text)
    if match is None or len(text) < 3:
        return None
    delta = _delta(match)
    return -delta if match.group("sign") == "-" else delta


def parse_duration(text: str) -> timedelta | None:
    """A positive duration such as ``"20m"`` or ``"1h30m"``; None if it is not one."""
    match = _DURATION.match(text)
    if match is None or text in ("", "+"):
        return None
    delta = _delta(match)
    return delta if delta > timedelta(0) else None


def volume_anchor(now: datetime) -> datetime:
    """Where offsets in volumes count from: the start of the load time's UTC hour."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _resolve_times(volumes: Any, anchor: datetime, path: str) -> Any:
    """A copy of raw volumes with offset times replaced by RFC 3339 times."""
    if not isinstance(volumes, list):
        return volumes  # the model's validation names the problem
    resolved = []
    for number, item in enumerate(volumes):
        window = item.get("time") if isinstance(item, dict) else None
        if isinstance(window, dict):
            window = dict(window)
            for name in ("start", "end"):
                value = window.get(name)
                if isinstance(value, str) and value[:1] in ("+", "-"):
                    offset = parse_offset(value)
                    if offset is None:
                        raise _fail(
                            f"{path}[{number}].time.{name}",
                            f"{value!r} is not a time: {_TIME_HINT}",
                        )
                    window[name] = format_time(anchor + offset)
            item = {**item, "time": window}
        resolved.append(item)
    return resolved


# -- checking a document ----------------------------------------------------------------------


class ScenarioError(InvalidRequest):
    """A bad scenario: ``detail`` and each error's ``field`` name the place in the file."""


def _validated(model: type[BaseModel], document: Any, path: str) -> Any:
    """``model`` from ``document``; errors name fields below ``path``."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            below = field_path(tuple(error["loc"]))
            name = (path or "scenario") if below == "body" else f"{path}.{below}" if path else below
            errors.append({"field": name, "message": error["msg"]})
        first = errors[0]
        raise ScenarioError(f"{first['field']}: {first['message']}", errors=errors) from exc


def _at(path: str, exc: DeconflictError) -> ScenarioError:
    """A service error met while checking or applying a step, named with the step's path."""
    if not exc.errors:
        return _fail(path, exc.detail)
    errors = [{"field": f"{path}.{e['field']}", "message": e["message"]} for e in exc.errors]
    return ScenarioError(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)


def _fail(path: str, message: str) -> ScenarioError:
    return ScenarioError(f"{path}: {message}", errors=[{"field": path, "message": message}])


@dataclass
class _Checker:
    """Walks the steps in order, knowing which party made which declaration so far."""

    roles: dict[str, Role]
    limits: Limits
    anchor: datetime
    clock: datetime
    now: datetime
    owners: dict[str, str] = field(default_factory=dict)  # declaration ref → party ref
    withdrawn: set[str] = field(default_factory=set)

    def step(self, number: int, raw: Any) -> Step:
        path = f"steps[{number}]"
        if not isinstance(raw, dict):
            raise _fail(path, "a step is a JSON object")
        actions = [key for key in ACTIONS if key in raw]
        if len(actions) != 1:
            raise _fail(
                path,
                "a step does exactly one thing: give one of `kind` (declare), `update`, "
                "`withdraw`, `subscribe`, `read_inbox`, `acknowledge` or `advance`"
                + (f" (this one has {', '.join(actions)})" if actions else ""),
            )
        document = dict(raw)
        if "volumes" in document:
            document["volumes"] = _resolve_times(
                document["volumes"], self.anchor, f"{path}.volumes"
            )
        if isinstance(document.get("subscribe"), dict):
            interest = dict(document["subscribe"])
            interest["volumes"] = _resolve_times(
                interest.get("volumes"), self.anchor, f"{path}.subscribe.volumes"
            )
            document["subscribe"] = interest
        step: Step = _validated(ACTIONS[actions[0]], document, path)
        self._check(path, step)
        return step

    def _check(self, path: str, step: Step) -> None:
        if isinstance(step, AdvanceStep):
            self._advance(path, step)
            return
        if step.actor not in self.roles:
            raise _fail(f"{path}.as", f"no party {step.actor!r} in `parties`")
        if isinstance(step, DeclareStep):
            self._declare(path, step)
        elif isinstance(step, UpdateStep):
            self._owned(f"{path}.update", step.update, step.actor)
            self._volumes(path, "volumes", step.volumes)
            self._restricts(path, step.restricts)
        elif isinstance(step, WithdrawStep):
            self._owned(f"{path}.withdraw", step.withdraw, step.actor)
            self.withdrawn.add(step.withdraw)
        elif isinstance(step, SubscribeStep):
            self._volumes(path, "subscribe.volumes", step.subscribe.volumes)
        elif isinstance(step, AcknowledgeStep) and step.acknowledge != "all":
            for number, ref in enumerate(step.acknowledge):
                if ref not in self.owners:
                    raise _fail(f"{path}.acknowledge[{number}]", f"no earlier declaration {ref!r}")

    def _advance(self, path: str, step: AdvanceStep) -> None:
        delta = parse_duration(step.advance)
        if delta is None:
            raise _fail(f"{path}.advance", "a positive duration such as 20m, 1h30m or 1d")
        self.clock += delta
        if self.clock > self.now:
            raise _fail(
                f"{path}.advance",
                "the scenario clock would pass the load time; start it earlier "
                '(`"clock": {"start": "-3h"}`) or advance it less',
            )

    def _declare(self, path: str, step: DeclareStep) -> None:
        if step.ref in self.owners:
            raise _fail(f"{path}.ref", f"{step.ref!r} is declared already")
        role, needed = self.roles[step.actor], DECLARED_BY[step.kind]
        if role != needed:
            raise _fail(
                f"{path}.kind",
                f"{step.actor} is a {role} and may not declare a {step.kind}; "
                f"{step.kind}s are declared by the {needed}",
            )
        if step.kind == "restriction" and step.restricts is None:
            raise _fail(
                f"{path}.restricts",
                "a restriction must say whom it restricts (`parties`/`roles`; "
                "both empty restricts every party)",
            )
        self._restricts(path, step.restricts)
        self._volumes(path, "volumes", step.volumes)
        self.owners[step.ref] = step.actor

    def _owned(self, path: str, ref: str, actor: str) -> None:
        if ref not in self.owners:
            raise _fail(path, f"no earlier declaration {ref!r}")
        if self.owners[ref] != actor:
            raise _fail(path, f"{ref!r} belongs to {self.owners[ref]}, not {actor}")
        if ref in self.withdrawn:
            raise _fail(path, f"{ref!r} is withdrawn by then")

    def _restricts(self, path: str, restricts: RestrictsIn | None) -> None:
        for number, ref in enumerate(restricts.parties if restricts else []):
            if ref not in self.roles:
                raise _fail(f"{path}.restricts.parties[{number}]", f"no party {ref!r}")

    def _volumes(self, path: str, name: str, volumes: list[VolumeIn]) -> None:
        try:
            build_volumes(volumes, self.limits, field=name)
        except DeconflictError as exc:
            raise _at(path, exc) from exc


def _clock_start(text: str, now: datetime) -> datetime:
    offset = parse_offset(text)
    if offset is not None:
        return now + offset
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail("clock.start", f"{text!r} is not a time: {_TIME_HINT}") from exc
    if moment.tzinfo is None:
        raise _fail("clock.start", f"{text!r} has no time zone: {_TIME_HINT}")
    return moment.astimezone(UTC)


def parse_scenario(document: Any, *, now: datetime, limits: Limits) -> Scenario:
    """Check a whole scenario document; raises ``InvalidRequest`` naming the first bad field."""
    if not isinstance(document, dict):
        raise _fail("scenario", "a scenario is a JSON object")
    header: ScenarioHeader = _validated(ScenarioHeader, document, "")
    clock_start = _clock_start(header.clock.start, now)
    if clock_start > now:
        raise _fail("clock.start", "the scenario clock cannot start after the load time")
    roles: dict[str, Role] = {COORDINATOR_REF: "coordinator"}
    for number, party in enumerate(header.parties):
        if party.ref in roles:
            reason = "is the existing coordinator" if party.ref == COORDINATOR_REF else "repeats"
            raise _fail(f"parties[{number}].ref", f"{party.ref!r} {reason}")
        roles[party.ref] = party.role
    checker = _Checker(
        roles=roles, limits=limits, anchor=volume_anchor(now), clock=clock_start, now=now
    )
    steps = [checker.step(number, raw) for number, raw in enumerate(header.steps)]
    return Scenario(name=header.name, clock_start=clock_start, parties=header.parties, steps=steps)


def read_scenario(path: Path) -> Any:
    """The JSON document in ``path``; ``InvalidRequest`` when it is not JSON."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {path}: {exc}", field="file") from exc
    return parse_json(text, str(path))


def parse_json(text: str, source: str) -> Any:
    def refuse(name: str) -> float:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError as exc:
        raise InvalidRequest(f"{source} is not valid JSON: {exc}", field="file") from exc


def builtin_scenario(name: str = "demo") -> Any:
    """A scenario shipped with the package (``deconflict/scenarios/NAME.json``)."""
    text = resources.files("deconflict").joinpath("scenarios", f"{name}.json").read_text("utf-8")
    return parse_json(text, f"the built-in scenario {name!r}")


# -- loading ----------------------------------------------------------------------------------


class ScenarioClock:
    """The deployment's clock moved by an offset: the scenario's time, which flows on from
    ``start`` as the real clock does and jumps forward with ``advance`` steps."""

    def __init__(self, base: Clock, start: datetime) -> None:
        self.base = base
        self.offset = start - base()

    def __call__(self) -> datetime:
        return self.base() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass(frozen=True)
class LoadedParty:
    ref: str
    id: str
    name: str
    role: str
    token: str | None  # None for the existing coordinator: its token was shown by `init`


@dataclass(frozen=True)
class Refusal:
    """A step without `acknowledge_conflicts` that the awareness rule refused, as expected."""

    step: int
    ref: str
    missing: list[dict[str, Any]]


@dataclass
class LoadReport:
    name: str = ""
    steps: int = 0
    parties: list[LoadedParty] = field(default_factory=list)
    declarations: dict[str, str] = field(default_factory=dict)  # ref → id
    declared: dict[str, int] = field(default_factory=dict)  # kind → declarations made
    updated: int = 0
    withdrawn: int = 0
    subscriptions: int = 0
    refused: list[Refusal] = field(default_factory=list)
    late_notice: list[str] = field(default_factory=list)  # refs whose version is late notice
    conflicts: dict[str, int] = field(default_factory=dict)  # "operation-site" → pairs
    notifications: int = 0
    delivered: int = 0
    acknowledged: int = 0
    overdue: int = 0


# A declare step and an update step send different bodies through the same awareness loop.
_Body = TypeVar("_Body", DeclarationIn, DeclarationUpdate)


@dataclass
class _Made:
    id: str
    version: str


class _Loader:
    def __init__(self, deployment: Deployment, clock: ScenarioClock, report: LoadReport) -> None:
        self.deployment = deployment
        self.clock = clock
        self.report = report
        self.parties: dict[str, Party] = {}
        self.made: dict[str, _Made] = {}
        self.refused_at: dict[str, int] = {}

    def register(self, coordinator: Party, specs: list[PartySpec]) -> None:
        self.parties[COORDINATOR_REF] = coordinator
        self.report.parties.append(
            LoadedParty(COORDINATOR_REF, coordinator.id, coordinator.name, coordinator.role, None)
        )
        if not specs:
            return
        with self.deployment.writing() as write:
            for spec in specs:
                party, token, _receipt, _secret = register_party(
                    write, name=spec.name, role=spec.role, actor=coordinator.id
                )
                self.parties[spec.ref] = party
                self.report.parties.append(
                    LoadedParty(spec.ref, party.id, party.name, party.role, token)
                )

    def apply(self, number: int, step: Step) -> None:
        if isinstance(step, AdvanceStep):
            delta = parse_duration(step.advance)
            assert delta is not None  # checked by parse_scenario
            self.clock.advance(delta)
            return
        party = self.parties[step.actor]
        if isinstance(step, DeclareStep):
            self._declare(number, party, step)
        elif isinstance(step, UpdateStep):
            self._update(number, party, step)
        elif isinstance(step, WithdrawStep):
            made = self._made(number, "withdraw", step.withdraw)
            withdraw_declaration(self.deployment, party, made.id, made.version)
            self.report.withdrawn += 1
        elif isinstance(step, SubscribeStep):
            create_subscription(self.deployment, party, step.subscribe)
            self.report.subscriptions += 1
        elif isinstance(step, ReadInboxStep):
            self._read_inbox(party)
        elif isinstance(step, AcknowledgeStep):
            self._acknowledge(number, party, step)

    def _declare(self, number: int, party: Party, step: DeclareStep) -> None:
        body = DeclarationIn(kind=step.kind, **self._content(step))
        create = partial(create_declaration, self.deployment, party)
        declaration = self._write(number, step.ref, step, body, create)
        if declaration is None:
            return
        self.made[step.ref] = _Made(declaration.id, declaration.version)
        self.report.declarations[step.ref] = declaration.id
        self.report.declared[step.kind] = self.report.declared.get(step.kind, 0) + 1

    def _update(self, number: int, party: Party, step: UpdateStep) -> None:
        made = self._made(number, "update", step.update)
        body = DeclarationUpdate(version=made.version, **self._content(step))
        update = partial(update_declaration, self.deployment, party, made.id)
        declaration = self._write(number, step.update, step, body, update)
        if declaration is None:
            return
        made.version = declaration.version
        self.report.updated += 1

    def _content(self, step: DeclareStep | UpdateStep) -> dict[str, Any]:
        """The fields a declare step and an update step both send, party refs made ids."""
        return {
            "volumes": step.volumes,
            "category": step.category,
            "metadata": step.metadata,
            "restricts": self._restricts(step.restricts),
        }

    def _write(
        self,
        number: int,
        ref: str,
        step: DeclareStep | UpdateStep,
        body: _Body,
        service: Callable[[_Body], Written],
    ) -> StoredDeclaration | None:
        """Send ``body`` through ``service`` minding awareness (``_aware``, with the key of
        each attempt); the declaration written, or None when the step was refused."""
        result = self._aware(
            number,
            ref,
            step.acknowledge_conflicts,
            lambda key: service(body.model_copy(update={"key": key})),
        )
        if result is None:
            return None
        self._note_late_notice(ref, result.declaration)
        return result.declaration

    def _aware(
        self,
        number: int,
        ref: str,
        acknowledge_conflicts: bool,
        write: Callable[[list[str]], Written],
    ) -> Written | None:
        """Write; when refused for missing awareness, either re-send with the missed versions
        in ``key`` (a careful party that has reviewed them) or record the refusal."""
        key: list[str] = []
        for _attempt in range(AWARENESS_ATTEMPTS):
            try:
                return write(key)
            except MissingAwareness as exc:
                missing: list[dict[str, Any]] = exc.extra["missing"]
                if not acknowledge_conflicts:
                    self.report.refused.append(Refusal(number, ref, missing))
                    self.refused_at[ref] = number
                    return None
                key = [*key, *(m["version"] for m in missing)]
        raise _fail(f"steps[{number}]", "other writes kept adding conflicts; try again")

    def _made(self, number: int, action: str, ref: str) -> _Made:
        if ref not in self.made:
            refused = self.refused_at.get(ref)
            raise _fail(
                f"steps[{number}].{action}",
                f"{ref!r} was refused at steps[{refused}] for missing awareness, so it cannot "
                f"be changed; set `acknowledge_conflicts: true` there",
            )
        return self.made[ref]

    def _note_late_notice(self, ref: str, declaration: StoredDeclaration) -> None:
        if declaration.late_notice and ref not in self.report.late_notice:
            self.report.late_notice.append(ref)
        elif not declaration.late_notice and ref in self.report.late_notice:
            self.report.late_notice.remove(ref)

    def _restricts(self, restricts: RestrictsIn | None) -> RestrictsIn | None:
        if restricts is None:
            return None
        return restricts.model_copy(
            update={"parties": [self.parties[ref].id for ref in restricts.parties]}
        )

    def _read_inbox(self, party: Party) -> None:
        after = 0
        while True:
            page = read_inbox(self.deployment, party, after=after, limit=MAX_INBOX_PAGE)
            if not page["notifications"]:
                return
            after = page["last_seq"]

    def _acknowledge(self, number: int, party: Party, step: AcknowledgeStep) -> None:
        # Which notifications to acknowledge is read from the table (as a webhook receiver
        # would know them); the acknowledgment itself goes through the service.
        query = select(notifications.c.id, notifications.c.declaration_id).where(
            notifications.c.recipient == party.id, notifications.c.acknowledged_at.is_(None)
        )
        with self.deployment.db.read() as conn:
            pending = list(conn.execute(query.order_by(notifications.c.seq)))
        if step.acknowledge == "all":
            chosen = [row.id for row in pending]
        else:
            chosen = []
            for position, ref in enumerate(step.acknowledge):
                made = self.made.get(ref)
                about = [row.id for row in pending if made and row.declaration_id == made.id]
                if not about:
                    raise _fail(
                        f"steps[{number}].acknowledge[{position}]",
                        f"{step.actor} has no unacknowledged notification about {ref!r}",
                    )
                chosen.extend(about)
        for notification_id in chosen:
            acknowledge(self.deployment, party, notification_id, step.comment)


def load_scenario(
    deployment: Deployment, document: Any, *, now: datetime | None = None
) -> LoadReport:
    """Apply a scenario through the service's functions and report what it made.

    ``now`` is the load time that offsets count from (default: the deployment's clock). The
    writes are stamped by the scenario's clock; ``deployment`` itself is left as it is.
    """
    now = now or deployment.now()
    scenario = parse_scenario(document, now=now, limits=deployment.current_policy().limits)
    clock = ScenarioClock(deployment.clock, scenario.clock_start)
    # A deployment of its own, on the same database and key, so that only the loader's writes
    # run on the scenario's clock (an API served from ``deployment`` keeps the real time).
    loading = Deployment(deployment.db, deployment.key_file, clock=clock)
    report = LoadReport(name=scenario.name, steps=len(scenario.steps))
    loader = _Loader(loading, clock, report)
    loader.register(first_coordinator(deployment), scenario.parties)
    for number, step in enumerate(scenario.steps):
        try:
            loader.apply(number, step)
        except ScenarioError:
            raise
        except DeconflictError as exc:
            raise _at(f"steps[{number}]", exc) from exc
    _summarise(deployment, report, loader.parties[COORDINATOR_REF])
    return report


def _summarise(deployment: Deployment, report: LoadReport, coordinator: Party) -> None:
    """Conflicts among what the scenario made, and the fate of its notifications, as the
    deployment (at its own time) sees them."""
    made = sorted(report.declarations.values())
    rows: list[Any] = []
    with deployment.reading() as conn:
        active = {s.id: s.kind for s in map(deployment.index.get, made) if s and s.id}
        # Chunked: SQLite limits the number of bound parameters in one statement.
        for offset in range(0, len(made), 500):
            rows.extend(
                conn.execute(
                    select(notifications.c.delivered_at, notifications.c.acknowledged_at).where(
                        notifications.c.declaration_id.in_(made[offset : offset + 500])
                    )
                )
            )
    pairs: dict[frozenset[str], str] = {}
    for declaration_id, kind in active.items():
        for conflict in declaration_conflicts(deployment, coordinator, declaration_id):
            other = conflict.other
            kinds = sorted((kind, other.kind), key=KINDS.index)
            pairs[frozenset((declaration_id, str(other.id)))] = "-".join(kinds)
    for name in pairs.values():
        report.conflicts[name] = report.conflicts.get(name, 0) + 1
    report.notifications = len(rows)
    report.delivered = sum(row.delivered_at is not None for row in rows)
    report.acknowledged = sum(row.acknowledged_at is not None for row in rows)
    mine = set(made)
    report.overdue = sum(
        item["declaration"]["id"] in mine for item in overdue(deployment, coordinator)
    )


# -- showing a report -------------------------------------------------------------------------


def print_report(
    report: LoadReport, console: Console, *, coordinator_token: str | None = None
) -> None:
    """The parties with their tokens, and what the scenario made."""
    table = Table(title="Parties", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name")
    table.add_column("role")
    # Tokens are copied from the terminal: never wrapped or cut.
    table.add_column("token", no_wrap=True, min_width=43)
    for party in report.parties:
        token = party.token or coordinator_token or "[dim](the token `deconflict init` printed)[/]"
        table.add_row(escape(party.name), party.role, token)
    console.print(table)
    for line in summary_lines(report):
        console.print(line, highlight=False, markup=False)


def summary_lines(report: LoadReport) -> list[str]:
    kinds = ", ".join(
        f"{report.declared[k]} {k}{'' if report.declared[k] == 1 else 's'}"
        for k in KINDS
        if k in report.declared
    )
    late = f"; late notice: {', '.join(report.late_notice)}" if report.late_notice else ""
    lines = [
        f"Declarations: {kinds or 'none'} ({report.updated} updated, "
        f"{report.withdrawn} withdrawn){late}",
    ]
    if report.refused:
        refusals = ", ".join(f"{r.ref} (steps[{r.step}])" for r in report.refused)
        lines.append(f"Refused for missing awareness, as the file expects: {refusals}")
    conflicts = ", ".join(f"{n} {name}" for name, n in sorted(report.conflicts.items()))
    lines.append(f"Conflicts: {sum(report.conflicts.values())} ({conflicts or 'none'})")
    lines.append(
        f"Notifications: {report.notifications}, {report.delivered} delivered, "
        f"{report.acknowledged} acknowledged, {report.overdue} overdue"
    )
    return lines

"""The scenario file (``docs/scenario.md``): reading it, resolving its times, checking it whole.

A scenario registers parties, then declares, updates, withdraws, subscribes, reads inboxes and
acknowledges, step by step (the models of each step are in ``requests``). The whole file is
checked before the first write (fields, times, geometries, references), so a bad file names its
first error (``steps[7].volumes[0].time.end``) and changes nothing.

Times in volumes may be offsets from the load time (``"+2d6h"``, ``"-1h"``), counted from the
start of the current UTC hour so that windows fall on the hour. The scenario's own clock, which
stamps every write, starts at ``clock.start`` (an offset from the exact load time) and moves
only with ``advance`` steps; it may never pass the load time, so whatever is written after
the load is never older than the scenario's history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from deconflict.clock import format_time
from deconflict.errors import DeconflictError, InvalidRequest
from deconflict.policy import DECLARED_BY, Limits, Role
from deconflict.requests import (
    STEP_ACTIONS,
    AcknowledgeStep,
    AdvanceStep,
    DeclareStep,
    PartySpec,
    RestrictsIn,
    ScenarioHeader,
    Step,
    SubscribeStep,
    UpdateStep,
    VolumeIn,
    WithdrawStep,
    parse_json,
    validate,
)
from deconflict.volumes import build_volumes

COORDINATOR_REF = "coordinator"

_OFFSET = re.compile(
    r"^(?P<sign>[+-])(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$"
)
_DURATION = re.compile(r"^\+?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_TIME_HINT = (
    "use RFC 3339 with a zone (2026-05-01T06:00:00Z) or an offset from the load time "
    "such as +2d6h, +30m or -1h"
)


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
                        raise scenario_error(
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


def error_at(path: str, exc: DeconflictError) -> ScenarioError:
    """A service error met while checking or applying a step, named with the step's path."""
    if not exc.errors:
        return scenario_error(path, exc.detail)
    errors = [{"field": f"{path}.{e['field']}", "message": e["message"]} for e in exc.errors]
    return ScenarioError(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)


def scenario_error(path: str, message: str) -> ScenarioError:
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
            raise scenario_error(path, "a step is a JSON object")
        actions = [key for key in STEP_ACTIONS if key in raw]
        if len(actions) != 1:
            raise scenario_error(
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
        step: Step = validate(
            document, STEP_ACTIONS[actions[0]], within=path, root=path, error=ScenarioError
        )
        self._check(path, step)
        return step

    def _check(self, path: str, step: Step) -> None:
        if isinstance(step, AdvanceStep):
            self._advance(path, step)
            return
        if step.actor not in self.roles:
            raise scenario_error(f"{path}.as", f"no party {step.actor!r} in `parties`")
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
                    raise scenario_error(
                        f"{path}.acknowledge[{number}]", f"no earlier declaration {ref!r}"
                    )

    def _advance(self, path: str, step: AdvanceStep) -> None:
        delta = parse_duration(step.advance)
        if delta is None:
            raise scenario_error(f"{path}.advance", "a positive duration such as 20m, 1h30m or 1d")
        self.clock += delta
        if self.clock > self.now:
            raise scenario_error(
                f"{path}.advance",
                "the scenario clock would pass the load time; start it earlier "
                '(`"clock": {"start": "-3h"}`) or advance it less',
            )

    def _declare(self, path: str, step: DeclareStep) -> None:
        if step.ref in self.owners:
            raise scenario_error(f"{path}.ref", f"{step.ref!r} is declared already")
        role, needed = self.roles[step.actor], DECLARED_BY[step.kind]
        if role != needed:
            raise scenario_error(
                f"{path}.kind",
                f"{step.actor} is a {role} and may not declare a {step.kind}; "
                f"{step.kind}s are declared by the {needed}",
            )
        if step.kind == "restriction" and step.restricts is None:
            raise scenario_error(
                f"{path}.restricts",
                "a restriction must say whom it restricts (`parties`/`roles`; "
                "both empty restricts every party)",
            )
        self._restricts(path, step.restricts)
        self._volumes(path, "volumes", step.volumes)
        self.owners[step.ref] = step.actor

    def _owned(self, path: str, ref: str, actor: str) -> None:
        if ref not in self.owners:
            raise scenario_error(path, f"no earlier declaration {ref!r}")
        if self.owners[ref] != actor:
            raise scenario_error(path, f"{ref!r} belongs to {self.owners[ref]}, not {actor}")
        if ref in self.withdrawn:
            raise scenario_error(path, f"{ref!r} is withdrawn by then")

    def _restricts(self, path: str, restricts: RestrictsIn | None) -> None:
        for number, ref in enumerate(restricts.parties if restricts else []):
            if ref not in self.roles:
                raise scenario_error(f"{path}.restricts.parties[{number}]", f"no party {ref!r}")

    def _volumes(self, path: str, name: str, volumes: list[VolumeIn]) -> None:
        try:
            build_volumes(volumes, self.limits, field=name)
        except DeconflictError as exc:
            raise error_at(path, exc) from exc


def _clock_start(text: str, now: datetime) -> datetime:
    offset = parse_offset(text)
    if offset is not None:
        return now + offset
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise scenario_error("clock.start", f"{text!r} is not a time: {_TIME_HINT}") from exc
    if moment.tzinfo is None:
        raise scenario_error("clock.start", f"{text!r} has no time zone: {_TIME_HINT}")
    return moment.astimezone(UTC)


def parse_scenario(document: Any, *, now: datetime, limits: Limits) -> Scenario:
    """Check a whole scenario document; raises ``InvalidRequest`` naming the first bad field."""
    if not isinstance(document, dict):
        raise scenario_error("scenario", "a scenario is a JSON object")
    header = validate(document, ScenarioHeader, root="scenario", error=ScenarioError)
    clock_start = _clock_start(header.clock.start, now)
    if clock_start > now:
        raise scenario_error("clock.start", "the scenario clock cannot start after the load time")
    roles: dict[str, Role] = {COORDINATOR_REF: "coordinator"}
    for number, party in enumerate(header.parties):
        if party.ref in roles:
            reason = "is the existing coordinator" if party.ref == COORDINATOR_REF else "repeats"
            raise scenario_error(f"parties[{number}].ref", f"{party.ref!r} {reason}")
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
    return parse_json(text, str(path), field="file")


def builtin_scenario(name: str = "demo") -> Any:
    """A scenario shipped with the package (``deconflict/scenarios/NAME.json``)."""
    text = resources.files("deconflict").joinpath("scenarios", f"{name}.json").read_text("utf-8")
    return parse_json(text, f"the built-in scenario {name!r}", field="file")

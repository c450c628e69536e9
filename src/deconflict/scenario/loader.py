"""Loading a scenario: its steps applied through the service's own rules.

Every step goes through the same functions as the HTTP API, so it meets the same validation,
awareness keys, notifications and record; nothing is written to, or read from, a table
directly. The file is checked whole first (``scenario.format``); a step that the service
refuses while loading (say, an update of a declaration that an earlier step could not make)
stops the load, and the steps before it stay, like any accepted write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from deconflict.clock import Clock
from deconflict.errors import DeconflictError, MissingAwareness
from deconflict.policy import KINDS
from deconflict.requests import (
    AcknowledgeStep,
    AdvanceStep,
    DeclarationIn,
    DeclarationUpdate,
    DeclareStep,
    PartySpec,
    ReadInboxStep,
    RestrictsIn,
    Step,
    SubscribeStep,
    UpdateStep,
    WithdrawStep,
)
from deconflict.scenario.format import (
    COORDINATOR_REF,
    ScenarioError,
    error_at,
    parse_duration,
    parse_scenario,
    scenario_error,
)
from deconflict.scenario.report import LoadedParty, LoadReport, Refusal
from deconflict.service.bootstrap import first_coordinator
from deconflict.service.declaration_reads import declaration_conflicts
from deconflict.service.declarations import (
    Written,
    create_declaration,
    update_declaration,
    withdraw_declaration,
)
from deconflict.service.deployment import Deployment
from deconflict.service.notifications import (
    MAX_INBOX_PAGE,
    deliveries,
    overdue,
    read_inbox,
    unacknowledged,
)
from deconflict.service.parties import Party, register_party
from deconflict.service.responses import acknowledge
from deconflict.service.subscriptions import create_subscription
from deconflict.storage.declarations import StoredDeclaration

# The reason of a protection alert's notification (API.md v1.1 "Protection alerts").
PROTECTION_REASON = "protection"

# How often a declaration is re-sent with newly missed versions before giving up: only writes
# made by others between two attempts can make a second attempt miss something.
AWARENESS_ATTEMPTS = 3


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
            "justification": step.justification,
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
        raise scenario_error(f"steps[{number}]", "other writes kept adding conflicts; try again")

    def _made(self, number: int, action: str, ref: str) -> _Made:
        if ref not in self.made:
            refused = self.refused_at.get(ref)
            raise scenario_error(
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
            if not page.notifications:
                return
            after = page.last_seq

    def _acknowledge(self, number: int, party: Party, step: AcknowledgeStep) -> None:
        # Which notifications to acknowledge is known without reading the inbox (as a webhook
        # receiver knows them), so that reading it stays a step of its own.
        pending = unacknowledged(self.deployment, party)
        if step.acknowledge == "all":
            chosen = [item["id"] for item in pending]
        else:
            chosen = []
            for position, ref in enumerate(step.acknowledge):
                made = self.made.get(ref)
                about = [
                    item["id"] for item in pending if made and item["declaration_id"] == made.id
                ]
                if not about:
                    raise scenario_error(
                        f"steps[{number}].acknowledge[{position}]",
                        f"{step.actor} has no unacknowledged notification about {ref!r}",
                    )
                chosen.extend(about)
        for notification_id in chosen:
            acknowledge(self.deployment, party, notification_id, step.comment, step.response_sent)


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
            raise error_at(f"steps[{number}]", exc) from exc
    _summarise(deployment, report, loader.parties[COORDINATOR_REF])
    return report


def _summarise(deployment: Deployment, report: LoadReport, coordinator: Party) -> None:
    """Conflicts among what the scenario made, and the fate of its notifications, as the
    deployment (at its own time) sees them."""
    made = sorted(report.declarations.values())
    with deployment.reading():
        active = {s.id: s.kind for s in map(deployment.index.get, made) if s and s.id}
    # The coordinator is shown every notification of every declaration.
    sent = [item for ref in made for item in deliveries(deployment, coordinator, ref)]
    refs = {declaration_id: ref for ref, declaration_id in report.declarations.items()}
    alerts = [item for item in sent if item.reason == PROTECTION_REASON]
    report.protection_alerts = len(alerts)
    report.protected_operations = sorted(
        {refs[str(item.notification["declaration_id"])] for item in alerts}
    )
    for item in sent:
        response = item.notification["response"]
        if item.notification["acknowledged_at"] is not None and response is not None:
            report.responses[str(response)] = report.responses.get(str(response), 0) + 1
    pairs: dict[frozenset[str], str] = {}
    for declaration_id, kind in active.items():
        for conflict in declaration_conflicts(deployment, coordinator, declaration_id):
            other = conflict.other
            kinds = sorted((kind, other.kind), key=KINDS.index)
            pairs[frozenset((declaration_id, str(other.id)))] = "-".join(kinds)
    for name in pairs.values():
        report.conflicts[name] = report.conflicts.get(name, 0) + 1
    report.notifications = len(sent)
    report.delivered = sum(item.notification["delivered_at"] is not None for item in sent)
    report.acknowledged = sum(item.notification["acknowledged_at"] is not None for item in sent)
    mine = set(made)
    report.overdue = sum(
        item.notification["declaration_id"] in mine for item in overdue(deployment, coordinator)
    )

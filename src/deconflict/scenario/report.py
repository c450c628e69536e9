"""What loading a scenario made, and how ``deconflict load`` and the demo print it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deconflict.policy import KINDS


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
    protection_alerts: int = 0  # to protected declarations' owners and the coordinator
    protected_operations: list[str] = field(default_factory=list)  # refs that raised them
    responses: dict[str, int] = field(default_factory=dict)  # response → acknowledgments


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
    if report.protection_alerts:
        lines.append(
            f"Protection alerts: {report.protection_alerts}, to the protected sites' and "
            f"movements' owners and the coordinator, about "
            f"{', '.join(report.protected_operations)}"
        )
    answers = {r: n for r, n in report.responses.items() if r != "acknowledged"}
    if answers:
        named = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(answers.items()))
        lines.append(f"Answers other than acknowledged: {named}")
    return lines

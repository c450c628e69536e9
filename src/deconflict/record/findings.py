"""What an audit of the record answers: the first problem it found, or what it checked.

Shared by the database check (``deconflict.record.fsck``, ``verify --db``) and a party's
check over HTTP (``deconflict.record.client``, ``verify --url``); both stop at the first
problem and name it (index, entry type, subject, what differs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: a log index and entry, a row, or a saved head."""

    detail: str
    index: int | None = None
    entry_type: str | None = None
    subject: str | None = None

    def __str__(self) -> str:
        where = [] if self.index is None else [f"entry {self.index}"]
        where += [part for part in (self.entry_type, self.subject) if part]
        return f"{' '.join(where)}: {self.detail}" if where else self.detail


@dataclass
class AuditResult:
    size: int = 0
    entries_checked: int = 0
    heads_checked: int = 0
    receipts_checked: int = 0
    openings_checked: int = 0
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """One line for the CLI: ``OK: ...`` or ``FAILED: <the first problem>``."""
        if self.problem is not None:
            return f"FAILED: {self.problem}"
        openings = f", {self.openings_checked} openings" if self.openings_checked else ""
        return (
            f"OK: {self.entries_checked} entries, {self.heads_checked} signed heads, "
            f"{self.receipts_checked} receipts{openings} checked; log size {self.size}"
        )


class ProblemFound(Exception):
    """Stops an audit at its first problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem

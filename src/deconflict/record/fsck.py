"""Verifying the record from the database: the operator's side (``deconflict verify --db``).

``verify_database`` recomputes everything the service wrote: each leaf from the rows it logs,
each leaf hash, the tree (streamed, O(log n) memory), every stored node and every signed
head; then the other direction (every row that must be logged is logged), that the current
state of each declaration is its latest logged version, and that ``serve`` could load every
stored row. It stops at the first problem and names it (index, entry type, subject, what
differs). Its queries are ``deconflict.storage.log``'s and ``deconflict.storage.audit``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.engine import Connection, Engine

from deconflict.engine.index import ConflictIndex
from deconflict.record import merkle
from deconflict.record.canonical import canonical_json
from deconflict.record.commitments import check_opening
from deconflict.record.entries import (
    DECLARATION_FIELDS,
    SEALED,
    is_sealed_type,
    leaf_for,
    sealed_from,
)
from deconflict.record.findings import AuditResult, Problem, ProblemFound
from deconflict.record.log_store import log_size
from deconflict.record.signing import verify_head
from deconflict.storage import audit, log, schema, subscriptions
from deconflict.volumes import volumes_from_json

Progress = Callable[[int, int], None]  # (entries checked, entries in the log)


def verify_database(
    engine: Engine,
    public_key_b64: str,
    *,
    progress: Progress | None = None,
    batch_size: int = 1000,
) -> AuditResult:
    """Recompute the record from the database and check it all (``deconflict verify --db``)."""
    # One snapshot for the whole audit, even while the service keeps writing.
    with audit.snapshot(engine) as conn:
        check = _DatabaseAudit(conn, public_key_b64, progress, batch_size)
        try:
            check.run()
        except ProblemFound as found:
            check.result.problem = found.problem
        return check.result


@dataclass
class _DatabaseAudit:
    conn: Connection
    public_key_b64: str
    progress: Progress | None
    batch_size: int
    result: AuditResult = field(default_factory=AuditResult)
    frontier: merkle.FrontierStore = field(default_factory=merkle.FrontierStore)
    sealed_from: int = 0

    def run(self) -> None:
        self.result.size = total = log_size(self.conn)
        self.sealed_from = sealed_from(self.conn)
        self._check_head_if_any(0, {})
        for rows, nodes, heads in self._batches():
            for row in rows:
                self._check_entry(row, nodes)
                self._check_head_if_any(self.frontier.size(), heads)
                self.result.entries_checked += 1
                if self.progress is not None:
                    self.progress(self.result.entries_checked, total)
        self._check_totals()
        self._check_every_row_is_logged()
        self._check_current_declarations()
        self._check_rows_load()

    # The log, streamed in batches: memory is one batch plus the O(log n) frontier.

    def _batches(self) -> Iterator[tuple[list[Any], dict[merkle.NodeKey, bytes], dict[int, Any]]]:
        last: int | None = None
        while True:
            rows = log.entry_rows_after(self.conn, last, self.batch_size)
            if not rows:
                return
            start = self.frontier.size()
            end = start + len(rows)
            yield rows, self._nodes_completed_by(start, end), self._heads_between(start + 1, end)
            last = rows[-1].idx

    def _nodes_completed_by(self, start: int, end: int) -> dict[merkle.NodeKey, bytes]:
        """Stored nodes whose last leaf is in [start, end): node (l, j) ends at (j+1)·2^l - 1."""
        ranges = []
        level = 0
        while (1 << level) <= end:
            first_j = -(-(start + 1) // (1 << level)) - 1  # ceil((start+1) / 2^l) - 1
            last_j = (end >> level) - 1
            if first_j <= last_j:
                ranges.append((level, first_j, last_j))
            level += 1
        return log.nodes_in_ranges(self.conn, ranges)

    def _heads_between(self, first: int, last: int) -> dict[int, Any]:
        return log.heads_between(self.conn, first, last)

    def _check_entry(self, row: Any, nodes: Mapping[merkle.NodeKey, bytes]) -> None:
        index = self.frontier.size()
        problem = _EntryProblem(index, row.entry_type, row.subject)
        if row.idx != index:
            # Named by its index only: the row at hand is another entry.
            raise ProblemFound(Problem(f"missing; the next stored index is {row.idx}", index))
        # First the leaf against the tree, so an altered leaf is named as such and not
        # mistaken for altered rows.
        leaf = _parse_canonical(row.leaf, problem)
        digest = merkle.leaf_hash(row.leaf.encode("utf-8"))
        if digest != bytes(row.leaf_hash):
            raise problem.found("the stored leaf does not hash to its stored leaf_hash")
        for level, idx, node in merkle.append(self.frontier, digest):
            stored = nodes.get((level, idx))
            if stored != node:
                state = "is missing" if stored is None else "differs from the recomputed hash"
                raise problem.found(f"Merkle node (level {level}, idx {idx}) {state}")
        if leaf.get("at") != row.at:
            raise problem.found("the at column disagrees with the leaf")
        entry, text = self._entry_of(row, leaf, index, problem)
        if entry.get("type") != row.entry_type:
            raise problem.found("the entry_type column disagrees with the leaf")
        # Then the entry against the rows it logs.
        try:
            rebuilt = leaf_for(self.conn, row.entry_type, row.subject)
        except (LookupError, ValueError) as exc:
            raise problem.found(f"the leaf cannot be rebuilt from the rows: {exc}") from exc
        if canonical_json(rebuilt) != text:
            fields = ", ".join(_differences(rebuilt, entry)) or "(the whole leaf)"
            raise problem.found(f"the stored rows differ from the logged leaf in {fields}")

    def _entry_of(
        self, row: Any, leaf: dict[str, Any], index: int, problem: _EntryProblem
    ) -> tuple[dict[str, Any], str]:
        """The entry a leaf logs, and its canonical text: the leaf itself when it is in clear,
        else the stored sealed entry, proven to open the leaf's commitment with its salt.

        Which form an entry must have is fixed by its index and type: every type but the
        parties' and the policy's is sealed from ``meta.sealed_from`` on, and nothing before.
        """
        must_seal = index >= self.sealed_from and is_sealed_type(row.entry_type)
        if leaf.get("type") != SEALED:
            if must_seal:
                raise problem.found(
                    f"logged in clear, but from index {self.sealed_from} on the record seals "
                    "entries of this type"
                )
            if row.sealed is not None or row.salt is not None:
                raise problem.found("a leaf in clear has a sealed entry or salt stored beside it")
            return leaf, str(row.leaf)
        if not must_seal:
            raise problem.found(
                f"sealed, but the record seals entries of this type only from index "
                f"{self.sealed_from} on"
                if is_sealed_type(row.entry_type)
                else "sealed, but the record logs entries of this type in clear"
            )
        if set(leaf) != {"type", "at", "commitment"}:
            raise problem.found("the sealed leaf has fields other than type, at and commitment")
        if row.sealed is None or row.salt is None:
            raise problem.found("the sealed leaf's entry or salt is not stored")
        entry = _parse_canonical(row.sealed, problem, "sealed entry")
        if not check_opening(str(leaf["commitment"]), entry, row.salt):
            raise problem.found(
                "the stored sealed entry and its salt do not open the leaf's commitment"
            )
        return entry, str(row.sealed)

    def _check_head_if_any(self, size: int, heads: Mapping[int, Any]) -> None:
        head = heads.get(size) if size else log.head_at(self.conn, 0)
        if head is None:
            return
        root = merkle.root(self.frontier, size).hex()
        if head["root"] != root:
            raise _head_problem(size, f"its root {head['root']} differs from the recomputed {root}")
        signed = {
            "size": size,
            "root": head["root"],
            "timestamp": head["timestamp"],
            "signature": head["signature"],
        }
        if not verify_head(self.public_key_b64, signed):
            raise _head_problem(size, "its signature does not verify with the log's public key")
        self.result.heads_checked += 1

    def _check_totals(self) -> None:
        size = self.frontier.size()
        beyond = log.smallest_head_above(self.conn, size)
        if beyond is not None:
            raise ProblemFound(
                Problem(f"a signed head of size {beyond} is beyond the log's {size} entries")
            )
        # Every complete subtree of a log of n leaves: n + n/2 + n/4 ... = 2n - popcount(n).
        expected = 2 * size - bin(size).count("1")
        stored = log.node_count(self.conn)
        if stored != expected:
            raise ProblemFound(
                Problem(f"log_nodes has {stored} rows; a log of {size} entries has {expected}")
            )

    # The other direction: every row that must be logged is.

    def _check_every_row_is_logged(self) -> None:
        unlogged = audit.version_not_logged(self.conn)
        if unlogged is not None:
            subject, change = unlogged
            raise ProblemFound(
                Problem(
                    "this declaration version has no record entry at its log_index",
                    entry_type=f"declaration.{change}",
                    subject=subject,
                )
            )
        for entry_type, table, condition in _MUST_BE_LOGGED:
            missing = audit.row_not_logged(self.conn, entry_type, table, condition)
            if missing is not None:
                raise ProblemFound(
                    Problem(
                        f"this {table.name} row has no record entry",
                        entry_type=entry_type,
                        subject=missing,
                    )
                )
        response = audit.response_not_logged(self.conn)
        if response is not None:
            raise ProblemFound(
                Problem(
                    "this notification_responses row has no record entry",
                    entry_type="notification.responded",
                    subject=response,
                )
            )
        stale = audit.response_not_current(self.conn)
        if stale is not None:
            raise ProblemFound(
                Problem(
                    "the notification's current response is not its latest response",
                    entry_type="notification",
                    subject=stale,
                )
            )
        duplicate = audit.logged_twice(self.conn)
        if duplicate is not None:
            entry_type, subject = duplicate
            raise ProblemFound(
                Problem("logged more than once", entry_type=entry_type, subject=subject)
            )

    # `serve` starts on every database this accepts: every row it loads can be loaded.

    def _check_rows_load(self) -> None:
        unreadable = first_unreadable(self.conn)
        if unreadable is not None:
            raise ProblemFound(Problem(unreadable[1], subject=unreadable[0]))

    # The current state of every declaration is its latest logged version.

    def _check_current_declarations(self) -> None:
        compared = (
            "kind",
            "owner",
            "version",
            "state",
            "late_notice",
            *DECLARATION_FIELDS,
            "justification",
        )
        for row in audit.current_beside_latest(self.conn, compared):
            if row["latest_version"] is None:
                raise ProblemFound(
                    Problem("no logged version", entry_type="declaration", subject=row["id"])
                )
            differing = [
                name
                for name in compared
                if _column_value(name, row[f"current_{name}"])
                != _column_value(name, row[f"logged_{name}"])
            ]
            if differing:
                raise ProblemFound(
                    Problem(
                        f"the current declaration row differs from its latest logged version "
                        f"{row['latest_version']} at {', '.join(differing)}",
                        entry_type="declaration",
                        subject=row["id"],
                    )
                )
        orphan = audit.version_without_declaration(self.conn)
        if orphan is not None:
            raise ProblemFound(
                Problem(
                    "logged versions but no current row", entry_type="declaration", subject=orphan
                )
            )


def first_unreadable(conn: Connection, batch: int = 10_000) -> tuple[str, str] | None:
    """The first stored row the service could not load, and why: a declaration the conflict
    index cannot take (which would stop ``serve`` from starting), or an active subscription
    that later writes could not match against. ``verify`` refuses a database holding one,
    so that ``serve`` starts on every database ``verify`` accepts. Streamed, in throwaway
    indexes of ``batch`` rows: the memory of one batch, the time of a restart's load."""
    for chunk in audit.declarations_to_load(conn, batch):
        try:
            ConflictIndex(threads=1).apply_rows(chunk)
        except Exception:
            for row in chunk:  # which one
                try:
                    ConflictIndex(threads=1).apply_rows([row])
                except Exception as exc:
                    return row["id"], f"the conflict index cannot load it ({exc})"
    for row in subscriptions.all_active(conn):
        try:
            volumes_from_json(json.loads(row["volumes"]))
        except Exception as exc:
            return row["id"], f"its volumes cannot be read ({exc})"
    return None


# Every row of these tables (meeting the condition) is logged as that entry type.
_notifications = schema.notifications
_MUST_BE_LOGGED: list[tuple[str, Table, ColumnElement[bool] | None]] = [
    ("notification.created", _notifications, None),
    ("notification.delivered", _notifications, _notifications.c.delivered_at.is_not(None)),
    ("notification.acknowledged", _notifications, _notifications.c.acknowledged_at.is_not(None)),
    ("party.registered", schema.parties, None),
    ("party.revoked", schema.parties, schema.parties.c.revoked_at.is_not(None)),
    ("subscription.created", schema.subscriptions, None),
    ("policy.changed", schema.policy_versions, None),
]


@dataclass(frozen=True)
class _EntryProblem:
    index: int
    entry_type: str
    subject: str

    def found(self, detail: str) -> ProblemFound:
        return ProblemFound(Problem(detail, self.index, self.entry_type, self.subject))


def _head_problem(size: int, detail: str) -> ProblemFound:
    return ProblemFound(Problem(detail, entry_type="tree head", subject=f"size {size}"))


def _parse_canonical(leaf: str, problem: _EntryProblem, what: str = "leaf") -> dict[str, Any]:
    try:
        parsed = json.loads(leaf)
        canonical = isinstance(parsed, dict) and canonical_json(parsed) == leaf
    except ValueError:
        canonical = False
    if not canonical:
        raise problem.found(f"the stored {what} is not a canonical JSON object")
    result: dict[str, Any] = parsed
    return result


def _differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Dotted paths of the fields where two leaves differ (``declaration.volumes``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(expected.keys() | actual.keys()):
            if key not in expected or key not in actual:
                found.append(f"{path}{key}")
            else:
                found += _differences(expected[key], actual[key], f"{path}{key}.")
        return found
    if canonical_json(expected) == canonical_json(actual):
        return []
    return [path.rstrip(".") or "(the whole leaf)"]


def _column_value(name: str, value: Any) -> Any:
    """A column compared as what it means: JSON text as its value, booleans as booleans."""
    if value is not None and name in ("volumes", "metadata", "restricts"):
        return json.loads(value)
    if name == "late_notice":
        return bool(value)
    return value

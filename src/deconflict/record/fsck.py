"""Verifying the record: from the database (the operator's side) or over HTTP (a party's side).

``verify_database`` recomputes everything the service wrote: each leaf from the rows it logs,
each leaf hash, the tree (streamed, O(log n) memory), every stored node and every signed
head; then the other direction (every row that must be logged is logged) and that the
current state of each declaration is its latest logged version.

``verify_remote`` trusts nothing but what a party saved earlier: signed heads and receipts.
It checks the server's current head against each of them with consistency and inclusion
proofs, so a rewritten, forked or shrunk history is detected.

Both stop at the first problem and name it (index, entry type, subject, what differs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select
from sqlalchemy.engine import Connection, Engine

from deconflict.record import merkle
from deconflict.record.canonical import canonical_json
from deconflict.record.commitments import check_opening
from deconflict.record.entries import (
    DECLARATION_FIELDS,
    SEALED,
    check_declaration_opening,
    check_notification_opening,
    is_sealed_type,
    leaf_for,
    sealed_from,
)
from deconflict.record.log_store import log_size
from deconflict.record.signing import verify_head
from deconflict.service import readback
from deconflict.storage.schema import (
    declaration_versions,
    declarations,
    log_entries,
    log_nodes,
    notifications,
    parties,
    policy_versions,
    subscriptions,
    tree_heads,
)

Progress = Callable[[int, int], None]  # (entries checked, entries in the log)


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


class _Found(Exception):
    """Stops an audit at its first problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


# --- the database ----------------------------------------------------------------------------


def verify_database(
    engine: Engine,
    public_key_b64: str,
    *,
    progress: Progress | None = None,
    batch_size: int = 1000,
) -> AuditResult:
    """Recompute the record from the database and check it all (``deconflict verify --db``)."""
    with engine.connect() as base:
        conn = base
        if engine.dialect.name == "postgresql":
            # One snapshot for the whole audit, even while the service keeps writing.
            conn = base.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            audit = _DatabaseAudit(conn, public_key_b64, progress, batch_size)
            try:
                audit.run()
            except _Found as found:
                audit.result.problem = found.problem
            return audit.result


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
            query = select(log_entries).order_by(log_entries.c.idx).limit(self.batch_size)
            if last is not None:
                query = query.where(log_entries.c.idx > last)
            rows = list(self.conn.execute(query))
            if not rows:
                return
            start = self.frontier.size()
            end = start + len(rows)
            yield rows, self._nodes_completed_by(start, end), self._heads_between(start + 1, end)
            last = rows[-1].idx

    def _nodes_completed_by(self, start: int, end: int) -> dict[merkle.NodeKey, bytes]:
        """Stored nodes whose last leaf is in [start, end): node (l, j) ends at (j+1)·2^l - 1."""
        conditions = []
        level = 0
        while (1 << level) <= end:
            first_j = -(-(start + 1) // (1 << level)) - 1  # ceil((start+1) / 2^l) - 1
            last_j = (end >> level) - 1
            if first_j <= last_j:
                conditions.append(
                    and_(log_nodes.c.level == level, log_nodes.c.idx.between(first_j, last_j))
                )
            level += 1
        rows = self.conn.execute(select(log_nodes).where(or_(*conditions)))
        return {(row.level, row.idx): bytes(row.hash) for row in rows}

    def _heads_between(self, first: int, last: int) -> dict[int, Any]:
        rows = self.conn.execute(select(tree_heads).where(tree_heads.c.size.between(first, last)))
        return {row.size: row for row in rows}

    def _check_entry(self, row: Any, nodes: Mapping[merkle.NodeKey, bytes]) -> None:
        index = self.frontier.size()
        problem = _EntryProblem(index, row.entry_type, row.subject)
        if row.idx != index:
            # Named by its index only: the row at hand is another entry.
            raise _Found(Problem(f"missing; the next stored index is {row.idx}", index))
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
        head = heads.get(size) if size else self._head_of_empty_log()
        if head is None:
            return
        root = merkle.root(self.frontier, size).hex()
        if head.root != root:
            raise _head_problem(size, f"its root {head.root} differs from the recomputed {root}")
        signed = {
            "size": size,
            "root": head.root,
            "timestamp": head.timestamp,
            "signature": head.signature,
        }
        if not verify_head(self.public_key_b64, signed):
            raise _head_problem(size, "its signature does not verify with the log's public key")
        self.result.heads_checked += 1

    def _head_of_empty_log(self) -> Any:
        return self.conn.execute(select(tree_heads).where(tree_heads.c.size == 0)).first()

    def _check_totals(self) -> None:
        size = self.frontier.size()
        beyond = self.conn.execute(
            select(func.min(tree_heads.c.size)).where(tree_heads.c.size > size)
        ).scalar()
        if beyond is not None:
            raise _Found(
                Problem(f"a signed head of size {beyond} is beyond the log's {size} entries")
            )
        # Every complete subtree of a log of n leaves: n + n/2 + n/4 ... = 2n - popcount(n).
        expected = 2 * size - bin(size).count("1")
        stored = self.conn.execute(select(func.count()).select_from(log_nodes)).scalar_one()
        if stored != expected:
            raise _Found(
                Problem(f"log_nodes has {stored} rows; a log of {size} entries has {expected}")
            )

    # The other direction: every row that must be logged is.

    def _check_every_row_is_logged(self) -> None:
        dv = declaration_versions
        subject = dv.c.declaration_id + literal("/") + dv.c.version
        logged_at_its_index = exists().where(
            log_entries.c.subject == subject,
            log_entries.c.entry_type == literal("declaration.") + dv.c.change,
            log_entries.c.idx == dv.c.log_index,
        )
        row = self.conn.execute(
            select(subject.label("subject"), dv.c.change).where(~logged_at_its_index).limit(1)
        ).first()
        if row is not None:
            raise _Found(
                Problem(
                    "this declaration version has no record entry at its log_index",
                    entry_type=f"declaration.{row.change}",
                    subject=row.subject,
                )
            )
        for entry_type, table, condition in _MUST_BE_LOGGED:
            self._check_logged(entry_type, table, condition)
        duplicate = self.conn.execute(
            select(log_entries.c.entry_type, log_entries.c.subject)
            .group_by(log_entries.c.entry_type, log_entries.c.subject)
            .having(func.count() > 1)
            .limit(1)
        ).first()
        if duplicate is not None:
            raise _Found(
                Problem(
                    "logged more than once",
                    entry_type=duplicate.entry_type,
                    subject=duplicate.subject,
                )
            )

    def _check_logged(
        self, entry_type: str, table: Any, condition: ColumnElement[bool] | None
    ) -> None:
        logged = exists().where(
            log_entries.c.subject == table.c.id, log_entries.c.entry_type == entry_type
        )
        query = select(table.c.id).where(~logged)
        if condition is not None:
            query = query.where(condition)
        missing = self.conn.execute(query.limit(1)).scalar()
        if missing is not None:
            raise _Found(
                Problem(
                    f"this {table.name} row has no record entry",
                    entry_type=entry_type,
                    subject=missing,
                )
            )

    # `serve` starts on every database this accepts: every row it loads can be loaded.

    def _check_rows_load(self) -> None:
        unreadable = readback.first_unreadable(self.conn)
        if unreadable is not None:
            raise _Found(Problem(unreadable[1], subject=unreadable[0]))

    # The current state of every declaration is its latest logged version.

    def _check_current_declarations(self) -> None:
        dv, d = declaration_versions, declarations
        latest = (
            select(dv.c.declaration_id, func.max(dv.c.log_index).label("log_index"))
            .group_by(dv.c.declaration_id)
            .subquery()
        )
        joined = d.outerjoin(latest, latest.c.declaration_id == d.c.id).outerjoin(
            dv, and_(dv.c.declaration_id == d.c.id, dv.c.log_index == latest.c.log_index)
        )
        compared = ("kind", "owner", "version", "state", "late_notice", *DECLARATION_FIELDS)
        columns = [d.c.id, dv.c.version.label("latest_version")]
        columns += [d.c[name].label(f"current_{name}") for name in compared]
        columns += [dv.c[name].label(f"logged_{name}") for name in compared]
        for row in self.conn.execute(
            # Streamed (a server-side cursor on PostgreSQL): a deployment may hold millions.
            select(*columns).select_from(joined).order_by(d.c.id).execution_options(yield_per=500)
        ).mappings():
            if row["latest_version"] is None:
                raise _Found(
                    Problem("no logged version", entry_type="declaration", subject=row["id"])
                )
            differing = [
                name
                for name in compared
                if _column_value(name, row[f"current_{name}"])
                != _column_value(name, row[f"logged_{name}"])
            ]
            if differing:
                raise _Found(
                    Problem(
                        f"the current declaration row differs from its latest logged version "
                        f"{row['latest_version']} at {', '.join(differing)}",
                        entry_type="declaration",
                        subject=row["id"],
                    )
                )
        orphan = self.conn.execute(
            select(dv.c.declaration_id)
            .where(~exists().where(d.c.id == dv.c.declaration_id))
            .limit(1)
        ).scalar()
        if orphan is not None:
            raise _Found(
                Problem(
                    "logged versions but no current row", entry_type="declaration", subject=orphan
                )
            )


_MUST_BE_LOGGED: list[tuple[str, Any, ColumnElement[bool] | None]] = [
    ("notification.created", notifications, None),
    ("notification.delivered", notifications, notifications.c.delivered_at.is_not(None)),
    ("notification.acknowledged", notifications, notifications.c.acknowledged_at.is_not(None)),
    ("party.registered", parties, None),
    ("party.revoked", parties, parties.c.revoked_at.is_not(None)),
    ("subscription.created", subscriptions, None),
    ("policy.changed", policy_versions, None),
]


@dataclass(frozen=True)
class _EntryProblem:
    index: int
    entry_type: str
    subject: str

    def found(self, detail: str) -> _Found:
        return _Found(Problem(detail, self.index, self.entry_type, self.subject))


def _head_problem(size: int, detail: str) -> _Found:
    return _Found(Problem(detail, entry_type="tree head", subject=f"size {size}"))


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


# --- over HTTP -------------------------------------------------------------------------------


def verify_remote(
    base_url: str,
    heads_file: Path,
    receipts_file: Path | None = None,
    client: httpx.Client | None = None,
    *,
    public_key_b64: str | None = None,
) -> AuditResult:
    """Check a server's log against the heads and receipts saved earlier (``verify --url``).

    ``heads_file`` holds one TreeHead per line (JSON lines); the new head is appended when
    every check passes. ``receipts_file`` holds one Receipt per line (or whole write answers
    that contain a ``receipt``), and may hold the openings a party was given (the answers of
    ``GET /v1/declarations/{id}/opening`` and ``GET /v1/notifications/{id}/opening``): each
    must open its leaves, and each leaf must be the log's, in the current signed tree.
    ``public_key_b64`` pins the key printed by ``init``; without it the server's key is used,
    but every saved head must verify with it, so a server that changes its key is detected
    all the same.
    """
    owned = client is None
    http = httpx.Client(timeout=30.0) if client is None else client
    audit = _RemoteAudit(http, base_url.rstrip("/"), heads_file, receipts_file, public_key_b64)
    try:
        audit.run()
    except _Found as found:
        audit.result.problem = found.problem
    finally:
        if owned:
            http.close()
    return audit.result


@dataclass
class _RemoteAudit:
    client: httpx.Client
    base_url: str
    heads_file: Path
    receipts_file: Path | None
    pinned_key: str | None
    result: AuditResult = field(default_factory=AuditResult)
    key: str = ""
    head: dict[str, Any] = field(default_factory=dict)
    roots_by_size: dict[int, str] = field(default_factory=dict)

    def run(self) -> None:
        self.key = self._public_key()
        self.head = self._get("/v1/log/head")
        if not verify_head(self.key, self.head):
            raise _Found(Problem("the server's current head is not signed by its log key"))
        self.result.size = self.head["size"]
        self._remember(self.head, "the server's current head")
        saved = _read_json_lines(self.heads_file, missing_ok=True)
        for line, head in saved:
            self._check_saved_head(head, f"{self.heads_file.name} line {line}")
        if self.receipts_file is not None:
            for line, receipt in _read_json_lines(self.receipts_file, missing_ok=False):
                where = f"{self.receipts_file.name} line {line}"
                if _is_opening(receipt):
                    self._check_opening(receipt, where)
                else:
                    self._check_receipt(receipt, where)
        if all(head != self.head for _, head in saved):
            with self.heads_file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(self.head, sort_keys=True) + "\n")

    def _public_key(self) -> str:
        answer = self._get("/v1/log/public-key")
        if answer.get("algorithm") != "Ed25519" or not isinstance(answer.get("public_key"), str):
            raise _Found(Problem(f"unexpected public key answer {answer!r}"))
        key: str = answer["public_key"]
        if self.pinned_key is not None and key != self.pinned_key:
            raise _Found(Problem("the server's log key is not the pinned key"))
        return key

    def _check_saved_head(self, head: Any, where: str) -> None:
        if not verify_head(self.key, head):
            raise _Found(Problem("saved head is not signed by the server's log key", subject=where))
        self._remember(head, where)
        self._check_consistent(head, where)
        self.result.heads_checked += 1

    def _remember(self, head: dict[str, Any], where: str) -> None:
        # Two signed heads with one size and two roots prove the log forked: no proof needed.
        seen = self.roots_by_size.setdefault(head["size"], head["root"])
        if seen != head["root"]:
            raise _Found(
                Problem(f"two different roots are signed for size {head['size']}", subject=where)
            )

    def _check_consistent(self, old: dict[str, Any], where: str) -> None:
        first, second = old["size"], self.head["size"]
        if first > second:
            raise _Found(Problem(f"the log shrank from {first} to {second} entries", subject=where))
        path: list[bytes] = []
        if 0 < first < second:
            answer = self._get("/v1/log/proof/consistency", first=first, second=second)
            path = _hex_list(answer.get("path"), where)
        first_root, second_root = bytes.fromhex(old["root"]), bytes.fromhex(self.head["root"])
        if not merkle.verify_consistency(first, second, first_root, second_root, path):
            raise _Found(
                Problem(
                    f"the log of size {second} is not an extension of the saved one of size "
                    f"{first}: history was rewritten",
                    subject=where,
                )
            )

    def _check_receipt(self, line: Any, where: str) -> None:
        receipt = line.get("receipt", line) if isinstance(line, dict) else None
        if not isinstance(receipt, dict) or not verify_head(self.key, receipt.get("tree_head")):
            raise _Found(
                Problem("the receipt's tree head is not signed by the log key", subject=where)
            )
        index, digest_hex = receipt.get("index"), receipt.get("leaf_hash")
        if not isinstance(index, int) or not 0 <= index < receipt["tree_head"]["size"]:
            raise _Found(Problem("the receipt's index is not inside its tree head", subject=where))
        digest = _hex_list([digest_hex], where)[0]
        self._remember(receipt["tree_head"], where)
        self._check_consistent(receipt["tree_head"], where)
        self._check_included(index, digest, where)
        self.result.receipts_checked += 1
        self.result.entries_checked += 1

    def _check_opening(self, opening: dict[str, Any], where: str) -> None:
        """An opening a party holds: it opens its leaves, and they are the log's."""
        if "entries" in opening:
            failed = check_notification_opening(opening)
            listed = opening["entries"] if isinstance(opening["entries"], list) else []
        else:
            failed = check_declaration_opening(opening.get("leaf") or "{}", opening)
            listed = [opening]
        if failed:
            raise _Found(
                Problem(
                    f"the opening does not open its leaves at {', '.join(failed)}", subject=where
                )
            )
        for item in listed:
            index, leaf = item.get("log_index"), item.get("leaf")
            if not isinstance(index, int) or not isinstance(leaf, str):
                raise _Found(Problem("an opening without log_index and leaf", subject=where))
            if not 0 <= index < self.head["size"]:
                raise _Found(
                    Problem("the opening's entry is not in the current log", index, subject=where)
                )
            self._check_included(index, merkle.leaf_hash(leaf.encode("utf-8")), where)
            self.result.entries_checked += 1
        self.result.openings_checked += 1

    def _check_included(self, index: int, digest: bytes, where: str) -> None:
        """Entry ``index`` hashes to ``digest`` and is in the current signed tree."""
        size = self.head["size"]
        proof = self._get("/v1/log/proof/inclusion", index=index, size=size)
        path = _hex_list(proof.get("path"), where)
        included = merkle.verify_inclusion(
            digest, index, size, path, bytes.fromhex(self.head["root"])
        )
        if not included or proof.get("leaf_hash") != digest.hex():
            raise _Found(
                Problem("the entry is not in the current signed log", index, subject=where)
            )
        listed = self._get("/v1/log/entries", start=index, end=index + 1).get("entries") or [{}]
        leaf = listed[0].get("leaf")
        if not isinstance(leaf, str) or merkle.leaf_hash(leaf.encode("utf-8")) != digest:
            raise _Found(
                Problem(
                    "the served entry does not hash to the leaf hash held",
                    index,
                    subject=where,
                )
            )

    def _get(self, path: str, **params: int) -> dict[str, Any]:
        try:
            response = self.client.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            raise _Found(Problem(f"GET {path} failed: {exc}")) from exc
        if response.status_code != 200:
            raise _Found(
                Problem(f"GET {path} answered {response.status_code}: {response.text[:200]}")
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise _Found(Problem(f"GET {path} did not answer JSON")) from exc
        if not isinstance(answer, dict):
            raise _Found(Problem(f"GET {path} did not answer a JSON object"))
        return answer


def _is_opening(line: Any) -> bool:
    """An opening document (a declaration's or a notification's), not a receipt line."""
    return (
        isinstance(line, dict)
        and "receipt" not in line
        and (("leaf" in line and "log_index" in line) or "entries" in line)
    )


def _read_json_lines(path: Path, *, missing_ok: bool) -> list[tuple[int, Any]]:
    if missing_ok and not path.exists():
        return []
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            lines.append((number, json.loads(text)))
        except ValueError as exc:
            raise _Found(Problem("not a JSON line", subject=f"{path.name} line {number}")) from exc
    return lines


def _hex_list(value: Any, where: str) -> list[bytes]:
    try:
        if not isinstance(value, list):
            raise TypeError("not a list")
        return [bytes.fromhex(item) for item in value]
    except (TypeError, ValueError) as exc:
        raise _Found(Problem(f"malformed hashes in a server answer: {exc}", subject=where)) from exc


class AuditError(Exception):
    """A remote check failed; the message says what did not hold."""


def fetch_included_leaf(
    base_url: str,
    index: int,
    client: httpx.Client | None = None,
    *,
    public_key_b64: str | None = None,
) -> str:
    """The leaf at ``index`` of a service's public log, proven to be in its signed tree.

    Checks the current head's signature, fetches the entry, hashes it and verifies an
    inclusion proof against that head, so the leaf does not rest on the server's word.
    """
    owned = client is None
    http = httpx.Client(timeout=30.0) if client is None else client
    remote = _RemoteAudit(http, base_url.rstrip("/"), Path(os.devnull), None, public_key_b64)
    try:
        key = remote._public_key()
        head = remote._get("/v1/log/head")
        if not verify_head(key, head):
            raise AuditError("the server's current head is not signed by its log key")
        entries = remote._get("/v1/log/entries", start=index, end=index + 1)["entries"]
        if len(entries) != 1 or not isinstance(entries[0].get("leaf"), str):
            raise AuditError(f"the log has no entry {index}")
        leaf: str = entries[0]["leaf"]
        digest = merkle.leaf_hash(leaf.encode("utf-8"))
        proof = remote._get("/v1/log/proof/inclusion", index=index, size=head["size"])
        path = _hex_list(proof.get("path"), "the inclusion proof")
        if not merkle.verify_inclusion(
            digest, index, head["size"], path, bytes.fromhex(head["root"])
        ):
            raise AuditError(f"entry {index} is not included in the signed tree")
        return leaf
    except _Found as found:
        raise AuditError(str(found.problem)) from found
    finally:
        if owned:
            http.close()

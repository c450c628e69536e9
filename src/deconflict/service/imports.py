"""Importing many declarations at once (``POST /v1/declarations/import``, API.md v1.1).

Each row read from the file (``deconflict.importing``) is a ``POST /v1/declarations`` body,
and goes through exactly what that request goes through: validation (``DeclarationIn``),
whether the party's role declares the kind, the geometry limits, the conflict search, the
awareness key (only visible conflicts listed, as POST does), the justification, the record
entry, the notifications and the read-back before commit. A row whose ``external_id`` the
party imported before is ``unchanged`` when its content is the same (nothing is written) and
otherwise updates that declaration from its current version. A declaration that was
withdrawn since is not re-created: that row is an error naming ``external_id`` (its owner
withdrew it on purpose; a new ``external_id`` declares it again).

Each row's outcome is its own: a bad row never stops or undoes the good ones.

Speed: one transaction per row costs a commit (an fsync on SQLite), a signed tree head and
a catch-up of the index each, some 130 rows a second. Here the drafts (validation, geometry,
conflict search) are made outside the write lock, and committed ``CHUNK_ROWS`` at a time
in one ``Deployment.writing()`` each, so the lock is never held long and other parties'
writes go in between chunks. Every refusal a client causes is raised by ``commit_in`` before
it writes anything of that row, so a refused row leaves the rest of its chunk standing;
should a chunk fail as a whole all the same (a fault of the service, not of a row), it is
done again one row per transaction, and only the row that fails is lost.

``dry_run`` runs every check, conflicts and awareness included, against the index as it
stands, and writes nothing at all: no rows, no record entries, no notifications, no
``change_seq``. Its results are those the import would answer, bar the ids and versions it
would give new declarations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from deconflict.errors import (
    Conflict,
    DeconflictError,
    Forbidden,
    MissingAwareness,
    StaleVersion,
    TooLarge,
)
from deconflict.importing import ImportRow, RowError
from deconflict.policy import Policy
from deconflict.requests import DeclarationIn, DeclarationUpdate, validate
from deconflict.service import declarations
from deconflict.service.declaration_reads import restricts_of, shown_to, visible_row
from deconflict.service.declarations import Committed, Replaced
from deconflict.service.deployment import Deployment, Write
from deconflict.service.parties import Party
from deconflict.storage import imports as storage
from deconflict.storage.declarations import StoredDeclaration

logger = logging.getLogger("deconflict.service.imports")

IMPORTERS: Final = frozenset({"humanitarian", "coordinator"})
"""The roles that may import (API.md v1.1)."""

CHUNK_ROWS: Final = 200
"""Rows committed in one write transaction: enough that the commit, the signed head and the
index's catch-up cost little per row, few enough that the write lock is held some tenths of
a second at most."""

EXTERNAL_ID_CHARS: Final = 200
"""The longest ``external_id`` kept (the column's width)."""


@dataclass(frozen=True)
class RowResult:
    """One row's outcome. ``status``: ``created``, ``updated``, ``unchanged`` or ``error``.
    ``declaration``: as stored (as it would be, on a dry run); ``conflicts``: those its
    author may see; ``missing``: on an awareness error, the versions the key lacked."""

    row: int
    status: str
    external_id: str | None = None
    declaration: StoredDeclaration | None = None
    conflicts: list[dict[str, Any]] | None = None  # as API.md's Conflict
    errors: list[RowError] = field(default_factory=list)
    missing: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ImportResult:
    results: list[RowResult]
    dry_run: bool

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


# -- a row's content and its errors ---------------------------------------------------------


def content_digest(document: dict[str, Any]) -> str:
    """SHA-256 of a row's content: the document without its ``key``, which says what its
    author saw, not what it declares. Keys sorted: the same content, the same digest."""
    content = {name: value for name, value in document.items() if name != "key"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# A document's field (``requests.field_path``) → the import column it came from.
_VOLUME_FIELD = re.compile(r"^volumes\[\d+\]\.?(?P<rest>.*)$")
_VOLUME_COLUMNS: Final = (
    ("time.end", "end"),
    ("time", "start"),
    ("altitude", "upper_m"),
    ("buffer_m", "buffer_m"),
)


def column_of(field_name: str) -> str:
    """The import column a field of the document came from (API.md "Import columns"):
    ``volumes[0].time.start`` → ``start``, ``metadata.name`` → ``name``; a geometry's
    fields → ``geometry`` (the position: ``lat``/``lon``, ``mgrs`` or the feature's)."""
    if field_name in ("kind", "category", "key", "justification"):
        return field_name
    if field_name.startswith("key["):
        return "key"
    if field_name.startswith("metadata."):
        name = field_name.removeprefix("metadata.")
        return name.split(".", 1)[0].split("[", 1)[0]
    if field_name == "metadata":
        return "name"
    match = _VOLUME_FIELD.match(field_name)
    if match is not None:
        rest = match.group("rest")
        for prefix, column in _VOLUME_COLUMNS:
            if rest.startswith(prefix):
                return column
        return "geometry"
    if field_name == "volumes":
        return "geometry"
    return "row"


def row_errors(exc: DeconflictError, position: str = "geometry") -> list[RowError]:
    """A refusal as the errors of a row, each naming its column (``position``: the one
    its geometry came from)."""
    if isinstance(exc, MissingAwareness):
        return [RowError("key", exc.detail)]
    if isinstance(exc, Forbidden):
        return [RowError("kind", exc.detail)]
    if isinstance(exc, StaleVersion):  # the declaration the external_id names moved on
        return [
            RowError("external_id", f"{exc.detail}: it changed while this import ran; import again")
        ]
    errors = exc.errors or [{"field": "row", "message": exc.detail}]
    named = [(column_of(e["field"]), e["message"]) for e in errors]
    return [RowError(position if c == "geometry" else c, m) for c, m in named]


def _refused(
    row: int, external_id: str | None, exc: DeconflictError, position: str = "geometry"
) -> RowResult:
    # An awareness refusal lists what POST's 409 lists: the missing versions and the
    # conflicts the party may see, in the problem's own rendering.
    missing = exc.extra.get("missing") if isinstance(exc, MissingAwareness) else None
    conflicts = exc.extra.get("conflicts") if isinstance(exc, Conflict) else None
    return RowResult(
        row,
        "error",
        external_id,
        errors=row_errors(exc, position),
        conflicts=conflicts,
        missing=missing,
    )


def _error(row: ImportRow, column: str, message: str) -> RowResult:
    return RowResult(row.row, "error", row.external_id, errors=[RowError(column, message)])


# -- what each row will do --------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    """A row that will create or update a declaration, read and authorised; ``place``:
    its place among the rows given; ``source``: the column its position came from."""

    place: int
    source: str
    row: int
    external_id: str | None
    digest: str
    body: DeclarationIn
    restricts: Any
    # The declaration it updates and the update (None: it creates one).
    replaced: Replaced | None = None
    update: DeclarationUpdate | None = None


def _plan(
    deployment: Deployment, policy: Policy, party: Party, rows: Sequence[ImportRow]
) -> tuple[dict[int, RowResult], list[_Planned]]:
    """Sort the rows into those answered already (errors, ``unchanged``) and those to draft,
    in one read transaction."""
    answered: dict[int, RowResult] = {}
    planned: list[_Planned] = []
    first_of: dict[str, int] = {}  # external id / content digest → the row that has it
    with deployment.reading() as conn:
        known = storage.imported(conn, party.id, [r.external_id for r in rows if r.external_id])
        for position, row in enumerate(rows):
            try:
                outcome = _plan_row(deployment, conn, policy, party, position, row, known, first_of)
            except DeconflictError as exc:
                outcome = _refused(row.row, row.external_id, exc, row.position)
            if isinstance(outcome, RowResult):
                answered[position] = outcome
            else:
                planned.append(outcome)
    return answered, planned


def _plan_row(
    deployment: Deployment,
    conn: Any,
    policy: Policy,
    party: Party,
    position: int,
    row: ImportRow,
    known: dict[str, storage.Imported],
    first_of: dict[str, int],
) -> RowResult | _Planned:
    if row.errors or row.document is None:
        errors = row.errors or [RowError("row", "the row holds no declaration")]
        return RowResult(row.row, "error", row.external_id, errors=list(errors))
    external_id = row.external_id
    if external_id is not None and len(external_id) > EXTERNAL_ID_CHARS:
        return _error(row, "external_id", f"at most {EXTERNAL_ID_CHARS} characters")
    digest = content_digest(row.document)
    # A repeat within the file: the first row stands, the others are errors (declaring the
    # same site twice is a mistake in the sheet, and two rows cannot both be one id).
    repeat = f"id:{external_id}" if external_id is not None else f"content:{digest}"
    if repeat in first_of:
        what = "external_id" if external_id is not None else "content"
        return _error(
            row,
            "external_id",
            f"the same {what} as row {first_of[repeat]}: each row must be a different "
            "declaration (remove the repeat, or give it its own external_id)",
        )
    first_of[repeat] = row.row
    body = validate(row.document, DeclarationIn)
    declarations.authorise_create(party, body)
    restricts = restricts_of(conn, body.kind, body.restricts, None)
    before = known.get(external_id) if external_id is not None else None
    if before is None:
        return _Planned(position, row.position, row.row, external_id, digest, body, restricts)
    current = _current_of(conn, policy, party, before.declaration_id)
    if current.state != "active":
        return _error(
            row,
            "external_id",
            f"external_id {external_id!r} was imported as declaration {current.id}, which is "
            "withdrawn: an import does not declare it again (give the row a new external_id "
            "to declare it anew)",
        )
    if current.kind != body.kind:
        return _error(
            row,
            "kind",
            f"external_id {external_id!r} is the {current.kind} {current.id}; an import "
            f"cannot make it a {body.kind}",
        )
    if before.digest == digest:
        return RowResult(row.row, "unchanged", external_id, declaration=current)
    update = DeclarationUpdate(
        version=current.version,
        volumes=body.volumes,
        key=body.key,
        category=body.category,
        metadata=body.metadata,
        restricts=body.restricts,
        justification=body.justification,
    )
    replaced = declarations.authorise_update(deployment, conn, policy, party, current.id, update)
    return _Planned(
        position,
        row.position,
        row.row,
        external_id,
        digest,
        body,
        replaced.restricts,
        replaced,
        update,
    )


def _current_of(conn: Any, policy: Policy, party: Party, declaration_id: str) -> StoredDeclaration:
    row = visible_row(conn, policy, party, declaration_id)
    return shown_to(party, StoredDeclaration.of_row(row))


def _draft(
    deployment: Deployment, policy: Policy, party: Party, planned: _Planned
) -> declarations.Draft:
    if planned.replaced is None or planned.update is None:
        return declarations.draft_create(deployment, policy, party, planned.body, planned.restricts)
    return declarations.draft_update(deployment, policy, party, planned.replaced, planned.update)


# -- the import -------------------------------------------------------------------------------


def import_rows(
    deployment: Deployment,
    party: Party,
    rows: Sequence[ImportRow],
    *,
    dry_run: bool,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import ``rows`` as ``party`` (see the module's docstring), ``chunk_rows`` to a write
    transaction; 403 for a role that does not import, 413 for more rows than the policy's
    ``limits.import_rows``."""
    if party.role not in IMPORTERS:
        raise Forbidden(f"a {party.role} may not import declarations")
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
    if len(rows) > policy.limits.import_rows:
        raise TooLarge(
            f"the file has {len(rows)} rows; the limit is {policy.limits.import_rows}",
            field="body",
        )
    answered, planned = _plan(deployment, policy, party, rows)
    done: dict[int, RowResult] = {}
    for start in range(0, len(planned), chunk_rows):
        chunk = planned[start : start + chunk_rows]
        done.update(_run_chunk(deployment, policy, party, chunk, dry_run=dry_run))
    answered.update(done)
    return ImportResult([answered[n] for n in range(len(rows))], dry_run)


@dataclass(frozen=True)
class _Drafted:
    planned: _Planned
    draft: declarations.Draft


def _run_chunk(
    deployment: Deployment,
    policy: Policy,
    party: Party,
    chunk: list[_Planned],
    *,
    dry_run: bool,
) -> dict[int, RowResult]:
    """Draft the rows of one chunk outside the lock, then preview or commit them."""
    results: dict[int, RowResult] = {}
    drafted: list[_Drafted] = []
    for planned in chunk:
        try:
            drafted.append(_Drafted(planned, _draft(deployment, policy, party, planned)))
        except DeconflictError as exc:
            results[planned.place] = _refused(planned.row, planned.external_id, exc, planned.source)
    if dry_run:
        now = deployment.now()
        for item in drafted:
            results[item.planned.place] = _previewed(policy, now, item)
        return results
    declarations.between()  # the race between the drafts and the lock, for tests
    try:
        results.update(_commit_together(deployment, drafted))
    except Exception:
        # Not a row's refusal (those are answered row by row inside): the service failed
        # with the chunk, and nothing of it was committed. One transaction per row finds
        # the row it failed on, and keeps every other.
        logger.exception("an import chunk failed as a whole; committing its rows one by one")
        for item in drafted:
            results.update(_commit_alone(deployment, item))
    return results


def _previewed(policy: Policy, now: Any, item: _Drafted) -> RowResult:
    planned = item.planned
    current = planned.replaced.row if planned.replaced is not None else None
    try:
        shown = declarations.preview(item.draft, policy, now, current)
    except DeconflictError as exc:
        return _refused(planned.row, planned.external_id, exc, planned.source)
    return _answer(planned, shown)


def _answer(planned: _Planned, done: Committed) -> RowResult:
    status = "created" if planned.replaced is None else "updated"
    return RowResult(
        planned.row,
        status,
        planned.external_id,
        declaration=done.declaration,
        conflicts=None if done.conflicts is None else [f.to_json() for f in done.conflicts],
    )


def _commit_together(deployment: Deployment, drafted: list[_Drafted]) -> dict[int, RowResult]:
    results: dict[int, RowResult] = {}
    with deployment.writing() as write:
        policy = deployment.policy(write.conn)
        for item in drafted:
            results[item.planned.place] = _commit_row(deployment, write, policy, item)
    return results


def _commit_alone(deployment: Deployment, item: _Drafted) -> dict[int, RowResult]:
    planned = item.planned
    try:
        with deployment.writing() as write:
            result = _commit_row(deployment, write, deployment.policy(write.conn), item)
    except Exception:
        logger.exception("import row %d could not be stored", planned.row)
        result = RowResult(
            planned.row,
            "error",
            planned.external_id,
            errors=[RowError("row", "the service could not store this row (its log says why)")],
        )
    return {planned.place: result}


def _commit_row(deployment: Deployment, write: Write, policy: Policy, item: _Drafted) -> RowResult:
    """Commit one drafted row inside ``write``: a refusal is that row's answer, and leaves
    the write as it was (``commit_in`` raises it before writing anything)."""
    planned = item.planned
    try:
        done = declarations.commit_in(deployment, write, policy, item.draft)
    except DeconflictError as exc:
        return _refused(planned.row, planned.external_id, exc, planned.source)
    if planned.external_id is not None:
        storage.note_imported(
            write.conn,
            owner=item.draft.party.id,
            external_id=planned.external_id,
            declaration_id=done.declaration.id,
            digest=planned.digest,
            at=write.at,
            known=planned.replaced is not None,
        )
    return _answer(planned, done)

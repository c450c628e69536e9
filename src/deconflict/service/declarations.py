"""Declaring, changing and withdrawing, under the awareness rule.

To create or change a declaration a party must send in ``key`` the current version of every
conflicting declaration it is allowed to see; otherwise the write is refused with the list of
what it missed. The check and the write happen in one serialised transaction, so two blind
conflicting writes can never both be accepted: the second sees the first.

The write lock is never held for a request's geometry: the conflicts are searched before
the lock is taken (``_prepare``), against the index as it stood at some ``change_seq``; inside
the lock, once the index has caught up, only the declarations changed since then are searched
again and merged in (``_settle``), which gives exactly what a search inside the lock would.

Create, update and withdraw are one skeleton (``_commit``): authorise and prepare outside the
lock (a ``Draft``); inside it, check the version again, settle the conflicts and the
awareness key, store the current row and the version with its record entry, notify, and
answer; ``Deployment.writing`` reads the rows back before it commits. Each volume is parsed
once: the answer and the index after commit take the documents the write stored, not the
stored JSON read back. The service answers typed results; ``api/declaration_json.py``
renders them. The reads, and what the writes share with them, are in ``declaration_reads``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from deconflict.clock import format_timestamp
from deconflict.engine.rule import Found, Restricts, Subject
from deconflict.errors import Forbidden, InvalidRequest, MissingAwareness, StaleVersion
from deconflict.policy import DECLARED_BY, Policy
from deconflict.record import entries
from deconflict.record.commitments import new_salt
from deconflict.requests import DeclarationIn, DeclarationUpdate, VolumeIn
from deconflict.service.declaration_reads import (
    restricts_of,
    stored_subject,
    visible_conflicts,
    visible_row,
)
from deconflict.service.deployment import Change, Deployment, Write
from deconflict.service.notifications import notify_change
from deconflict.service.parties import Party, new_id
from deconflict.service.protection import check_justification_kind, require_justification
from deconflict.storage import declarations as storage
from deconflict.storage.declarations import StoredDeclaration
from deconflict.storage.meta import next_change_seq
from deconflict.volumes import Volume, build_volumes

# -- what the service answers -----------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """A write's answer: the declaration as stored, the conflicts its author may see (None
    for a withdrawal, whose answer has none) and the record's receipt."""

    declaration: StoredDeclaration
    conflicts: list[Found] | None
    receipt: dict[str, Any]


# -- the rule's inputs ------------------------------------------------------------------------


def is_late_notice(
    policy: Policy,
    kind: str,
    volumes: list[Volume],
    documents: list[dict[str, Any]],
    now: datetime,
    previous: list[dict[str, Any]] | None = None,
) -> bool:
    """Whether a new or changed volume starts sooner than the policy's minimum notice.
    ``documents``: the volumes' documents as stored (``Volume.to_json``), in their order.

    On an update only volumes that are new or changed count: editing the metadata of an
    operation announced weeks ago is not late notice.
    """
    notice = policy.minimum_notice(kind)
    if notice.total_seconds() <= 0:
        return False
    unchanged = [json.dumps(v, sort_keys=True) for v in previous or []]
    return any(
        volume.start < now + notice
        for volume, document in zip(volumes, documents, strict=True)
        if json.dumps(document, sort_keys=True) not in unchanged
    )


def _require_awareness(
    policy: Policy, party: Party, found: list[Found], key: list[str]
) -> list[Found]:
    """The conflicts visible to ``party``; 409 unless the key holds each one's version."""
    seen = visible_conflicts(policy, party, found)
    known = set(key)
    missing = [f for f in seen if f.other.version not in known]
    if missing:
        names = ", ".join(f"{f.other.kind} {f.other.id}" for f in missing)
        raise MissingAwareness(
            f"this would conflict with {len(missing)} declaration(s) whose current version is "
            f"not in `key`: {names}. Review them, then send their versions in `key`.",
            extra={
                # The problem's body, built here with the conflicts' one rendering (the
                # answers' ``conflicts`` are the same JSON).
                "missing": [f.to_json()["declaration"] for f in missing],
                "conflicts": [f.to_json() for f in seen],
            },
        )
    return seen


def _new_version() -> str:
    return secrets.token_hex(8)


# -- conflicts before and inside the lock ----------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """Conflicts searched before the write lock: right for every change up to ``seq``."""

    policy: Policy
    seq: int
    found: list[Found]


def _prepare(
    deployment: Deployment, policy: Policy, subject: Subject, *, stored: bool = False
) -> _Prepared:
    """Search the conflicts of ``subject`` outside the write lock, within the policy's work
    budget (413 over it) unless it is the ``stored`` version being replaced or withdrawn:
    a party is never kept from withdrawing by what others stored near it since."""
    found, seq = deployment.index.conflicts_at(policy, subject, budget=_budget(policy, stored))
    return _Prepared(policy, seq, found)


def _budget(policy: Policy, stored: bool) -> int | None:
    return None if stored else policy.limits.work_per_request


def _settle(
    deployment: Deployment,
    write: Write,
    policy: Policy,
    subject: Subject,
    prepared: _Prepared,
    *,
    stored: bool = False,
) -> list[Found]:
    """The conflicts of ``subject`` now, inside the write lock (the index synced): the
    prepared ones, with every declaration changed since ``prepared.seq`` searched again."""
    budget = _budget(policy, stored)
    if policy != prepared.policy:  # the rule itself changed meanwhile: search it all again
        return deployment.index.conflicts_of(policy, subject, budget=budget)
    # Not the changes this write made before (an import's earlier rows): they are not in
    # the index yet, and are the same party's, which never conflict with each other.
    before = write.changes[0].seq if write.changes else None
    changed = storage.ids_changed_since(write.conn, prepared.seq, before)
    if not changed:
        return prepared.found
    kept = [f for f in prepared.found if f.other.id not in changed]
    found = kept + deployment.index.conflicts_of(policy, subject, budget=budget, only=changed)
    found.sort(key=lambda f: (f.min_distance_m, f.other.id or ""))
    return found


# Called between the preparation and the write lock, for tests of the race in between.
_between_hook: list[Callable[[], None]] = []


def between() -> None:
    for hook in _between_hook:
        hook()


# -- stored rows ------------------------------------------------------------------------------


def _owned_row(conn: Connection, policy: Policy, party: Party, declaration_id: str) -> Any:
    row = visible_row(conn, policy, party, declaration_id)
    if row["owner"] != party.id:
        raise Forbidden("only the owner may change or withdraw a declaration")
    return row


def _check_version(row: Any, version: str) -> None:
    if row["state"] != "active":
        raise StaleVersion(
            f"declaration {row['id']} is withdrawn (version {row['version']})",
            field="version",
            extra={"current_version": row["version"]},
        )
    if version != row["version"]:
        raise StaleVersion(
            f"version {version!r} is not the current version {row['version']!r}",
            field="version",
            extra={"current_version": row["version"]},
        )


def _store_version(
    write: Write,
    *,
    declaration_id: str,
    change: str,
    actor: Party,
    row: Mapping[str, Any],
    previous_version: str | None,
) -> int:
    """Insert the immutable version row and its record entry; returns the log index. The
    entry is built from the version row as the database gives it back (its commitments
    are to what is stored), and takes its type from it."""
    salts = {name: new_salt() for name in ("volumes", "metadata", "category", "restricts")}
    if row.get("justification") is not None:
        salts["justification"] = new_salt()
    version_row = storage.insert_version(
        write.conn,
        {
            "declaration_id": declaration_id,
            "version": row["version"],
            "change": change,
            "actor": actor.id,
            "kind": row["kind"],
            "owner": row["owner"],
            "state": row["state"],
            "category": row["category"],
            "volumes": row["volumes"],
            "metadata": row["metadata"],
            "restricts": row["restricts"],
            "late_notice": row["late_notice"],
            "justification": row.get("justification"),
            "salts": json.dumps(salts),
            "at": write.at,
        },
    )
    entry = entries.declaration_entry(version_row, previous_version=previous_version)
    index = write.journal.append(entry, subject=f"{declaration_id}/{row['version']}")
    storage.set_log_index(write.conn, declaration_id, row["version"], index)
    return index


# -- the one skeleton of a write --------------------------------------------------------------


@dataclass(frozen=True)
class _Content:
    """What a write stores as the declaration's current row (``change_seq`` aside), and the
    same declaration as answered, from the values the write holds (no JSON read back)."""

    row: dict[str, Any]
    answer: StoredDeclaration
    removed: bool  # from the index: withdrawn


@dataclass(frozen=True)
class Draft:
    """A change authorised and searched outside the write lock.

    ``replaces``: the version it replaces (None when it creates); ``subject``: the
    declaration as it will be; ``before``: as it was (None when created); ``prepared`` and
    ``prepared_before`` their conflicts (``prepared`` None: the change has no conflicts of
    its own, a withdrawal); ``volumes_in``: the volumes to validate again should the
    policy's limits change meanwhile; ``content``: the row and the answer, made inside the
    lock (at the write's instant, under the policy then in force) from the current row it
    replaces, or without a lock for a preview (``preview``)."""

    change: str
    party: Party
    key: list[str]
    justification: str | None
    replaces: str | None
    subject: Subject
    before: Subject | None
    prepared: _Prepared | None
    prepared_before: _Prepared | None
    volumes_in: list[VolumeIn] | None
    content: Callable[[datetime, Policy, Any], _Content]


def _checks_changed(policy: Policy, prepared: Policy) -> bool:
    return (
        policy.limits != prepared.limits or policy.area_of_operations != prepared.area_of_operations
    )


@dataclass(frozen=True)
class Committed:
    """A drafted change stored inside a write: the declaration as stored, the conflicts its
    author may see (None for a withdrawal) and the index of its record entry (the receipt
    is the caller's to ask for: it signs a head)."""

    declaration: StoredDeclaration
    conflicts: list[Found] | None
    index: int


def _commit(deployment: Deployment, draft: Draft) -> Written:
    """Settle, store, log and notify a drafted change in one write transaction."""
    with deployment.writing() as write:
        done = commit_in(deployment, write, deployment.policy(write.conn), draft)
        return Written(done.declaration, done.conflicts, write.journal.receipt(done.index))


def commit_in(deployment: Deployment, write: Write, policy: Policy, draft: Draft) -> Committed:
    """Settle, store, log and notify a drafted change inside ``write`` (``policy``: the one
    in force in it), which may hold other changes of the same party too (an import commits
    many drafts in one write; ``_settle`` leaves them out of the search, as they cannot
    conflict with each other).

    Every refusal a client can cause (a stale or withdrawn version, the limits, the work
    budget, the awareness key, the justification) is raised before this writes anything
    of the change, so a caller may catch it and go on with the same write: the changes
    stored before it in that write stay as they are."""
    declaration_id = draft.subject.id
    assert declaration_id is not None
    current = None
    if draft.replaces is not None:
        current = _owned_row(write.conn, policy, draft.party, declaration_id)
        _check_version(current, draft.replaces)  # the version prepared from, still current
    prepared = draft.prepared
    if draft.volumes_in is not None and prepared and _checks_changed(policy, prepared.policy):
        # The same shapes, under the new limits and area of operations.
        build_volumes(draft.volumes_in, policy.limits, area=policy.area_of_operations)
    before: list[Found] = []
    if draft.before is not None and draft.prepared_before is not None:
        before = _settle(
            deployment, write, policy, draft.before, draft.prepared_before, stored=True
        )
    found: list[Found] = []
    seen: list[Found] | None = None
    if prepared is not None:
        found = _settle(deployment, write, policy, draft.subject, prepared)
        seen = _require_awareness(policy, draft.party, found, draft.key)
        require_justification(policy, draft.subject, seen, draft.justification)
    # Nothing of this change is written above this line (see the docstring).
    content = draft.content(write.now, policy, current)
    row = {**content.row, "change_seq": next_change_seq(write.conn)}
    if current is None:
        storage.insert_current(write.conn, row)
    else:
        storage.replace_current(write.conn, declaration_id, row)
    index = _store_version(
        write,
        declaration_id=declaration_id,
        change=draft.change,
        actor=draft.party,
        row=row,
        previous_version=draft.replaces,
    )
    write.changes.append(Change(row["change_seq"], draft.subject, content.removed))
    notify_change(
        write,
        policy,
        draft.subject,
        change=draft.change,
        found=found,
        before=before,
        late_notice=bool(row["late_notice"]),
        previous_volumes=() if draft.before is None else draft.before.volumes,
        justification=row.get("justification"),
    )
    return Committed(content.answer, seen, index)


def preview(draft: Draft, policy: Policy, now: datetime, current: Any) -> Committed:
    """What committing ``draft`` would store and answer, with every check of ``commit_in``
    against the conflicts it was prepared with, and nothing written (an import's dry run).
    ``current``: the row an update replaces (None for a creation). The answer's id and
    version are the draft's, which no declaration will ever have: the caller drops them."""
    seen: list[Found] | None = None
    if draft.prepared is not None:
        seen = _require_awareness(policy, draft.party, draft.prepared.found, draft.key)
        require_justification(policy, draft.subject, seen, draft.justification)
    content = draft.content(now, policy, current)
    return Committed(content.answer, seen, -1)


def _active_content(
    *,
    subject: Subject,
    documents: list[dict[str, Any]],
    metadata: Any,
    metadata_json: str,
    late_notice: bool,
    justification: str | None,
    created_at: str,
    updated_at: str,
) -> _Content:
    """The row and answer of an active version: ``documents`` are its volumes' documents,
    made once before the lock, and the answer takes them as they are stored (``json``
    round-trips them exactly). ``metadata_json`` is the metadata as stored, ``metadata``
    the same parsed."""
    assert subject.id is not None
    restricts = subject.restricts.to_json() if subject.restricts else None
    row: dict[str, Any] = {
        "id": subject.id,
        "kind": subject.kind,
        "owner": subject.owner,
        "version": subject.version,
        "state": "active",
        "category": subject.category,
        "volumes": json.dumps(documents),
        "metadata": metadata_json,
        "restricts": None if restricts is None else json.dumps(restricts),
        "late_notice": late_notice,
        "justification": justification,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    answer = StoredDeclaration(
        id=subject.id,
        kind=subject.kind,
        owner=subject.owner,
        version=subject.version,
        state="active",
        volumes=documents,
        category=subject.category,
        metadata=metadata,
        late_notice=late_notice,
        restricts=(restricts or {}) if subject.kind == "restriction" else None,
        created_at=created_at,
        updated_at=updated_at,
        justification=justification,
    )
    return _Content(row, answer, removed=False)


# -- create, update, withdraw -----------------------------------------------------------------


def authorise_create(party: Party, body: DeclarationIn) -> None:
    """403 unless the party's role declares this kind; 400 for a justification on anything
    but an operation."""
    if DECLARED_BY[body.kind] != party.role:
        raise Forbidden(
            f"a {party.role} may not declare a {body.kind}; "
            f"{body.kind}s are declared by the {DECLARED_BY[body.kind]}",
            field="kind",
        )
    check_justification_kind(body.kind, body.justification)


def create_declaration(deployment: Deployment, party: Party, body: DeclarationIn) -> Written:
    authorise_create(party, body)
    # Geometry is validated and the conflicts searched before taking the write lock, so the
    # lock is held only to catch up with what changed meanwhile and to write; should the
    # limits change meanwhile, the volumes are validated again.
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        restricts = restricts_of(conn, body.kind, body.restricts, None)
    draft = draft_create(deployment, policy, party, body, restricts)
    between()
    return _commit(deployment, draft)


def draft_create(
    deployment: Deployment,
    policy: Policy,
    party: Party,
    body: DeclarationIn,
    restricts: Restricts | None,
) -> Draft:
    """A new declaration, authorised (``authorise_create``), validated and searched,
    outside any lock; ``restricts`` as ``restricts_of`` gives it."""
    volumes = build_volumes(body.volumes, policy.limits, area=policy.area_of_operations)
    documents = [v.to_json() for v in volumes]
    subject = Subject(
        id=new_id("dcl"),
        kind=body.kind,
        owner=party.id,
        owner_role=party.role,
        version=_new_version(),
        category=body.category,
        restricts=restricts,
        volumes=tuple(volumes),
    )

    def content(now: datetime, policy: Policy, current: Any) -> _Content:
        del current  # none: it is new
        at = format_timestamp(now)
        return _active_content(
            subject=subject,
            documents=documents,
            metadata=body.metadata,
            metadata_json=json.dumps(body.metadata),
            late_notice=is_late_notice(policy, body.kind, volumes, documents, now),
            justification=body.justification,
            created_at=at,
            updated_at=at,
        )

    return Draft(
        change="created",
        party=party,
        key=body.key,
        justification=body.justification,
        replaces=None,
        subject=subject,
        before=None,
        prepared=_prepare(deployment, policy, subject),
        prepared_before=None,
        volumes_in=body.volumes,
        content=content,
    )


@dataclass(frozen=True)
class Replaced:
    """What an update starts from, read and authorised: the current row, the declaration
    as it stands, and the restriction's terms as the update leaves them."""

    row: Any
    before: Subject
    restricts: Restricts | None


def authorise_update(
    deployment: Deployment,
    conn: Connection,
    policy: Policy,
    party: Party,
    declaration_id: str,
    body: DeclarationUpdate,
) -> Replaced:
    """404 unless visible, 403 unless owned, 409 unless ``body.version`` is current."""
    current = _owned_row(conn, policy, party, declaration_id)
    _check_version(current, body.version)
    check_justification_kind(current["kind"], body.justification)
    before = stored_subject(deployment, current)
    restricts = restricts_of(conn, current["kind"], body.restricts, before.restricts)
    return Replaced(current, before, restricts)


def update_declaration(
    deployment: Deployment, party: Party, declaration_id: str, body: DeclarationUpdate
) -> Written:
    # As in create: validated and searched before the lock, from the row as it is now; inside
    # the lock the version check says whether that row is still the current one.
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        replaced = authorise_update(deployment, conn, policy, party, declaration_id, body)
    draft = draft_update(deployment, policy, party, replaced, body)
    between()
    return _commit(deployment, draft)


def draft_update(
    deployment: Deployment,
    policy: Policy,
    party: Party,
    replaced: Replaced,
    body: DeclarationUpdate,
) -> Draft:
    """A change of ``replaced`` (``authorise_update``), validated and searched, outside any
    lock."""
    current = replaced.row
    volumes = build_volumes(body.volumes, policy.limits, area=policy.area_of_operations)
    documents = [v.to_json() for v in volumes]
    subject = Subject(
        id=current["id"],
        kind=current["kind"],
        owner=party.id,
        owner_role=party.role,
        version=_new_version(),
        category=current["category"] if body.category is None else body.category,
        restricts=replaced.restricts,
        volumes=tuple(volumes),
    )

    def content(now: datetime, policy: Policy, current: Any) -> _Content:
        previous_volumes = json.loads(current["volumes"])
        if body.metadata is None:  # kept as stored
            metadata, metadata_json = json.loads(current["metadata"]), current["metadata"]
        else:
            metadata, metadata_json = body.metadata, json.dumps(body.metadata)
        return _active_content(
            subject=subject,
            documents=documents,
            metadata=metadata,
            metadata_json=metadata_json,
            late_notice=is_late_notice(
                policy, current["kind"], volumes, documents, now, previous_volumes
            ),
            justification=body.justification,
            created_at=current["created_at"],
            updated_at=format_timestamp(now),
        )

    return Draft(
        change="updated",
        party=party,
        key=body.key,
        justification=body.justification,
        replaces=body.version,
        subject=subject,
        before=replaced.before,
        prepared=_prepare(deployment, policy, subject),
        prepared_before=_prepare(deployment, policy, replaced.before, stored=True),
        volumes_in=body.volumes,
        content=content,
    )


def withdraw_declaration(
    deployment: Deployment, party: Party, declaration_id: str, version: str | None
) -> Written:
    if not version:
        raise InvalidRequest("send the current version as `?version=`", field="version")
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        current = _owned_row(conn, policy, party, declaration_id)
        _check_version(current, version)
        before = stored_subject(deployment, current)
    withdrawn = Subject(
        id=declaration_id,
        kind=before.kind,
        owner=before.owner,
        owner_role=before.owner_role,
        version=_new_version(),
        category=before.category,
        restricts=before.restricts,
        volumes=before.volumes,
    )

    def content(now: datetime, policy: Policy, current: Any) -> _Content:
        del policy  # a withdrawal keeps what the version it replaces said
        row = dict(current)
        row.pop("owner_role", None)
        row.pop("change_seq", None)
        row.update(version=withdrawn.version, state="withdrawn", updated_at=format_timestamp(now))
        return _Content(row, StoredDeclaration.of_row(row), removed=True)

    prepared_before = _prepare(deployment, policy, before, stored=True)
    between()
    return _commit(
        deployment,
        Draft(
            change="withdrawn",
            party=party,
            key=[],
            justification=None,
            replaces=version,
            subject=withdrawn,
            before=before,
            prepared=None,
            prepared_before=prepared_before,
            volumes_in=None,
            content=content,
        ),
    )

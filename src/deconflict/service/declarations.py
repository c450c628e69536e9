"""Declaring, changing and withdrawing, under the awareness rule.

To create or change a declaration a party must send in ``key`` the current version of every
conflicting declaration it is allowed to see; otherwise the write is refused with the list of
what it missed. The check and the write happen in one serialised transaction, so two blind
conflicting writes can never both be accepted: the second sees the first.

The write lock is never held for a request's geometry: the conflicts are searched before
the lock is taken (``_prepare``), against the index as it stood at some ``change_seq``; inside
the lock, once the index has caught up, only the declarations changed since then are searched
again and merged in (``_settle``), which gives exactly what a search inside the lock would.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from deconflict.clock import parse_time
from deconflict.engine.rule import Found, Restricts, Subject
from deconflict.errors import Forbidden, InvalidRequest, MissingAwareness, NotFound, StaleVersion
from deconflict.geo.boxes import bbox_shape
from deconflict.policy import DECLARED_BY, Policy
from deconflict.record import entries, log_store
from deconflict.record.commitments import new_salt
from deconflict.requests import CheckIn, DeclarationIn, DeclarationUpdate, RestrictsIn
from deconflict.service.deployment import Deployment, Write, subject_from_row
from deconflict.service.notifications import notify_change
from deconflict.service.parties import Party, authenticate, new_id
from deconflict.storage.meta import next_change_seq
from deconflict.storage.schema import declaration_versions, declarations, parties
from deconflict.volumes import Volume, build_volumes


def declaration_json(row: Any) -> dict[str, Any]:
    """API.md's Declaration from a ``declarations`` (or ``declaration_versions``) row."""
    document: dict[str, Any] = {
        "id": row["id"] if "id" in row else row["declaration_id"],
        "kind": row["kind"],
        "owner": row["owner"],
        "version": row["version"],
        "state": row["state"],
        "volumes": json.loads(row["volumes"]),
        "category": row["category"],
        "metadata": json.loads(row["metadata"]),
        "late_notice": bool(row["late_notice"]),
    }
    if row["kind"] == "restriction":
        document["restricts"] = json.loads(row["restricts"] or "{}")
    for name in ("created_at", "updated_at"):
        if name in row:
            document[name] = row[name]
    return document


def conflicts_json(found: list[Found]) -> list[dict[str, Any]]:
    return [f.to_json() for f in found]


def visible(policy: Policy, viewer: Party, kind: str, owner: str) -> bool:
    return policy.visible_to(viewer.id, viewer.role, kind, owner)


def visible_conflicts(policy: Policy, viewer: Party, found: list[Found]) -> list[Found]:
    return [f for f in found if visible(policy, viewer, f.other.kind, f.other.owner)]


def _restricts(
    conn: Connection, kind: str, given: RestrictsIn | None, current: Restricts | None
) -> Restricts | None:
    if kind != "restriction":
        if given is not None:
            raise InvalidRequest("only restrictions have `restricts`", field="restricts")
        return None
    if given is None:
        if current is None:
            raise InvalidRequest(
                "a restriction must say whom it restricts (`restricts.parties`/`roles`; "
                "both empty restricts every party)",
                field="restricts",
            )
        return current
    for number, party_id in enumerate(given.parties):
        found = conn.execute(select(parties.c.id).where(parties.c.id == party_id)).first()
        if found is None:
            raise InvalidRequest(f"no party {party_id}", field=f"restricts.parties[{number}]")
    return Restricts(
        parties=tuple(given.parties),
        roles=tuple(given.roles),
        allowed_categories=tuple(given.allowed_categories),
    )


def is_late_notice(
    policy: Policy,
    kind: str,
    volumes: list[Volume],
    now: datetime,
    previous: list[dict[str, Any]] | None = None,
) -> bool:
    """Whether a new or changed volume starts sooner than the policy's minimum notice.

    On an update only volumes that are new or changed count: editing the metadata of an
    operation announced weeks ago is not late notice.
    """
    notice = policy.minimum_notice(kind)
    if notice.total_seconds() <= 0:
        return False
    unchanged = [json.dumps(v, sort_keys=True) for v in previous or []]
    return any(
        volume.start < now + notice
        for volume in volumes
        if json.dumps(volume.to_json(), sort_keys=True) not in unchanged
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
                "missing": [f.to_json()["declaration"] for f in missing],
                "conflicts": conflicts_json(seen),
            },
        )
    return seen


def _store_version(
    write: Write,
    *,
    declaration_id: str,
    change: str,
    actor: Party,
    row: dict[str, Any],
    previous_version: str | None,
) -> int:
    """Insert the immutable version row and its record entry; returns the log index."""
    salts = {name: new_salt() for name in ("volumes", "metadata", "category", "restricts")}
    version_row = {
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
        "salts": json.dumps(salts),
        "at": write.at,
    }
    write.conn.execute(declaration_versions.insert().values(**version_row))
    stored = (
        write.conn.execute(
            select(declaration_versions).where(
                declaration_versions.c.declaration_id == declaration_id,
                declaration_versions.c.version == row["version"],
            )
        )
        .mappings()
        .one()
    )
    entry = entries.declaration_entry(stored, previous_version=previous_version)
    index = write.journal.append(entry, subject=f"{declaration_id}/{row['version']}")
    write.conn.execute(
        update(declaration_versions)
        .where(
            declaration_versions.c.declaration_id == declaration_id,
            declaration_versions.c.version == row["version"],
        )
        .values(log_index=index)
    )
    return index


def _new_version() -> str:
    return secrets.token_hex(8)


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
    changed = set(
        write.conn.execute(
            select(declarations.c.id).where(declarations.c.change_seq > prepared.seq)
        ).scalars()
    )
    if not changed:
        return prepared.found
    kept = [f for f in prepared.found if f.other.id not in changed]
    found = kept + deployment.index.conflicts_of(policy, subject, budget=budget, only=changed)
    found.sort(key=lambda f: (f.min_distance_m, f.other.id or ""))
    return found


# Called between the preparation and the write lock, for tests of the race in between.
_between_hook: list[Callable[[], None]] = []


def _between() -> None:
    for hook in _between_hook:
        hook()


def create_declaration(deployment: Deployment, party: Party, body: DeclarationIn) -> dict[str, Any]:
    if DECLARED_BY[body.kind] != party.role:
        raise Forbidden(
            f"a {party.role} may not declare a {body.kind}; "
            f"{body.kind}s are declared by the {DECLARED_BY[body.kind]}"
        )
    # Geometry is validated and the conflicts searched before taking the write lock, so the
    # lock is held only to catch up with what changed meanwhile and to write; should the
    # limits change meanwhile, the volumes are validated again.
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        restricts = _restricts(conn, body.kind, body.restricts, None)
    volumes = build_volumes(body.volumes, policy.limits)
    declaration_id = new_id("dcl")
    subject = Subject(
        id=declaration_id,
        kind=body.kind,
        owner=party.id,
        owner_role=party.role,
        version=_new_version(),
        category=body.category,
        restricts=restricts,
        volumes=tuple(volumes),
    )
    prepared = _prepare(deployment, policy, subject)
    _between()
    with deployment.writing() as write:
        policy = deployment.policy(write.conn)
        if policy.limits != prepared.policy.limits:
            build_volumes(body.volumes, policy.limits)  # the same shapes, under new limits
        found = _settle(deployment, write, policy, subject, prepared)
        seen = _require_awareness(policy, party, found, body.key)
        row: dict[str, Any] = {
            "id": declaration_id,
            "kind": body.kind,
            "owner": party.id,
            "version": subject.version,
            "state": "active",
            "category": body.category,
            "volumes": json.dumps([v.to_json() for v in volumes]),
            "metadata": json.dumps(body.metadata),
            "restricts": json.dumps(restricts.to_json()) if restricts else None,
            "late_notice": is_late_notice(policy, body.kind, volumes, write.now),
            "created_at": write.at,
            "updated_at": write.at,
            "change_seq": next_change_seq(write.conn),
        }
        write.conn.execute(declarations.insert().values(**row))
        index = _store_version(
            write,
            declaration_id=declaration_id,
            change="created",
            actor=party,
            row=row,
            previous_version=None,
        )
        notify_change(
            write,
            policy,
            subject,
            change="created",
            found=found,
            before=[],
            late_notice=row["late_notice"],
            previous_volumes=(),
        )
        return {
            "declaration": declaration_json(row),
            "conflicts": conflicts_json(seen),
            "receipt": write.journal.receipt(index),
        }


def _owned_row(conn: Connection, policy: Policy, party: Party, declaration_id: str) -> Any:
    row = _visible_row(conn, policy, party, declaration_id)
    if row["owner"] != party.id:
        raise Forbidden("only the owner may change or withdraw a declaration")
    return row


def _visible_row(conn: Connection, policy: Policy, party: Party, declaration_id: str) -> Any:
    row = (
        conn.execute(
            select(declarations, parties.c.role.label("owner_role"))
            .join(parties, parties.c.id == declarations.c.owner)
            .where(declarations.c.id == declaration_id)
        )
        .mappings()
        .one_or_none()
    )
    if row is None or not visible(policy, party, row["kind"], row["owner"]):
        raise NotFound(f"no declaration {declaration_id}")
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


def update_declaration(
    deployment: Deployment, party: Party, declaration_id: str, body: DeclarationUpdate
) -> dict[str, Any]:
    # As in create: validated and searched before the lock, from the row as it is now; inside
    # the lock the version check says whether that row is still the current one.
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        current = _owned_row(conn, policy, party, declaration_id)
        _check_version(current, body.version)
        before_subject = subject_from_row(current)
        restricts = _restricts(conn, current["kind"], body.restricts, before_subject.restricts)
    volumes = build_volumes(body.volumes, policy.limits)
    category = current["category"] if body.category is None else body.category
    subject = Subject(
        id=declaration_id,
        kind=current["kind"],
        owner=party.id,
        owner_role=party.role,
        version=_new_version(),
        category=category,
        restricts=restricts,
        volumes=tuple(volumes),
    )
    prepared = _prepare(deployment, policy, subject)
    prepared_before = _prepare(deployment, policy, before_subject, stored=True)
    _between()
    with deployment.writing() as write:
        policy = deployment.policy(write.conn)
        current = _owned_row(write.conn, policy, party, declaration_id)
        _check_version(current, body.version)  # the version prepared from, still current
        if policy.limits != prepared.policy.limits:
            build_volumes(body.volumes, policy.limits)
        before = _settle(deployment, write, policy, before_subject, prepared_before, stored=True)
        found = _settle(deployment, write, policy, subject, prepared)
        seen = _require_awareness(policy, party, found, body.key)
        previous_volumes = json.loads(current["volumes"])
        row: dict[str, Any] = {
            "id": declaration_id,
            "kind": current["kind"],
            "owner": party.id,
            "version": subject.version,
            "state": "active",
            "category": category,
            "volumes": json.dumps([v.to_json() for v in volumes]),
            "metadata": (
                current["metadata"] if body.metadata is None else json.dumps(body.metadata)
            ),
            "restricts": json.dumps(restricts.to_json()) if restricts else None,
            "late_notice": is_late_notice(
                policy, current["kind"], volumes, write.now, previous_volumes
            ),
            "created_at": current["created_at"],
            "updated_at": write.at,
            "change_seq": next_change_seq(write.conn),
        }
        write.conn.execute(
            update(declarations).where(declarations.c.id == declaration_id).values(**row)
        )
        index = _store_version(
            write,
            declaration_id=declaration_id,
            change="updated",
            actor=party,
            row=row,
            previous_version=current["version"],
        )
        notify_change(
            write,
            policy,
            subject,
            change="updated",
            found=found,
            before=before,
            late_notice=row["late_notice"],
            previous_volumes=before_subject.volumes,
        )
        return {
            "declaration": declaration_json(row),
            "conflicts": conflicts_json(seen),
            "receipt": write.journal.receipt(index),
        }


def withdraw_declaration(
    deployment: Deployment, party: Party, declaration_id: str, version: str | None
) -> dict[str, Any]:
    if not version:
        raise InvalidRequest("send the current version as `?version=`", field="version")
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        current = _owned_row(conn, policy, party, declaration_id)
        _check_version(current, version)
        before_subject = subject_from_row(current)
    prepared_before = _prepare(deployment, policy, before_subject, stored=True)
    _between()
    with deployment.writing() as write:
        policy = deployment.policy(write.conn)
        current = _owned_row(write.conn, policy, party, declaration_id)
        _check_version(current, version)
        before = _settle(deployment, write, policy, before_subject, prepared_before, stored=True)
        row = dict(current)
        row.pop("owner_role", None)
        row.update(
            version=_new_version(),
            state="withdrawn",
            updated_at=write.at,
            change_seq=next_change_seq(write.conn),
        )
        write.conn.execute(
            update(declarations).where(declarations.c.id == declaration_id).values(**row)
        )
        index = _store_version(
            write,
            declaration_id=declaration_id,
            change="withdrawn",
            actor=party,
            row=row,
            previous_version=current["version"],
        )
        withdrawn = Subject(
            id=declaration_id,
            kind=before_subject.kind,
            owner=before_subject.owner,
            owner_role=before_subject.owner_role,
            version=row["version"],
            category=before_subject.category,
            restricts=before_subject.restricts,
            volumes=before_subject.volumes,
        )
        notify_change(
            write,
            policy,
            withdrawn,
            change="withdrawn",
            found=[],
            before=before,
            late_notice=bool(row["late_notice"]),
            previous_volumes=before_subject.volumes,
        )
        return {"declaration": declaration_json(row), "receipt": write.journal.receipt(index)}


def get_declaration(deployment: Deployment, party: Party, declaration_id: str) -> dict[str, Any]:
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        return declaration_json(_visible_row(conn, policy, party, declaration_id))


def declaration_opening(
    deployment: Deployment, party: Party, declaration_id: str, version: str | None
) -> dict[str, Any]:
    """The opening of a version's commitments, with its leaf: what the owner shows an inquiry
    to prove exactly what it declared. Only the owner and the coordinator get it."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        current = _visible_row(conn, policy, party, declaration_id)
        if party.role != "coordinator" and current["owner"] != party.id:
            raise Forbidden("only the owner and the coordinator see a declaration's opening")
        row = (
            conn.execute(
                select(declaration_versions).where(
                    declaration_versions.c.declaration_id == declaration_id,
                    declaration_versions.c.version == (version or current["version"]),
                )
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            raise NotFound(
                f"declaration {declaration_id} has no version {version}", field="version"
            )
        [entry] = log_store.entries(conn, row["log_index"], row["log_index"] + 1)
        return {
            "declaration_id": declaration_id,
            "version": row["version"],
            "log_index": row["log_index"],
            "leaf": entry["leaf"],
            "seal": entries.seal_opening(conn, row["log_index"]),
            **entries.opening_for_declaration_version(row),
        }


def declaration_conflicts(
    deployment: Deployment, party: Party, declaration_id: str
) -> list[dict[str, Any]]:
    """The current conflicts of a stored declaration, with declarations the caller sees;
    within the policy's work budget like a check (413 over it: what was stored near it
    since may cost more than its own write's search did)."""
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        row = _visible_row(conn, policy, party, declaration_id)
        if row["state"] != "active":
            return []
    found = deployment.index.conflicts_of(
        policy, subject_from_row(row), budget=policy.limits.work_per_request
    )
    return conflicts_json(visible_conflicts(policy, party, found))


def authenticated_check(
    deployment: Deployment,
    token: str,
    body: CheckIn,
    admit: Callable[[Party], None] | None = None,
) -> list[dict[str, Any]]:
    """What-if: the conflicts a declaration by the holder of ``token`` (401 otherwise) would
    have. Writes nothing. The hottest request: when no cache is stale it reads one
    statement from the database, outside any transaction, for the authentication, the
    policy and the index together. ``admit`` may refuse the party (its rate limit) once it
    is known; the search is bounded by the policy's work budget (413 over it)."""
    counters, policy = deployment.fresh()
    party = authenticate(deployment, token, counters)
    if admit is not None:
        admit(party)
    volumes = build_volumes(body.volumes, policy.limits)
    restricts = None
    if body.restricts:
        with deployment.reading() as conn:  # the parties it names must exist
            restricts = _restricts(conn, body.kind, body.restricts, None)
    elif body.kind == "restriction":
        restricts = Restricts()
    subject = Subject(
        id=None,
        kind=body.kind,
        owner=party.id,
        owner_role=party.role,
        version="",
        category=body.category,
        restricts=restricts,
        volumes=tuple(volumes),
    )
    found = deployment.index.conflicts_of(policy, subject, budget=policy.limits.work_per_request)
    return conflicts_json(visible_conflicts(policy, party, found))


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None or text == "":
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidRequest("bbox is minlon,minlat,maxlon,maxlat", field="bbox")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise InvalidRequest("bbox values must be numbers", field="bbox") from exc
    if not all(math.isfinite(v) for v in values):
        raise InvalidRequest("bbox values must be finite numbers", field="bbox")
    return values[0], values[1], values[2], values[3]


def parse_query_time(text: str | None, field: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        moment = parse_time(text)
    except ValueError as exc:
        raise InvalidRequest(f"{field} {exc}", field=field) from exc
    return moment.timestamp()


def list_declarations(
    deployment: Deployment,
    party: Party,
    *,
    bbox: str | None,
    start: str | None,
    end: str | None,
    kind: str | None,
    owner: str | None = None,
) -> list[dict[str, Any]]:
    """Visible active declarations meeting the box and the window (buffers counted)."""
    box = parse_bbox(bbox)
    start_s = parse_query_time(start, "start")
    end_s = parse_query_time(end, "end")
    if start_s is not None and end_s is not None and end_s < start_s:
        raise InvalidRequest("end must not be before start", field="end")
    if kind is not None and kind not in DECLARED_BY:
        raise InvalidRequest(f"unknown kind {kind!r}", field="kind")
    area = bbox_shape(*box) if box else None
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        window_start = -math.inf if start_s is None else start_s
        window_end = math.inf if end_s is None else end_s
        if start_s is not None and end_s is not None and start_s == end_s:
            window_end = start_s + 1e-3  # an instant: what is active at that moment
        subjects = deployment.index.intersecting(area, window_start, window_end)
        ids = [
            s.id
            for s in subjects
            if s.id is not None
            and (kind is None or s.kind == kind)
            and (owner is None or s.owner == owner)
            and visible(policy, party, s.kind, s.owner)
        ]
        found: list[Any] = []
        # Chunked: SQLite limits the number of bound parameters in one statement.
        for offset in range(0, len(ids), 500):
            found.extend(
                conn.execute(
                    select(declarations).where(
                        declarations.c.id.in_(ids[offset : offset + 500]),
                        declarations.c.state == "active",
                    )
                ).mappings()
            )
        found.sort(key=lambda row: (row["created_at"], row["id"]))
        return [declaration_json(row) for row in found]

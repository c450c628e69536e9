"""What a party may read of declarations: one, a list by area and window, a version's
opening, the conflicts of one, and the what-if check; and what the writes share with them
(visibility, a stored declaration's rule view, a restriction's ``restricts``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from deconflict.clock import parse_time
from deconflict.engine.rule import Found, Restricts, Subject
from deconflict.errors import Forbidden, InvalidRequest, NotFound
from deconflict.geo.boxes import bbox_shape
from deconflict.policy import DECLARED_BY, Policy
from deconflict.record import entries, log_store
from deconflict.requests import CheckIn, RestrictsIn
from deconflict.service.deployment import Deployment, subject_from_row
from deconflict.service.parties import Party, authenticate
from deconflict.storage import declarations as storage
from deconflict.storage import parties as party_rows
from deconflict.storage.declarations import StoredDeclaration
from deconflict.volumes import build_volumes


@dataclass(frozen=True)
class Opening:
    """The opening of a version's commitments, with its record leaf (and the seal's opening
    when the leaf is sealed); ``commitments`` holds the ``salts`` and the ``values``."""

    declaration_id: str
    version: str
    log_index: int
    leaf: Any
    seal: dict[str, Any] | None
    commitments: dict[str, Any]


# -- shared with the writes -------------------------------------------------------------------


def visible(policy: Policy, viewer: Party, kind: str, owner: str) -> bool:
    return policy.visible_to(viewer.id, viewer.role, kind, owner)


def visible_conflicts(policy: Policy, viewer: Party, found: list[Found]) -> list[Found]:
    return [f for f in found if visible(policy, viewer, f.other.kind, f.other.owner)]


def restricts_of(
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
        if not party_rows.party_exists(conn, party_id):
            raise InvalidRequest(f"no party {party_id}", field=f"restricts.parties[{number}]")
    return Restricts(
        parties=tuple(given.parties),
        roles=tuple(given.roles),
        allowed_categories=tuple(given.allowed_categories),
    )


def visible_row(conn: Connection, policy: Policy, party: Party, declaration_id: str) -> Any:
    row = storage.current_row(conn, declaration_id)
    if row is None or not visible(policy, party, row["kind"], row["owner"]):
        raise NotFound(f"no declaration {declaration_id}")
    return row


def stored_subject(deployment: Deployment, row: Mapping[str, Any]) -> Subject:
    """The rule's view of a stored active declaration row, volumes included: as this
    process parsed it when it wrote this very version, if it did so lately; else parsed
    from the row. (The index's copy, ``ConflictIndex.get``, would not spare the parse: it
    rebuilds shapes from its columns with shapely, the slow part.)"""
    recent = deployment.recent(row["id"], row["version"])
    return subject_from_row(row) if recent is None else recent


def shown_to(party: Party, declaration: StoredDeclaration) -> StoredDeclaration:
    """The declaration as ``party`` is shown it: an operation's justification goes to its
    owner and the coordinator only (API.md v1.1); other operators who see the operation
    see that it was declared, not what its owner wrote about the protected site."""
    if declaration.justification is None or (
        party.role == "coordinator" or party.id == declaration.owner
    ):
        return declaration
    return dataclasses.replace(declaration, justification=None)


# -- the reads ----------------------------------------------------------------------------------


def get_declaration(deployment: Deployment, party: Party, declaration_id: str) -> StoredDeclaration:
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        row = visible_row(conn, policy, party, declaration_id)
        return shown_to(party, StoredDeclaration.of_row(row))


def declaration_opening(
    deployment: Deployment, party: Party, declaration_id: str, version: str | None
) -> Opening:
    """The opening of a version's commitments, with its leaf: what the owner shows an inquiry
    to prove exactly what it declared. Only the owner and the coordinator get it."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        current = visible_row(conn, policy, party, declaration_id)
        if party.role != "coordinator" and current["owner"] != party.id:
            raise Forbidden("only the owner and the coordinator see a declaration's opening")
        row = storage.version_row(conn, declaration_id, version or current["version"])
        if row is None:
            raise NotFound(
                f"declaration {declaration_id} has no version {version}", field="version"
            )
        [entry] = log_store.entries(conn, row["log_index"], row["log_index"] + 1)
        return Opening(
            declaration_id=declaration_id,
            version=row["version"],
            log_index=row["log_index"],
            leaf=entry["leaf"],
            seal=entries.seal_opening(conn, row["log_index"]),
            commitments=entries.opening_for_declaration_version(row),
        )


def declaration_conflicts(deployment: Deployment, party: Party, declaration_id: str) -> list[Found]:
    """The current conflicts of a stored declaration, with declarations the caller sees;
    within the policy's work budget like a check (413 over it: what was stored near it
    since may cost more than its own write's search did)."""
    with deployment.reading() as conn:
        policy = deployment.policy(conn)
        row = visible_row(conn, policy, party, declaration_id)
        if row["state"] != "active":
            return []
        subject = stored_subject(deployment, row)
    found = deployment.index.conflicts_of(policy, subject, budget=policy.limits.work_per_request)
    return visible_conflicts(policy, party, found)


def authenticated_check(
    deployment: Deployment,
    token: str,
    body: CheckIn,
    admit: Callable[[Party], None] | None = None,
) -> list[Found]:
    """What-if: the conflicts a declaration by the holder of ``token`` (401 otherwise) would
    have. Writes nothing. The hottest request: when no cache is stale it reads one
    statement from the database, outside any transaction, for the authentication, the
    policy and the index together. ``admit`` may refuse the party (its rate limit) once it
    is known; the search is bounded by the policy's work budget (413 over it)."""
    counters, policy = deployment.fresh()
    party = authenticate(deployment, token, counters)
    if admit is not None:
        admit(party)
    volumes = build_volumes(body.volumes, policy.limits, area=policy.area_of_operations)
    restricts = None
    if body.restricts:
        with deployment.reading() as conn:  # the parties it names must exist
            restricts = restricts_of(conn, body.kind, body.restricts, None)
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
    return visible_conflicts(policy, party, found)


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
) -> list[StoredDeclaration]:
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
        found = storage.active_rows(conn, ids)
        found.sort(key=lambda row: (row["created_at"], row["id"]))
        return [shown_to(party, StoredDeclaration.of_row(row)) for row in found]

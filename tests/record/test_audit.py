"""``verify --db`` catches every kind of altered row; ``verify --url`` catches rewritten history.

(``deconflict.record.fsck`` and ``deconflict.record.client``: one scenario serves both.)

The database is built here as the service builds it: each change writes its rows, appends
the leaves ``deconflict.record.entries`` builds from them, and signs one head, in one transaction.
Its first ten entries are written as deconflict wrote them before the record was sealed
(every leaf in clear), the rest sealed, so both formats are checked. Then one kind of row at
a time is altered behind the service's back, and the audit must fail naming it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.engine import Connection, Engine

from deconflict.record import client, entries, fsck, log_store, merkle, signing
from deconflict.record.canonical import canonical_json
from deconflict.record.commitments import new_salt
from deconflict.storage import notifications, schema
from deconflict.storage.meta import set_meta

VOLUMES = [
    {
        "geometry": {"type": "Point", "coordinates": [30.52, 50.45]},
        "buffer_m": 500,
        "altitude": {"lower_m": 0, "upper_m": 3000},
        "time": {"start": "2016-12-15T05:00:00Z", "end": None},
    }
]
CONFLICTS = [
    {
        "declaration": {"id": "dcl_op", "kind": "operation", "owner": "pty_op", "version": "v2"},
        "reason": "separation",
        "min_distance_m": 812.5,
        "time_overlap": {"start": "2016-12-15T05:00:00Z", "end": None},
    }
]


# The scenario's entries below this index are in clear, as before the record was sealed.
SEALED_FROM = 10


def append_in_clear(conn: Connection, entry: dict[str, Any], subject: str) -> int:
    """Append an entry as deconflict did before the sealed format (schema revision 0002 and
    earlier): every leaf the entry itself, in clear."""
    leaf = canonical_json(entry)
    digest = merkle.leaf_hash(leaf.encode("utf-8"))
    _, index, _ = merkle.append(log_store.DatabaseNodeStore(conn), digest)[0]
    conn.execute(
        schema.log_entries.insert().values(
            idx=index,
            leaf=leaf,
            leaf_hash=digest,
            entry_type=entry["type"],
            subject=subject,
            at=entry["at"],
        )
    )
    return index


class Service:
    """Writes rows and their record entries the way the service does, one change at a time
    (with ``clear``, the way it did before the record was sealed)."""

    def __init__(
        self,
        engine: Engine,
        key: Ed25519PrivateKey,
        *,
        start_minute: int = 0,
        receipts: list[dict[str, Any]] | None = None,
    ) -> None:
        self.engine = engine
        self.key = key
        self.minutes = itertools.count(start_minute)
        self.change_seq = itertools.count(start_minute + 1)
        self.receipts = list(receipts or [])
        self.clear = False

    @contextmanager
    def change(self) -> Iterator[tuple[Connection, str]]:
        at = f"2016-12-14T05:{next(self.minutes):02d}:00Z"
        with self.engine.begin() as conn:
            yield conn, at
            head = log_store.issue_head(conn, self.key, at)
            self.receipts.append(log_store.receipt(conn, head["size"] - 1, head))

    def log(self, conn: Connection, entry: dict[str, Any], subject: str) -> int:
        if self.clear:
            return append_in_clear(conn, entry, subject)
        return log_store.append_logged(
            conn, entry, entry_type=entry["type"], subject=subject, at=entry["at"]
        )[0]

    def register(self, party_id: str, name: str, role: str, by: str | None) -> None:
        with self.change() as (conn, at):
            conn.execute(
                schema.parties.insert().values(
                    id=party_id,
                    name=name,
                    role=role,
                    token_hash=party_id.ljust(64, "0"),
                    created_at=at,
                    created_by=by,
                )
            )
            self.log(
                conn, entries.party_registered_entry(_row(conn, schema.parties, party_id)), party_id
            )

    def revoke(self, party_id: str, by: str) -> None:
        with self.change() as (conn, at):
            conn.execute(
                update(schema.parties)
                .where(schema.parties.c.id == party_id)
                .values(revoked_at=at, revoked_by=by)
            )
            self.log(
                conn, entries.party_revoked_entry(_row(conn, schema.parties, party_id)), party_id
            )

    def set_policy(self, policy_id: str, toml: str, by: str) -> None:
        with self.change() as (conn, at):
            conn.execute(
                schema.policy_versions.insert().values(id=policy_id, toml=toml, actor=by, at=at)
            )
            self.log(
                conn,
                entries.policy_changed_entry(_row(conn, schema.policy_versions, policy_id)),
                policy_id,
            )

    def declare(
        self, declaration_id: str, version: str, change: str, pad: int = 0, **fields: Any
    ) -> None:
        """A declaration version, and ``pad`` padding entries for parties not told of it."""
        dv = schema.declaration_versions
        with self.change() as (conn, at):
            previous = conn.execute(
                select(dv.c.version)
                .where(dv.c.declaration_id == declaration_id)
                .order_by(dv.c.log_index.desc())
                .limit(1)
            ).scalar()
            current = {**self._current(conn, declaration_id), **fields, "version": version}
            salts = {name: new_salt() for name in entries.DECLARATION_FIELDS}
            conn.execute(
                dv.insert().values(
                    declaration_id=declaration_id,
                    change=change,
                    actor=current["owner"],
                    salts=json.dumps(salts),
                    at=at,
                    **current,
                )
            )
            row = _version_row(conn, declaration_id, version)
            index = self.log(
                conn, entries.declaration_entry(row, previous), f"{declaration_id}/{version}"
            )
            conn.execute(
                update(dv)
                .where(dv.c.declaration_id == declaration_id, dv.c.version == version)
                .values(log_index=index)
            )
            for slot in range(pad):
                padding = entries.padding_entry(row, slot)
                self.log(conn, padding, entries.padding_subject(declaration_id, version, slot))
            state = {**current, "updated_at": at, "change_seq": next(self.change_seq)}
            if previous is None:
                conn.execute(
                    schema.declarations.insert().values(id=declaration_id, created_at=at, **state)
                )
            else:
                conn.execute(
                    update(schema.declarations)
                    .where(schema.declarations.c.id == declaration_id)
                    .values(**state)
                )

    def _current(self, conn: Connection, declaration_id: str) -> dict[str, Any]:
        d = schema.declarations
        row = conn.execute(select(d).where(d.c.id == declaration_id)).mappings().one_or_none()
        names = (
            "kind",
            "owner",
            "state",
            "category",
            "volumes",
            "metadata",
            "restricts",
            "late_notice",
        )
        return {} if row is None else {name: row[name] for name in names}

    def notify(
        self, notification_id: str, recipient: str, seq: int, declaration: tuple[str, str]
    ) -> None:
        with self.change() as (conn, at):
            conn.execute(
                schema.notifications.insert().values(
                    id=notification_id,
                    recipient=recipient,
                    seq=seq,
                    created_at=at,
                    change="created",
                    reason="conflict",
                    declaration_id=declaration[0],
                    declaration_kind="operation",
                    declaration_owner="pty_op",
                    declaration_version=declaration[1],
                    conflicts=json.dumps(CONFLICTS),
                    conflicts_salt=new_salt(),
                    late_notice=False,
                    webhook_attempts=0,
                )
            )
            row = _row(conn, schema.notifications, notification_id)
            self.log(conn, entries.notification_created_entry(row), notification_id)

    def deliver(self, notification_id: str, via: str) -> None:
        with self.change() as (conn, at):
            conn.execute(
                update(schema.notifications)
                .where(schema.notifications.c.id == notification_id)
                .values(delivered_at=at, delivered_via=via)
            )
            row = _row(conn, schema.notifications, notification_id)
            self.log(conn, entries.notification_delivered_entry(row), notification_id)

    def acknowledge(self, notification_id: str, comment: str | None) -> None:
        with self.change() as (conn, at):
            conn.execute(
                update(schema.notifications)
                .where(schema.notifications.c.id == notification_id)
                .values(acknowledged_at=at, ack_comment=comment, ack_salt=new_salt())
            )
            row = _row(conn, schema.notifications, notification_id)
            self.log(conn, entries.notification_acknowledged_entry(row), notification_id)

    def respond(self, notification_id: str, number: int, response: str, comment: str) -> None:
        """A later response (number 2 on) that becomes the notification's current one."""
        with self.change() as (conn, at):
            conn.execute(
                schema.notification_responses.insert().values(
                    notification_id=notification_id,
                    number=number,
                    response=response,
                    comment=comment,
                    salt=new_salt(),
                    at=at,
                )
            )
            conn.execute(
                update(schema.notifications)
                .where(schema.notifications.c.id == notification_id)
                .values(response=response, response_comment=comment, responded_at=at)
            )
            subject = f"{notification_id}/{number}"
            row = notifications.response_row(conn, subject)
            self.log(conn, entries.notification_responded_entry(row), subject)

    def subscribe(self, subscription_id: str, party: str) -> None:
        with self.change() as (conn, at):
            conn.execute(
                schema.subscriptions.insert().values(
                    id=subscription_id,
                    party=party,
                    volumes=json.dumps(VOLUMES),
                    kinds=json.dumps(["operation"]),
                    salt=new_salt(),
                    created_at=at,
                )
            )
            row = _row(conn, schema.subscriptions, subscription_id)
            self.log(conn, entries.subscription_created_entry(row), subscription_id)


def _row(conn: Connection, table: Any, row_id: str) -> Any:
    return conn.execute(select(table).where(table.c.id == row_id)).mappings().one()


def _version_row(conn: Connection, declaration_id: str, version: str) -> Any:
    return entries.declaration_version_row(conn, f"{declaration_id}/{version}")


def build_scenario(
    engine: Engine, key: Ed25519PrivateKey, *, humanitarian: str = "Aid Org"
) -> Service:
    """Every entry type at least once: 22 entries, a signed head after each of 21 changes."""
    schema.metadata.create_all(engine)
    service = Service(engine, key)
    service.clear = True
    service.register("pty_coord", "Coordination Cell", "coordinator", by=None)
    service.set_policy("pol_1", "[separation]\noperation_operation_m = 9260\n", by="pty_coord")
    service.register("pty_op", "Air Wing", "operator", by="pty_coord")
    service.register("pty_hum", humanitarian, "humanitarian", by="pty_coord")
    service.register("pty_obs", "Inquiry", "observer", by="pty_coord")
    operation = {
        "kind": "operation",
        "owner": "pty_op",
        "state": "active",
        "category": "combat",
        "volumes": json.dumps(VOLUMES),
        "metadata": json.dumps({"callsign": "HAWK 1"}),
        "restricts": None,
        "late_notice": True,
    }
    service.declare("dcl_op", "v1", "created", **operation)
    service.declare("dcl_op", "v2", "updated", metadata=json.dumps({"callsign": "HAWK 2"}))
    site = {
        **operation,
        "kind": "site",
        "owner": "pty_hum",
        "category": "hospital",
        "late_notice": False,
    }
    service.declare("dcl_site", "s1", "created", **site)
    restriction = {
        **operation,
        "kind": "restriction",
        "owner": "pty_coord",
        "category": "designated area",
        "restricts": json.dumps(
            {"parties": ["pty_op"], "roles": [], "allowed_categories": ["non-combat"]}
        ),
        "late_notice": False,
    }
    service.declare("dcl_zone", "r1", "created", **restriction)
    service.notify("ntf_1", "pty_hum", 1, ("dcl_op", "v2"))
    # Here the deployment was migrated to the sealed record (schema revision 0003).
    with engine.begin() as conn:
        assert log_store.log_size(conn) == SEALED_FROM
        set_meta(conn, entries.SEALED_FROM, str(SEALED_FROM))
    service.clear = False
    service.deliver("ntf_1", "inbox")
    service.acknowledge("ntf_1", "Received; hospital staff informed.")
    service.notify("ntf_2", "pty_coord", 1, ("dcl_op", "v2"))
    service.deliver("ntf_2", "webhook")
    service.notify("ntf_3", "pty_obs", 1, ("dcl_op", "v2"))
    service.acknowledge("ntf_3", None)
    service.subscribe("sub_1", "pty_hum")
    service.declare("dcl_site", "s2", "withdrawn", pad=1, state="withdrawn")
    service.revoke("pty_obs", by="pty_coord")
    service.register("pty_late", "Late Joiner", "operator", by="pty_coord")
    # ntf_1 was acknowledged as before responses (no response row): the next is number 2.
    service.respond("ntf_1", 2, "cannot_assure", "Convoy window moved; cannot assure it.")
    return service


@dataclass(frozen=True)
class Template:
    """The scenario's database, built once per module and copied for each test (fsyncs are slow)."""

    folder: Path
    key: Ed25519PrivateKey
    receipts: list[dict[str, Any]]

    def copy(self, name: str, into: Path) -> Engine:
        shutil.copy(self.folder / f"{name}.db", into / f"{name}.db")
        return create_engine(f"sqlite:///{into / name}.db")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("template")
    key = signing.generate_key(folder / "log-key.pem")
    engine = create_engine(f"sqlite:///{folder / 'deconflict.db'}")
    receipts = build_scenario(engine, key).receipts
    engine.dispose()
    # The same deployment with one party registered under another name: a rewritten history,
    # both at the same size and grown by three more entries.
    engine = create_engine(f"sqlite:///{folder / 'forged.db'}")
    build_scenario(engine, key, humanitarian="Not The Aid Org")
    engine.dispose()
    shutil.copy(folder / "forged.db", folder / "forged_longer.db")
    engine = create_engine(f"sqlite:///{folder / 'forged_longer.db'}")
    longer = Service(engine, key, start_minute=21)
    for n in range(3):
        longer.register(f"pty_x{n}", "More", "observer", by="pty_coord")
    engine.dispose()
    return Template(folder, key, receipts)


@pytest.fixture
def key(template: Template) -> Ed25519PrivateKey:
    return template.key


@pytest.fixture
def engine(template: Template, tmp_path: Path) -> Iterator[Engine]:
    engine = template.copy("deconflict", tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def service(engine: Engine, template: Template) -> Service:
    """The service that wrote the scenario, ready to write more."""
    return Service(engine, template.key, start_minute=21, receipts=template.receipts)


def public(key: Ed25519PrivateKey) -> str:
    return signing.public_key_b64(key)


# --- verify --db -----------------------------------------------------------------------------


def test_an_untouched_database_verifies(
    service: Service, engine: Engine, key: Ed25519PrivateKey
) -> None:
    seen: list[tuple[int, int]] = []
    result = fsck.verify_database(
        engine, public(key), progress=lambda done, total: seen.append((done, total))
    )
    assert result.ok, result.describe()
    assert result.size == result.entries_checked == 22
    assert result.heads_checked == 21
    assert seen[-1] == (22, 22) and len(seen) == 22
    assert result.describe().startswith("OK")


def test_every_entry_type_is_exercised(service: Service, engine: Engine) -> None:
    with engine.connect() as conn:
        logged = set(conn.execute(select(schema.log_entries.c.entry_type)).scalars())
    assert logged == set(entries.ENTRY_TYPES)


def test_both_formats_are_in_the_scenario(engine: Engine) -> None:
    """In clear before the format change; from it on, sealed but for parties and policies."""
    le = schema.log_entries
    with engine.connect() as conn:
        rows = conn.execute(select(le.c.idx, le.c.entry_type, le.c.leaf)).all()
    for index, entry_type, leaf in rows:
        sealed = json.loads(leaf)["type"] == "sealed"
        assert sealed == (index >= SEALED_FROM and entry_type in SEALED_TYPES), index
    assert {t for i, t, _ in rows if i < SEALED_FROM} >= {"declaration.created", "party.registered"}
    assert {t for i, t, _ in rows if i >= SEALED_FROM} >= {"party.revoked", "declaration.withdrawn"}


SEALED_TYPES = set(entries.ENTRY_TYPES) - entries.CLEAR_TYPES


def test_small_batches_stream_the_same_result(
    service: Service, engine: Engine, key: Ed25519PrivateKey
) -> None:
    for batch_size in (1, 2, 3, 7):
        result = fsck.verify_database(engine, public(key), batch_size=batch_size)
        assert result.ok and result.entries_checked == 22, (batch_size, result.describe())


def test_another_key_fails_on_the_first_head(
    service: Service, engine: Engine, tmp_path: Path
) -> None:
    other = signing.generate_key(tmp_path / "other.pem")
    result = fsck.verify_database(engine, public(other))
    assert result.problem is not None
    assert result.problem.entry_type == "tree head" and "signature" in result.problem.detail


def entry_index(conn: Connection, entry_type: str, subject: str) -> int:
    le = schema.log_entries
    return int(
        conn.execute(
            select(le.c.idx).where(le.c.entry_type == entry_type, le.c.subject == subject)
        ).scalar_one()
    )


Tamper = Callable[[Connection], None]


def alter(table: Any, *where: Any, **values: Any) -> Tamper:
    """Update the rows of ``table`` matching ``where`` behind the service's back."""

    def tamper(conn: Connection) -> None:
        conn.execute(update(table).where(*where).values(**values))

    return tamper


def remove(table: Any, *where: Any) -> Tamper:
    def tamper(conn: Connection) -> None:
        conn.execute(delete(table).where(*where))

    return tamper


def set_row(table: Any, row_id: str, **values: Any) -> Tamper:
    return alter(table, table.c.id == row_id, **values)


def set_version(declaration_id: str, version: str, **values: Any) -> Tamper:
    dv = schema.declaration_versions
    return alter(dv, dv.c.declaration_id == declaration_id, dv.c.version == version, **values)


def set_node(level: int, idx: int) -> Tamper:
    ln = schema.log_nodes
    return alter(ln, ln.c.level == level, ln.c.idx == idx, hash=b"\x07" * 32)


def set_head(size: int, **values: Any) -> Tamper:
    return alter(schema.tree_heads, schema.tree_heads.c.size == size, **values)


def set_leaf(
    entry_type: str, subject: str, change: Callable[[dict[str, Any]], None], *, rehash: bool
) -> Tamper:
    """Rewrite a logged leaf (and, with ``rehash``, its leaf_hash and level-0 node too)."""

    def tamper(conn: Connection) -> None:
        index = entry_index(conn, entry_type, subject)
        le, ln = schema.log_entries, schema.log_nodes
        leaf = json.loads(conn.execute(select(le.c.leaf).where(le.c.idx == index)).scalar_one())
        change(leaf)
        text = json.dumps(leaf, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        values: dict[str, Any] = {"leaf": text}
        if rehash:
            values["leaf_hash"] = digest = hashlib.sha256(b"\x00" + text.encode()).digest()
            conn.execute(update(ln).where(ln.c.level == 0, ln.c.idx == index).values(hash=digest))
        conn.execute(update(le).where(le.c.idx == index).values(**values))

    return tamper


def set_log_row(entry_type: str, logged: str, /, **values: Any) -> Tamper:
    """Alter the log_entries row of the entry ``(entry_type, logged)`` (its subject)."""
    le = schema.log_entries
    return alter(le, le.c.entry_type == entry_type, le.c.subject == logged, **values)


def set_sealed(entry_type: str, subject: str, change: Callable[[dict[str, Any]], None]) -> Tamper:
    """Rewrite the entry a sealed leaf seals (canonically, so only its meaning changed)."""

    def tamper(conn: Connection) -> None:
        le = schema.log_entries
        where = (le.c.entry_type == entry_type, le.c.subject == subject)
        entry = json.loads(conn.execute(select(le.c.sealed).where(*where)).scalar_one())
        change(entry)
        conn.execute(update(le).where(*where).values(sealed=canonical_json(entry)))

    return tamper


def set_meta_value(key: str, value: str) -> Tamper:
    def tamper(conn: Connection) -> None:
        set_meta(conn, key, value)

    return tamper


def add(table: Any, **values: Any) -> Tamper:
    def tamper(conn: Connection) -> None:
        conn.execute(table.insert().values(**values))

    return tamper


P, N, D = schema.parties, schema.notifications, schema.declarations
OTHER_VOLUMES = json.dumps([{**VOLUMES[0], "buffer_m": 5000}])
FORGED_SIGNATURE = base64.b64encode(b"\x01" * 64).decode()


def case(name: str, change: Tamper, entry_type: str | None, subject: str | None, words: str) -> Any:
    """One tampering: how, the entry type and subject the audit must name, words of its detail."""
    return pytest.param(change, entry_type, subject, words, id=name)


TAMPERINGS = [
    case(
        "version volumes",
        set_version("dcl_op", "v1", volumes=OTHER_VOLUMES),
        "declaration.created",
        "dcl_op/v1",
        "declaration.volumes",
    ),
    case(
        "version metadata",
        set_version("dcl_op", "v2", metadata='{"callsign": "EAGLE"}'),
        "declaration.updated",
        "dcl_op/v2",
        "declaration.metadata",
    ),
    case(
        "version category",
        set_version("dcl_site", "s1", category="school"),
        "declaration.created",
        "dcl_site/s1",
        "declaration.category",
    ),
    case(
        "version restricts",
        set_version("dcl_zone", "r1", restricts='{"parties": []}'),
        "declaration.created",
        "dcl_zone/r1",
        "declaration.restricts",
    ),
    case(
        "version late_notice",
        set_version("dcl_op", "v1", late_notice=False),
        "declaration.created",
        "dcl_op/v1",
        "declaration.late_notice",
    ),
    case(
        "version salts",
        set_version(
            "dcl_op", "v1", salts=json.dumps({n: new_salt() for n in entries.DECLARATION_FIELDS})
        ),
        "declaration.created",
        "dcl_op/v1",
        "declaration.category",
    ),
    case(
        "version change",
        set_version("dcl_site", "s2", change="updated"),
        "declaration.withdrawn",
        "dcl_site/s2",
        "type",
    ),
    case(
        "version history order",
        set_version("dcl_op", "v1", log_index=10_000),
        "declaration.created",
        "dcl_op/v1",
        "declaration.previous_version",
    ),
    case(
        "version deleted",
        remove(schema.declaration_versions, schema.declaration_versions.c.version == "s2"),
        "declaration.withdrawn",
        "dcl_site/s2",
        "no declaration version",
    ),
    case(
        "current declaration volumes",
        set_row(D, "dcl_op", volumes=OTHER_VOLUMES),
        "declaration",
        "dcl_op",
        "volumes",
    ),
    case(
        "current declaration version",
        set_row(D, "dcl_site", version="s1", state="active"),
        "declaration",
        "dcl_site",
        "version, state",
    ),
    case(
        "current declaration deleted",
        remove(D, D.c.id == "dcl_zone"),
        "declaration",
        "dcl_zone",
        "no current row",
    ),
    case(
        "notification reason",
        set_row(N, "ntf_1", reason="broadcast"),
        "notification.created",
        "ntf_1",
        "notification.reason",
    ),
    case(
        "notification conflicts",
        set_row(N, "ntf_2", conflicts="[]"),
        "notification.created",
        "ntf_2",
        "notification.conflicts",
    ),
    case(
        "notification recipient",
        set_row(N, "ntf_3", recipient="pty_op"),
        "notification.created",
        "ntf_3",
        "notification.recipient",
    ),
    case(
        "notification deleted",
        remove(N, N.c.id == "ntf_2"),
        "notification.created",
        "ntf_2",
        "no notifications row",
    ),
    case(
        "delivered_at",
        set_row(N, "ntf_1", delivered_at="2016-12-14T04:00:00Z"),
        "notification.delivered",
        "ntf_1",
        "at",
    ),
    case(
        "delivered_at erased",
        set_row(N, "ntf_2", delivered_at=None),
        "notification.delivered",
        "ntf_2",
        "has no delivered_at",
    ),
    case(
        "delivered_at invented",
        set_row(N, "ntf_3", delivered_at="2016-12-14T06:00:00Z"),
        "notification.delivered",
        "ntf_3",
        "has no record entry",
    ),
    case(
        "delivered_via",
        set_row(N, "ntf_1", delivered_via="stream"),
        "notification.delivered",
        "ntf_1",
        "via",
    ),
    case(
        "acknowledged_at",
        set_row(N, "ntf_1", acknowledged_at="2016-12-14T09:00:00Z"),
        "notification.acknowledged",
        "ntf_1",
        "at",
    ),
    case(
        "acknowledged_at invented",
        set_row(N, "ntf_2", acknowledged_at="2016-12-14T09:00:00Z"),
        "notification.acknowledged",
        "ntf_2",
        "has no record entry",
    ),
    case(
        "ack comment",
        set_row(N, "ntf_1", ack_comment="Never received."),
        "notification.acknowledged",
        "ntf_1",
        "comment",
    ),
    case(
        "ack comment added",
        set_row(N, "ntf_3", ack_comment="Objection noted."),
        "notification.acknowledged",
        "ntf_3",
        "comment",
    ),
    case(
        "party name",
        set_row(P, "pty_hum", name="Someone Else"),
        "party.registered",
        "pty_hum",
        "party.name",
    ),
    case(
        "party role",
        set_row(P, "pty_op", role="coordinator"),
        "party.registered",
        "pty_op",
        "party.role",
    ),
    case(
        "party registrar",
        set_row(P, "pty_op", created_by="pty_late"),
        "party.registered",
        "pty_op",
        "actor",
    ),
    case(
        "party revocation erased",
        set_row(P, "pty_obs", revoked_at=None),
        "party.revoked",
        "pty_obs",
        "has no revoked_at",
    ),
    case(
        "party revocation invented",
        set_row(P, "pty_hum", revoked_at="2016-12-14T09:00:00Z", revoked_by="pty_coord"),
        "party.revoked",
        "pty_hum",
        "has no record entry",
    ),
    case(
        "subscription volumes",
        set_row(schema.subscriptions, "sub_1", volumes=OTHER_VOLUMES),
        "subscription.created",
        "sub_1",
        "subscription.volumes",
    ),
    case(
        "policy text",
        set_row(schema.policy_versions, "pol_1", toml="[separation]\n"),
        "policy.changed",
        "pol_1",
        "policy.sha256",
    ),
    case(
        "leaf",
        set_leaf(
            "party.registered", "pty_op", lambda leaf: leaf["party"].update(name="X"), rehash=False
        ),
        "party.registered",
        "pty_op",
        "does not hash to its stored leaf_hash",
    ),
    # Entry 3 completes nodes (1, 1) and (2, 0): a leaf rewritten with its hash breaks them.
    case(
        "leaf and its hash",
        set_leaf(
            "party.registered",
            "pty_hum",
            lambda leaf: leaf["party"].update(role="operator"),
            rehash=True,
        ),
        "party.registered",
        "pty_hum",
        "Merkle node (level 1, idx 1) differs",
    ),
    case(
        "sealed entry",
        set_sealed("notification.created", "ntf_2", lambda e: e["notification"].update(seq=7)),
        "notification.created",
        "ntf_2",
        "do not open the leaf's commitment",
    ),
    case(
        "seal salt",
        set_log_row("subscription.created", "sub_1", salt=new_salt()),
        "subscription.created",
        "sub_1",
        "do not open the leaf's commitment",
    ),
    case(
        "sealed entry erased",
        set_log_row("declaration.withdrawn", "dcl_site/s2", sealed=None),
        "declaration.withdrawn",
        "dcl_site/s2",
        "entry or salt is not stored",
    ),
    case(
        "format change moved back",
        set_meta_value(entries.SEALED_FROM, str(SEALED_FROM - 1)),
        "notification.created",
        "ntf_1",
        f"logged in clear, but from index {SEALED_FROM - 1} on the record seals",
    ),
    case(
        "format change moved on",
        set_meta_value(entries.SEALED_FROM, str(SEALED_FROM + 1)),
        "notification.delivered",
        "ntf_1",
        f"only from index {SEALED_FROM + 1} on",
    ),
    case(
        "padding of a declaration version that was not logged",
        set_log_row("notification.padding", "dcl_site/s2/0", subject="dcl_site/s9/0"),
        "notification.padding",
        "dcl_site/s9/0",
        "no declaration version",
    ),
    case(
        "padding slot",
        set_log_row("notification.padding", "dcl_site/s2/0", subject="dcl_site/s2/1"),
        "notification.padding",
        "dcl_site/s2/1",
        "in slot",
    ),
    case("node", set_node(2, 1), None, None, "Merkle node (level 2, idx 1) differs"),
    case(
        "node deleted",
        remove(schema.log_nodes, schema.log_nodes.c.level == 4),
        None,
        None,
        "Merkle node (level 4, idx 0) is missing",
    ),
    case(
        "entry deleted",
        remove(schema.log_entries, schema.log_entries.c.idx == 5),
        None,
        None,
        "missing; the next stored index is 6",
    ),
    case(
        "head root",
        set_head(7, root="ab" * 32),
        "tree head",
        "size 7",
        "differs from the recomputed",
    ),
    case(
        "head signature",
        set_head(9, signature=FORGED_SIGNATURE),
        "tree head",
        "size 9",
        "signature does not verify",
    ),
    case(
        "head timestamp",
        set_head(12, timestamp="2016-12-13T00:00:00Z"),
        "tree head",
        "size 12",
        "signature does not verify",
    ),
    case(
        "head beyond the log",
        add(schema.tree_heads, size=99, root="ab" * 32, timestamp="t", signature=FORGED_SIGNATURE),
        None,
        None,
        "head of size 99 is beyond",
    ),
    case(
        "extra node",
        add(schema.log_nodes, level=0, idx=50, hash=b"\0" * 32),
        None,
        None,
        "log_nodes has",
    ),
]


@pytest.mark.parametrize(
    ("change", "entry_type", "subject", "words"),
    TAMPERINGS,
)
def test_tampering_is_detected_and_named(
    service: Service,
    engine: Engine,
    key: Ed25519PrivateKey,
    change: Callable[[Connection], None],
    entry_type: str | None,
    subject: str | None,
    words: str,
) -> None:
    with engine.begin() as conn:
        change(conn)
        logged = entry_type is not None and "." in entry_type and "has no record entry" not in words
        expected_index = entry_index(conn, entry_type, subject) if logged else None  # type: ignore[arg-type]
    result = fsck.verify_database(engine, public(key))
    problem = result.problem
    assert problem is not None, "tampering went unnoticed"
    assert words in problem.detail, str(problem)
    if entry_type is not None:
        assert (problem.entry_type, problem.subject) == (entry_type, subject), str(problem)
    if expected_index is not None:
        assert problem.index == expected_index, str(problem)
    assert str(problem) in result.describe()


# --- verify --url ----------------------------------------------------------------------------


def log_server(engine: Engine, key: Ed25519PrivateKey) -> httpx.MockTransport:
    """The /v1/log/* endpoints of API.md over a database, served in process."""

    def handle(request: httpx.Request) -> httpx.Response:
        q = {name: int(value) for name, value in request.url.params.items()}
        with engine.connect() as conn:
            match request.url.path:
                case "/v1/log/public-key":
                    body: Any = {"algorithm": "Ed25519", "public_key": public(key)}
                case "/v1/log/head":
                    body = log_store.latest_head(conn)
                case "/v1/log/entries":
                    body = {"entries": log_store.entries(conn, q["start"], q["end"])}
                case "/v1/log/proof/inclusion":
                    path = log_store.inclusion_proof(conn, q["index"], q["size"])
                    leaf_hash = log_store.leaf_hash_at(conn, q["index"]).hex()
                    body = {**q, "leaf_hash": leaf_hash, "path": [h.hex() for h in path]}
                case "/v1/log/proof/consistency":
                    path = log_store.consistency_proof(conn, q["first"], q["second"])
                    body = {**q, "path": [h.hex() for h in path]}
                case _:
                    return httpx.Response(404, json={"code": "not_found"})
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handle)


def client_for(engine: Engine, key: Ed25519PrivateKey) -> httpx.Client:
    return httpx.Client(transport=log_server(engine, key))


URL = "http://deconflict.test/"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "heads.jsonl", tmp_path / "receipts.jsonl"


def save_receipts(path: Path, receipts: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in receipts))


def test_a_party_follows_a_growing_log(
    service: Service, engine: Engine, key: Ed25519PrivateKey, files: tuple[Path, Path]
) -> None:
    heads, receipts = files
    save_receipts(receipts, service.receipts[:5])
    first = client.verify_remote(URL, heads, receipts, client=client_for(engine, key))
    assert first.ok, first.describe()
    assert first.receipts_checked == 5 and first.size == 22
    service.notify("ntf_9", "pty_hum", 2, ("dcl_op", "v2"))
    service.deliver("ntf_9", "stream")
    save_receipts(receipts, service.receipts)
    second = client.verify_remote(
        URL, heads, receipts, client=client_for(engine, key), public_key_b64=public(key)
    )
    assert second.ok, second.describe()
    assert second.heads_checked == 1 and second.receipts_checked == 23
    saved = [json.loads(line) for line in heads.read_text().splitlines()]
    assert [h["size"] for h in saved] == [22, 24]
    # Nothing new: the head is not saved twice.
    assert client.verify_remote(URL, heads, client=client_for(engine, key)).ok
    assert len(heads.read_text().splitlines()) == 2


def test_receipts_saved_as_whole_write_answers_are_accepted(
    service: Service, engine: Engine, key: Ed25519PrivateKey, files: tuple[Path, Path]
) -> None:
    heads, receipts = files
    save_receipts(receipts, [{"declaration": {"id": "x"}, "receipt": r} for r in service.receipts])
    assert client.verify_remote(URL, heads, receipts, client=client_for(engine, key)).ok


@pytest.mark.parametrize(
    ("forgery", "words"),
    [("forged_longer", "history was rewritten"), ("forged", "two different roots")],
)
def test_a_rewritten_history_is_detected(
    engine: Engine,
    template: Template,
    files: tuple[Path, Path],
    tmp_path: Path,
    forgery: str,
    words: str,
) -> None:
    heads, _ = files
    assert client.verify_remote(URL, heads, client=client_for(engine, template.key)).ok
    forged = template.copy(forgery, tmp_path)
    result = client.verify_remote(URL, heads, client=client_for(forged, template.key))
    assert result.problem is not None and words in result.problem.detail, result.describe()
    assert "heads.jsonl line 1" in str(result.problem)
    assert len(heads.read_text().splitlines()) == 1  # the forged head is not adopted
    forged.dispose()


def test_a_receipt_from_before_a_rewrite_is_detected(
    template: Template, files: tuple[Path, Path], tmp_path: Path
) -> None:
    heads, receipts = files
    save_receipts(receipts, template.receipts[3:4])  # pty_hum's registration, index 3
    forged = template.copy("forged_longer", tmp_path)
    result = client.verify_remote(URL, heads, receipts, client=client_for(forged, template.key))
    assert result.problem is not None and "history was rewritten" in result.problem.detail
    assert "receipts.jsonl line 1" in str(result.problem)
    forged.dispose()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"leaf_hash": "00" * 32}, "not in the current signed log"),
        ({"index": 4}, "not in the current signed log"),
        ({"index": 99}, "index is not inside its tree head"),
        ({"leaf_hash": "zz"}, "malformed"),
        ({"tree_head": {"size": 4}}, "not signed"),
    ],
)
def test_a_receipt_that_does_not_match_the_log_is_refused(
    engine: Engine,
    template: Template,
    files: tuple[Path, Path],
    change: dict[str, Any],
    words: str,
) -> None:
    heads, receipts = files
    save_receipts(receipts, [template.receipts[5], {**template.receipts[5], **change}])
    result = client.verify_remote(URL, heads, receipts, client=client_for(engine, template.key))
    assert result.problem is not None and words in result.problem.detail, result.describe()
    assert "receipts.jsonl line 2" in str(result.problem)


def test_a_shrunk_log_is_detected(
    service: Service, engine: Engine, key: Ed25519PrivateKey, files: tuple[Path, Path]
) -> None:
    heads, _ = files
    big = json.dumps(signing.sign_head(key, 500, "ab" * 32, "2016-12-15T00:00:00Z"))
    heads.write_text(big + "\n")
    result = client.verify_remote(URL, heads, client=client_for(engine, key))
    assert result.problem is not None and "shrank from 500 to 22" in result.problem.detail


def test_a_changed_server_key_is_detected(
    service: Service,
    engine: Engine,
    key: Ed25519PrivateKey,
    files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    heads, _ = files
    assert client.verify_remote(URL, heads, client=client_for(engine, key)).ok
    other = signing.generate_key(tmp_path / "other.pem")
    with engine.begin() as conn:  # the server re-signs its latest head with a new key
        head = log_store.latest_head(conn)
        assert head is not None
        resigned = signing.sign_head(other, head["size"], head["root"], head["timestamp"])
        conn.execute(set_head_values(head["size"], resigned))
    result = client.verify_remote(URL, heads, client=client_for(engine, other))
    assert (
        result.problem is not None and "not signed by the server's log key" in result.problem.detail
    )
    pinned = client.verify_remote(
        URL, heads, client=client_for(engine, other), public_key_b64=public(key)
    )
    assert pinned.problem is not None and "pinned" in pinned.problem.detail


def set_head_values(size: int, head: dict[str, Any]) -> Any:
    th = schema.tree_heads
    return update(th).where(th.c.size == size).values(signature=head["signature"])


def test_a_head_with_a_bad_signature_is_refused(
    service: Service, engine: Engine, key: Ed25519PrivateKey, files: tuple[Path, Path]
) -> None:
    heads, _ = files
    with engine.begin() as conn:
        set_head(22, signature=FORGED_SIGNATURE)(conn)
    result = client.verify_remote(URL, heads, client=client_for(engine, key))
    assert result.problem is not None and "current head is not signed" in result.problem.detail
    assert not heads.exists()


def test_server_errors_become_problems_not_exceptions(files: tuple[Path, Path]) -> None:
    heads, _ = files
    down = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(503, text="down"))
    )
    result = client.verify_remote(URL, heads, client=down)
    assert result.problem is not None and "answered 503" in result.problem.detail

"""Schema migrations: `deconflict migrate` upgrades a deployment of the previous schema with its
data intact, the head revision is exactly `schema.py`, and no command runs on an old schema.

Every test runs on SQLite and on PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import MetaData, delete, inspect, select, text, update
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from deconflict.api.app import create_app
from deconflict.cli import main
from deconflict.errors import InvalidRequest
from deconflict.record import entries, merkle, signing
from deconflict.record.canonical import canonical_json
from deconflict.service.bootstrap import initialise, is_initialised
from deconflict.service.deployment import Deployment
from deconflict.storage import migrations
from deconflict.storage.database import Database
from deconflict.storage.meta import get_meta, set_meta
from deconflict.storage.migrations import current_revision, head_revision, upgrade
from deconflict.storage.schema import log_entries, log_nodes, metadata, tree_heads
from support import Actor, FakeClock, point, square, volume

# What revisions 0003 (the sealed record, what owners are shown) and 0004 (protection,
# responses, escalation) add, by table.
NEW_COLUMNS = {
    "log_entries": {"sealed", "salt"},
    "notifications": {
        "owner_reason",
        "response",
        "response_comment",
        "responded_at",
        "protection",
        "protection_salt",
        "disclosure",
        "declaration_salt",
        "overdue",
        "escalated_at",
    },
    "declarations": {"justification"},
    "declaration_versions": {"justification"},
}
NEW_TABLES = {"notification_responses", "imported_rows"}
# What revisions 0002 and 0004 add, by table.
NEW_INDEXES = {
    "notifications": {
        "ix_notifications_overdue_by_owner",
        "ix_notifications_overdue",
        "ix_notifications_unescalated",
    },
    "declaration_versions": {"ix_declaration_versions_log_order"},
    "subscriptions": {"ix_subscriptions_active"},
}


@contextmanager
def opened(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.dispose()


def index_names(db_url: str) -> dict[str, set[str]]:
    with opened(db_url) as db, db.read() as conn:
        inspector = inspect(conn)
        return {t: {ix["name"] or "" for ix in inspector.get_indexes(t)} for t in NEW_INDEXES}


def initialise_at(db_url: str, tmp_path: Path, clock: FakeClock, revision: str) -> str:
    """`deconflict init` with the schema at ``revision``; returns the coordinator's token."""
    with opened(db_url) as db:
        done = initialise(
            db,
            tmp_path / "log.key",
            tmp_path / "policy.toml",
            clock=clock,
            schema_revision=revision,
        )
    return done.coordinator_token


def age(db_url: str, tmp_path: Path, revision: str) -> None:
    """Turn a deployment made at the head into the one an older deconflict would have left at
    ``revision``: every leaf in clear (the sealed entry itself), the tree and the heads made
    again over those leaves and signed with the deployment's key, then the schema taken down."""
    key = signing.load_key(tmp_path / "log.key")
    with opened(db_url) as db, db.write() as conn:
        rows = conn.execute(
            select(log_entries.c.idx, log_entries.c.leaf, log_entries.c.sealed).order_by(
                log_entries.c.idx
            )
        ).all()
        stamps = {row.size: row.timestamp for row in conn.execute(select(tree_heads))}
        conn.execute(delete(log_nodes))
        conn.execute(delete(tree_heads))
        frontier = merkle.FrontierStore()
        for row in rows:
            leaf = _as_logged_before_responses(row.sealed or row.leaf)
            digest = merkle.leaf_hash(leaf.encode("utf-8"))
            nodes = merkle.append(frontier, digest)
            conn.execute(
                log_nodes.insert(), [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes]
            )
            conn.execute(
                update(log_entries)
                .where(log_entries.c.idx == row.idx)
                .values(leaf=leaf, leaf_hash=digest, sealed=None, salt=None)
            )
            if row.idx + 1 in stamps:
                size = row.idx + 1
                root = merkle.root(frontier, size).hex()
                conn.execute(
                    tree_heads.insert().values(**signing.sign_head(key, size, root, stamps[size]))
                )
        command.downgrade(migrations._config(conn), revision)


def _as_logged_before_responses(leaf: str) -> str:
    """An acknowledgment's leaf as deconflict logged it before responses (revision 0004):
    without ``response``."""
    entry = json.loads(leaf)
    if entry.get("type") != "notification.acknowledged" or "response" not in entry:
        return leaf
    del entry["response"]
    return canonical_json(entry)


def make_pre_migrations(db_url: str) -> None:
    """Turn a database at revision 0001 into what `init` made before migrations existed:
    the same tables (0001 is that schema), no alembic_version, meta.schema_version "1"."""
    with opened(db_url) as db, db.write() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        set_meta(conn, "schema_version", "1")


@contextmanager
def serving(db_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[TestClient]:
    with (
        opened(db_url) as db,
        TestClient(
            create_app(Deployment(db, tmp_path / "log.key", clock=clock), webhooks=False)
        ) as client,
    ):
        yield client


def as_party(client: TestClient, token: str) -> Actor:
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/v1/me", headers=headers).json()
    return Actor(me["id"], me["name"], me["role"], token, client, headers)


def fill(client: TestClient, coordinator_token: str, clock: FakeClock) -> dict[str, Any]:
    """Use every table: parties, declarations and their versions, conflicts, notifications
    acknowledged and not, subscriptions active and deleted, policy, log and heads."""
    coordinator = as_party(client, coordinator_token)
    tokens = {"coordinator": coordinator_token}
    for ref, name, role in (
        ("north", "Northern Air Force", "operator"),
        ("south", "Southern Air Command", "operator"),
        ("relief", "Relief Without Borders", "humanitarian"),
        ("water", "Clean Water Alliance", "humanitarian"),
    ):
        answer = coordinator.post("/v1/parties", {"name": name, "role": role})
        assert answer.status_code == 201, answer.text
        tokens[ref] = answer.json()["token"]
    cast = {ref: as_party(client, token) for ref, token in tokens.items()}
    area = [volume(square(36.3, 33.5, half=0.3), lower_m=None, upper_m=None, hours=None)]
    kept = cast["water"].post("/v1/subscriptions", {"volumes": area, "kinds": ["site"]})
    dropped = cast["water"].post("/v1/subscriptions", {"volumes": area})
    assert kept.status_code == dropped.status_code == 201, dropped.text
    gone = cast["water"].delete(f"/v1/subscriptions/{dropped.json()['subscription']['id']}")
    assert gone.status_code == 204, gone.text
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))], category="hospital")
    first = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    second = cast["south"].declare_ok("operation", [volume(point(36.05, 34.0))])["declaration"]
    moved = cast["north"].put(
        f"/v1/declarations/{first['id']}",
        {
            "version": first["version"],
            "volumes": [volume(point(36.01, 34.0))],
            "key": [second["version"]],
        },
    )
    assert moved.status_code == 200, moved.text
    [note, *_] = cast["north"].get("/v1/inbox").json()["notifications"]
    acked = cast["north"].post(f"/v1/notifications/{note['id']}/ack", {"comment": "seen"})
    assert acked.status_code == 200, acked.text
    clock.advance(minutes=61)  # the unacknowledged ones are overdue now
    return {"tokens": tokens, "site": site["declaration"], "operation": moved.json()["declaration"]}


def what_parties_see(client: TestClient, made: dict[str, Any]) -> dict[str, Any]:
    """The answers that read each table, as the parties get them."""
    cast = {ref: as_party(client, token) for ref, token in made["tokens"].items()}
    operation, site = made["operation"]["id"], made["site"]["id"]
    seen = {
        "declarations": cast["coordinator"].get("/v1/declarations").json(),
        "conflicts": cast["north"].get(f"/v1/declarations/{operation}/conflicts").json(),
        "overdue (owner)": overdue(cast["relief"]),
        "overdue (all)": overdue(cast["coordinator"]),
        "deliveries": cast["relief"].get(f"/v1/declarations/{site}/deliveries").json(),
        # The owner of an operation is shown the conflict of another operator's with it.
        "deliveries (operator)": cast["north"]
        .get(f"/v1/declarations/{operation}/deliveries")
        .json(),
        "subscriptions": cast["water"].get("/v1/subscriptions").json(),
        "parties": cast["coordinator"].get("/v1/parties").json(),
        "head": client.get("/v1/log/head").json(),
    }
    seen |= {f"inbox of {ref}": actor.get("/v1/inbox").json() for ref, actor in cast.items()}
    return seen


def overdue(actor: Actor) -> list[dict[str, Any]]:
    # Ordered by creation time only: the order of notifications created at one instant (the
    # test's clock stands still) is the query plan's, and the new indexes change the plan.
    found: list[dict[str, Any]] = actor.get("/v1/notifications/overdue").json()["overdue"]
    return sorted(found, key=lambda note: str(note["notification_id"]))


def every_row(
    db_url: str, leave_out: dict[str, set[str]] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as the database has it (reflected: older schemas too), but
    for the columns in ``leave_out``."""
    leave_out = leave_out or {}
    with opened(db_url) as db, db.read() as conn:
        found = MetaData()
        found.reflect(conn)
        return {
            table.name: sorted(
                tuple(
                    repr(value)
                    for name, value in row._mapping.items()
                    if name not in leave_out.get(table.name, set())
                )
                for row in conn.execute(select(table))
            )
            for table in found.sorted_tables
            if table.name != "alembic_version"
        }


def init(db_url: str, tmp_path: Path) -> None:
    # Every file in tmp_path: for PostgreSQL the default policy file is in the working folder.
    files = ["--key-file", str(tmp_path / "log.key"), "--policy", str(tmp_path / "p.toml")]
    made = CliRunner().invoke(main, ["init", "--db", db_url, *files])
    assert made.exit_code == 0, made.output


def migrate(db_url: str) -> Any:
    return CliRunner().invoke(main, ["migrate", "--db", db_url])


# -- upgrading a deployment of the previous schema ----------------------------------------


@pytest.mark.parametrize(
    ("pre_migrations", "shown_as"),
    [
        pytest.param(False, "0001", id="at-revision-0001"),
        # What deconflict 0.1's `init` (create_all) left: the same tables and no revision.
        pytest.param(True, "none (made before migrations)", id="made-before-migrations"),
    ],
)
def test_migrate_upgrades_the_previous_schema_keeping_every_row(
    db_url: str, tmp_path: Path, clock: FakeClock, pre_migrations: bool, shown_as: str
) -> None:
    token = initialise_at(db_url, tmp_path, clock, "head")
    with serving(db_url, tmp_path, clock) as client:
        made = fill(client, token, clock)
        # Reading an inbox delivers its notifications, which is logged: read them all once.
        what_parties_see(client, made)
        seen_before = what_parties_see(client, made)
    assert seen_before["overdue (owner)"] and seen_before["subscriptions"]["subscriptions"]
    shown = seen_before["deliveries (operator)"]["deliveries"]
    assert "conflict" in {d["reason"] for d in shown}  # the migration must show it again
    age(db_url, tmp_path, "0001")
    if pre_migrations:
        make_pre_migrations(db_url)
    rows_before = every_row(db_url)
    assert all(not (index_names(db_url)[t] & new) for t, new in NEW_INDEXES.items())
    with opened(db_url) as db, db.read() as conn:
        old_leaves = list(
            conn.execute(select(log_entries.c.leaf).order_by(log_entries.c.idx)).scalars()
        )
    old_size = len(old_leaves)

    migrated = migrate(db_url)

    assert migrated.exit_code == 0, migrated.output
    assert f"from revision {shown_as} to {head_revision()}" in migrated.stdout
    with opened(db_url) as db:
        assert current_revision(db) == head_revision()
        with db.read() as conn:
            assert get_meta(conn, entries.SEALED_FROM) == str(old_size)
    assert all(new <= index_names(db_url)[t] for t, new in NEW_INDEXES.items())
    # Every row is as it was, but for meta.schema_version, which alembic_version replaces,
    # and meta.sealed_from, where the sealed format starts; the new columns are beside them.
    rows_before["meta"] = [row for row in rows_before["meta"] if "'schema_version'" not in row]
    rows_after = every_row(db_url, NEW_COLUMNS)
    rows_after["meta"] = [row for row in rows_after["meta"] if "'sealed_from'" not in row]
    # The tables 0004 and 0005 create start empty: nothing before them was answered but
    # acknowledged, nor imported.
    assert all(rows_after.pop(name) == [] for name in NEW_TABLES)
    assert rows_after == rows_before
    # The old leaves verify in their old format before any new entry exists.
    verified = CliRunner().invoke(main, ["verify", "--db", db_url])
    assert verified.exit_code == 0, verified.output
    # The head was signed again over the leaves in clear (see `age`); only its size stays.
    head_before = seen_before.pop("head")
    with serving(db_url, tmp_path, clock) as client:
        seen_after = what_parties_see(client, made)
        assert seen_after.pop("head")["size"] == head_before["size"] == old_size
        assert seen_after == seen_before
        # Still deciding on the data: a blind conflicting write is refused, then accepted.
        south = as_party(client, made["tokens"]["south"])
        blind = south.declare("operation", [volume(point(36.02, 34.0))])
        assert blind.status_code == 409, blind.text
        missing = {m["id"]: m["version"] for m in blind.json()["missing"]}
        assert missing[made["operation"]["id"]] == made["operation"]["version"]
        new = south.declare_ok("operation", [volume(point(36.02, 34.0))])["declaration"]
        north = as_party(client, made["tokens"]["north"])
        conflicts = north.get(f"/v1/declarations/{made['operation']['id']}/conflicts").json()
        assert new["id"] in [c["declaration"]["id"] for c in conflicts["conflicts"]]
        size = client.get("/v1/log/head").json()["size"]
        leaves = client.get(f"/v1/log/entries?start=0&end={size}").json()["entries"]
    # The old entries as they were written, in clear; the new ones sealed.
    assert [e["leaf"] for e in leaves[:old_size]] == old_leaves
    assert made["operation"]["id"] in "".join(old_leaves)
    assert {json.loads(e["leaf"])["type"] for e in leaves[old_size:]} == {"sealed"}
    assert new["id"] not in "".join(e["leaf"] for e in leaves)
    verified = CliRunner().invoke(main, ["verify", "--db", db_url])
    assert verified.exit_code == 0, verified.output


def test_migrate_on_an_up_to_date_database_changes_nothing(db_url: str, tmp_path: Path) -> None:
    init(db_url, tmp_path)
    rows = every_row(db_url)

    again = CliRunner().invoke(main, ["migrate"], env={"DECONFLICT_DB": db_url})

    assert again.exit_code == 0, again.output
    assert f"at revision {head_revision()} already: nothing to do" in again.stdout
    assert every_row(db_url) == rows


def test_migrate_refuses_an_uninitialised_database_and_creates_nothing(db_url: str) -> None:
    result = migrate(db_url)
    assert result.exit_code == 1
    assert "not initialised: run `deconflict init" in result.stderr
    with opened(db_url) as db, db.read() as conn:
        assert inspect(conn).get_table_names() == []


def test_migrate_refuses_a_database_of_a_newer_deconflict(
    db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    initialise_at(db_url, tmp_path, clock, "head")
    with opened(db_url) as db, db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    result = migrate(db_url)
    assert result.exit_code == 1
    assert "revision 9999, which this deconflict does not know" in result.stderr
    assert "a newer deconflict migrated it" in result.stderr


# -- no command runs on a schema that is not the head ---------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port already taken: should `serve` get past its checks by mistake, uvicorn fails to
    bind and exits instead of serving for ever."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "verify", "policy show"])
@pytest.mark.parametrize("revision", ["0001", "pre-migrations"])
def test_commands_refuse_a_database_behind_the_head(
    db_url: str, tmp_path: Path, clock: FakeClock, busy_port: int, command: str, revision: str
) -> None:
    # Made at the head and taken down: this code's own writes (init's) read the head's columns.
    initialise_at(db_url, tmp_path, clock, "head")
    age(db_url, tmp_path, "0001")
    if revision == "pre-migrations":
        make_pre_migrations(db_url)
    extra = ["--port", str(busy_port)] if command == "serve" else []
    result = CliRunner().invoke(main, [*command.split(), "--db", db_url, *extra])
    assert result.exit_code == 1
    assert f"this deconflict needs revision {head_revision()}" in result.stderr
    assert f"run `deconflict migrate --db {db_url}`" in result.stderr
    assert "serving" not in result.stderr


def test_serve_refuses_a_database_of_a_newer_deconflict(
    db_url: str, tmp_path: Path, clock: FakeClock, busy_port: int
) -> None:
    initialise_at(db_url, tmp_path, clock, "head")
    with opened(db_url) as db, db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    result = CliRunner().invoke(main, ["serve", "--db", db_url, "--port", str(busy_port)])
    assert result.exit_code == 1
    assert "a newer deconflict migrated it" in result.stderr


# -- the revisions and schema.py ---------------------------------------------------------------


def schema_differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def _sql(clause: Any) -> str:
    # "(notifications.acknowledged_at IS NULL)" and "acknowledged_at IS NULL" are one predicate.
    return re.sub(r"\w+\.", "", str(clause)).replace("(", "").replace(")", "").lower().strip()


def partial_indexes_found(conn: Connection) -> dict[str, str]:
    """Alembic does not compare the WHERE of partial indexes; this does."""
    inspector, option = inspect(conn), f"{conn.dialect.name}_where"
    return {
        index["name"] or "": _sql(index["dialect_options"][option])
        for table in metadata.tables
        for index in inspector.get_indexes(table)
        if index.get("dialect_options", {}).get(option) is not None
    }


def partial_indexes_declared(dialect: str) -> dict[str, str]:
    return {
        index.name or "": _sql(index.dialect_options[dialect]["where"])
        for table in metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }


def test_the_head_revision_is_exactly_schema_py(db_url: str) -> None:
    with opened(db_url) as db:
        upgrade(db)
        with db.read() as conn:
            assert schema_differences(conn) == []
            assert partial_indexes_found(conn) == partial_indexes_declared(conn.dialect.name)
            assert len(partial_indexes_found(conn)) == 4


def test_revision_0001_differs_from_schema_py_by_the_new_indexes_and_columns_only(
    db_url: str,
) -> None:
    with opened(db_url) as db:
        upgrade(db, "0001")
        with db.read() as conn:
            differences = schema_differences(conn)
    found = sorted(
        (change[0], change[1].name)
        if change[0] in ("add_index", "add_table")
        else (change[0], change[2], change[3].name)
        for change in differences
    )
    assert found == sorted(
        [("add_index", name) for names in NEW_INDEXES.values() for name in names]
        + [("add_column", t, name) for t, names in NEW_COLUMNS.items() for name in names]
        + [("add_table", name) for name in NEW_TABLES]
    )


def test_init_creates_the_schema_at_the_head(db_url: str, tmp_path: Path) -> None:
    init(db_url, tmp_path)
    with opened(db_url) as db:
        assert current_revision(db) == head_revision()
        with db.read() as conn:
            assert schema_differences(conn) == []


def test_init_works_where_an_older_deconflict_only_looked(
    db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    # Before migrations, asking whether a database was initialised created an empty `meta`.
    with opened(db_url) as db:
        metadata.tables["meta"].create(db.engine)
        assert not is_initialised(db)
    initialise_at(db_url, tmp_path, clock, "head")
    with opened(db_url) as db:
        assert is_initialised(db)
        assert current_revision(db) == head_revision()


def test_a_database_with_tables_but_no_revision_is_left_alone(db_url: str) -> None:
    with opened(db_url) as db:
        metadata.tables["parties"].create(db.engine)
        with pytest.raises(InvalidRequest, match="no schema revision"):
            upgrade(db)
        with db.read() as conn:
            assert inspect(conn).get_table_names() == ["parties"]

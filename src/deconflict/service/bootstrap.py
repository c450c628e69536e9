"""Creating a deployment (``deconflict init``) and changing its policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deconflict.clock import Clock, system_clock
from deconflict.errors import AlreadyInitialised, Forbidden, InvalidRequest
from deconflict.policy import default_policy_text, parse_policy
from deconflict.record import entries
from deconflict.record.signing import generate_key, public_key_b64
from deconflict.service.deployment import Deployment, Write
from deconflict.service.parties import Party, new_id, register_party
from deconflict.storage import parties, policies
from deconflict.storage.database import Database
from deconflict.storage.meta import POLICY_ID, get_meta, has_meta, set_meta
from deconflict.storage.migrations import upgrade


@dataclass(frozen=True)
class Initialised:
    coordinator_token: str
    log_public_key: str
    policy_file: Path
    policy_written: bool
    key_file: Path


def default_policy_file(db_url: str) -> Path:
    if db_url.startswith("sqlite:///"):
        return Path(db_url.removeprefix("sqlite:///") + ".policy.toml")
    return Path("deconflict-policy.toml")


def is_initialised(db: Database) -> bool:
    """Whether ``deconflict init`` ran on ``db``; looks without creating anything."""
    with db.read() as conn:
        return has_meta(conn) and get_meta(conn, "initialised") is not None


def initialise(
    db: Database,
    key_file: Path,
    policy_file: Path,
    *,
    coordinator_name: str = "Coordinator",
    clock: Clock = system_clock,
    schema_revision: str = "head",
) -> Initialised:
    """Create the schema, the signing key, the policy and the coordinator party.

    ``clock`` stamps these first entries of the record (a demo that loads a back-dated
    scenario initialises earlier still, so the record's times never go backwards).
    ``schema_revision`` is the migration to create the schema at: the head, except in tests
    of ``deconflict migrate`` that need a deployment of an older revision."""
    if is_initialised(db):
        raise AlreadyInitialised(f"the database {db.url} is initialised already")
    if key_file.exists():
        raise AlreadyInitialised(
            f"a signing key exists already at {key_file}; it belongs to another deployment. "
            "Move it away or choose another path with --key-file"
        )
    written = False
    if policy_file.exists():
        text = policy_file.read_text("utf-8")
    else:
        text = default_policy_text()
        policy_file.write_text(text, "utf-8")
        written = True
    parse_policy(text)
    upgrade(db, schema_revision)
    key = generate_key(key_file)
    deployment = Deployment(db, key_file, clock=clock)
    with deployment.writing() as write:
        set_meta(write.conn, "initialised", write.at)
        set_meta(write.conn, "log_public_key", public_key_b64(key))
        coordinator, token, _receipt, _secret = register_party(
            write, name=coordinator_name, role="coordinator", actor=None
        )
        apply_policy(write, text, coordinator)
        write.journal.head()
    return Initialised(
        coordinator_token=token,
        log_public_key=public_key_b64(key),
        policy_file=policy_file,
        policy_written=written,
        key_file=key_file,
    )


def apply_policy(write: Write, text: str, actor: Party) -> str:
    """Put a policy in force and log it; returns its id."""
    if actor.role != "coordinator":
        raise Forbidden("only the coordinator sets the policy")
    parse_policy(text)
    policy_id = new_id("pol")
    row = policies.insert(write.conn, policy_id=policy_id, toml=text, actor=actor.id, at=write.at)
    set_meta(write.conn, POLICY_ID, policy_id)
    write.journal.record(entries.policy_changed_entry, row)
    return policy_id


def policy_text(deployment: Deployment) -> str:
    with deployment.db.read() as conn:
        policy_id = get_meta(conn, POLICY_ID)
        if policy_id is None:
            raise InvalidRequest("the database is not initialised: run `deconflict init`")
        return policies.toml_of(conn, policy_id)


def first_coordinator(deployment: Deployment) -> Party:
    with deployment.db.read() as conn:
        coordinators = parties.active(conn, role="coordinator")
    if not coordinators:
        raise InvalidRequest("no coordinator: the database is not initialised")
    return Party.of_row(coordinators[0])

"""A running deployment: its database, policy, signing key, clock and conflict index.

Every API process and CLI command works through one ``Deployment``. Write operations run in
``Deployment.writing()``: one serialised transaction in which the index is first brought up to
date with every committed change (from any process), so a decision never rests on stale data.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.engine import Connection

from deconflict.clock import Clock, format_timestamp, system_clock
from deconflict.conflicts import ConflictIndex, Restricts, Subject
from deconflict.errors import InvalidRequest
from deconflict.journal import Journal
from deconflict.policy import Policy, parse_policy
from deconflict.signing import load_key
from deconflict.storage.database import Database
from deconflict.storage.meta import read_counters
from deconflict.storage.schema import declarations, parties, policy_versions
from deconflict.volumes import volumes_from_json


@dataclass
class Write:
    """What a write operation gets: its connection, its instant and the record's journal."""

    conn: Connection
    now: datetime
    journal: Journal

    @property
    def at(self) -> str:
        return format_timestamp(self.now)


class Deployment:
    def __init__(
        self,
        db: Database,
        key_file: Path,
        *,
        clock: Clock = system_clock,
        tile_url: str | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.tile_url = tile_url
        self.key_file = key_file
        self._key: Ed25519PrivateKey | None = None
        self.index = ConflictIndex()
        self._sync_lock = threading.Lock()
        self._policy: tuple[str, Policy] | None = None
        # Parties by token hash, valid while ``parties_seq`` has not moved.
        self.token_cache: dict[str, tuple[int, Any]] = {}
        # Bumped after every write of this process, so event streams look at the database
        # at once after a local write (and every few seconds for other processes' writes).
        self.generation = 0

    @property
    def key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = load_key(self.key_file)
        return self._key

    def now(self) -> datetime:
        return self.clock()

    # -- policy -------------------------------------------------------------------------

    def policy(self, conn: Connection) -> Policy:
        """The policy in force, cached until any process applies another one."""
        policy_id = read_counters(conn).policy_id
        if policy_id is None:
            raise InvalidRequest("the database is not initialised: run `deconflict init`")
        cached = self._policy
        if cached is not None and cached[0] == policy_id:
            return cached[1]
        text = conn.execute(
            select(policy_versions.c.toml).where(policy_versions.c.id == policy_id)
        ).scalar_one()
        policy = parse_policy(text)
        self._policy = (policy_id, policy)
        return policy

    def current_policy(self) -> Policy:
        with self.db.read() as conn:
            return self.policy(conn)

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[Write]:
        with self.db.write() as conn:
            self.sync_index(conn)
            now = self.now()
            write = Write(
                conn=conn, now=now, journal=Journal(conn, self.key, format_timestamp(now))
            )
            yield write
            # Every transaction that logged something ends with a signed head over it, so
            # the latest head always covers the whole log.
            if write.journal.unsigned:
                write.journal.head()
        # Committed: let the index and the streams see it.
        with self.db.read() as conn:
            self.sync_index(conn)
        self.generation += 1

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.db.read() as conn:
            self.sync_index(conn)
            yield conn

    # -- the index ----------------------------------------------------------------------

    def sync_index(self, conn: Connection) -> None:
        """Apply every committed declaration change the index has not seen yet."""
        if read_counters(conn).change_seq <= self.index.applied_seq:
            return  # the usual case: one small query, nothing to replay
        with self._sync_lock:
            rows = conn.execute(
                select(declarations, parties.c.role.label("owner_role"))
                .join(parties, parties.c.id == declarations.c.owner)
                .where(declarations.c.change_seq > self.index.applied_seq)
                .order_by(declarations.c.change_seq)
            ).mappings()
            for row in rows:
                if row["state"] == "active":
                    self.index.put(subject_from_row(row))
                else:
                    self.index.remove(row["id"])
                self.index.applied_seq = max(self.index.applied_seq, row["change_seq"])


def subject_from_row(row: Any) -> Subject:
    """The rule's view of a stored declaration row (joined with its owner's role)."""
    return Subject(
        id=row["id"],
        kind=row["kind"],
        owner=row["owner"],
        owner_role=row["owner_role"],
        version=row["version"],
        category=row["category"],
        restricts=Restricts.from_json(json.loads(row["restricts"]) if row["restricts"] else None),
        volumes=tuple(volumes_from_json(json.loads(row["volumes"]))),
    )

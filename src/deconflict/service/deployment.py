"""A running deployment: its database, policy, signing key, clock and conflict index.

Every API process and CLI command works through one ``Deployment``. Write operations run in
``Deployment.writing()``: one serialised transaction in which the index is first brought up to
date with every committed change (from any process), so a decision never rests on stale data.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection

from deconflict.clock import Clock, format_timestamp, system_clock
from deconflict.engine.index import ConflictIndex
from deconflict.engine.rows import declared_of_row
from deconflict.engine.rule import Declared, Subject
from deconflict.errors import InvalidRequest
from deconflict.policy import Policy, parse_policy
from deconflict.record.journal import Journal
from deconflict.record.signing import load_key
from deconflict.service import readback
from deconflict.storage import policies
from deconflict.storage.database import Database
from deconflict.storage.declarations import streamed_changes
from deconflict.storage.meta import Counters, peek_counters, read_counters
from deconflict.volumes import volumes_from_json

logger = logging.getLogger("deconflict.service.deployment")

# Where ``reading()`` keeps the counters it read, for the rest of its transaction.
_COUNTERS = "deconflict.counters"


RECENT_VERTICES: Final = 65_536
"""Vertices of the versions this process wrote last that it keeps parsed (``Deployment.recent``),
each volume counted as 8 more: a parsed volume takes about 2.4 KB and 0.3 KB a vertex, so
some 20 MB at most, whatever the uptime."""


@dataclass(frozen=True)
class Change:
    """A declaration change a write made, as this process already holds it: what the index
    takes once the write commits, instead of reading the row back and decoding it again.
    ``subject`` is the version written, parsed (and its shapes encoded by its conflict
    search); ``removed`` when the change takes the declaration out of the index (a
    withdrawal)."""

    seq: int
    subject: Subject
    removed: bool

    @property
    def declared(self) -> Declared:
        """What the index keeps of the version besides its volumes."""
        return self.subject.declared()


class RecentVersions:
    """The versions this process wrote last, parsed, by declaration id: an update or a
    withdrawal, often the next request of the party that wrote the version, starts from its
    shapes instead of parsing the stored row again (pydantic and shapely, the slow part of
    a write). Bounded by their size (``RECENT_VERTICES``); thread-safe."""

    def __init__(self, limit: int = RECENT_VERTICES) -> None:
        self._limit = limit
        self._held: OrderedDict[str, tuple[Subject, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, declaration_id: str, version: str) -> Subject | None:
        with self._lock:
            held = self._held.get(declaration_id)
        return held[0] if held is not None and held[0].version == version else None

    def note(self, change: Change) -> None:
        identifier = str(change.subject.id)
        size = sum(v.shape.vertex_count + 8 for v in change.subject.volumes)
        with self._lock:
            old = self._held.pop(identifier, None)
            if old is not None:
                self._size -= old[1]
            if change.removed or size > self._limit:
                return
            self._held[identifier] = (change.subject, size)
            self._size += size
            while self._size > self._limit:
                _, (_, dropped) = self._held.popitem(last=False)
                self._size -= dropped


@dataclass
class Write:
    """What a write operation gets: its connection, its instant and the record's journal;
    ``changes`` collects the declaration changes it makes (see ``Change``)."""

    conn: Connection
    now: datetime
    journal: Journal
    changes: list[Change] = field(default_factory=list)

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
        # Parties by token hash, valid while ``parties_seq`` has not moved (only tokens
        # that authenticated are kept, so it holds at most one entry per party).
        self._token_cache: dict[str, Any] = {}
        self._parties_seq = -1
        self._parties_lock = threading.Lock()
        # Bumped after every write of this process, so event streams look at the database
        # at once after a local write (and every few seconds for other processes' writes).
        self.generation = 0
        self._recent = RecentVersions()

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
        policy_id = self.counters(conn).policy_id
        if policy_id is None:
            raise InvalidRequest("the database is not initialised: run `deconflict init`")
        cached = self._policy
        if cached is not None and cached[0] == policy_id:
            return cached[1]
        policy = parse_policy(policies.toml_of(conn, policy_id))
        self._policy = (policy_id, policy)
        return policy

    def counters(self, conn: Connection) -> Counters:
        """The counters as this transaction sees them (read once by ``reading()``)."""
        counters: Counters | None = conn.info.get(_COUNTERS)
        return counters if counters is not None else read_counters(conn)

    def current_policy(self) -> Policy:
        with self.db.read() as conn:
            return self.policy(conn)

    def known_policy(self) -> Policy | None:
        """The policy as this process last saw it, without asking the database (``None``
        before it has seen one): for guards that run before a request is read, such as the
        body limit, and must not block."""
        cached = self._policy
        return cached[1] if cached is not None else None

    def fresh(self) -> tuple[Counters, Policy]:
        """The counters and the policy in force, with the index up to date: for a request
        that needs nothing else from the database. When no cache is stale (the usual case)
        this is one statement, outside any transaction."""
        counters = peek_counters(self.db)
        cached = self._policy
        if (
            counters.change_seq > self.index.applied_seq
            or cached is None
            or cached[0] != counters.policy_id
        ):
            with self.reading() as conn:
                return conn.info[_COUNTERS], self.policy(conn)
        return counters, cached[1]

    # -- parties ------------------------------------------------------------------------

    def cached_party(self, counters: Counters, token_hash: str) -> tuple[Any | None, int]:
        """The party of a token seen before, while no party was registered or revoked since
        (by any process), else ``None``; and the ``parties_seq`` this answer rests on, for
        ``remember_party``."""
        seq = counters.parties_seq
        with self._parties_lock:
            if seq > self._parties_seq:
                self._token_cache.clear()
                self._parties_seq = seq
            elif seq < self._parties_seq:
                return None, seq  # an older snapshot than the cache's: ask the database
            return self._token_cache.get(token_hash), seq

    def remember_party(self, token_hash: str, party: Any, seq: int) -> None:
        """Cache a party read at ``parties_seq == seq``, unless the cache has moved on (a
        concurrent request saw a registration or a revocation since)."""
        with self._parties_lock:
            if seq == self._parties_seq:
                self._token_cache[token_hash] = party

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[Write]:
        with self.db.write() as conn:
            counters = read_counters(conn)
            self._sync_to(conn, counters)
            now = self.now()
            write = Write(
                conn=conn, now=now, journal=Journal(conn, self.key, format_timestamp(now))
            )
            yield write
            # Nothing commits that the index, the API or a later write could not read back.
            proven = readback.prove_declarations(conn, counters.change_seq)
            # Every transaction that logged something ends with a signed head over it, so
            # the latest head always covers the whole log.
            if write.journal.unsigned:
                write.journal.head()
        # Committed: let the index and the streams see it. Should the index fail to take
        # it, the write still stands (its answer must say so): the failure is logged, and
        # every request that needs the index retries the sync, and fails, until it works.
        for change in write.changes:
            self._recent.note(change)
        try:
            if [c.seq for c in write.changes] == proven:  # it noted every change it made
                self._take_changes(counters.change_seq, write.changes)
            with self.db.read() as conn:
                self.sync_index(conn)
        except Exception:
            logger.exception("the conflict index could not take a committed write")
        self.generation += 1

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction, with the index, the policy and the token cache brought up to
        date first; the counters are read once for all of them."""
        with self.db.read() as conn:
            counters = read_counters(conn)
            self._sync_to(conn, counters)
            # Kept for this transaction only (conn.info outlives it, in the pool).
            conn.info[_COUNTERS] = counters
            try:
                yield conn
            finally:
                conn.info.pop(_COUNTERS, None)

    def recent(self, declaration_id: str, version: str) -> Subject | None:
        """``version`` of a declaration as this process parsed it when it wrote it, if it
        is among the last it wrote; else None (read the row: ``subject_from_row``)."""
        return self._recent.get(declaration_id, version)

    # -- the index ----------------------------------------------------------------------

    def sync_index(self, conn: Connection) -> None:
        """Apply every committed declaration change the index has not seen yet."""
        self._sync_to(conn, read_counters(conn))

    def _take_changes(self, since_seq: int, changes: Sequence[Change]) -> None:
        """Apply a committed write's own changes (``since_seq`` the committed counter when
        it took the write lock) from what this process holds of them: the volumes it parsed
        and encoded, without reading the rows again, decoding their JSON or encoding their
        geometry. Only while the index stands exactly at ``since_seq``: the changes of
        others that came before (none can, under the lock) or after are replayed from the
        database by the sync, in order. The index ends as a sync of the same rows would
        leave it."""
        with self._sync_lock:
            if self.index.applied_seq != since_seq:
                return
            for change in changes:
                if change.removed:
                    self.index.remove(str(change.subject.id))
                else:
                    self.index.put_parsed(change.declared, change.subject.volumes)
                self.index.applied_seq = change.seq

    def _sync_to(self, conn: Connection, counters: Counters) -> None:
        if counters.change_seq <= self.index.applied_seq:
            return  # the usual case: one small query, nothing to replay
        with self._sync_lock:
            applied = self.index.applied_seq
            # The rows were validated, and read back, when they were written: the index
            # reads their JSON directly, without pydantic or shapely. Should one fail even
            # so, nothing after it is applied and applied_seq stays before it: the next
            # request tries again, and no answer rests on an index that skipped a change.
            # Streamed: a restart replays every stored declaration, a million rows and
            # more, which need not all sit in memory at once.
            try:
                with streamed_changes(conn, applied, batch=10_000) as rows:
                    self.index.apply_rows(rows)
            except Exception:
                logger.exception(
                    "the conflict index could not apply the declaration changes after "
                    "change_seq %d (it holds those up to %d); retrying on the next request",
                    applied,
                    self.index.applied_seq,
                )
                raise


def subject_from_row(row: Any) -> Subject:
    """The rule's full view of a stored declaration row (joined with its owner's role),
    shapes included: for comparing a declaration's versions."""
    volumes = tuple(volumes_from_json(json.loads(row["volumes"])))
    return declared_of_row(row).with_volumes(volumes)

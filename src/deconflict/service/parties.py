"""Parties, their roles and their bearer tokens.

Tokens are random 256-bit secrets shown once, at registration. Only their SHA-256 is stored;
a presented token is hashed and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy.engine import Connection, RowMapping

from deconflict.errors import Forbidden, NotFound, Unauthorized
from deconflict.policy import Role
from deconflict.record import entries
from deconflict.service.deployment import Deployment, Write
from deconflict.storage import parties
from deconflict.storage.meta import PARTIES_SEQ, Counters, increment


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    role: str

    @classmethod
    def of_row(cls, row: RowMapping) -> Party:
        return cls(id=row["id"], name=row["name"], role=row["role"])


class Registered(NamedTuple):
    """A party just registered, with what is shown to its registrar once: its token, and the
    secret of its webhook (None without one); and the receipt of its record entry."""

    party: Party
    token: str
    receipt: dict[str, Any]
    webhook_secret: str | None


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def register_party(
    write: Write, *, name: str, role: Role, actor: str | None, webhook_url: str | None = None
) -> Registered:
    """Create a party and log it."""
    party = Party(id=new_id("pty"), name=name, role=role)
    token = secrets.token_urlsafe(32)
    webhook_secret = secrets.token_hex(32) if webhook_url else None
    row = parties.insert(
        write.conn,
        {
            "id": party.id,
            "name": name,
            "role": role,
            "token_hash": hash_token(token),
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
            "created_at": write.at,
            "created_by": actor or party.id,
        },
    )
    increment(write.conn, PARTIES_SEQ)
    index = write.journal.record(entries.party_registered_entry, row)
    return Registered(party, token, write.journal.receipt(index), webhook_secret)


def authenticate(
    deployment: Deployment, token: str | None, counters: Counters | None = None
) -> Party:
    """The party holding ``token``; 401 for a missing, unknown or revoked one.

    ``counters`` read by the caller in this request (``Deployment.fresh``) save a read when
    the token is in the cache."""
    if not token:
        raise Unauthorized("send `Authorization: Bearer <token>`")
    # Looked up by hash: how long a look-up takes tells nothing of the token itself.
    digest = hash_token(token)
    if counters is not None:
        cached, _ = deployment.cached_party(counters, digest)
        if cached is not None:
            return cast(Party, cached)
    with deployment.reading() as conn:
        cached, seq = deployment.cached_party(deployment.counters(conn), digest)
        if cached is not None:
            return cast(Party, cached)
        row = parties.by_token_hash(conn, digest)
    # The lookup is by hash; the comparison below is constant-time all the same, so that no
    # timing difference tells how much of a hash matched.
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        raise Unauthorized("unknown token")
    if row["revoked_at"] is not None:
        raise Unauthorized("this party's token has been revoked")
    party = Party.of_row(row)
    deployment.remember_party(digest, party, seq)
    return party


def list_parties(conn: Connection) -> list[Party]:
    return [Party.of_row(row) for row in parties.active(conn)]


def get_party(conn: Connection, party_id: str) -> Party:
    row = parties.find(conn, party_id)
    if row is None:
        raise NotFound(f"no party {party_id}")
    return Party.of_row(row)


def revoke_party(write: Write, party_id: str, actor: Party) -> dict[str, Any]:
    if actor.role != "coordinator":
        raise Forbidden("only the coordinator revokes parties")
    if party_id == actor.id:
        raise Forbidden("the coordinator cannot revoke itself")
    get_party(write.conn, party_id)
    row = parties.revoke(write.conn, party_id, write.at, actor.id)
    increment(write.conn, PARTIES_SEQ)
    index = write.journal.record(entries.party_revoked_entry, row)
    return write.journal.receipt(index)


def set_webhook(write: Write, party: Party, url: str | None) -> str | None:
    """Set or clear the caller's webhook; returns the new signing secret (shown once)."""
    secret = secrets.token_hex(32) if url else None
    parties.set_webhook(write.conn, party.id, url, secret)
    return secret

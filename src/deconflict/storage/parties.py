"""The SQL of parties: registration, revocation, tokens and webhooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from deconflict.storage import keyed
from deconflict.storage.schema import parties


def insert(conn: Connection, values: dict[str, Any]) -> RowMapping:
    """Store a party; returns it as stored."""
    return keyed.insert(conn, parties, values)


def get(conn: Connection, party_id: str) -> RowMapping:
    """The party, which must exist."""
    return keyed.get(conn, parties, party_id)


def find(conn: Connection, party_id: str) -> RowMapping | None:
    return keyed.find(conn, parties, party_id)


def by_token_hash(conn: Connection, digest: str) -> RowMapping | None:
    """The party whose token hashes to ``digest``, revoked or not."""
    return (
        conn.execute(select(parties).where(parties.c.token_hash == digest)).mappings().one_or_none()
    )


def active(conn: Connection, *, role: str | None = None) -> list[RowMapping]:
    """The parties not revoked (of ``role``, when given), oldest first."""
    query = select(parties).where(parties.c.revoked_at.is_(None))
    if role is not None:
        query = query.where(parties.c.role == role)
    return list(conn.execute(query.order_by(parties.c.created_at)).mappings())


def active_except(conn: Connection, party_id: str) -> list[RowMapping]:
    """``(id, role, webhook_url)`` of every party not revoked but ``party_id``, by creation
    then id: the order in which a change's recipients are numbered."""
    return list(
        conn.execute(
            select(parties.c.id, parties.c.role, parties.c.webhook_url)
            .where(parties.c.revoked_at.is_(None), parties.c.id != party_id)
            .order_by(parties.c.created_at, parties.c.id)
        ).mappings()
    )


def revoke(conn: Connection, party_id: str, at: str, by: str) -> RowMapping:
    """Revoke the party (a second revocation changes nothing); returns it as stored."""
    conn.execute(
        update(parties)
        .where(parties.c.id == party_id, parties.c.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by)
    )
    return get(conn, party_id)


def set_webhook(conn: Connection, party_id: str, url: str | None, secret: str | None) -> None:
    conn.execute(
        update(parties)
        .where(parties.c.id == party_id)
        .values(webhook_url=url, webhook_secret=secret)
    )


def party_exists(conn: Connection, party_id: str) -> bool:
    """Whether ``party_id`` is a registered party (revoked or not): what a restriction may
    name in ``restricts.parties``."""
    query = select(parties.c.id).where(parties.c.id == party_id)
    return conn.execute(query).first() is not None

"""The SQL of subscriptions: a party's areas of interest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from deconflict.storage import keyed
from deconflict.storage.schema import subscriptions

_active = subscriptions.c.deleted_at.is_(None)


def insert(conn: Connection, values: dict[str, Any]) -> RowMapping:
    """Store a subscription; returns it as stored."""
    return keyed.insert(conn, subscriptions, values)


def get(conn: Connection, subscription_id: str) -> RowMapping:
    """The subscription (deleted or not), which must exist."""
    return keyed.get(conn, subscriptions, subscription_id)


def active_of(conn: Connection, party: str) -> list[RowMapping]:
    """The party's subscriptions not deleted, oldest first."""
    query = select(subscriptions).where(subscriptions.c.party == party, _active)
    return list(conn.execute(query.order_by(subscriptions.c.created_at)).mappings())


def active_but_of(conn: Connection, party: str) -> list[RowMapping]:
    """Every subscription not deleted, but ``party``'s own."""
    query = select(subscriptions).where(_active, subscriptions.c.party != party)
    return list(conn.execute(query).mappings())


def all_active(conn: Connection) -> list[RowMapping]:
    """Every subscription not deleted, by id."""
    query = select(subscriptions).where(_active).order_by(subscriptions.c.id)
    return list(conn.execute(query).mappings())


def delete(conn: Connection, subscription_id: str, party: str, at: str) -> bool:
    """Mark the party's subscription deleted; False when it has none of that id (or it was
    deleted already)."""
    result = conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id, subscriptions.c.party == party, _active)
        .values(deleted_at=at)
    )
    return bool(result.rowcount)

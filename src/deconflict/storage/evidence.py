"""The SQL of an evidence pack (``service.evidence``): every version of a declaration, and
the protection alerts about a protected declaration (whose rows name the operation, so
``notifications.of_declaration`` of the site does not find them)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from deconflict.storage.schema import declaration_versions, notifications


def versions_of(conn: Connection, declaration_id: str) -> list[RowMapping]:
    """Every version of the declaration, in log order (the order of its version chain)."""
    dv = declaration_versions
    query = select(dv).where(dv.c.declaration_id == declaration_id).order_by(dv.c.log_index)
    return list(conn.execute(query).mappings())


def protection_alerts_about(conn: Connection, protected_id: str) -> list[RowMapping]:
    """The protection alerts whose protected declaration is ``protected_id``, by creation and
    id. The alert's ``protection`` column is JSON text naming that declaration: a LIKE on the
    id narrows the rows on both backends (ids are random: rarely a false match), and the
    parsed document decides."""
    n = notifications
    query = (
        select(n)
        .where(n.c.reason == "protection", n.c.protection.contains(protected_id, autoescape=True))
        .order_by(n.c.created_at, n.c.id)
    )
    return [
        row
        for row in conn.execute(query).mappings()
        if json.loads(row["protection"])["declaration"]["id"] == protected_id
    ]

"""The SQL of policy versions: every policy the deployment has had, as the TOML applied."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from deconflict.storage import keyed
from deconflict.storage.schema import policy_versions


def insert(conn: Connection, *, policy_id: str, toml: str, actor: str, at: str) -> RowMapping:
    """Store a policy version; returns it as stored."""
    values = {"id": policy_id, "toml": toml, "actor": actor, "at": at}
    return keyed.insert(conn, policy_versions, values)


def get(conn: Connection, policy_id: str) -> RowMapping:
    """The policy version, which must exist."""
    return keyed.get(conn, policy_versions, policy_id)


def toml_of(conn: Connection, policy_id: str) -> str:
    """The TOML text of the policy version, which must exist."""
    return str(
        conn.execute(
            select(policy_versions.c.toml).where(policy_versions.c.id == policy_id)
        ).scalar_one()
    )

"""The sealed record and what a declaration's owner is shown of its notifications.

- ``log_entries.sealed`` and ``log_entries.salt``: from this revision on, every entry about
  something that not every party may see (declarations, notifications and their deliveries
  and acknowledgments, subscriptions) enters the log as a *sealed* leaf,
  ``{"type": "sealed", "at", "commitment"}``, where ``commitment`` is the salted commitment
  to the entry in its earlier, clear form. The clear form and the salt are kept here.
- ``meta.sealed_from``: the index of the first entry written in that format, i.e. the log's
  size when this migration ran (0 on a new deployment). Entries already in a log cannot
  change: ``deconflict verify`` checks the entries below this index in the earlier clear
  format and demands the sealed format from it on (docs/record.md, "Formats").
- ``notifications.owner_reason``: the reason a declaration's owner is shown for a delivery
  (``GET /v1/declarations/{id}/deliveries``, ``/v1/notifications/overdue``), or null when
  the owner is not shown it at all. Notifications made before this revision cannot tell
  whether their conflict was visible to the owner, so they are shown to the owner only when
  they were, or are now, broadcast to the recipient's role by the policy: both are public.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import tomllib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLES = ("operator", "humanitarian", "coordinator", "observer")


def upgrade() -> None:
    with op.batch_alter_table("log_entries") as batch:
        batch.add_column(sa.Column("sealed", sa.Text, nullable=True))
        batch.add_column(sa.Column("salt", sa.String(64), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("owner_reason", sa.String(16), nullable=True))
    conn = op.get_bind()
    _show_broadcasts_to_owners(conn)
    size = conn.execute(sa.text("SELECT coalesce(max(idx) + 1, 0) FROM log_entries")).scalar()
    conn.execute(
        sa.text("INSERT INTO meta (key, value) VALUES ('sealed_from', :size)"),
        {"size": str(size)},
    )


def _show_broadcasts_to_owners(conn: sa.Connection) -> None:
    conn.execute(
        sa.text("UPDATE notifications SET owner_reason = 'broadcast' WHERE reason = 'broadcast'")
    )
    for kind, roles in _broadcast_table(conn).items():
        wanted = ROLES if "*" in roles else tuple(r for r in roles if r in ROLES)
        if not wanted:
            continue
        conn.execute(
            sa.text(
                "UPDATE notifications SET owner_reason = 'broadcast' "
                "WHERE owner_reason IS NULL AND declaration_kind = :kind AND recipient IN "
                "(SELECT id FROM parties WHERE role IN :roles)"
            ).bindparams(sa.bindparam("roles", expanding=True)),
            {"kind": kind, "roles": list(wanted)},
        )


def _broadcast_table(conn: sa.Connection) -> dict[str, list[str]]:
    """The policy in force's ``[broadcast]`` table, read as TOML here: a migration must not
    depend on code that later versions change."""
    text = conn.execute(
        sa.text(
            "SELECT toml FROM policy_versions WHERE id = "
            "(SELECT value FROM meta WHERE key = 'policy_id')"
        )
    ).scalar()
    if text is None:
        return {}
    table = tomllib.loads(text).get("broadcast", {})
    return {str(k): [str(r) for r in v] for k, v in table.items() if isinstance(v, list)}


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM meta WHERE key = 'sealed_from'"))
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("owner_reason")
    with op.batch_alter_table("log_entries") as batch:
        batch.drop_column("salt")
        batch.drop_column("sealed")

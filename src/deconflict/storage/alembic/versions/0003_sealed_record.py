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
  the owner is not shown it at all. Notifications made before this revision do not record
  which declaration they conflicted with; they are shown to the owner as ``broadcast`` when
  they were, or are now, broadcast to the recipient's role (both public), and as
  ``conflict`` when the recipient's role declares only kinds the owner's role may see under
  the policy in force (so the conflicting declaration, whichever it was, is visible to the
  owner). Others are not shown to the owner: a hidden row is safe, a leaked one is not.

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
# The kinds each role declares (deconflict.policy.DECLARED_BY, frozen here).
DECLARES = {
    "operator": ("operation",),
    "humanitarian": ("site", "movement"),
    "coordinator": ("restriction",),
    "observer": (),
}


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
    policy = _policy(conn)
    _show_visible_conflicts(conn, policy.get("visibility", {}))
    conn.execute(
        sa.text(
            "UPDATE notifications SET owner_reason = 'broadcast' "
            "WHERE owner_reason IS NULL AND reason = 'broadcast'"
        )
    )
    for kind, roles in _roles_by_kind(policy.get("broadcast", {})).items():
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


def _show_visible_conflicts(conn: sa.Connection, visibility: object) -> None:
    seen_by = _roles_by_kind(visibility)

    def sees(owner_role: str, kind: str) -> bool:
        roles = seen_by.get(kind, [])
        return owner_role == "coordinator" or "*" in roles or owner_role in roles

    for owner_role in ROLES:
        for recipient_role, kinds in DECLARES.items():
            if not kinds or not all(sees(owner_role, kind) for kind in kinds):
                continue
            conn.execute(
                sa.text(
                    "UPDATE notifications SET owner_reason = 'conflict' "
                    "WHERE reason = 'conflict' "
                    "AND declaration_owner IN (SELECT id FROM parties WHERE role = :owner) "
                    "AND recipient IN (SELECT id FROM parties WHERE role = :recipient)"
                ),
                {"owner": owner_role, "recipient": recipient_role},
            )


def _policy(conn: sa.Connection) -> dict[str, object]:
    """The policy in force, read as TOML here: a migration must not depend on code that later
    versions change."""
    text = conn.execute(
        sa.text(
            "SELECT toml FROM policy_versions WHERE id = "
            "(SELECT value FROM meta WHERE key = 'policy_id')"
        )
    ).scalar()
    return {} if text is None else tomllib.loads(text)


def _roles_by_kind(table: object) -> dict[str, list[str]]:
    if not isinstance(table, dict):
        return {}
    return {str(k): [str(r) for r in v] for k, v in table.items() if isinstance(v, list)}


def downgrade() -> None:
    # For tests of the migration: entries already sealed stay sealed, and a deconflict of
    # revision 0002 would refuse them in `verify`. The record never goes back.
    op.get_bind().execute(sa.text("DELETE FROM meta WHERE key = 'sealed_from'"))
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("owner_reason")
    with op.batch_alter_table("log_entries") as batch:
        batch.drop_column("salt")
        batch.drop_column("sealed")

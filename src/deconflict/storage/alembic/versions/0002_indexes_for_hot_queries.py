"""Indexes for the queries that scan whole tables once a deployment is large.

- ``ix_notifications_overdue_by_owner`` and ``ix_notifications_overdue``: the overdue views
  (``notifications.overdue``) look for unacknowledged notifications older than the deadline,
  of one owner's declarations or of all. Only unacknowledged rows are indexed (a partial
  index), so the index stays the size of the backlog, not of the whole history.
- ``ix_declaration_versions_log_order``: the version a new one replaces
  (``entries.previous_declaration_version``, on every update and every ``verify``) and the
  latest logged version of each declaration (``audit``) are found by log order.
- ``ix_subscriptions_active``: every write matches the active subscriptions
  (``subscriptions.subscribers_touched``) and a party lists its own; deleted ones, which
  only accumulate, are left out of the index.

Plain ``CREATE INDEX`` inside the migration's transaction: it is atomic, but on PostgreSQL
it blocks writes to the table while the index is built (reads go on).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNACKNOWLEDGED = sa.text("acknowledged_at IS NULL")
ACTIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_notifications_overdue_by_owner",
        "notifications",
        ["declaration_owner", "created_at"],
        postgresql_where=UNACKNOWLEDGED,
        sqlite_where=UNACKNOWLEDGED,
    )
    op.create_index(
        "ix_notifications_overdue",
        "notifications",
        ["created_at"],
        postgresql_where=UNACKNOWLEDGED,
        sqlite_where=UNACKNOWLEDGED,
    )
    op.create_index(
        "ix_declaration_versions_log_order",
        "declaration_versions",
        ["declaration_id", "log_index"],
    )
    op.create_index(
        "ix_subscriptions_active",
        "subscriptions",
        ["party", "created_at"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_active", "subscriptions")
    op.drop_index("ix_declaration_versions_log_order", "declaration_versions")
    op.drop_index("ix_notifications_overdue", "notifications")
    op.drop_index("ix_notifications_overdue_by_owner", "notifications")

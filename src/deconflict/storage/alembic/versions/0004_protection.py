"""Protection, responses and escalation (API.md v1.1).

- ``declarations.justification`` and ``declaration_versions.justification``: an operation's
  written reason for conflicting with a protected declaration (its commitment's salt is in
  the version's ``salts``).
- ``notifications.response``, ``response_comment`` and ``responded_at``: the recipient's
  current response; every
  response given is a row of the new ``notification_responses``.
- ``notifications.protection``, ``protection_salt``, ``disclosure`` and
  ``declaration_salt``: a protection alert as its recipient is shown it, and the salts of
  the commitments its record entry holds.
- ``notifications.overdue``: the late notification an ``overdue`` one escalates;
  ``notifications.escalated_at``: when a late acknowledgment was escalated, so that it is
  escalated once whichever process notices first; ``ix_notifications_unescalated`` finds the
  ones not escalated yet.

Every new column is null on the rows already stored: none of them was protected, answered
otherwise than acknowledged, or escalated. A notification acknowledged before this revision
has no response row; it is shown as ``acknowledged``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NOTIFICATION_COLUMNS = (
    ("response", sa.String(16)),
    ("response_comment", sa.Text),
    ("responded_at", sa.String(40)),
    ("protection", sa.Text),
    ("protection_salt", sa.String(64)),
    ("disclosure", sa.String(16)),
    ("declaration_salt", sa.String(64)),
    ("overdue", sa.Text),
    ("escalated_at", sa.String(40)),
)
UNESCALATED = sa.text("acknowledged_at IS NULL AND escalated_at IS NULL")


def upgrade() -> None:
    for table in ("declarations", "declaration_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("justification", sa.Text, nullable=True))
    with op.batch_alter_table("notifications") as batch:
        for name, kind in NOTIFICATION_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index(
        "ix_notifications_unescalated",
        "notifications",
        ["created_at"],
        postgresql_where=UNESCALATED,
        sqlite_where=UNESCALATED,
    )
    op.create_table(
        "notification_responses",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("response", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_responses")
    op.drop_index("ix_notifications_unescalated", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        for name, _ in reversed(NOTIFICATION_COLUMNS):
            batch.drop_column(name)
    for table in ("declaration_versions", "declarations"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("justification")

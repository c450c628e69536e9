"""The initial schema: every table as deconflict 0.1 created it with ``create_all``.

Written out by hand, not generated at run time, so that it stays what it was when
``schema.py`` moves on. A database that ``create_all`` made before migrations existed
(``meta.schema_version`` "1") is exactly this revision and is stamped with it
(``storage.migrations``).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "parties",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("webhook_secret", sa.String(128), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("revoked_at", sa.String(40), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "declarations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("volumes", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("restricts", sa.Text, nullable=True),
        sa.Column("late_notice", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_declarations_owner", "declarations", ["owner"])
    op.create_index("ix_declarations_change_seq", "declarations", ["change_seq"])
    op.create_table(
        "declaration_versions",
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("volumes", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("restricts", sa.Text, nullable=True),
        sa.Column("late_notice", sa.Boolean, nullable=False),
        sa.Column("salts", sa.Text, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("log_index", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("declaration_id", "version", name="uq_declaration_version"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("volumes", sa.Text, nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("deleted_at", sa.String(40), nullable=True),
    )
    op.create_index("ix_subscriptions_party", "subscriptions", ["party"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("declaration_kind", sa.String(16), nullable=False),
        sa.Column("declaration_owner", sa.String(64), nullable=False),
        sa.Column("declaration_version", sa.String(64), nullable=False),
        sa.Column("conflicts", sa.Text, nullable=False),
        sa.Column("conflicts_salt", sa.String(64), nullable=False),
        sa.Column("late_notice", sa.Boolean, nullable=False),
        sa.Column("delivered_at", sa.String(40), nullable=True),
        sa.Column("delivered_via", sa.String(16), nullable=True),
        sa.Column("acknowledged_at", sa.String(40), nullable=True),
        sa.Column("ack_comment", sa.Text, nullable=True),
        sa.Column("ack_salt", sa.String(64), nullable=True),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("webhook_next_at", sa.String(40), nullable=True),
        sa.Column("webhook_last_error", sa.Text, nullable=True),
        sa.Column("webhook_lease_until", sa.String(40), nullable=True),
        sa.UniqueConstraint("recipient", "seq", name="uq_notification_recipient_seq"),
    )
    op.create_index("ix_notifications_declaration_id", "notifications", ["declaration_id"])
    op.create_index("ix_notifications_webhook_next", "notifications", ["webhook_next_at"])
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("toml", sa.Text, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("leaf", sa.Text, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("entry_type", sa.String(40), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("ix_log_entries_subject", "log_entries", ["subject"])
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "tree_heads",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "tree_heads",
        "log_nodes",
        "log_entries",
        "policy_versions",
        "notifications",
        "subscriptions",
        "declaration_versions",
        "declarations",
        "parties",
        "meta",
    ):
        op.drop_table(table)

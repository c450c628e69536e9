"""The database schema, shared by every backend.

Rows are written in one transaction per accepted change, together with the record entries
that log them, so the database and the record never disagree. JSON documents are stored as
text so that what was stored is byte-for-byte what is committed to in the record.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Key/value settings of the deployment: the policy in force, the change counter. (The schema
# revision is not here but in Alembic's alembic_version table: storage/migrations.py.)
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

parties = Table(
    "parties",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    # SHA-256 of the bearer token; the token itself is never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_secret", String(128), nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(64), nullable=True),  # the registering coordinator
    Column("revoked_at", String(40), nullable=True),
    Column("revoked_by", String(64), nullable=True),
)

# The current state of every declaration; its history is in declaration_versions.
declarations = Table(
    "declarations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("owner", String(64), nullable=False, index=True),
    Column("version", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("category", String(200), nullable=False),
    Column("volumes", Text, nullable=False),  # JSON list of Volume
    Column("metadata", Text, nullable=False),  # JSON object
    Column("restricts", Text, nullable=True),  # JSON object, restrictions only
    Column("late_notice", Boolean, nullable=False),
    # An operation's written reason for conflicting with a protected declaration (API.md
    # v1.1); null for everything else. Its salt is in the version's ``salts``.
    Column("justification", Text, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    # Global, strictly increasing change counter: an in-memory index replays every change with
    # a larger value than the last it applied, so no process decides on stale data.
    Column("change_seq", BigInteger, nullable=False, index=True),
)

# Every version ever accepted, immutable, with the salts of its record commitments.
declaration_versions = Table(
    "declaration_versions",
    metadata,
    Column("declaration_id", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("change", String(16), nullable=False),  # created | updated | withdrawn
    Column("actor", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("category", String(200), nullable=False),
    Column("volumes", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("restricts", Text, nullable=True),
    Column("late_notice", Boolean, nullable=False),
    Column("justification", Text, nullable=True),
    Column("salts", Text, nullable=False),  # JSON object of commitment salts
    Column("at", String(40), nullable=False),
    Column("log_index", BigInteger, nullable=True),
    UniqueConstraint("declaration_id", "version", name="uq_declaration_version"),
)
# The version a new one replaces, and the latest of each declaration, by log order.
Index(
    "ix_declaration_versions_log_order",
    declaration_versions.c.declaration_id,
    declaration_versions.c.log_index,
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("party", String(64), nullable=False, index=True),
    Column("volumes", Text, nullable=False),
    Column("kinds", Text, nullable=False),  # JSON list; empty means every kind
    Column("salt", String(64), nullable=False),  # salt of the volumes commitment in the record
    Column("created_at", String(40), nullable=False),
    Column("deleted_at", String(40), nullable=True),
)
# Active subscriptions only: every write matches them, and deleted ones only accumulate.
_active = subscriptions.c.deleted_at.is_(None)
Index(
    "ix_subscriptions_active",
    subscriptions.c.party,
    subscriptions.c.created_at,
    postgresql_where=_active,
    sqlite_where=_active,
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("recipient", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),  # per recipient, 1, 2, 3, ... without gaps
    Column("created_at", String(40), nullable=False),
    Column("change", String(16), nullable=False),
    Column("reason", String(16), nullable=False),
    # The reason the declaration's owner is shown (deliveries, overdue): what it could know
    # from what it sees, the policy's broadcast or a conflict with a declaration visible to it.
    # Null: the owner is not shown this notification at all, since it exists only because of
    # something the owner may not see (an invisible declaration, another party's subscription).
    Column("owner_reason", String(16), nullable=True),
    Column("declaration_id", String(64), nullable=False, index=True),
    Column("declaration_kind", String(16), nullable=False),
    Column("declaration_owner", String(64), nullable=False),
    Column("declaration_version", String(64), nullable=False),
    Column("conflicts", Text, nullable=False),  # JSON list of Conflict
    Column("conflicts_salt", String(64), nullable=False),
    Column("late_notice", Boolean, nullable=False),
    Column("delivered_at", String(40), nullable=True),
    Column("delivered_via", String(16), nullable=True),  # inbox | stream | webhook
    Column("acknowledged_at", String(40), nullable=True),
    Column("ack_comment", Text, nullable=True),
    Column("ack_salt", String(64), nullable=True),
    # The recipient's current response (acknowledged, assured, cannot_assure, denied), its
    # comment and when it was given; every response given is in notification_responses
    # (``ack_comment`` stays the acknowledgment's own, which its record entry commits to).
    Column("response", String(16), nullable=True),
    Column("response_comment", Text, nullable=True),
    Column("responded_at", String(40), nullable=True),
    # reason "protection": the alert as this recipient is shown it (JSON: the protected
    # declaration, time overlap, distance, and the operation, category and justification or
    # nulls), how much of it the policy disclosed ("full" | "redacted"), and the salts of the
    # commitments its record entry holds instead of the alert and, redacted, of the operation.
    Column("protection", Text, nullable=True),
    Column("protection_salt", String(64), nullable=True),
    Column("disclosure", String(16), nullable=True),
    Column("declaration_salt", String(64), nullable=True),
    # reason "overdue": the late notification this one escalates (JSON: notification,
    # recipient, due_at).
    Column("overdue", Text, nullable=True),
    # When this notification's late acknowledgment was escalated (once, by whichever process
    # noticed first); null while it is not overdue or was acknowledged in time.
    Column("escalated_at", String(40), nullable=True),
    # Webhook outbox state: attempts so far and when to try next (null: nothing pending).
    Column("webhook_attempts", Integer, nullable=False, default=0),
    Column("webhook_next_at", String(40), nullable=True),
    Column("webhook_last_error", Text, nullable=True),
    Column("webhook_lease_until", String(40), nullable=True),
    UniqueConstraint("recipient", "seq", name="uq_notification_recipient_seq"),
)
Index("ix_notifications_webhook_next", notifications.c.webhook_next_at)
# The overdue views: unacknowledged notifications by age, of one owner or of all. Partial, so
# they hold the backlog of unacknowledged notifications rather than the whole history.
_unacknowledged = notifications.c.acknowledged_at.is_(None)
Index(
    "ix_notifications_overdue_by_owner",
    notifications.c.declaration_owner,
    notifications.c.created_at,
    postgresql_where=_unacknowledged,
    sqlite_where=_unacknowledged,
)
Index(
    "ix_notifications_overdue",
    notifications.c.created_at,
    postgresql_where=_unacknowledged,
    sqlite_where=_unacknowledged,
)

# The escalation sweep: unacknowledged notifications not escalated yet, by age.
_unescalated = notifications.c.acknowledged_at.is_(None) & notifications.c.escalated_at.is_(None)
Index(
    "ix_notifications_unescalated",
    notifications.c.created_at,
    postgresql_where=_unescalated,
    sqlite_where=_unescalated,
)

# Every response a recipient gave to a notification, in order (``number`` 1, 2, ...): the
# first comes with the acknowledgment, each different one after it is a new record entry.
notification_responses = Table(
    "notification_responses",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("response", String(16), nullable=False),
    Column("comment", Text, nullable=True),
    Column("salt", String(64), nullable=False),  # of the comment's commitment in the record
    Column("at", String(40), nullable=False),
)

# What each party imported under its own ``external_id``s (POST /v1/declarations/import):
# the declaration a row became, and a digest of the row's content as last imported, so that
# importing the same file again changes nothing and a changed row updates its declaration.
imported_rows = Table(
    "imported_rows",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("external_id", String(200), primary_key=True),
    Column("declaration_id", String(64), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 hex (service/imports.py)
    Column("imported_at", String(40), nullable=False),
)

# Every policy the deployment has had, as the TOML text that was applied.
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("toml", Text, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", String(40), nullable=False),
)

# The record: an append-only RFC 6962 Merkle log.
log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", Text, nullable=False),  # canonical JSON of the entry
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("entry_type", String(40), nullable=False),
    # What the entry logs: "<declaration id>/<version>", a notification, party, subscription or
    # policy id. `deconflict verify` rebuilds the leaf from that row.
    Column("subject", Text, nullable=False),
    Column("at", String(40), nullable=False),
    # A sealed leaf (docs/record.md) is {"type": "sealed", "at", "commitment"}: the entry it
    # seals is kept here as canonical JSON, with the salt of the commitment, so that verify can
    # name the field that differs and the parties who may see the entry can be given its
    # opening. Both null for a leaf in clear. Never served by the public log.
    Column("sealed", Text, nullable=True),
    Column("salt", String(64), nullable=True),
)

Index("ix_log_entries_subject", log_entries.c.subject)

# Hashes of complete subtrees: (level, idx) covers the leaves
# [idx * 2**level, (idx + 1) * 2**level).
# Stored once when complete, so roots and proofs take O(log n) reads.
log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# Every signed tree head ever issued: exactly one per size.
tree_heads = Table(
    "tree_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("timestamp", String(40), nullable=False),
    Column("signature", String(128), nullable=False),
)

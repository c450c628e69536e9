"""Imports (API.md v1.1, ``POST /v1/declarations/import``).

- ``imported_rows``: per party and ``external_id``, the declaration an imported row became
  and a digest of the row's content, so that a re-import is ``unchanged`` or ``updated``.

Nothing was imported before this revision: the table starts empty.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imported_rows",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("external_id", sa.String(200), primary_key=True),
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("imported_rows")

"""Alembic's entry point, run by ``deconflict.storage.migrations`` (``deconflict migrate``).

Online only: the caller hands over a connection whose transaction it owns (and on PostgreSQL
the deployment's advisory write lock), so a migration commits whole or not at all and never
runs beside a write. ``schema.metadata`` is the target a new revision must reach.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from deconflict.storage.schema import metadata

connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(connection, Connection):
    raise RuntimeError(
        "deconflict's migrations run online, through deconflict.storage.migrations "
        "(`deconflict migrate --db URL`), not through the alembic command"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

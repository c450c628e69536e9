"""The SQL of declaration versions (``deconflict.storage.declarations``), on both backends."""

from __future__ import annotations

from rows import empty_schema

from deconflict.storage import declarations
from deconflict.storage.schema import declaration_versions


def test_the_previous_version_is_the_one_logged_before(db_url: str) -> None:
    """By log index, not by time: a later version may carry an earlier clock."""
    with empty_schema(db_url) as db, db.write() as conn:
        for version, at, index in [
            ("v1", "2026-12-01T06:00:09Z", 4),
            ("v2", "2026-12-01T06:00:01Z", 9),
        ]:
            conn.execute(
                declaration_versions.insert().values(
                    declaration_id="dcl_1",
                    version=version,
                    change="created" if version == "v1" else "updated",
                    actor="pty_a",
                    kind="operation",
                    owner="pty_a",
                    state="active",
                    category="c",
                    volumes="[]",
                    metadata="{}",
                    late_notice=False,
                    salts="{}",
                    at=at,
                    log_index=index,
                )
            )
        found = declarations.version_row(conn, "dcl_1", "v2")
        assert found is not None and found["log_index"] == 9
        assert declarations.version_row(conn, "dcl_1", "v3") is None
        assert declarations.version_logged_before(conn, "dcl_1", 9) == "v1"
        assert declarations.version_logged_before(conn, "dcl_1", 4) is None

"""The SQL of parties, subscriptions and policy versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from rows import empty_schema, party

from deconflict.storage import parties, policies, subscriptions

T = "2026-12-01T06:00:0{}Z"


def test_parties_active_revoked_and_recipients_in_order(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        stored = party(conn, "pty_c", at=T.format(0), role="coordinator")
        assert stored["token_hash"] == "hash-of-pty_c"
        party(conn, "pty_b", at=T.format(1))
        party(conn, "pty_a", at=T.format(1))
        party(conn, "pty_z", at=T.format(2), role="coordinator")
        revoked = parties.revoke(conn, "pty_b", T.format(3), "pty_c")
        assert (revoked["revoked_at"], revoked["revoked_by"]) == (T.format(3), "pty_c")
        again = parties.revoke(conn, "pty_b", T.format(4), "pty_z")  # changes nothing
        assert (again["revoked_at"], again["revoked_by"]) == (T.format(3), "pty_c")

        assert {row["id"] for row in parties.active(conn)} == {"pty_c", "pty_a", "pty_z"}
        assert [row["id"] for row in parties.active(conn, role="coordinator")] == [
            "pty_c",
            "pty_z",
        ]
        # Recipients: by creation, then id; never the one excluded, never the revoked.
        assert [row["id"] for row in parties.active_except(conn, "pty_c")] == ["pty_a", "pty_z"]
        assert parties.by_token_hash(conn, "hash-of-pty_b") is not None  # revoked, still found
        assert parties.by_token_hash(conn, "nothing") is None
        parties.set_webhook(conn, "pty_a", "https://a.test/", "secret")
        assert parties.get(conn, "pty_a")["webhook_url"] == "https://a.test/"
        with pytest.raises(LookupError, match="no parties row 'pty_none'"):
            parties.get(conn, "pty_none")


def test_subscriptions_of_a_party_and_of_the_others(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        for sub_id, owner, at in [
            ("sub_2", "pty_a", 2),
            ("sub_1", "pty_a", 1),
            ("sub_3", "pty_b", 0),
        ]:
            stored = subscriptions.insert(
                conn,
                {
                    "id": sub_id,
                    "party": owner,
                    "volumes": "[]",
                    "kinds": "[]",
                    "salt": "s",
                    "created_at": T.format(at),
                },
            )
            assert stored["deleted_at"] is None
        assert [row["id"] for row in subscriptions.active_of(conn, "pty_a")] == ["sub_1", "sub_2"]
        assert not subscriptions.delete(conn, "sub_3", "pty_a", T.format(5))  # not its own
        assert subscriptions.delete(conn, "sub_2", "pty_a", T.format(5))
        assert not subscriptions.delete(conn, "sub_2", "pty_a", T.format(6))  # deleted already
        assert subscriptions.get(conn, "sub_2")["deleted_at"] == T.format(5)
        assert [row["id"] for row in subscriptions.active_of(conn, "pty_a")] == ["sub_1"]
        assert [row["id"] for row in subscriptions.active_but_of(conn, "pty_a")] == ["sub_3"]
        assert [row["id"] for row in subscriptions.all_active(conn)] == ["sub_1", "sub_3"]


def test_policy_versions_keep_their_text(db_url: str) -> None:
    text = "# the policy\n[limits]\n"
    with empty_schema(db_url) as db, db.write() as conn:
        stored = policies.insert(conn, policy_id="pol_1", toml=text, actor="pty_c", at=T.format(0))
        assert (stored["toml"], stored["actor"], stored["at"]) == (text, "pty_c", T.format(0))
        assert policies.toml_of(conn, "pol_1") == text
        with pytest.raises(LookupError):
            policies.get(conn, "pol_2")

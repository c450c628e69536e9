"""The SQL of notifications and the webhook outbox, on SQLite and PostgreSQL: numbering,
pages, the owner's view, overdue, first delivery only, and leases."""

from __future__ import annotations

from rows import empty_schema, notification, party

from deconflict.storage import notifications, webhooks

T = "2026-12-01T06:00:0{}Z"


def test_each_recipient_is_numbered_from_one_and_pages_follow_seq(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        for n in range(5):
            notification(conn, f"ntf_a{n}", "pty_a", at=T.format(n))
        notification(conn, "ntf_b0", "pty_b", at=T.format(0))
        assert notifications.next_seq(conn, "pty_a") == 6
        assert notifications.get(conn, "ntf_b0")["seq"] == 1
        page = notifications.inbox_page(conn, "pty_a", after=1, limit=3)
        assert [(row["id"], row["seq"]) for row in page] == [
            ("ntf_a1", 2),
            ("ntf_a2", 3),
            ("ntf_a3", 4),
        ]
        assert notifications.inbox_page(conn, "pty_a", after=5, limit=3) == []
        assert notifications.find(conn, "ntf_none") is None


def test_what_is_left_to_acknowledge_and_every_notification_of_declarations(
    db_url: str,
) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        notification(conn, "ntf_a1", "pty_a", at=T.format(0))
        notification(conn, "ntf_a2", "pty_a", at=T.format(1), acknowledged_at=T.format(2))
        notification(conn, "ntf_a3", "pty_a", at=T.format(2), declaration_id="dcl_2")
        notification(conn, "ntf_b1", "pty_b", at=T.format(0), declaration_id="dcl_3")
        left = notifications.unacknowledged_of(conn, "pty_a")
        assert [row["id"] for row in left] == ["ntf_a1", "ntf_a3"]
        # More declarations than one statement may bind on SQLite.
        wanted = ["dcl_1", "dcl_3", *(f"dcl_x{n}" for n in range(1200))]
        assert [row["id"] for row in notifications.of_declarations(conn, wanted)] == [
            "ntf_a1",
            "ntf_a2",
            "ntf_b1",
        ]


def test_only_the_first_delivery_is_recorded(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        notification(conn, "ntf_1", "pty_a", at=T.format(0))
        first = notifications.mark_delivered(conn, "ntf_1", T.format(1), "inbox")
        assert first is not None
        assert (first["delivered_at"], first["delivered_via"]) == (T.format(1), "inbox")
        assert notifications.mark_delivered(conn, "ntf_1", T.format(2), "webhook") is None
        assert notifications.get(conn, "ntf_1")["delivered_via"] == "inbox"
        acknowledged = notifications.acknowledge(conn, "ntf_1", T.format(3), "seen", "s")
        assert (acknowledged["acknowledged_at"], acknowledged["ack_comment"]) == (
            T.format(3),
            "seen",
        )


def test_the_owner_sees_only_what_it_is_shown_and_overdue_filters_by_age(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        notification(conn, "ntf_2", "pty_b", at=T.format(1))
        notification(conn, "ntf_1", "pty_a", at=T.format(1))
        notification(conn, "ntf_3", "pty_c", at=T.format(0), owner_reason=None)
        notification(conn, "ntf_4", "pty_a", at=T.format(2), declaration_owner="pty_other")
        notification(conn, "ntf_5", "pty_d", at=T.format(0), acknowledged_at=T.format(1))
        every = notifications.of_declaration(conn, "dcl_1", shown_to_owner_only=False)
        # By creation, then recipient, then id.
        assert [row["id"] for row in every] == ["ntf_3", "ntf_5", "ntf_1", "ntf_2", "ntf_4"]
        shown = notifications.of_declaration(conn, "dcl_1", shown_to_owner_only=True)
        assert [row["id"] for row in shown] == ["ntf_5", "ntf_1", "ntf_2", "ntf_4"]
        assert notifications.of_declaration(conn, "dcl_2", shown_to_owner_only=False) == []

        late = notifications.unacknowledged_before(conn, T.format(2))
        assert [row["id"] for row in late] == ["ntf_3", "ntf_1", "ntf_2"]
        mine = notifications.unacknowledged_before(conn, T.format(3), owner="pty_owner")
        assert [row["id"] for row in mine] == ["ntf_1", "ntf_2"]


def test_due_deliveries_are_leased_once_and_settled(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        party(conn, "pty_hook", at=T.format(0), webhook_url="https://x.test/", webhook_secret="k")
        party(conn, "pty_poll", at=T.format(0))
        notification(conn, "ntf_due", "pty_hook", at=T.format(0), webhook_next_at=T.format(1))
        notification(conn, "ntf_later", "pty_hook", at=T.format(0), webhook_next_at=T.format(5))
        notification(conn, "ntf_polled", "pty_poll", at=T.format(0), webhook_next_at=T.format(0))
        assert not webhooks.any_due(conn, T.format(0))
        assert webhooks.any_due(conn, T.format(1))

        claimed = webhooks.claim_due(conn, T.format(2), limit=20, lease_until=T.format(4))
        assert [(row["id"], row["webhook_url"], row["webhook_secret"]) for row in claimed] == [
            ("ntf_due", "https://x.test/", "k")
        ]
        # Leased: not due again until the lease runs out.
        assert webhooks.claim_due(conn, T.format(3), limit=20, lease_until=T.format(9)) == []
        again = webhooks.claim_due(conn, T.format(5), limit=1, lease_until=T.format(9))
        assert [row["id"] for row in again] == ["ntf_due"]

        webhooks.release(conn, ["ntf_due"])
        webhooks.settle(conn, "ntf_due", attempts=1, next_at=None, last_error="HTTP 500")
        settled = notifications.get(conn, "ntf_due")
        assert settled["webhook_attempts"] == 1
        assert settled["webhook_next_at"] is None
        assert settled["webhook_lease_until"] is None
        assert settled["webhook_last_error"] == "HTTP 500"
        left = webhooks.claim_due(conn, T.format(6), limit=20, lease_until=T.format(9))
        assert [row["id"] for row in left] == ["ntf_later"]

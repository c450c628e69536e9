"""Notifications: who is told, the inbox, acknowledgments, deliveries, overdue, late notice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from support import Actor, Service, point, problem_of, square, volume


def inbox(actor: Actor, after: int = 0) -> list[dict[str, Any]]:
    answer = actor.get(f"/v1/inbox?after={after}")
    assert answer.status_code == 200, answer.text
    notifications: list[dict[str, Any]] = answer.json()["notifications"]
    return notifications


def test_a_site_is_broadcast_to_every_operator_only(cast: dict[str, Actor]) -> None:
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))], category="hospital")
    for who in ("north", "south"):
        [note] = inbox(cast[who])
        assert note["reason"] == "broadcast"
        assert note["change"] == "created"
        assert note["declaration"] == {
            "id": site["declaration"]["id"],
            "kind": "site",
            "owner": cast["relief"].id,
            "version": site["declaration"]["version"],
        }
        assert note["seq"] == 1
        assert note["delivered_at"] is not None
        assert note["acknowledged_at"] is None
    for who in ("water", "observer", "coordinator", "relief"):
        assert inbox(cast[who]) == [], who


def test_restrictions_are_broadcast_to_every_party(cast: dict[str, Actor]) -> None:
    cast["coordinator"].declare_ok(
        "restriction", [volume(square(37, 35), lower_m=None, upper_m=None)], restricts={}
    )
    for who in ("north", "south", "relief", "water", "observer"):
        assert [n["reason"] for n in inbox(cast[who])] == ["broadcast"], who


def test_conflicting_owner_is_told_with_the_conflict(cast: dict[str, Actor]) -> None:
    first = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    second = cast["south"].declare_ok("operation", [volume(point(36.05, 34.0))])["declaration"]
    [note] = inbox(cast["north"])
    assert note["reason"] == "conflict"
    assert note["declaration"]["id"] == second["id"]
    assert [c["declaration"]["id"] for c in note["conflicts"]] == [first["id"]]
    # Operations are invisible to humanitarians: they are told nothing of them.
    assert inbox(cast["relief"]) == []


def test_the_site_owner_is_not_told_of_an_operation_it_cannot_see(cast: dict[str, Actor]) -> None:
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5), buffer_m=500)])
    cast["north"].declare_ok("operation", [volume(point(36.3, 33.5))])
    assert inbox(cast["relief"]) == []
    [coordinator_note] = inbox(cast["coordinator"]) or [None]
    assert coordinator_note is None  # no conflict of its own, no subscription, no broadcast


def test_subscription_brings_changes_in_the_area(cast: dict[str, Actor]) -> None:
    made = cast["water"].post(
        "/v1/subscriptions",
        {
            "volumes": [
                volume(
                    square(36.3, 33.5, half=0.3), lower_m=None, upper_m=None, hours=None, start=None
                )
            ],
            "kinds": ["site", "movement"],
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["subscription"]["id"].startswith("sub_")
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])
    cast["relief"].declare_ok("site", [volume(point(40.0, 36.0))])  # outside the area
    notes = inbox(cast["water"])
    assert [n["reason"] for n in notes] == ["subscription"]
    listed = cast["water"].get("/v1/subscriptions").json()["subscriptions"]
    assert [s["id"] for s in listed] == [made.json()["subscription"]["id"]]


def test_updates_and_withdrawals_notify_those_who_were_in_conflict(cast: dict[str, Actor]) -> None:
    first = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    second = cast["south"].declare_ok("operation", [volume(point(36.05, 34.0))])["declaration"]
    moved = (
        cast["south"]
        .put(
            f"/v1/declarations/{second['id']}",
            {"version": second["version"], "volumes": [volume(point(37.0, 34.0))]},
        )
        .json()["declaration"]
    )
    gone = cast["north"].delete(f"/v1/declarations/{first['id']}?version={first['version']}")
    assert gone.status_code == 200
    notes = inbox(cast["north"])
    assert [(n["change"], n["reason"]) for n in notes] == [
        ("created", "conflict"),
        ("updated", "conflict"),
    ]
    assert notes[1]["conflicts"] == []  # the update resolved it
    assert notes[1]["declaration"]["version"] == moved["version"]
    assert [n["seq"] for n in notes] == [1, 2]
    assert [(n["change"]) for n in inbox(cast["south"])] == []


def test_inbox_pages_by_seq_and_marks_delivery(cast: dict[str, Actor], service: Service) -> None:
    for lon in (36.0, 37.0, 38.0):
        cast["relief"].declare_ok("site", [volume(point(lon, 34.0))])
    first_page = cast["north"].get("/v1/inbox?limit=2").json()
    assert [n["seq"] for n in first_page["notifications"]] == [1, 2]
    assert first_page["last_seq"] == 2
    rest = cast["north"].get(f"/v1/inbox?after={first_page['last_seq']}").json()
    assert [n["seq"] for n in rest["notifications"]] == [3]
    delivered_at = rest["notifications"][0]["delivered_at"]
    service.clock.advance(minutes=5)
    again = cast["north"].get("/v1/inbox?after=2").json()["notifications"][0]
    assert again["delivered_at"] == delivered_at  # the first delivery is what counts
    assert cast["north"].get("/v1/inbox?after=3").json() == {"notifications": [], "last_seq": 3}


def test_acknowledgment_is_idempotent_and_for_the_recipient_only(
    cast: dict[str, Actor], service: Service
) -> None:
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    [note] = inbox(cast["north"])
    assert cast["south"].post(f"/v1/notifications/{note['id']}/ack", {}).status_code == 404
    service.clock.advance(minutes=3)
    first = cast["north"].post(f"/v1/notifications/{note['id']}/ack", {"comment": "noted"})
    assert first.status_code == 200, first.text
    acknowledged_at = first.json()["notification"]["acknowledged_at"]
    assert acknowledged_at is not None
    receipt = first.json()["receipt"]
    service.clock.advance(minutes=3)
    # The same acknowledgment again, or a bare one, changes nothing (a new comment would be a
    # new response: tests/api/test_responses_api.py).
    for body in ({"comment": "noted"}, {}, {"response": "acknowledged"}):
        second = cast["north"].post(f"/v1/notifications/{note['id']}/ack", body)
        assert second.status_code == 200
        assert second.json()["notification"]["acknowledged_at"] == acknowledged_at
        assert second.json()["notification"]["comment"] == "noted"
        assert second.json()["notification"]["response"] == "acknowledged"
        assert second.json()["receipt"]["index"] == receipt["index"]

    deliveries = cast["relief"].get(f"/v1/declarations/{site['id']}/deliveries")
    assert deliveries.status_code == 200, deliveries.text
    by_party = {d["party"]: d for d in deliveries.json()["deliveries"]}
    assert set(by_party) == {cast["north"].id, cast["south"].id}
    assert by_party[cast["north"].id]["acknowledged_at"] == acknowledged_at
    assert by_party[cast["north"].id]["delivered_at"] is not None
    assert by_party[cast["south"].id]["delivered_at"] is None
    assert by_party[cast["south"].id]["acknowledged_at"] is None


def test_deliveries_are_for_the_owner_and_the_coordinator(cast: dict[str, Actor]) -> None:
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    url = f"/v1/declarations/{site['id']}/deliveries"
    assert cast["coordinator"].get(url).status_code == 200
    assert problem_of(cast["water"].get(url))["code"] == "forbidden"
    assert cast["north"].get(url).status_code == 403


def test_overdue_acknowledgments_stand_out(cast: dict[str, Actor], service: Service) -> None:
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    [note] = inbox(cast["north"])
    cast["north"].post(f"/v1/notifications/{note['id']}/ack", {})
    assert cast["relief"].get("/v1/notifications/overdue").json()["overdue"] == []
    service.clock.advance(minutes=61)
    overdue = cast["relief"].get("/v1/notifications/overdue").json()["overdue"]
    assert [o["party"] for o in overdue] == [cast["south"].id]
    assert overdue[0]["declaration"]["id"] == site["id"]
    assert [
        o["party"] for o in cast["coordinator"].get("/v1/notifications/overdue").json()["overdue"]
    ] == [cast["south"].id]
    assert cast["north"].get("/v1/notifications/overdue").json()["overdue"] == []
    deliveries = cast["relief"].get(f"/v1/declarations/{site['id']}/deliveries").json()
    overdue_flags = {d["party"]: d["overdue"] for d in deliveries["deliveries"]}
    assert overdue_flags == {cast["north"].id: False, cast["south"].id: True}


def test_late_notice_travels_with_the_notification(
    cast: dict[str, Actor], service: Service
) -> None:
    soon = service.clock.now + timedelta(hours=3)
    cast["relief"].declare_ok(
        "movement", [volume(point(36.3, 33.5), start=soon)], category="convoy"
    )
    [note] = inbox(cast["north"])
    assert note["late_notice"] is True


def test_revoked_parties_get_no_notifications(cast: dict[str, Actor]) -> None:
    cast["coordinator"].delete(f"/v1/parties/{cast['south'].id}")
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])
    assert len(inbox(cast["north"])) == 1
    assert cast["south"].get("/v1/inbox").status_code == 401

"""Responses: a recipient's answer (acknowledged, assured, cannot_assure, denied) with its
comment, every change of it recorded, and the owner shown each recipient's answer and when."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from deconflict.cli import main
from deconflict.record.entries import check_notification_opening
from deconflict.storage import notifications
from support import Actor, Service, point, problem_of, volume


def a_convoy_notice(cast: dict[str, Actor]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A movement by the aid organisation, and the notification an operator gets of it."""
    convoy = cast["relief"].declare_ok("movement", [volume(point(36.3, 33.5))], category="convoy")
    answer = cast["north"].get("/v1/inbox")
    [note] = answer.json()["notifications"]
    return convoy["declaration"], note


def ack(actor: Actor, notification_id: str, body: Any = None) -> dict[str, Any]:
    answer = actor.post(f"/v1/notifications/{notification_id}/ack", body)
    assert answer.status_code == 200, answer.text
    done: dict[str, Any] = answer.json()
    return done


def delivery_of(owner: Actor, declaration_id: str, party: str) -> dict[str, Any]:
    answer = owner.get(f"/v1/declarations/{declaration_id}/deliveries")
    assert answer.status_code == 200, answer.text
    [found] = [d for d in answer.json()["deliveries"] if d["party"] == party]
    return found


def assert_verifies(service: Service) -> None:
    verified = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert verified.exit_code == 0, verified.output


def opened_entries(actor: Actor, notification_id: str) -> list[dict[str, Any]]:
    """The notification's record entries as its opening opens them, after checking it."""
    answer = actor.get(f"/v1/notifications/{notification_id}/opening")
    assert answer.status_code == 200, answer.text
    opening = answer.json()
    assert check_notification_opening(opening) == []
    return [item["seal"]["entry"] for item in opening["entries"]]


def test_a_new_notification_has_no_response_yet(cast: dict[str, Actor]) -> None:
    convoy, note = a_convoy_notice(cast)
    assert (note["response"], note["comment"], note["responded_at"]) == (None, None, None)
    assert note["overdue"] is None
    shown = delivery_of(cast["relief"], convoy["id"], cast["north"].id)
    assert (shown["response"], shown["comment"], shown["responded_at"]) == (None, None, None)


def test_the_first_answer_is_the_acknowledgment_and_the_owner_sees_it(
    cast: dict[str, Actor], service: Service
) -> None:
    convoy, note = a_convoy_notice(cast)
    service.clock.advance(minutes=4)
    body = {"response": "cannot_assure", "comment": "Strike package airborne; reroute north."}
    done = ack(cast["north"], note["id"], body)["notification"]
    assert done["response"] == "cannot_assure"
    assert done["comment"] == body["comment"]
    assert done["responded_at"] == done["acknowledged_at"] is not None
    for viewer in (cast["relief"], cast["coordinator"]):
        shown = delivery_of(viewer, convoy["id"], cast["north"].id)
        assert shown["response"] == "cannot_assure"
        assert shown["comment"] == body["comment"]
        assert shown["responded_at"] == done["responded_at"]
    *_, acknowledged = opened_entries(cast["north"], note["id"])
    assert acknowledged["type"] == "notification.acknowledged"
    assert acknowledged["response"] == "cannot_assure"
    assert_verifies(service)


def test_the_default_response_is_acknowledged(cast: dict[str, Actor]) -> None:
    _, note = a_convoy_notice(cast)
    answer = cast["north"].post(f"/v1/notifications/{note['id']}/ack")  # no body at all
    assert answer.status_code == 200, answer.text
    assert answer.json()["notification"]["response"] == "acknowledged"
    assert answer.json()["notification"]["comment"] == ""


def test_a_changed_answer_is_a_new_entry_and_becomes_current(
    cast: dict[str, Actor], service: Service
) -> None:
    convoy, note = a_convoy_notice(cast)
    first = ack(cast["north"], note["id"], {"response": "assured", "comment": "We keep clear."})
    service.clock.advance(minutes=10)
    changed = ack(cast["north"], note["id"], {"response": "cannot_assure"})
    assert changed["receipt"]["index"] > first["receipt"]["index"]
    now = changed["notification"]
    assert now["response"] == "cannot_assure"
    assert now["comment"] == ""
    assert now["acknowledged_at"] == first["notification"]["acknowledged_at"]
    assert now["responded_at"] > first["notification"]["responded_at"]

    # The same answer again, or a bare acknowledgment, says nothing new: the same receipt.
    for body in ({"response": "cannot_assure"}, {}, {"comment": ""}):
        again = ack(cast["north"], note["id"], body)
        assert again["receipt"]["index"] == changed["receipt"]["index"]
        assert again["notification"]["response"] == "cannot_assure"

    # A new comment on the same answer is a new response too.
    service.clock.advance(minutes=1)
    commented = ack(cast["north"], note["id"], {"comment": "Window moved to 14:00Z."})
    assert commented["receipt"]["index"] > changed["receipt"]["index"]
    assert commented["notification"]["response"] == "cannot_assure"
    assert commented["notification"]["comment"] == "Window moved to 14:00Z."

    shown = delivery_of(cast["relief"], convoy["id"], cast["north"].id)
    assert (shown["response"], shown["comment"]) == ("cannot_assure", "Window moved to 14:00Z.")
    assert shown["responded_at"] == commented["notification"]["responded_at"]

    entries = opened_entries(cast["north"], note["id"])
    responded = [e for e in entries if e["type"] == "notification.responded"]
    assert [(e["number"], e["response"]) for e in responded] == [
        (2, "cannot_assure"),
        (3, "cannot_assure"),
    ]
    assert all(
        e["actor"] == cast["north"].id and e["notification"] == note["id"] for e in responded
    )
    # The comment is in the record only as a commitment.
    assert all(isinstance(e["comment"], str) and len(e["comment"]) == 64 for e in responded)
    assert_verifies(service)


def test_a_forged_opening_of_a_response_fails(cast: dict[str, Actor]) -> None:
    _, note = a_convoy_notice(cast)
    ack(cast["north"], note["id"], {"response": "assured"})
    ack(cast["north"], note["id"], {"response": "denied", "comment": "Not our sector."})
    opening = cast["north"].get(f"/v1/notifications/{note['id']}/opening").json()
    assert check_notification_opening(opening) == []
    *_, response = opening["responses"]
    response["comment"]["value"] = "Understood, we keep clear."
    assert [f for f in check_notification_opening(opening) if f.endswith("comment")]
    response["response"] = "assured"
    assert [f for f in check_notification_opening(opening) if f.endswith("response")]


@pytest.mark.parametrize(
    "response",
    ["maybe", "", "ASSURED", 1, True, None, ["assured"], {"value": "assured"}],
    ids=["unknown", "empty", "capitals", "number", "boolean", "null", "list", "object"],
)
def test_a_bad_response_is_400_naming_it(cast: dict[str, Actor], response: Any) -> None:
    _, note = a_convoy_notice(cast)
    answer = cast["north"].post(f"/v1/notifications/{note['id']}/ack", {"response": response})
    problem = problem_of(answer)
    assert answer.status_code == 400
    assert [e["field"] for e in problem["errors"]] == ["response"]
    after = cast["north"].get("/v1/inbox").json()["notifications"][0]
    assert after["acknowledged_at"] is None  # nothing was taken


def test_only_the_recipient_answers(cast: dict[str, Actor]) -> None:
    _, note = a_convoy_notice(cast)
    for other in ("south", "relief", "coordinator"):
        answer = cast[other].post(f"/v1/notifications/{note['id']}/ack", {"response": "denied"})
        assert answer.status_code == 404, other


def test_an_acknowledgment_from_before_responses_answers_on_from_number_two(
    cast: dict[str, Actor], service: Service
) -> None:
    """A notification acknowledged before responses existed (no response row) shows
    ``acknowledged`` with its comment, and a later answer is response number 2."""
    _, note = a_convoy_notice(cast)
    ack(cast["north"], note["id"], {"comment": "seen"})
    # Back to the rows an acknowledgment had before (its leaf is not rewritten: verify is
    # not run here; tests/record/test_audit.py logs acknowledgments of the old shape).
    with service.deployment.db.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM notification_responses WHERE notification_id = :id"),
            {"id": note["id"]},
        )
        conn.execute(
            text(
                "UPDATE notifications SET response = NULL, response_comment = NULL, "
                "responded_at = NULL WHERE id = :id"
            ),
            {"id": note["id"]},
        )
    with service.deployment.db.engine.connect() as conn:
        assert notifications.acknowledged_row(conn, note["id"])["first_response"] is None

    shown = cast["north"].get("/v1/inbox").json()["notifications"][0]
    assert (shown["response"], shown["comment"]) == ("acknowledged", "seen")
    again = ack(cast["north"], note["id"], {"response": "assured"})
    assert again["notification"]["response"] == "assured"
    with service.deployment.db.engine.connect() as conn:
        numbers = [row["number"] for row in notifications.responses_of(conn, note["id"])]
    assert numbers == [2]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE notification_responses SET response = 'assured' WHERE number = 2",
        "UPDATE notification_responses SET comment = 'Fine.' WHERE number = 2",
        "DELETE FROM notification_responses WHERE number = 2",
        "UPDATE notifications SET response = 'assured' WHERE response IS NOT NULL",
        "UPDATE notification_responses SET response = 'denied' WHERE number = 1",
        "UPDATE notification_responses SET comment = 'Fine.' WHERE number = 1",
    ],
    ids=[
        "later response",
        "later comment",
        "later response deleted",
        "current response",
        "first response",
        "first comment",
    ],
)
def test_verify_names_a_tampered_response(
    cast: dict[str, Actor], service: Service, statement: str
) -> None:
    _, note = a_convoy_notice(cast)
    ack(cast["north"], note["id"], {"response": "assured"})
    ack(cast["north"], note["id"], {"response": "cannot_assure", "comment": "Sorry."})
    assert_verifies(service)
    with service.deployment.db.engine.begin() as conn:
        conn.execute(text(statement))
    tampered = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert tampered.exit_code == 1
    assert note["id"] in tampered.output


def test_the_comment_never_reaches_the_public_log(cast: dict[str, Actor]) -> None:
    _, note = a_convoy_notice(cast)
    ack(cast["north"], note["id"], {"response": "assured", "comment": "ROUTE-ALPHA-7"})
    ack(cast["north"], note["id"], {"response": "denied", "comment": "ROUTE-BRAVO-9"})
    size = cast["north"].get("/v1/log/head").json()["size"]
    leaves = cast["north"].get(f"/v1/log/entries?start=0&end={size}").json()["entries"]
    text_of_log = json.dumps(leaves)
    for secret in ("ROUTE-ALPHA-7", "ROUTE-BRAVO-9", "cannot_assure", "denied", "assured"):
        assert secret not in text_of_log

"""Overdue escalation: each late acknowledgment is told once to the coordinators and to the
declaration's owner, however many processes sweep, and never twice after a restart."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from click.testing import CliRunner

from deconflict.cli import main
from deconflict.service.deployment import Deployment
from deconflict.service.escalation import escalate_overdue, escalate_within
from deconflict.storage import notifications
from deconflict.storage.database import Database
from support import Actor, Service, point, square, volume


def inbox(actor: Actor) -> list[dict[str, Any]]:
    answer = actor.get("/v1/inbox")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["notifications"]
    return found


def overdue_notices(actor: Actor) -> list[dict[str, Any]]:
    return [n for n in inbox(actor) if n["reason"] == "overdue"]


def a_late_acknowledgment(cast: dict[str, Actor], service: Service) -> dict[str, Any]:
    """A hospital broadcast to both operators; north acknowledges, south never does, and the
    deadline (60 minutes) passes. Returns south's late notification."""
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))], category="hospital")
    [answered] = inbox(cast["north"])
    assert cast["north"].post(f"/v1/notifications/{answered['id']}/ack").status_code == 200
    [late] = inbox(cast["south"])
    service.clock.advance(minutes=61)
    return late


def another_process(service: Service) -> Deployment:
    """A second deployment object on the same database and key: another ``serve`` process."""
    return Deployment(Database(service.db_url), service.tmp / "log.key", clock=service.clock)


def assert_verifies(service: Service) -> None:
    verified = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert verified.exit_code == 0, verified.output


def test_a_late_acknowledgment_is_told_once_to_the_coordinator_and_the_owner(
    cast: dict[str, Actor], service: Service
) -> None:
    late = a_late_acknowledgment(cast, service)
    assert escalate_overdue(service.deployment) == 1
    for who in ("coordinator", "relief"):
        [notice] = overdue_notices(cast[who])
        assert notice["overdue"] == {
            "notification": late["id"],
            "recipient": cast["south"].id,
            "due_at": "2026-12-01T07:00:00.000000Z",
        }
        assert notice["declaration"] == late["declaration"]
        assert (notice["change"], notice["conflicts"]) == (late["change"], [])
        assert notice["acknowledged_at"] is None
    # Nobody else hears of it: neither the late recipient nor the one who answered in time.
    for who in ("north", "south", "water", "observer"):
        assert overdue_notices(cast[who]) == [], who
    # Sweeping again, later, finds nothing: the escalation's own lateness is not escalated.
    service.clock.advance(minutes=120)
    assert escalate_overdue(service.deployment) == 0
    assert len(overdue_notices(cast["coordinator"])) == len(overdue_notices(cast["relief"])) == 1
    assert_verifies(service)


def test_escalations_stay_out_of_the_overdue_list_and_the_owners_deliveries(
    cast: dict[str, Actor], service: Service
) -> None:
    late = a_late_acknowledgment(cast, service)
    escalate_overdue(service.deployment)
    service.clock.advance(minutes=120)
    for who in ("coordinator", "relief"):
        listed = cast[who].get("/v1/notifications/overdue").json()["overdue"]
        assert [o["notification_id"] for o in listed] == [late["id"]], who
    site = late["declaration"]["id"]
    shown = cast["relief"].get(f"/v1/declarations/{site}/deliveries").json()["deliveries"]
    assert {d["party"] for d in shown} == {cast["north"].id, cast["south"].id}


def test_two_processes_sweeping_at_once_escalate_once(
    cast: dict[str, Actor], service: Service
) -> None:
    late = a_late_acknowledgment(cast, service)
    others = [another_process(service) for _ in range(2)]
    barrier = threading.Barrier(len(others))
    counts: list[int] = []

    def sweep(deployment: Deployment) -> None:
        barrier.wait(timeout=30)
        counts.append(escalate_overdue(deployment))

    threads = [threading.Thread(target=sweep, args=(d,)) for d in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(counts) == [0, 1]
    for who in ("coordinator", "relief"):
        assert [n["overdue"]["notification"] for n in overdue_notices(cast[who])] == [late["id"]]
    for deployment in others:
        deployment.db.dispose()
    assert_verifies(service)


def test_a_restarted_process_does_not_escalate_again(
    cast: dict[str, Actor], service: Service
) -> None:
    a_late_acknowledgment(cast, service)
    assert escalate_overdue(service.deployment) == 1
    restarted = another_process(service)
    assert escalate_overdue(restarted) == 0
    restarted.db.dispose()
    assert len(overdue_notices(cast["coordinator"])) == 1


class SweepInterrupted(Exception):
    """The process dies in the middle of a sweep."""


def test_a_sweep_that_fails_claims_nothing(cast: dict[str, Actor], service: Service) -> None:
    """The claim commits with the overdue notifications or not at all: a sweep whose
    transaction does not commit leaves the late one for the next sweep."""
    late = a_late_acknowledgment(cast, service)
    deployment = service.deployment
    with pytest.raises(SweepInterrupted), deployment.writing() as write:
        assert escalate_within(write, deployment.policy(write.conn)) == 1
        raise SweepInterrupted
    with deployment.db.read() as conn:
        assert notifications.get(conn, late["id"])["escalated_at"] is None
    assert overdue_notices(cast["coordinator"]) == overdue_notices(cast["relief"]) == []
    restarted = another_process(service)
    assert escalate_overdue(restarted) == 1
    restarted.db.dispose()
    assert len(overdue_notices(cast["coordinator"])) == len(overdue_notices(cast["relief"])) == 1
    assert_verifies(service)


def test_the_owner_is_told_only_of_what_it_is_shown(
    cast: dict[str, Actor], service: Service
) -> None:
    """A notification that exists because of another party's subscription is not shown to the
    declaration's owner; its lateness goes to the coordinator only."""
    area = [volume(square(36.3, 33.5, half=0.3), lower_m=None, upper_m=None, hours=None)]
    made = cast["water"].post("/v1/subscriptions", {"volumes": area, "kinds": ["site"]})
    assert made.status_code == 201, made.text
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))], category="hospital")
    [late] = [n for n in inbox(cast["water"]) if n["reason"] == "subscription"]
    for operator in ("north", "south"):
        for note in inbox(cast[operator]):
            cast[operator].post(f"/v1/notifications/{note['id']}/ack")
    service.clock.advance(minutes=61)
    assert escalate_overdue(service.deployment) == 1
    assert [
        (n["overdue"]["notification"], n["overdue"]["recipient"])
        for n in overdue_notices(cast["coordinator"])
    ] == [(late["id"], cast["water"].id)]
    assert overdue_notices(cast["relief"]) == []


def test_a_coordinator_owner_is_told_once(cast: dict[str, Actor], service: Service) -> None:
    cast["coordinator"].declare_ok(
        "restriction", [volume(square(37, 35), lower_m=None, upper_m=None)], restricts={}
    )
    service.clock.advance(minutes=61)
    # Broadcast to every party but the coordinator; none acknowledged.
    assert escalate_overdue(service.deployment) == 5
    notices = overdue_notices(cast["coordinator"])
    assert sorted(n["overdue"]["recipient"] for n in notices) == sorted(
        cast[who].id for who in ("north", "south", "relief", "water", "observer")
    )


def test_an_acknowledgment_in_time_or_before_the_sweep_is_not_escalated(
    cast: dict[str, Actor], service: Service
) -> None:
    late = a_late_acknowledgment(cast, service)
    # Late, but acknowledged before any process swept: nothing to escalate any more.
    assert cast["south"].post(f"/v1/notifications/{late['id']}/ack").status_code == 200
    assert escalate_overdue(service.deployment) == 0
    assert overdue_notices(cast["coordinator"]) == []


def test_a_sweep_takes_a_bounded_batch(cast: dict[str, Actor], service: Service) -> None:
    for lon in (36.0, 36.5, 37.0):
        cast["relief"].declare_ok("site", [volume(point(lon, 33.5))])
    service.clock.advance(minutes=61)
    # Three sites, each to two operators: six late ones, two sweeps of four.
    assert escalate_overdue(service.deployment, batch=4) == 4
    assert escalate_overdue(service.deployment, batch=4) == 2
    assert escalate_overdue(service.deployment, batch=4) == 0
    assert len(overdue_notices(cast["coordinator"])) == 6
    assert len(overdue_notices(cast["relief"])) == 6
    assert_verifies(service)

"""Issue 13's "How we will know", as the outside check will run it: a hospital at 0-50 m, a
strike at 6-12 km over it. Expected, in order: 409 ``missing_awareness``, 409
``justification_required``, 201; a protection alert in the aid organisation's inbox naming
its hospital and none of the operation's identifiers, one in the coordinator's naming them
all; the operator's ``cannot_assure`` on the hospital's notification shown to the aid
organisation; and ``verify`` still passing."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from deconflict.cli import main
from support import Actor, Service, point, problem_of, volume

HOSPITAL = point(36.3, 33.5)
STRIKE = {  # a square of about 1.1 km around the hospital
    "type": "Polygon",
    "coordinates": [
        [[36.294, 33.495], [36.306, 33.495], [36.306, 33.505], [36.294, 33.505], [36.294, 33.495]]
    ],
}
WHY = "Artillery position 300 m north of the clinic; the coordinator is asked to confirm."


def test_the_outside_check(service: Service, cast: dict[str, Actor]) -> None:
    aid, operator, coordinator = cast["relief"], cast["north"], cast["coordinator"]
    made = aid.declare(
        "site", [volume(HOSPITAL, buffer_m=50, lower_m=0, upper_m=50)], category="hospital"
    )
    assert made.status_code == 201, made.text
    hospital = made.json()["declaration"]
    strike = [volume(STRIKE, buffer_m=2000, lower_m=6000, upper_m=12000)]

    # Altitude does not hide it: the what-if check already names the hospital.
    checked = operator.post("/v1/conflicts/check", {"kind": "operation", "volumes": strike})
    assert [c["declaration"]["id"] for c in checked.json()["conflicts"]] == [hospital["id"]]

    first = operator.declare("operation", strike, category="strike")
    assert problem_of(first)["code"] == "missing_awareness"
    assert first.status_code == 409
    key = [m["version"] for m in first.json()["missing"]]
    second = operator.declare("operation", strike, category="strike", key=key)
    assert second.status_code == 409
    assert problem_of(second)["code"] == "justification_required"
    assert [p["id"] for p in second.json()["protected"]] == [hospital["id"]]
    third = operator.declare("operation", strike, category="strike", key=key, justification=WHY)
    assert third.status_code == 201, third.text
    operation = third.json()["declaration"]

    # The aid organisation: an alert naming its hospital, when and how close; nothing of the
    # operation.
    [alert] = _protection(aid.get("/v1/inbox").json()["notifications"])
    assert alert["protection"]["declaration"] == {
        k: hospital[k] for k in ("id", "kind", "owner", "version")
    }
    assert alert["protection"]["min_distance_m"] == 0
    assert alert["protection"]["time_overlap"] == {
        "start": strike[0]["time"]["start"],
        "end": strike[0]["time"]["end"],
    }
    assert (alert["declaration"], alert["conflicts"], alert["change"]) == (None, [], "created")
    text = json.dumps(alert)
    for identifier in (operation["id"], operation["version"], operator.id, "strike", WHY):
        assert identifier not in text, identifier

    # The coordinator: the same alert, naming the operation, its category and justification.
    [told] = _protection(coordinator.get("/v1/inbox").json()["notifications"])
    assert told["declaration"] == {k: operation[k] for k in ("id", "kind", "owner", "version")}
    assert told["protection"]["operation"] == told["declaration"]
    assert told["protection"]["category"] == "strike"
    assert told["protection"]["justification"] == WHY
    assert told["protection"]["declaration"] == alert["protection"]["declaration"]

    # The operator sees, in its operation's deliveries, that both were alerted.
    deliveries = operator.get(f"/v1/declarations/{operation['id']}/deliveries").json()
    assert sorted((d["party"], d["reason"]) for d in deliveries["deliveries"]) == sorted(
        [(aid.id, "protection"), (coordinator.id, "protection")]
    )

    # The operator answers the hospital's notification "cannot assure", with a comment, and
    # the aid organisation sees that answer, from that party, in its hospital's deliveries.
    about_hospital = [
        n
        for n in operator.get("/v1/inbox").json()["notifications"]
        if (n["declaration"] or {}).get("id") == hospital["id"]
    ]
    assert about_hospital, "the operator was never told of the hospital"
    answered = operator.post(
        f"/v1/notifications/{about_hospital[0]['id']}/ack",
        {"response": "cannot_assure", "comment": "Fire mission already approved."},
    )
    assert answered.status_code == 200, answered.text
    shown = aid.get(f"/v1/declarations/{hospital['id']}/deliveries").json()["deliveries"]
    to_operator = [d for d in shown if d["party"] == operator.id]
    assert [(d["response"], d["comment"]) for d in to_operator] == [
        ("cannot_assure", "Fire mission already approved.")
    ]

    verified = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert verified.exit_code == 0, verified.output


def _protection(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in notes if n["reason"] == "protection"]

"""The world of the evidence-pack tests (tests/api, tests/record, tests/processes).

A hospital (Relief's site), updated once; Southern Air Command's operation near it; and
Northern Air Force's strike, declared and then moved (two versions), conflicting with both:
South is notified of each version, the hospital's owner and the coordinator are alerted.
South acknowledges the first notification with ``cannot_assure`` and a comment, then
changes its answer (a second response entry); Relief acknowledges its first alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from support import Actor, Service, point, volume

HOSPITAL = (36.3, 33.5)
STRIKE = (36.302, 33.501)
MOVED = (36.304, 33.502)
COMMENT = "Our convoy window overlaps; we cannot keep clear before 14:00Z."
LATER = "Moved the window to 15:00Z; still cannot assure."
ARABIC = "مستشفى الشفاء"


@dataclass
class EvidenceWorld:
    service: Service
    cast: dict[str, Actor]
    hospital: str
    strike: str
    strike_versions: list[str]
    notes_to_south: list[dict[str, Any]]
    alerts_to_relief: list[dict[str, Any]]


def strike_volume(center: tuple[float, float]) -> dict[str, Any]:
    return volume(point(*center), buffer_m=800, lower_m=0, upper_m=3000)


def build_world(service: Service, cast: dict[str, Actor]) -> EvidenceWorld:
    north, south, relief = cast["north"], cast["south"], cast["relief"]
    site = relief.declare_ok(
        "site",
        [volume(point(*HOSPITAL), buffer_m=50, lower_m=0, upper_m=50, hours=None)],
        category="hospital",
        metadata={"name": ARABIC},
    )["declaration"]
    updated = relief.put(
        f"/v1/declarations/{site['id']}",
        {
            "version": site["version"],
            "volumes": site["volumes"],
            "metadata": {"name": ARABIC, "beds": 120},
        },
    )
    assert updated.status_code == 200, updated.text
    south.declare_ok("operation", [strike_volume(HOSPITAL)], category="resupply")
    made = north.declare_ok("operation", [strike_volume(STRIKE)], category="strike")
    strike = made["declaration"]
    moved = north.put(
        f"/v1/declarations/{strike['id']}",
        {
            "version": strike["version"],
            "volumes": [strike_volume(MOVED)],
            "key": [k for k in [*made_key(north, strike["id"])]],
            "justification": "Moved east, away from the ward.",
        },
    )
    assert moved.status_code == 200, moved.text
    versions = [strike["version"], moved.json()["declaration"]["version"]]
    to_south = [
        n for n in south.get("/v1/inbox").json()["notifications"] if _about(n, strike["id"])
    ]
    assert len(to_south) == 2, to_south
    first = to_south[0]["id"]
    for body in (
        {"response": "cannot_assure", "comment": COMMENT},
        {"response": "cannot_assure", "comment": LATER},
    ):
        answer = south.post(f"/v1/notifications/{first}/ack", body)
        assert answer.status_code == 200, answer.text
    alerts = [
        n for n in relief.get("/v1/inbox").json()["notifications"] if n["reason"] == "protection"
    ]
    assert alerts, "the hospital's owner was not alerted"
    acked = relief.post(f"/v1/notifications/{alerts[0]['id']}/ack", {"comment": "Noted."})
    assert acked.status_code == 200, acked.text
    # The coordinator reads its inbox: its alerts are delivered too.
    assert cast["coordinator"].get("/v1/inbox").status_code == 200
    return EvidenceWorld(service, cast, site["id"], strike["id"], versions, to_south, alerts)


def made_key(actor: Actor, declaration_id: str) -> list[str]:
    """The versions the strike conflicts with now (its update must name them)."""
    answer = actor.get(f"/v1/declarations/{declaration_id}/conflicts")
    assert answer.status_code == 200, answer.text
    return [c["declaration"]["version"] for c in answer.json()["conflicts"]]


def _about(note: dict[str, Any], declaration_id: str) -> bool:
    return bool(note["declaration"] and note["declaration"]["id"] == declaration_id)


def pack_of(actor: Actor, declaration_id: str) -> dict[str, Any]:
    answer = actor.get(f"/v1/declarations/{declaration_id}/evidence")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    pack: dict[str, Any] = answer.json()
    return pack


def public_key(actor: Actor) -> str:
    key: str = actor.get("/v1/log/public-key").json()["public_key"]
    return key

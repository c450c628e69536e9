"""Nothing identifies an operation to a party that may not see it, nor to the public log.

A deployment with operations over and near a humanitarian's sites is walked, as the
humanitarian and as an observer, through every GET endpoint, every error answer and the
public log (also without a token); the test fails on any byte that names an operation: its
id, a version, a coordinate, its times, category or metadata, the ids of the notifications
about it, or (where the policy broadcasts nothing to operators) its owner. Errors for an
operation's id must read exactly as errors for an id that never existed. Then the probes of
issue 11: sites near and far from a hidden operation must get the same answers, deliveries,
overdue lists and receipts.

Every test runs on SQLite and on PostgreSQL, under the default policy and under one that
broadcasts sites and movements to nobody (so that who is told at all depends on conflicts).
Both tell a protected site's owner nothing of the operations over it
(``disclose_to_owner = "none"``): a redacted protection alert tells it when and how close, by
design, and ``test_protection_leaks.py`` walks every path of those alerts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deconflict.policy import default_policy_text
from deconflict.record.entries import check_declaration_opening, check_notification_opening
from support import (
    Actor,
    FakeClock,
    Service,
    iso,
    make_service,
    point,
    problem_of,
    usual_cast,
    volume,
)

SILENT_POLICY = default_policy_text().replace(
    'disclose_to_owner = "redacted"', 'disclose_to_owner = "none"'
)
QUIET_POLICY = SILENT_POLICY.replace(
    'site = ["operator"]\nmovement = ["operator"]', "site = []\nmovement = []"
)
assert default_policy_text() != SILENT_POLICY != QUIET_POLICY

# The operations' coordinates, times, categories and metadata: never to be seen.
HAWK = [(36.301234, 33.509876), (36.302345, 33.508765)]  # created, then moved
OWL = (36.356789, 33.523456)
SECRET_WORDS = ["strike-package-zulu", "recon-orbit-kilo", "HAWK-SEVEN", "OWL-NINE"]
NEVER = "dcl_00000000000000000000"  # an id that never existed


@pytest.fixture(params=["default", "quiet"])
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock, db_url: str, policy_name: str) -> Iterator[World]:
    text = SILENT_POLICY if policy_name == "default" else QUIET_POLICY
    for service in make_service(tmp_path, clock, text, db_url):
        yield build_world(service, quiet=policy_name == "quiet")


@dataclass
class World:
    service: Service
    cast: dict[str, Actor]
    quiet: bool
    operations: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    visible: list[str] = field(default_factory=list)  # declarations every party sees

    @property
    def owners(self) -> set[str]:
        return {self.cast["north"].id, self.cast["south"].id}


def op_volume(lon: float, lat: float, **kw: Any) -> dict[str, Any]:
    # Late notice (in 3 h 17 min, the minimum is 24 h), at minutes no clock here ever shows.
    start = T_OPS
    return volume(point(lon, lat), buffer_m=1500, start=start, hours=2.5, **kw)


T_OPS = FakeClock().now + timedelta(hours=3, minutes=17)


def lasting(geometry: dict[str, Any], buffer_m: float, **kw: Any) -> dict[str, Any]:
    """A volume from now on, until withdrawn (so the operations meet it)."""
    return volume(geometry, buffer_m=buffer_m, start=FakeClock().now, hours=None, **kw)


def build_world(service: Service, *, quiet: bool) -> World:
    cast = usual_cast(service)
    world = World(service, cast, quiet)
    north, south, relief = cast["north"], cast["south"], cast["relief"]
    area = [lasting(point(36.3, 33.5), 20_000, lower_m=None, upper_m=None)]
    for who in ("north", "water"):  # subscriptions are their owners' alone
        assert cast[who].post("/v1/subscriptions", {"volumes": area}).status_code == 201
    site = relief.declare_ok("site", [lasting(point(36.3, 33.51), 800)], category="hospital")
    world.visible.append(site["declaration"]["id"])

    hawk = north.declare_ok(
        "operation",
        [op_volume(*HAWK[0])],
        category="strike-package-zulu",
        metadata={"callsign": "HAWK-SEVEN"},
    )["declaration"]
    owl = south.declare_ok(
        "operation",
        [op_volume(*OWL)],
        category="recon-orbit-kilo",
        metadata={"callsign": "OWL-NINE"},
    )["declaration"]
    moved = north.put(
        f"/v1/declarations/{hawk['id']}",
        {
            "version": hawk["version"],
            "volumes": [op_volume(*HAWK[1])],
            "key": [owl["version"], site["declaration"]["version"]],
            "justification": "HAWK-SEVEN over the hospital",
        },
    )
    assert moved.status_code == 200, moved.text
    world.operations = [hawk["id"], owl["id"]]
    world.secrets |= {hawk["id"], owl["id"], hawk["version"], owl["version"]}
    world.secrets.add(moved.json()["declaration"]["version"])

    # Declarations every party sees, made after the operations and in conflict with them.
    later = relief.declare_ok("site", [lasting(point(36.302, 33.5088), 300)], category="school")
    convoy = relief.declare_ok(
        "movement",
        [lasting({"type": "LineString", "coordinates": [[36.2, 33.52], [36.4, 33.524]]}, 200)],
        category="convoy",
    )
    zone = cast["coordinator"].declare_ok(
        "restriction",
        [
            lasting(
                {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [36.25, 33.45],
                            [36.4, 33.45],
                            [36.4, 33.55],
                            [36.25, 33.55],
                            [36.25, 33.45],
                        ]
                    ],
                },
                0,
                lower_m=None,
                upper_m=None,
            )
        ],
        category="no-fly",
        restricts={"roles": ["operator"], "allowed_categories": ["non-combat"]},
    )
    world.visible += [
        later["declaration"]["id"],
        convoy["declaration"]["id"],
        zone["declaration"]["id"],
    ]
    # The operations meet every one of them (the coordinator sees it all).
    conflicts = cast["coordinator"].get(f"/v1/declarations/{hawk['id']}/conflicts").json()
    assert {c["declaration"]["id"] for c in conflicts["conflicts"]} >= {
        site["declaration"]["id"],
        later["declaration"]["id"],
        zone["declaration"]["id"],
        owl["id"],
    }, conflicts
    # The site moves (its notifications name the conflicts before and after), then the owl goes.
    current = site["declaration"]
    changed = relief.put(
        f"/v1/declarations/{current['id']}",
        {"version": current["version"], "volumes": [lasting(point(36.3015, 33.5097), 800)]},
    )
    assert changed.status_code == 200, changed.text
    gone = south.delete(f"/v1/declarations/{owl['id']}?version={owl['version']}")
    assert gone.status_code == 200, gone.text
    world.secrets.add(gone.json()["declaration"]["version"])

    # The operators read and acknowledge some of what they were sent; the rest goes overdue.
    for who in ("north", "south"):
        notes = cast[who].get("/v1/inbox").json()["notifications"]
        assert notes, who
        ack = cast[who].post(f"/v1/notifications/{notes[0]['id']}/ack", {"comment": "noted"})
        assert ack.status_code == 200, ack.text
    for who in ("relief", "water", "observer"):
        cast[who].get("/v1/inbox")
    service.clock.advance(minutes=61)

    world.secrets |= secret_notifications(world)
    world.secrets |= {f"{c:.6f}" for position in [*HAWK, OWL] for c in position}
    world.secrets |= {iso(T_OPS), iso(T_OPS + timedelta(hours=2.5)), *SECRET_WORDS}
    if quiet:
        world.secrets |= world.owners
    return world


def secret_notifications(world: World) -> set[str]:
    """The ids of the notifications an outsider may not know of: every one about an
    operation; with nothing broadcast to operators, every one sent to an operator too."""
    coordinator = world.cast["coordinator"]
    found: set[str] = set()
    for declaration_id in [*world.operations, *world.visible]:
        answer = coordinator.get(f"/v1/declarations/{declaration_id}/deliveries")
        assert answer.status_code == 200, answer.text
        for delivery in answer.json()["deliveries"]:
            if declaration_id in world.operations or (
                world.quiet and delivery["party"] in world.owners
            ):
                found.add(delivery["notification_id"])
    assert found
    return found


# --- the walk -------------------------------------------------------------------------------


@dataclass
class Seen:
    """Every answer of a walk, as bytes, by what was asked."""

    answers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, who: Actor | None, client: Any, url: str) -> Any:
        answer = client.get(url, headers=who.headers if who else {})
        self.answers.append((f"{who.name if who else 'anyone'} GET {url}", answer.text))
        return answer


def walk(world: World, who: Actor) -> Seen:
    seen, client = Seen(), world.service.client
    for url in (
        "/v1/me",
        "/v1/parties",
        "/v1/policy",
        "/v1/config",
        "/healthz",
        "/v1/subscriptions",
    ):
        assert seen.get(who, client, url).status_code == 200, url
    for url in (
        "/v1/declarations",
        "/v1/declarations?bbox=36,33,37,34",
        "/v1/declarations?kind=operation",
        f"/v1/declarations?start={iso(T_OPS)}&end={iso(T_OPS + timedelta(hours=1))}",
        f"/v1/declarations?owner={world.cast['north'].id}",
        "/v1/notifications/overdue",
        "/v1/inbox?after=0",
    ):
        assert seen.get(who, client, url).status_code == 200, url
    for declaration_id in world.visible:
        for tail in ("", "/conflicts", "/deliveries", "/opening"):
            seen.get(who, client, f"/v1/declarations/{declaration_id}{tail}")
    for url in (  # errors of every kind: 400, 403, 404, 405
        "/v1/declarations?bbox=1,2,3",
        "/v1/declarations?kind=weapon",
        "/v1/inbox?limit=0",
        "/v1/log/entries?start=5&end=1",
        f"/v1/declarations/{world.visible[-1]}/deliveries",
        "/v1/subscriptions/sub_unknown",
    ):
        seen.get(who, client, url)  # an error, but for the coordinator's own restriction
    stream(world, who, seen)
    for note in who.get("/v1/inbox").json()["notifications"]:
        opening = seen.get(who, client, f"/v1/notifications/{note['id']}/opening")
        assert opening.status_code == 200, opening.text
        assert check_notification_opening(opening.json()) == []
    checked = who.post("/v1/conflicts/check", {"kind": "site", "volumes": [op_volume(*HAWK[1])]})
    assert checked.status_code == 200, checked.text
    seen.answers.append((f"{who.name} POST /v1/conflicts/check", checked.text))
    walk_the_log(world, who, seen)
    walk_the_log(world, None, seen)
    return seen


def stream(world: World, who: Actor, seen: Seen) -> None:
    """The event stream from the start, until it has sent every notification of the inbox."""
    expected = len(who.get("/v1/inbox").json()["notifications"])
    assert expected, "every party here is told of the restriction at least"
    lines: list[str] = []
    url = "/v1/inbox/stream?after=0"
    with world.service.client.stream("GET", url, headers=who.headers) as answer:
        for line in answer.iter_lines():
            lines.append(line)
            if sum(line.startswith("data:") for line in lines) == expected:
                break
    seen.answers.append((f"{who.name} GET {url}", "\n".join(lines)))


def walk_the_log(world: World, who: Actor | None, seen: Seen) -> None:
    client = world.service.client
    head = seen.get(who, client, "/v1/log/head").json()
    seen.get(who, client, "/v1/log/public-key")
    entries = seen.get(who, client, f"/v1/log/entries?start=0&end={head['size']}").json()
    assert len(entries["entries"]) == head["size"]
    for index in range(0, head["size"], 7):
        seen.get(who, client, f"/v1/log/proof/inclusion?index={index}&size={head['size']}")
        seen.get(who, client, f"/v1/log/proof/consistency?first={index + 1}&second={head['size']}")


def leaks(world: World, seen: Seen) -> list[tuple[str, str]]:
    """(what was asked, the secret in its answer) for every secret found."""
    found = []
    for label, text in seen.answers:
        for secret in world.secrets:
            haystack = text
            if secret in world.owners:
                # GET /v1/parties and the log's party entries list every party, by contract:
                # they name the operators as parties, whatever they declared.
                if label.endswith("GET /v1/parties"):
                    continue
                haystack = without_party_entries(text)
            if secret in haystack:
                found.append((label, secret))
    return found


def without_party_entries(text: str) -> str:
    """The public log's answer without its party entries, which name every party by design."""
    try:
        answer = json.loads(text)
    except ValueError:
        return text
    if not isinstance(answer, dict) or "entries" not in answer:
        return text
    kept = [
        e
        for e in answer["entries"]
        if json.loads(e["leaf"])["type"] not in ("party.registered", "party.revoked")
    ]
    return json.dumps(kept)


@pytest.mark.parametrize("viewer", ["relief", "observer"])
def test_a_walk_of_every_answer_names_no_operation(world: World, viewer: str) -> None:
    who = world.cast[viewer]
    seen = walk(world, who)
    assert len(seen.answers) > 60
    assert leaks(world, seen) == []
    # The walk can fail: the coordinator's own walk names the operations everywhere.
    coordinator = walk(world, world.cast["coordinator"])
    assert {secret for _, secret in leaks(world, coordinator)} >= set(world.operations)


PROBES = [
    ("GET", "/v1/declarations/{id}", None),
    ("GET", "/v1/declarations/{id}/conflicts", None),
    ("GET", "/v1/declarations/{id}/deliveries", None),
    ("GET", "/v1/declarations/{id}/opening", None),
    ("PUT", "/v1/declarations/{id}", {"version": "v", "volumes": [volume(point(36.3, 33.5))]}),
    ("DELETE", "/v1/declarations/{id}?version=v", None),
    ("POST", "/v1/notifications/{id}/ack", {"comment": "probe"}),
    ("GET", "/v1/notifications/{id}/opening", None),
]


@pytest.mark.parametrize("viewer", ["relief", "observer"])
def test_an_operations_id_gets_the_answers_of_an_id_that_never_existed(
    world: World, viewer: str
) -> None:
    who = world.cast[viewer]
    probed = [s for s in world.secrets if s.startswith(("dcl_", "ntf_"))]
    assert len(probed) > 4
    for method, template, body in PROBES:
        never = ask(who, method, template.format(id=NEVER), body)
        assert never.status_code == 404, (template, never.text)
        problem_of(never)
        for secret in probed:
            answer = ask(who, method, template.format(id=secret), body)
            assert (answer.status_code, answer.text.replace(secret, NEVER)) == (
                never.status_code,
                never.text,
            ), (method, template, secret)


def ask(who: Actor, method: str, url: str, body: Any) -> Any:
    return who.client.request(method, url, headers=who.headers, json=body)


# --- the probes of issue 11 -----------------------------------------------------------------


def probe(world: World, lon: float, lat: float) -> tuple[str, dict[str, Any]]:
    """A site at (lon, lat) by the humanitarian: its id, and what the humanitarian is told of
    it, in every answer it gets."""
    relief = world.cast["relief"]
    made = relief.declare("site", [lasting(point(lon, lat), 100)], category="probe")
    assert made.status_code == 201, made.text
    answer = made.json()
    site = answer["declaration"]
    deliveries = relief.get(f"/v1/declarations/{site['id']}/deliveries").json()["deliveries"]
    receipt = answer["receipt"]
    return site["id"], {
        "conflicts": answer["conflicts"],
        "deliveries": sorted((d["party"], d["reason"], d["change"]) for d in deliveries),
        # Entries logged by the same write after the declaration's own.
        "entries after": receipt["tree_head"]["size"] - receipt["index"] - 1,
    }


def test_probe_sites_cannot_tell_near_from_far(world: World) -> None:
    """Issue 11: sites 1.1 km and 3.3 km from an operation (and one far away) were told apart
    by the reasons of their deliveries; now nothing the humanitarian gets differs."""
    probes = [
        probe(world, 36.3124, 33.5088),  # about 1 km from the hawk, inside its buffer
        probe(world, 36.3380, 33.5088),  # about 3.3 km
        probe(world, 37.5, 34.5),  # far from everything
    ]
    assert probes[0][1] == probes[1][1] == probes[2][1]
    world.service.clock.advance(minutes=61)
    overdue = world.cast["relief"].get("/v1/notifications/overdue").json()["overdue"]
    by_probe = {
        site: sorted((o["party"], o["reason"]) for o in overdue if o["declaration"]["id"] == site)
        for site, _ in probes
    }
    assert by_probe[probes[0][0]] == by_probe[probes[1][0]] == by_probe[probes[2][0]]
    expected = [] if world.quiet else sorted((p, "broadcast") for p in world.owners)
    assert by_probe[probes[0][0]] == expected


def test_the_coordinator_and_the_operator_see_why(world: World) -> None:
    """The fix hides nothing from those who may see it: the coordinator sees every true
    reason; an operator sees the conflict of another operator's operation with its own."""
    coordinator, north = world.cast["coordinator"], world.cast["north"]
    site = world.visible[1]  # made over the hawk
    everything = coordinator.get(f"/v1/declarations/{site}/deliveries").json()["deliveries"]
    assert (north.id, "conflict") in {(d["party"], d["reason"]) for d in everything}
    shown = world.cast["relief"].get(f"/v1/declarations/{site}/deliveries").json()["deliveries"]
    if world.quiet:
        assert north.id not in {d["party"] for d in shown}
    else:
        assert {d["reason"] for d in shown} == {"broadcast"}
    owl_deliveries = (
        world.cast["south"]
        .get(f"/v1/declarations/{world.operations[1]}/deliveries")
        .json()["deliveries"]
    )
    assert (north.id, "conflict") in {(d["party"], d["reason"]) for d in owl_deliveries}


def test_the_recipient_and_the_owner_prove_what_was_logged(world: World) -> None:
    north = world.cast["north"]
    note = north.get("/v1/inbox").json()["notifications"][0]
    opening = north.get(f"/v1/notifications/{note['id']}/opening")
    assert opening.status_code == 200, opening.text
    document = opening.json()
    assert [e["type"] for e in document["entries"]] == [
        "notification.created",
        "notification.delivered",
        "notification.acknowledged",
    ]
    assert check_notification_opening(document) == []
    index = document["entries"][0]["log_index"]
    served = world.service.client.get(f"/v1/log/entries?start={index}&end={index + 1}").json()
    served = served["entries"][0]["leaf"]
    assert served == document["entries"][0]["leaf"]
    forged = json.loads(json.dumps(document))
    forged["comment"]["value"] = "never received"
    assert check_notification_opening(forged) == ["entries[2].comment"]
    forged = json.loads(json.dumps(document))
    forged["entries"][0]["seal"]["entry"]["notification"]["reason"] = "broadcast"
    assert check_notification_opening(forged) == ["entries[0].seal"]
    # The operation's owner proves its declaration; without the seal's opening, nothing.
    hawk = north.get(f"/v1/declarations/{world.operations[0]}/opening").json()
    assert json.loads(hawk["leaf"])["type"] == "sealed"
    assert check_declaration_opening(hawk["leaf"], hawk) == []
    assert check_declaration_opening(hawk["leaf"], {**hawk, "seal": None}) == ["seal"]


def test_every_change_logs_as_many_entries_whatever_its_kind(world: World) -> None:
    """A change logs one entry per party but its owner: the public log cannot tell an
    operation (seen by few) from a site or a restriction (seen by all), nor who was told."""
    parties = len(world.cast["coordinator"].get("/v1/parties").json()["parties"])
    writes = [
        world.cast["south"].declare_ok("operation", [op_volume(40.0, 35.0)]),
        world.cast["relief"].declare_ok("site", [lasting(point(40.5, 35.5), 10)]),
        world.cast["coordinator"].declare_ok(
            "restriction", [lasting(point(41.0, 36.0), 1000)], restricts={}
        ),
    ]
    after = [w["receipt"]["tree_head"]["size"] - w["receipt"]["index"] - 1 for w in writes]
    assert after == [parties - 1] * 3

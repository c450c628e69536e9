"""THE LEAK WALK (issue 13): under the default ``disclose_to_owner = "redacted"``, nothing of an
operation over a humanitarian's hospital reaches the humanitarian, by any path.

An operator plans a strike over the hospital, moves it, and withdraws it; each change alerts
the hospital's owner and the coordinator. Then, as the humanitarian, every path is walked:
the inbox, the event stream, a real webhook body (a receiver on loopback), the
acknowledgment answer, every notification's opening (every entry's seal opened), the
hospital's deliveries and conflicts, the 409 bodies it can provoke, the operation's id
(answered exactly as an id that never existed), the declaration lists, the overdue view,
error texts, the what-if check, the export and evidence endpoints (whatever they answer),
and every leaf of the public record. The walk fails on any occurrence of the operation's id,
any of its versions, its owner's party id, its category, its metadata, its justifications,
the ids of the coordinator's alerts, or any of its coordinates as they would be written
(six, five or four decimals).

And positively: each of the humanitarian's alerts names its hospital, the time overlap and
the distance. Under ``"full"`` it gets the operation, category and justification; under
``"none"`` no alert, while the coordinator still gets one. ``verify`` accepts it all.

Under the default policy sites are broadcast to every operator, so the hospital's deliveries
name the operators as recipients of the hospital itself, by contract; the walk runs also
under a policy that broadcasts nothing, where the owner's party id may appear nowhere but in
the list of parties and their record entries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from deconflict.cli import main
from deconflict.policy import default_policy_text
from deconflict.record import client
from deconflict.record.entries import check_notification_opening
from deconflict.service import protection as protection_service
from deconflict.service.webhook_targets import Allowed
from deconflict.service.webhooks import WebhookSender, deliver_due
from support import Actor, FakeClock, Service, make_service, point, problem_of, volume

DEFAULT = default_policy_text()
QUIET = DEFAULT.replace('site = ["operator"]\nmovement = ["operator"]', "site = []\nmovement = []")
assert QUIET != DEFAULT
NEVER = "dcl_00000000000000000000"
NEVER_NOTE = "ntf_00000000000000000000"

HOSPITAL = (36.3, 33.5)
# The strike's corners, before and after it moves: numbers nothing else here writes.
STRIKE = [(36.287613, 33.491827), (36.291942, 33.491827), (36.291942, 33.495173)]
MOVED = [(36.307481, 33.503169), (36.311836, 33.503169), (36.311836, 33.506524)]
CATEGORY = "strike-package-xray"
CALLSIGN = "VIPER-ZULU-9"
WHY = ["Mortar battery at the crossroads; the clinic is alerted.", "Moved east: a second battery."]


def polygon(corners: list[tuple[float, float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[*map(list, corners), list(corners[0])]]}


def strike_volume(corners: list[tuple[float, float]]) -> dict[str, Any]:
    return volume(polygon(corners), buffer_m=1000, lower_m=6000, upper_m=12000)


def written(value: float) -> set[str]:
    """A coordinate as an answer could write it."""
    return {f"{value:.6f}", f"{value:.5f}", f"{value:.4f}", repr(value)}


# -- a webhook receiver on loopback ---------------------------------------------------------


class Receiver:
    """Records every webhook POST (headers and body) and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the world ------------------------------------------------------------------------------


@dataclass
class World:
    service: Service
    cast: dict[str, Actor]
    hospital: dict[str, Any]
    operation: str
    versions: list[str]
    receiver: Receiver
    receipts: list[dict[str, Any]]
    secrets: set[str] = field(default_factory=set)


def disclosed(text: str, disclosure: str) -> str:
    return text.replace('disclose_to_owner = "redacted"', f'disclose_to_owner = "{disclosure}"')


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def build(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    policy_text: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    # Loopback is no webhook destination unless the deployment allows it (test_webhooks.py).
    monkeypatch.setenv("DECONFLICT_WEBHOOK_ALLOW", "127.0.0.1")
    for service in make_service(tmp_path, clock, policy_text, db_url):
        north = service.register("Northern Air Force", "operator")
        south = service.register("Southern Air Command", "operator")
        relief = service.register(
            "Relief Without Borders", "humanitarian", webhook_url=receiver.url
        )
        water = service.register("Clean Water Alliance", "humanitarian")
        cast = {
            "north": north,
            "south": south,
            "relief": relief,
            "water": water,
            "coordinator": service.coordinator,
        }
        site = relief.declare(
            "site",
            [volume(point(*HOSPITAL), buffer_m=50, lower_m=0, upper_m=50)],
            category="hospital",
        )
        assert site.status_code == 201, site.text
        hospital = site.json()["declaration"]
        key = [hospital["version"]]
        made = north.declare(
            "operation",
            [strike_volume(STRIKE)],
            category=CATEGORY,
            metadata={"callsign": CALLSIGN},
            key=key,
            justification=WHY[0],
        )
        assert made.status_code == 201, made.text
        operation = made.json()["declaration"]
        moved = north.put(
            f"/v1/declarations/{operation['id']}",
            {
                "version": operation["version"],
                "volumes": [strike_volume(MOVED)],
                "key": key,
                "justification": WHY[1],
            },
        )
        assert moved.status_code == 200, moved.text
        world = World(
            service,
            cast,
            hospital,
            operation["id"],
            [operation["version"], moved.json()["declaration"]["version"]],
            receiver,
            [made.json()["receipt"], moved.json()["receipt"]],
        )
        yield world


def withdraw(world: World) -> None:
    north = world.cast["north"]
    gone = north.delete(f"/v1/declarations/{world.operation}?version={world.versions[-1]}")
    assert gone.status_code == 200, gone.text
    world.versions.append(gone.json()["declaration"]["version"])
    world.receipts.append(gone.json()["receipt"])


def learn_secrets(world: World) -> None:
    """Everything the humanitarian may not learn, as the coordinator and the operator know it."""
    coordinator = world.cast["coordinator"]
    world.secrets = {world.operation, *world.versions, CATEGORY, CALLSIGN, *WHY}
    world.secrets |= {s for corner in [*STRIKE, *MOVED] for c in corner for s in written(c)}
    alerts = protection(coordinator.get("/v1/inbox").json()["notifications"])
    world.secrets |= {n["id"] for n in alerts}
    deliveries = coordinator.get(f"/v1/declarations/{world.operation}/deliveries").json()
    relief = world.cast["relief"].id
    world.secrets |= {
        d["notification_id"] for d in deliveries["deliveries"] if d["party"] != relief
    }
    assert not any(s in HOSPITAL_TEXT for s in world.secrets)


HOSPITAL_TEXT = json.dumps(HOSPITAL)


def protection(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in notes if n["reason"] == "protection"]


def about(alerts: list[dict[str, Any]], declaration_id: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["protection"]["declaration"]["id"] == declaration_id]


# -- the walk -------------------------------------------------------------------------------


@dataclass
class Seen:
    answers: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, text: str) -> None:
        self.answers.append((label, text))

    def ask(self, who: Actor, method: str, url: str, body: Any = None) -> Any:
        answer = who.client.request(method, url, headers=who.headers, json=body)
        self.add(f"{method} {url}", answer.text)
        return answer


def read_stream(world: World, who: Actor, expected: int) -> str:
    """The event stream from the start until it has sent ``expected`` notifications; fails
    rather than hangs when they do not come."""
    lines: list[str] = []

    def read() -> None:
        with world.service.client.stream(
            "GET", "/v1/inbox/stream?after=0", headers=who.headers
        ) as s:
            for line in s.iter_lines():
                lines.append(line)
                if sum(line.startswith("data:") for line in lines) == expected:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), f"the stream sent {lines!r}, not {expected} notifications"
    return "\n".join(lines)


def walk(world: World, who: Actor) -> Seen:
    seen = Seen()
    hospital = world.hospital["id"]
    # Webhooks first: the body the humanitarian's receiver is POSTed.
    with WebhookSender(Allowed.parse("127.0.0.1"), timeout_s=5) as sender:
        deliver_due(world.service.deployment, sender, max_attempts=3)
    for headers, body in world.receiver.received:
        seen.add("webhook", json.dumps(headers) + body.decode("utf-8"))
    notes = seen.ask(who, "GET", "/v1/inbox?after=0").json()["notifications"]
    seen.add("GET /v1/inbox/stream", read_stream(world, who, len(notes)))
    for note in notes:
        opening = seen.ask(who, "GET", f"/v1/notifications/{note['id']}/opening")
        assert opening.status_code == 200, opening.text
        assert check_notification_opening(opening.json()) == [], note
        assert all(e["seal"] is not None for e in opening.json()["entries"])
    for url in (
        "/v1/me",
        "/v1/parties",
        "/v1/policy",
        "/v1/declarations",
        "/v1/declarations?kind=operation",
        "/v1/declarations?bbox=36.2,33.4,36.4,33.6",
        f"/v1/declarations?owner={world.cast['north'].id}",
        "/v1/notifications/overdue",
        f"/v1/declarations/{hospital}",
        f"/v1/declarations/{hospital}/conflicts",
        f"/v1/declarations/{hospital}/deliveries",
        f"/v1/declarations/{hospital}/opening",
        f"/v1/declarations/{hospital}/evidence",
        "/v1/export?format=geojson",
        "/v1/export?format=csv",
        "/v1/export?format=geojson&kind=operation",
    ):
        seen.ask(who, "GET", url)
    checked = seen.ask(
        who, "POST", "/v1/conflicts/check", {"kind": "site", "volumes": [strike_volume(MOVED)]}
    )
    assert checked.status_code == 200, checked.text
    # The 409s and other errors it can provoke about its own hospital.
    current = who.get(f"/v1/declarations/{hospital}").json()["declaration"]
    stale = {"version": "v0", "volumes": current["volumes"], "justification": None}
    assert seen.ask(who, "PUT", f"/v1/declarations/{hospital}", stale).status_code == 409
    assert seen.ask(who, "DELETE", f"/v1/declarations/{hospital}?version=v0").status_code == 409
    bad = {"version": current["version"], "volumes": [], "justification": "  "}
    assert seen.ask(who, "PUT", f"/v1/declarations/{hospital}", bad).status_code == 400
    # A second site, where the strike was: its answer names no operation.
    near = volume(point(36.309, 33.505), buffer_m=800, lower_m=0, upper_m=50)
    made = seen.ask(who, "POST", "/v1/declarations", {"kind": "site", "volumes": [near]})
    assert made.status_code == 201, made.text
    # The log, every leaf, and the inclusion proofs of the operator's receipts.
    head = seen.ask(who, "GET", "/v1/log/head").json()
    leaves = seen.ask(who, "GET", f"/v1/log/entries?start=0&end={head['size']}").json()
    assert len(leaves["entries"]) == head["size"]
    for receipt in world.receipts:
        seen.ask(
            who, "GET", f"/v1/log/proof/inclusion?index={receipt['index']}&size={head['size']}"
        )
    return seen


def probe_unknown_ids(world: World, who: Actor) -> None:
    """The operation's id, and the coordinator's alerts' ids, get exactly the answers of ids
    that never existed."""
    coordinator_alerts = protection(
        world.cast["coordinator"].get("/v1/inbox").json()["notifications"]
    )
    probes: list[tuple[str, str, Any, str, str]] = []
    for tail in ("", "/conflicts", "/deliveries", "/opening", "/evidence"):
        probes.append(("GET", f"/v1/declarations/{{id}}{tail}", None, world.operation, NEVER))
    probes.append(("DELETE", "/v1/declarations/{id}?version=v", None, world.operation, NEVER))
    probes.append(
        ("PUT", "/v1/declarations/{id}", {"version": "v", "volumes": []}, world.operation, NEVER)
    )
    for note in coordinator_alerts:
        for method, template, body in (
            ("POST", "/v1/notifications/{id}/ack", {"comment": "probe"}),
            ("GET", "/v1/notifications/{id}/opening", None),
        ):
            probes.append((method, template, body, note["id"], NEVER_NOTE))
    for method, template, body, secret, never in probes:
        unknown = who.client.request(
            method, template.format(id=never), headers=who.headers, json=body
        )
        answer = who.client.request(
            method, template.format(id=secret), headers=who.headers, json=body
        )
        assert (answer.status_code, answer.text.replace(secret, never)) == (
            unknown.status_code,
            unknown.text,
        ), (method, template)
        assert answer.status_code in (404, 405), answer.text


def leaks(world: World, seen: Seen, *, party_may_appear: bool) -> list[tuple[str, str]]:
    """(what was asked, the secret found in its answer)."""
    owner = world.cast["north"].id
    found = []
    for label, text in seen.answers:
        for secret in world.secrets:
            if secret in text:
                found.append((label, secret))
        if owner in scrubbed(label, text, party_may_appear=party_may_appear):
            found.append((label, "the operation's owner"))
    return found


def scrubbed(label: str, text: str, *, party_may_appear: bool) -> str:
    """An answer without the places that name every party by contract: the list of parties,
    their record entries, and (where the policy broadcasts sites to operators) the hospital's
    deliveries to them, overdue or not, also as its evidence pack lists them."""
    if label.endswith("/v1/parties"):
        return ""
    try:
        answer = json.loads(text)
    except ValueError:
        return text
    if isinstance(answer, dict) and "entries" in answer and label.startswith("GET /v1/log"):
        kept = [
            e
            for e in answer["entries"]
            if json.loads(e["leaf"])["type"] not in ("party.registered", "party.revoked")
        ]
        return json.dumps(kept)
    for listed in ("deliveries", "overdue"):
        if party_may_appear and isinstance(answer, dict) and listed in answer:
            return json.dumps([d for d in answer[listed] if d["reason"] != "broadcast"])
    # An evidence pack lists the hospital's deliveries too, with their record entries.
    if party_may_appear and label.endswith("/evidence") and isinstance(answer, dict):
        notes = [n for n in answer.get("notifications") or [] if n["reason"] != "broadcast"]
        return json.dumps({**answer, "notifications": notes})
    return text


def verify(world: World) -> None:
    verified = CliRunner().invoke(main, ["verify", "--db", world.service.db_url])
    assert verified.exit_code == 0, verified.output


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("broadcast", ["default", "quiet"])
def test_the_leak_walk_under_redacted(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    broadcast: str,
) -> None:
    text = DEFAULT if broadcast == "default" else QUIET
    for world in build(tmp_path, clock, db_url, text, receiver, monkeypatch):
        relief, coordinator = world.cast["relief"], world.cast["coordinator"]
        learn_secrets(world)
        # Alive and moved: walked once.
        seen = walk(world, relief)
        # Acknowledged (the answer walked), withdrawn, overdue: walked again.
        [first, *_] = protection(relief.get("/v1/inbox").json()["notifications"])
        seen.ask(relief, "POST", f"/v1/notifications/{first['id']}/ack", {"comment": "sheltering"})
        withdraw(world)
        learn_secrets(world)
        world.service.clock.advance(minutes=61)
        after = walk(world, relief)
        probe_unknown_ids(world, relief)
        assert len(seen.answers) > 30 and len(after.answers) > 30
        problems = leaks(world, seen, party_may_appear=broadcast == "default")
        problems += leaks(world, after, party_may_appear=broadcast == "default")
        assert problems == []

        # The walk can fail: the coordinator's answers name the operation.
        coordinator_seen = Seen()
        coordinator_seen.ask(coordinator, "GET", "/v1/inbox?after=0")
        assert {s for _, s in leaks(world, coordinator_seen, party_may_appear=True)} >= {
            world.operation,
            CATEGORY,
            *WHY,
        }

        # What the humanitarian IS told: its hospital, when and how close, each change.
        everything = protection(relief.get("/v1/inbox").json()["notifications"])
        alerts = about(everything, world.hospital["id"])
        told = about(
            protection(coordinator.get("/v1/inbox").json()["notifications"]), world.hospital["id"]
        )
        # The second site, made over the strike during the walk, is alerted of its withdrawal.
        assert [a["change"] for a in everything if a not in alerts] == ["withdrawn"]
        assert [a["change"] for a in alerts] == ["created", "updated", "withdrawn"]
        assert [t["change"] for t in told] == ["created", "updated", "withdrawn"]
        for alert, full in zip(alerts, told, strict=True):
            shown = alert["protection"]
            assert shown["declaration"]["id"] == world.hospital["id"]
            assert shown["time_overlap"] == full["protection"]["time_overlap"]
            assert shown["time_overlap"]["start"] == world.hospital["volumes"][0]["time"]["start"]
            assert shown["min_distance_m"] == full["protection"]["min_distance_m"]
            assert shown["min_distance_m"] > 0
            assert (shown["operation"], shown["category"], shown["justification"]) == (
                None,
                None,
                None,
            )
            assert (alert["declaration"], alert["conflicts"]) == (None, [])
        # Moved closer: the distance says so.
        assert alerts[1]["protection"]["min_distance_m"] < alerts[0]["protection"]["min_distance_m"]
        assert [t["protection"]["justification"] for t in told] == [WHY[0], WHY[1], WHY[1]]
        # The record entry of a redacted alert holds the operation only as commitments.
        opening = relief.get(f"/v1/notifications/{alerts[0]['id']}/opening").json()
        entry = opening["entries"][0]["seal"]["entry"]
        assert entry["type"] == "notification.created"
        assert len(entry["actor"]) == 64 and len(entry["notification"]["declaration"]) == 64
        assert entry["notification"]["disclosure"] == "redacted"
        assert opening["protection"]["value"] == alerts[0]["protection"]
        # Every webhook body is the inbox's document.
        bodies = [json.loads(body) for _, body in world.receiver.received]
        inbox = relief.get("/v1/inbox").json()["notifications"]
        assert sorted(b["id"] for b in bodies) == sorted(n["id"] for n in inbox)
        assert next(b for b in bodies if b["id"] == alerts[0]["id"])["declaration"] is None
        verify(world)


def test_an_alert_and_padding_log_one_entry_per_party(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change logs one entry per party but its writer, alerts or not (docs/record.md): the
    humanitarian and the coordinator, alerted and told nothing else, are not padded for."""
    for world in build(tmp_path, clock, db_url, QUIET, receiver, monkeypatch):
        parties = len(world.cast["coordinator"].get("/v1/parties").json()["parties"])
        after = [r["tree_head"]["size"] - r["index"] - 1 for r in world.receipts]
        assert after == [parties - 1, parties - 1]


def test_full_disclosure_tells_the_owner_everything(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for world in build(tmp_path, clock, db_url, disclosed(DEFAULT, "full"), receiver, monkeypatch):
        withdraw(world)
        relief = world.cast["relief"]
        alerts = protection(relief.get("/v1/inbox").json()["notifications"])
        assert [a["change"] for a in alerts] == ["created", "updated", "withdrawn"]
        for alert, version in zip(alerts, world.versions, strict=True):
            operation = {
                "id": world.operation,
                "kind": "operation",
                "owner": world.cast["north"].id,
                "version": version,
            }
            assert alert["declaration"] == operation
            assert alert["protection"]["operation"] == operation
            assert alert["protection"]["category"] == CATEGORY
        assert [a["protection"]["justification"] for a in alerts] == [WHY[0], WHY[1], WHY[1]]
        opening = relief.get(f"/v1/notifications/{alerts[0]['id']}/opening").json()
        assert check_notification_opening(opening) == []
        entry = opening["entries"][0]["seal"]["entry"]
        assert entry["actor"] == world.cast["north"].id
        assert entry["notification"]["disclosure"] == "full"
        # Still nothing through the operation's own endpoints: it is not visible to the owner.
        assert relief.get(f"/v1/declarations/{world.operation}").status_code == 404
        verify(world)


def test_no_disclosure_alerts_only_the_coordinator(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for world in build(tmp_path, clock, db_url, disclosed(DEFAULT, "none"), receiver, monkeypatch):
        withdraw(world)
        relief, coordinator = world.cast["relief"], world.cast["coordinator"]
        assert protection(relief.get("/v1/inbox").json()["notifications"]) == []
        told = protection(coordinator.get("/v1/inbox").json()["notifications"])
        assert [t["change"] for t in told] == ["created", "updated", "withdrawn"]
        assert {t["protection"]["declaration"]["id"] for t in told} == {world.hospital["id"]}
        deliveries = world.cast["north"].get(f"/v1/declarations/{world.operation}/deliveries")
        assert {d["party"] for d in deliveries.json()["deliveries"]} == {coordinator.id}
        verify(world)


def test_a_protected_kind_the_operator_may_not_see_is_not_shown_to_it(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a visibility that hides sites from operators, the operator's deliveries do not
    show the alerts (they would reveal the site); the alerts still go out."""
    hidden = DEFAULT.replace('site = ["*"]', 'site = ["humanitarian", "coordinator"]')
    assert hidden != DEFAULT, "the default visibility of sites moved"
    monkeypatch.setenv("DECONFLICT_WEBHOOK_ALLOW", "127.0.0.1")
    for service in make_service(tmp_path, clock, hidden, db_url):
        north = service.register("Northern Air Force", "operator")
        relief = service.register("Relief Without Borders", "humanitarian")
        relief.declare_ok("site", [volume(point(*HOSPITAL), buffer_m=50, upper_m=50)])
        made = north.declare("operation", [strike_volume(STRIKE)], category=CATEGORY)
        assert made.status_code == 201, made.text  # it may not see the site: no key, no reason
        operation = made.json()["declaration"]
        assert operation["justification"] is None
        assert len(protection(relief.get("/v1/inbox").json()["notifications"])) == 1
        assert len(protection(service.coordinator.get("/v1/inbox").json()["notifications"])) == 1
        deliveries = north.get(f"/v1/declarations/{operation['id']}/deliveries").json()
        assert deliveries["deliveries"] == []
        everything = service.coordinator.get(f"/v1/declarations/{operation['id']}/deliveries")
        assert {d["reason"] for d in everything.json()["deliveries"]} == {"protection"}
        assert problem_of(relief.get(f"/v1/declarations/{operation['id']}"))["status"] == 404


def test_a_party_verifies_its_alerts_opening_against_the_log(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``verify --url`` takes a redacted alert's opening: its seals and its ``protection``
    open, and its leaves are the log's; a forged alert is refused, naming ``protection``."""
    for world in build(tmp_path, clock, db_url, DEFAULT, receiver, monkeypatch):
        relief = world.cast["relief"]
        [alert, *_] = protection(relief.get("/v1/inbox").json()["notifications"])
        opening = relief.get(f"/v1/notifications/{alert['id']}/opening").json()
        heads, held = tmp_path / "heads.jsonl", tmp_path / "held.jsonl"
        held.write_text(json.dumps(opening) + "\n")
        checked = client.verify_remote(
            "http://testserver", heads, held, client=world.service.client
        )
        assert checked.ok, str(checked)
        forged = json.loads(json.dumps(opening))
        forged["protection"]["value"]["min_distance_m"] = 25_000
        assert check_notification_opening(forged) == ["entries[0].protection"]
        forged["protection"] = None
        assert check_notification_opening(forged) == ["entries[0].protection"]


def test_verify_refuses_a_redacted_alert_that_shows_the_operation(
    tmp_path: Path,
    clock: FakeClock,
    db_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the service ever store a redacted alert that names the operation (the bug this
    issue is about), ``verify`` says so, though the entry matches its row."""
    shown = protection_service.alert_document

    def leaky(subject: Any, conflict: Any, justification: Any, disclosure: str) -> Any:
        return shown(subject, conflict, justification, "full")

    monkeypatch.setattr(protection_service, "alert_document", leaky)
    for world in build(tmp_path, clock, db_url, DEFAULT, receiver, monkeypatch):
        verified = CliRunner().invoke(main, ["verify", "--db", world.service.db_url])
        assert verified.exit_code == 1
        assert "a redacted protection alert shows operation, category, justification" in (
            verified.output
        )

"""Scenarios: the built-in demo, the file format's errors, `deconflict load` and the demo."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from deconflict.api.declaration_json import declaration_json
from deconflict.cli import main
from deconflict.clock import parse_time
from deconflict.errors import InvalidRequest
from deconflict.record.fsck import verify_database
from deconflict.record.signing import public_key_b64
from deconflict.scenario.format import builtin_scenario, parse_duration, parse_offset
from deconflict.scenario.loader import load_scenario
from deconflict.scenario.report import LoadReport, summary_lines
from deconflict.service.bootstrap import default_policy_file, first_coordinator, initialise
from deconflict.service.declaration_reads import declaration_conflicts, list_declarations
from deconflict.service.deployment import Deployment
from deconflict.service.notifications import deliveries, overdue
from deconflict.service.parties import Party, list_parties
from deconflict.storage.database import Database
from server import free_port, stop, wait_until_up
from support import T0, FakeClock

THEATRE = (35.7, 32.3, 42.4, 37.3)  # west, south, east, north


@dataclass
class Loaded:
    deployment: Deployment
    report: LoadReport
    declarations: list[dict[str, Any]]


def fresh(tmp: Path, clock: FakeClock | None = None) -> tuple[Deployment, str]:
    """An initialised deployment in ``tmp``; returns it and its database URL."""
    db_url = f"sqlite:///{tmp / 'd.db'}"
    database = Database(db_url)
    initialise(database, tmp / "d.key", default_policy_file(db_url))
    return Deployment(database, tmp / "d.key", clock=clock or FakeClock()), db_url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    deployment, _ = fresh(tmp_path_factory.mktemp("demo"))
    report = load_scenario(deployment, builtin_scenario())
    coordinator = first_coordinator(deployment)
    found = [
        declaration_json(d)
        for d in list_declarations(
            deployment, coordinator, bbox=None, start=None, end=None, kind=None
        )
    ]
    yield Loaded(deployment, report, found)
    deployment.db.dispose()


def of_kind(loaded: Loaded, kind: str) -> list[dict[str, Any]]:
    return [d for d in loaded.declarations if d["kind"] == kind]


# -- the built-in demo ------------------------------------------------------------------------


def test_demo_has_the_parties_of_issue_4(demo: Loaded) -> None:
    with demo.deployment.db.read() as conn:
        roles = Counter(p.role for p in list_parties(conn))
    assert roles == {"coordinator": 1, "operator": 2, "humanitarian": 2}
    # Every new party got a token; the coordinator's is the one `init` printed.
    assert [p.token is None for p in demo.report.parties] == [True, False, False, False, False]


def test_demo_has_sites_movements_a_restriction_and_about_sixty_operations(demo: Loaded) -> None:
    sites = of_kind(demo, "site")
    assert len(sites) == 20
    assert {s["category"] for s in sites} >= {"hospital", "school", "warehouse", "water-point"}
    assert sorted(m["category"] for m in of_kind(demo, "movement")) == ["convoy", "evacuation"]
    corridors = [v for m in of_kind(demo, "movement") for v in m["volumes"]]
    assert all(v["geometry"]["type"] == "LineString" and v["buffer_m"] > 0 for v in corridors)
    assert all(v["time"]["end"] is not None for v in corridors)
    [restriction] = of_kind(demo, "restriction")
    east = next(p.id for p in demo.report.parties if p.ref == "east")
    assert restriction["restricts"] == {
        "parties": [east],
        "roles": [],
        "allowed_categories": ["non-combat"],
    }
    operations = of_kind(demo, "operation")
    assert 55 <= len(operations) <= 65
    assert demo.report.declared["operation"] == len(operations) + demo.report.withdrawn
    shapes = Counter(v["geometry"]["type"] for o in operations for v in o["volumes"])
    assert set(shapes) == {"Point", "LineString", "Polygon"}


def _coordinates(geometry: dict[str, Any]) -> list[list[float]]:
    found: list[list[float]] = []

    def walk(item: Any) -> None:
        if isinstance(item[0], int | float):
            found.append(item)
        else:
            for part in item:
                walk(part)

    walk(geometry["coordinates"])
    return found


def test_demo_stays_in_the_theatre_and_its_four_days(demo: Loaded) -> None:
    west, south, east, north = THEATRE
    for declaration in demo.declarations:
        for volume in declaration["volumes"]:
            for lon, lat in _coordinates(volume["geometry"]):
                assert west <= lon <= east and south <= lat <= north, declaration["metadata"]
    for operation in of_kind(demo, "operation"):
        [volume] = operation["volumes"]
        start, end = parse_time(volume["time"]["start"]), parse_time(volume["time"]["end"])
        assert timedelta(hours=1) <= end - start <= timedelta(hours=8)
        assert start > T0 and end <= T0 + timedelta(days=5)
        assert volume["altitude"]["upper_m"] is not None  # an altitude band


def test_demo_has_conflicts_of_every_kind(demo: Loaded) -> None:
    conflicts = demo.report.conflicts
    for pair in ("operation-site", "operation-movement", "operation-restriction"):
        assert conflicts.get(pair, 0) >= 2, conflicts
    assert conflicts.get("operation-operation", 0) >= 1, conflicts
    # What the report counts is what the service says.
    coordinator = first_coordinator(demo.deployment)
    reasons = Counter(
        c.reason
        for o in of_kind(demo, "operation")
        for c in declaration_conflicts(demo.deployment, coordinator, o["id"])
    )
    assert reasons["restriction"] == conflicts["operation-restriction"]


def test_demo_has_exactly_one_late_notice_operation(demo: Loaded) -> None:
    late = [d for d in demo.declarations if d["late_notice"]]
    assert [d["kind"] for d in late] == ["operation"]
    assert demo.report.late_notice == ["op-n-medevac"]


def test_demo_shows_the_awareness_rule_at_work(demo: Loaded) -> None:
    [refusal] = demo.report.refused
    assert refusal.ref == "op-e-redhill"
    assert [m["kind"] for m in refusal.missing] == ["site"]
    assert "op-e-redhill" not in demo.report.declarations
    assert demo.report.updated == 2 and demo.report.withdrawn == 1


def test_demo_has_acknowledged_overdue_and_pending_notifications(demo: Loaded) -> None:
    report = demo.report
    assert report.notifications > 50
    assert 0 < report.acknowledged < report.notifications
    assert 0 < report.overdue < report.notifications - report.acknowledged
    late = overdue(demo.deployment, first_coordinator(demo.deployment))
    assert len(late) == report.overdue
    # Overdue for those who were told and did not answer: operators and the Clearwater
    # Alliance (which never reads its inbox), never the owner itself.
    names = {p.id: p.ref for p in report.parties}
    assert {names[item.notification["recipient"]] for item in late} >= {"east", "water"}


def _party(loaded: Loaded, ref: str) -> Party:
    (found,) = [p for p in loaded.report.parties if p.ref == ref]
    return Party(id=found.id, name=found.name, role=found.role)


def test_demo_has_an_operator_that_cannot_assure_the_convoy(demo: Loaded) -> None:
    """Issue 13: one operator answers the convoy's notifications with ``cannot_assure`` and
    says why, and the convoy's owner sees that answer in its deliveries."""
    convoy = demo.report.declarations["mov-convoy"]
    shown = deliveries(demo.deployment, _party(demo, "aid"), convoy)
    east = _party(demo, "east").id
    answers = {
        (item.notification["response"], item.notification["response_comment"])
        for item in shown
        if item.notification["recipient"] == east
    }
    [(response, comment)] = answers  # both versions of the convoy, answered alike
    assert response == "cannot_assure"
    assert comment and "cannot assure" in comment
    assert demo.report.responses.get("cannot_assure", 0) >= 1
    assert "Answers other than acknowledged: 2 cannot assure" in summary_lines(demo.report)


def test_demo_record_verifies(demo: Loaded) -> None:
    result = verify_database(demo.deployment.db.engine, public_key_b64(demo.deployment.key))
    assert result.ok, result.describe()


def test_the_demo_is_live_whenever_it_is_loaded(tmp_path: Path) -> None:
    later = T0 + timedelta(days=200, minutes=17)
    deployment, _ = fresh(tmp_path, FakeClock(later))
    document = builtin_scenario()
    document["steps"] = document["steps"][:3]  # the designated area and a subscription
    load_scenario(deployment, document)
    coordinator = first_coordinator(deployment)
    [stored] = list_declarations(
        deployment, coordinator, bbox=None, start=None, end=None, kind=None
    )
    zone = declaration_json(stored)
    # Offsets count from the start of the load time's hour; the clock from the load time.
    assert zone["volumes"][0]["time"]["start"] == "2027-06-19T03:00:00Z"
    assert zone["created_at"] == "2027-06-19T03:17:00.000000Z"
    deployment.db.dispose()


# -- the format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+2d6h", timedelta(days=2, hours=6)),
        ("+30m", timedelta(minutes=30)),
        ("-1h", timedelta(hours=-1)),
        ("+1d2h30m15s", timedelta(days=1, hours=2, minutes=30, seconds=15)),
        ("+0m", timedelta(0)),
        ("+", None),  # no amount
        ("2d", None),  # no sign: not an offset
        ("+6h2d", None),  # units out of order
        ("+1w", None),  # no weeks
        ("-1.5h", None),  # whole numbers only
    ],
)
def test_offsets(text: str, expected: timedelta | None) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20m", timedelta(minutes=20)),
        ("+1h30m", timedelta(minutes=90)),
        ("0m", None),
        ("-5m", None),
        ("", None),
        ("soon", None),
    ],
)
def test_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


def point_volume(lon: float, lat: float, start: str, end: str | None, **extra: Any) -> Any:
    return {
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "buffer_m": extra.get("buffer_m", 500),
        "altitude": {"lower_m": None, "upper_m": None},
        "time": {"start": start, "end": end},
    }


SMALL: dict[str, Any] = {
    "name": "small",
    "clock": {"start": "-2h"},
    "parties": [
        {"ref": "north", "name": "Northern Air Command", "role": "operator"},
        {"ref": "east", "name": "Eastern Coalition Air Wing", "role": "operator"},
        {"ref": "aid", "name": "Meridian Relief", "role": "humanitarian"},
    ],
    "steps": [
        {
            "as": "aid",
            "ref": "hospital",
            "kind": "site",
            "category": "hospital",
            "volumes": [point_volume(36.3, 33.5, "-30d", None)],
        },
        {"advance": "30m"},
        {
            "as": "north",
            "ref": "op-1",
            "kind": "operation",
            "category": "strike",
            "volumes": [point_volume(36.3, 33.5, "+2d", "+2d3h")],
            "acknowledge_conflicts": True,
            "justification": "the hospital is told; the coordinator confirms it is clear",
        },
        {
            "as": "east",
            "ref": "op-2",
            "kind": "operation",
            "category": "strike",
            "volumes": [point_volume(36.31, 33.5, "+2d", "+2d3h")],
        },
        {"as": "north", "read_inbox": True},
        {"as": "north", "acknowledge": "all"},
    ],
}


def test_a_small_scenario_goes_through_the_services_rules(tmp_path: Path) -> None:
    deployment, _ = fresh(tmp_path)
    report = load_scenario(deployment, SMALL)
    assert report.declared == {"site": 1, "operation": 1}
    [refusal] = report.refused
    assert (refusal.step, refusal.ref) == (3, "op-2")
    assert sorted(m["kind"] for m in refusal.missing) == ["operation", "site"]
    assert report.conflicts == {"operation-site": 1}
    # The site, to each operator; op-1's protection alerts, to the aid and the coordinator.
    assert (report.notifications, report.acknowledged) == (4, 1)
    assert report.overdue == 3  # east's, created two hours ago, and the two alerts
    deployment.db.dispose()


def step_with(number: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["steps"][number].update(changes)

    return change


def volume_with(number: int, path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target = document["steps"][number]["volumes"][0]
        *parents, last = path.split(".")
        for name in parents:
            target = target[name]
        target[last] = value

    return change


BAD: list[Any] = [
    pytest.param(
        volume_with(2, "time.end", "+1d"), "steps[2].volumes[0].time", id="end-before-start"
    ),
    pytest.param(
        volume_with(2, "time.start", "+2x"), "steps[2].volumes[0].time.start", id="bad-offset"
    ),
    pytest.param(
        volume_with(2, "time.start", "2026-12-01T06:00:00"),
        "steps[2].volumes[0].time.start",
        id="no-time-zone",
    ),
    pytest.param(
        volume_with(2, "geometry.coordinates", [36.3, 95.0]),
        "steps[2].volumes[0].geometry",
        id="latitude-out-of-range",
    ),
    pytest.param(
        volume_with(2, "buffer_m", -5), "steps[2].volumes[0].buffer_m", id="negative-buffer"
    ),
    pytest.param(step_with(2, **{"as": "nobody"}), "steps[2].as", id="unknown-party"),
    pytest.param(step_with(0, kind="operation"), "steps[0].kind", id="wrong-role-for-kind"),
    pytest.param(step_with(2, ref="hospital"), "steps[2].ref", id="ref-used-twice"),
    pytest.param(step_with(4, withdraw="op-1"), "steps[4]", id="two-actions-in-a-step"),
    pytest.param(step_with(1, advance="3h"), "steps[1].advance", id="clock-passes-the-load-time"),
    pytest.param(step_with(1, advance="soon"), "steps[1].advance", id="bad-duration"),
    pytest.param(step_with(5, acknowledge=["op-9"]), "steps[5].acknowledge[0]", id="unknown-ref"),
    pytest.param(step_with(5, response="maybe"), "steps[5].response", id="unknown-response"),
    pytest.param(step_with(2, colour="red"), "steps[2].colour", id="unknown-field"),
    pytest.param(
        lambda d: d["steps"].append({"as": "east", "update": "op-1", "volumes": []}),
        "steps[6].update",
        id="update-of-another-partys-declaration",
    ),
    pytest.param(lambda d: d["steps"].append(7), "steps[6]", id="step-not-an-object"),
    pytest.param(
        lambda d: d["parties"].append({"ref": "coordinator", "name": "x", "role": "observer"}),
        "parties[3].ref",
        id="coordinator-ref-taken",
    ),
    pytest.param(
        lambda d: d["parties"][0].update(role="pilot"), "parties[0].role", id="unknown-role"
    ),
    pytest.param(lambda d: d.update(clock={"start": "tomorrow"}), "clock.start", id="bad-clock"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_a_bad_file_names_the_field_and_writes_nothing(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str
) -> None:
    deployment, _ = fresh(tmp_path)
    document = copy.deepcopy(SMALL)
    change(document)
    with deployment.db.read() as conn:
        before = len(list_parties(conn))
    with pytest.raises(InvalidRequest) as raised:
        load_scenario(deployment, document)
    assert raised.value.detail.startswith(field), raised.value.detail
    assert raised.value.errors[0]["field"].startswith(field)
    with deployment.db.read() as conn:
        assert len(list_parties(conn)) == before
    deployment.db.dispose()


def test_a_step_refused_while_loading_stops_the_load_naming_the_step(tmp_path: Path) -> None:
    deployment, _ = fresh(tmp_path)
    document = copy.deepcopy(SMALL)
    document["steps"].append(
        {"as": "east", "withdraw": "op-2", "note": "op-2 was refused at steps[3]"}
    )
    with pytest.raises(
        InvalidRequest, match=r"^steps\[6\]\.withdraw: 'op-2' was refused at steps\[3\]"
    ):
        load_scenario(deployment, document)
    deployment.db.dispose()


# -- deconflict load --------------------------------------------------------------------------


def test_deconflict_load_prints_tokens_and_a_summary(tmp_path: Path) -> None:
    _, db_url = fresh(tmp_path)
    scenario = tmp_path / "small.json"
    scenario.write_text(json.dumps(SMALL))
    # A wide terminal, so that names are not wrapped.
    result = CliRunner(env={"COLUMNS": "160"}).invoke(
        main, ["load", "--db", db_url, "--key-file", str(tmp_path / "d.key"), str(scenario)]
    )
    assert result.exit_code == 0, result.output
    for text in (
        "Northern Air Command",
        "Meridian Relief",
        "1 operation, 1 site",
        "Refused for missing awareness",
        "1 operation-site",
        "1 acknowledged",
    ):
        assert text in result.stdout, result.stdout
    # Tokens are printed whole, and work.
    token = next(
        line.split()[-1] for line in result.stdout.splitlines() if "Meridian Relief" in line
    )
    assert len(token) == 43


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({**SMALL, "steps": [{"advance": "1h", "as": "north"}]}), "steps[0].as"),
    ],
    ids=["not-json", "bad-step"],
)
def test_deconflict_load_fails_clearly_on_a_bad_file(
    tmp_path: Path, content: str, message: str
) -> None:
    _, db_url = fresh(tmp_path)
    scenario = tmp_path / "bad.json"
    scenario.write_text(content)
    result = CliRunner().invoke(
        main, ["load", "--db", db_url, "--key-file", str(tmp_path / "d.key"), str(scenario)]
    )
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_deconflict_load_needs_an_initialised_database(tmp_path: Path) -> None:
    scenario = tmp_path / "small.json"
    scenario.write_text(json.dumps(SMALL))
    result = CliRunner().invoke(
        main, ["load", "--db", f"sqlite:///{tmp_path / 'none.db'}", str(scenario)]
    )
    assert result.exit_code == 1
    assert "not initialised" in result.stderr


# -- python -m deconflict.scenario.demo ------------------------------------------------------------


@pytest.mark.slow
def test_the_demo_starts_and_serves_the_scenario(tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "demo.out"
    directory = tmp_path / "demo-data"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deconflict.scenario.demo",
                "--dir",
                str(directory),
                "--port",
                str(port),
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, process, timeout_s=60)
            text = output.read_text()
            token = next(line.split()[-1] for line in text.splitlines() if " operator " in line)
            me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["role"] == "operator"
        finally:
            stop(process)
    assert f"http://127.0.0.1:{port}/" in text
    assert (directory / "demo.db").exists()


def test_the_demo_will_not_delete_a_folder_it_did_not_make(tmp_path: Path) -> None:
    from deconflict.scenario.demo import main as demo_main

    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(demo_main, ["--dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "did not make" in result.output
    assert (tmp_path / "precious.txt").exists()

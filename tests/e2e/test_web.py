"""End-to-end tests of the web page: a real server, Debian's Chromium, Playwright.

Each test starts its own deployment (see conftest), seeds it through the HTTP API as the
parties would, and drives the page as a person does: log in, look, click, type.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from webpage_scenario import (
    acknowledge,
    box,
    declaration,
    declare,
    point,
    read_inbox,
    this_hour,
    volume,
)
from webpage_server import Server

pytestmark = pytest.mark.slow

NewPage = Callable[[], Any]
LogIn = Callable[[Any, str], None]

HOSPITAL = (36.712, 34.738)
DOCS = Path(__file__).resolve().parents[2] / "docs"
DEMO = str(resources.files("deconflict").joinpath("scenarios", "demo.json"))


def _site(server: Server, token: str, name: str, category: str, lon: float, lat: float) -> Any:
    body = declaration(
        "site",
        name,
        category,
        [volume(point(lon, lat), this_hour() - timedelta(days=1), None, buffer_m=300)],
    )
    return declare(server.client(token), body)["declaration"]


def test_operator_declares_over_a_hospital_through_the_awareness_flow(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    medical = server.create_party("Medical Relief International", "humanitarian")
    hospital = _site(server, medical["token"], "Al-Amal General Hospital", "hospital", *HOSPITAL)
    _site(server, medical["token"], "Martyrs' Square School", "school", 36.90, 34.60)

    page = new_page()
    log_in(page, operator["token"])
    assert page.text_content("#party-name") == "Northern Air Command"
    # The sites are on the map, and in the list.
    page.wait_for_selector(".dc-site-icon >> nth=1")
    assert page.locator(".dc-site-icon").count() == 2
    assert page.locator("#decl-list .decl-item[data-kind='site']").count() == 2

    # Declare an operation over the hospital, by pasting GeoJSON.
    page.click("#tab-declare")
    start = this_hour() + timedelta(days=2)
    page.fill("#declare-name", "Strike package ALPHA")
    page.fill("#declare-category", "combat")
    lon, lat = HOSPITAL
    page.fill(
        "#declare-geojson",
        json.dumps(box(lon - 0.02, lat - 0.02, lon + 0.02, lat + 0.02)),
    )
    page.fill("#declare-lower", "0")
    page.fill("#declare-upper", "6000")
    page.fill("#declare-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#declare-end", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#declare-submit")

    # 409 missing_awareness, explained in plain words, the hospital called out on the map.
    explanation = page.wait_for_selector("#awareness")
    text = explanation.text_content() or ""
    assert "Your operation conflicts with 1 declaration you have not acknowledged seeing" in text
    assert "Al-Amal General Hospital" in text
    assert "Medical Relief International" in text
    assert page.locator(".dc-site-icon.is-called").count() == 1
    assert not _operations_of(server, operator["token"])  # nothing was written yet

    # The hospital is protected: it is shown apart, and declaring needs a justification.
    assert "Al-Amal General Hospital" in page.text_content("#protected-list")
    page.fill("#declare-justification", "Artillery position inside the compound, confirmed.")
    page.click("#awareness-confirm")
    success = page.wait_for_selector("#declare-success")
    assert "It conflicts with 1 declaration" in (success.text_content() or "")
    assert "Al-Amal General Hospital" in page.text_content("#declare-protected")

    # The conflict stands out on the map and in the detail panel of the new operation.
    page.wait_for_selector(".dc-badge")
    page.wait_for_selector("#detail:not([hidden]) #detail-conflicts")
    assert page.text_content("#detail-title") == "Strike package ALPHA"
    assert "Al-Amal General Hospital" in page.text_content("#detail-conflicts")
    assert page.locator(".dc-site-icon.is-conflict").count() == 1

    (created,) = _operations_of(server, operator["token"])
    assert created["metadata"]["name"] == "Strike package ALPHA"
    conflicts = server.client(operator["token"]).get(f"/v1/declarations/{created['id']}/conflicts")
    assert [c["declaration"]["id"] for c in conflicts.json()["conflicts"]] == [hospital["id"]]


def test_humanitarian_sees_who_acknowledged_its_site(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    north = server.create_party("Northern Air Command", "operator")
    coalition = server.create_party("Coalition Air Wing", "operator")
    _set_acknowledgment_deadline(server, minutes=0.01)  # unacknowledged: overdue within 1 s
    site = _site(server, medical["token"], "Al-Amal General Hospital", "hospital", *HOSPITAL)

    # Northern Air Command reads and acknowledges; the Coalition only reads.
    (note,) = [
        n for n in read_inbox(server.client(north["token"])) if n["declaration"]["id"] == site["id"]
    ]
    acknowledge(server.client(north["token"]), note["id"])
    read_inbox(server.client(coalition["token"]))
    time.sleep(1.0)

    page = new_page()
    log_in(page, medical["token"])
    page.click(f"#decl-list .decl-item[data-decl-id='{site['id']}']")
    page.wait_for_selector("#detail-deliveries table")
    acked = page.locator(f"#detail-deliveries tr[data-party='{north['id']}']")
    assert "Northern Air Command" in acked.text_content()
    assert "✓" in acked.text_content()
    assert "is-acked" in (acked.get_attribute("class") or "")
    # The Coalition's acknowledgment is overdue, and that stands out.
    waiting = page.locator(f"#detail-deliveries tr[data-party='{coalition['id']}']")
    assert "Coalition Air Wing" in waiting.text_content()
    assert "overdue" in waiting.text_content()
    assert "is-overdue" in (waiting.get_attribute("class") or "")
    summary = page.text_content("#detail-deliveries .deliv-summary") or ""
    assert "2 notified · 1 acknowledged" in summary
    assert "1 overdue" in summary

    # The same from the inbox, for all of the party's declarations.
    page.click("#tab-inbox")
    page.click("#inbox-view-sent")
    page.wait_for_selector(f".sent[data-decl-id='{site['id']}'] table")
    row = page.locator(f".sent tr[data-party='{north['id']}']")
    assert "✓" in row.text_content()
    overdue = page.locator(f"#overdue-box li[data-party='{coalition['id']}']")
    assert "Al-Amal General Hospital" in overdue.text_content()


def test_a_humanitarian_sees_no_operations(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    medical = server.create_party("Medical Relief International", "humanitarian")
    _site(server, medical["token"], "Al-Amal General Hospital", "hospital", *HOSPITAL)
    start = this_hour() + timedelta(days=2)
    declare(
        server.client(operator["token"]),
        declaration(
            "operation",
            "Patrol NORTH-1",
            "reconnaissance",
            [volume(box(38.0, 36.2, 38.6, 36.7), start, start + timedelta(hours=4))],
        ),
    )

    page = new_page()
    log_in(page, medical["token"])
    page.wait_for_selector("#decl-list .decl-item[data-kind='site']")
    assert page.locator("#decl-list .decl-item[data-kind='operation']").count() == 0
    assert "Patrol NORTH-1" not in page.text_content("#decl-list")
    assert page.locator(".lg-operation").count() == 0
    page.click("#tab-declare")
    kinds = page.locator("#declare-form [role='radio']").all_text_contents()
    assert kinds == ["Declare site", "Declare movement"]

    # The operator, on the other hand, sees it.
    other = new_page()
    log_in(other, operator["token"])
    other.wait_for_selector("#decl-list .decl-item[data-kind='operation']")
    assert "Patrol NORTH-1" in other.text_content("#decl-list")


def test_an_operator_acknowledges_a_notification_from_the_inbox(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    medical = server.create_party("Medical Relief International", "humanitarian")
    site = _site(server, medical["token"], "Al-Amal General Hospital", "hospital", *HOSPITAL)

    page = new_page()
    log_in(page, operator["token"])
    assert page.text_content("#inbox-count") == "1"
    page.click("#tab-inbox")
    card = page.locator(f".note[data-decl-id='{site['id']}']")
    assert "Al-Amal General Hospital" in card.text_content()
    card.locator("button.ack").click()
    card.locator(".ack-yes").wait_for()
    assert page.locator("#inbox-count").is_hidden()

    deliveries = server.client(medical["token"]).get(f"/v1/declarations/{site['id']}/deliveries")
    (delivery,) = deliveries.json()["deliveries"]
    assert delivery["party"] == operator["id"]
    assert delivery["acknowledged_at"] is not None


def test_the_owner_withdraws_a_declaration_from_its_detail(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    start = this_hour() + timedelta(days=2)
    created = declare(
        server.client(operator["token"]),
        declaration(
            "operation",
            "Patrol NORTH-1",
            "reconnaissance",
            [volume(box(38.0, 36.2, 38.6, 36.7), start, start + timedelta(hours=4))],
        ),
    )["declaration"]

    page = new_page()
    log_in(page, operator["token"])
    page.click(f"#decl-list .decl-item[data-decl-id='{created['id']}']")
    page.click("#withdraw")
    page.click("#withdraw-confirm")
    page.wait_for_selector("#detail .state-withdrawn")
    item = f"#decl-list .decl-item[data-decl-id='{created['id']}']"
    page.wait_for_selector(item, state="detached")

    answer = server.client(operator["token"]).get(f"/v1/declarations/{created['id']}")
    assert answer.json()["declaration"]["state"] == "withdrawn"


def test_drawing_a_point_on_the_map_fills_the_geometry(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    page = new_page()
    log_in(page, operator["token"])
    page.click("#tab-declare")
    page.click("#declare-draw-point")
    box_ = page.locator("#map").bounding_box()
    assert box_ is not None
    page.mouse.click(box_["x"] + box_["width"] / 2, box_["y"] + box_["height"] / 2)
    page.wait_for_function("document.querySelector('#declare-geojson').value !== ''")
    drawn = json.loads(page.input_value("#declare-geojson"))
    assert drawn["type"] == "Point"
    center = page.evaluate(
        "(() => { const c = window.__deconflict.map.getCenter(); return [c.lng, c.lat]; })()"
    )
    assert drawn["coordinates"] == pytest.approx(center, abs=0.05)


def test_refused_fields_are_shown_next_to_the_form(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    page = new_page()
    log_in(page, operator["token"])
    page.click("#tab-declare")
    start = this_hour() + timedelta(days=2)
    page.fill("#declare-geojson", json.dumps(point(38.0, 35.0)))
    page.fill("#declare-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#declare-end", (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#declare-submit")
    page.wait_for_selector("#declare-problem:not([hidden])")
    errors = page.locator(".field-error:not([hidden])").all_text_contents()
    assert any("volumes[0].time" in e for e in errors), errors


def test_login_refuses_an_unknown_token_and_logout_forgets(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    page = new_page()
    page.goto(server.base_url + "/")
    page.fill("#login-token", "not-a-token")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "not accepted" in page.text_content("#login-error")

    log_in(page, operator["token"])
    assert page.evaluate("sessionStorage.getItem('deconflict.token')") == operator["token"]
    assert page.evaluate("localStorage.length") == 0
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('deconflict.token')") is None


def test_the_record_tab_verifies_the_signed_tree_head(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator = server.create_party("Northern Air Command", "operator")
    page = new_page()
    log_in(page, operator["token"])
    page.click("#tab-record")
    page.wait_for_selector("#verify-result")
    assert page.text_content("#verify-result") == "Signature verified ✓"
    head = server.client(operator["token"]).get("/v1/log/head").json()
    assert int(page.text_content("#record-size") or "0") >= head["size"] - 1


@pytest.mark.scenario(DEMO)
def test_the_demo_picture(server: Server, new_page: NewPage, log_in: LogIn, tmp_path: Path) -> None:
    """The built-in demo (``make demo``) as Northern Air Command sees it: sites, the convoy
    corridor, the designated area, operations and their conflicts. With
    DECONFLICT_UPDATE_SCREENSHOT=1 the picture is written to docs/screenshot.png."""
    page = new_page()
    log_in(page, server.scenario_tokens["Northern Air Command"])
    page.wait_for_selector(".dc-badge")
    assert page.locator("#decl-list .decl-item[data-kind='site']").count() >= 10
    assert page.locator(".dc-site-icon").count() >= 10
    assert page.locator("#decl-list .decl-item[data-kind='restriction']").count() == 1
    assert page.locator("#decl-list .decl-item[data-kind='movement']").count() == 2
    # An operation over Qadira, inside the designated area and close to its sites.
    page.click("#decl-list .decl-item >> text=ECW-02 strike")
    page.wait_for_selector("#detail-conflicts")
    assert "Qadira designated area" in page.text_content("#detail-conflicts")
    # (A function returning nothing: Playwright would serialise the returned map.)
    page.evaluate("() => { window.__deconflict.map.zoomOut(0.75, {animate: false}); }")
    page.mouse.move(5, 5)
    page.wait_for_timeout(400)
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    if os.environ.get("DECONFLICT_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS / "screenshot.png")


def _set_acknowledgment_deadline(server: Server, *, minutes: float) -> None:
    coordinator = server.client(server.coordinator_token)
    toml = coordinator.get("/v1/policy").json()["toml"]
    changed = re.sub(r"(?m)^deadline_minutes\s*=.*$", f"deadline_minutes = {minutes}", toml)
    assert changed != toml
    response = coordinator.put(
        "/v1/policy", content=changed.encode(), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text


def _operations_of(server: Server, token: str) -> list[dict[str, Any]]:
    response = server.client(token).get("/v1/declarations", params={"kind": "operation"})
    assert response.status_code == 200, response.text
    me = server.client(token).get("/v1/me").json()
    return [d for d in response.json()["declarations"] if d["owner"] == me["id"]]

"""End-to-end tests of protection on the web page (issue 13): the alert on the protected
site and in its owner's inbox (redacted), the coordinator's Alerts view, the operator's
justification box, and responses chosen when acknowledging and shown to the owner.

A real server, Debian's Chromium, Playwright (see conftest); the parties are seeded through
the HTTP API as they would act.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from webpage_scenario import (
    box,
    declaration,
    declare,
    line,
    point,
    read_inbox,
    set_acknowledgment_deadline,
    this_hour,
    volume,
)
from webpage_server import Server

pytestmark = pytest.mark.slow

NewPage = Callable[[], Any]
LogIn = Callable[[Any, str], None]

HOSPITAL = (36.712, 34.738)
JUSTIFICATION = "Artillery firing from the compound's car park, confirmed by two sources."


def _hospital(server: Server, token: str) -> dict[str, Any]:
    body = declaration(
        "site",
        "Al-Noor Field Clinic",
        "hospital",
        [volume(point(*HOSPITAL), this_hour() - timedelta(days=1), None, buffer_m=300, upper_m=50)],
    )
    created: dict[str, Any] = declare(server.client(token), body)["declaration"]
    return created


def _strike_over(server: Server, token: str) -> dict[str, Any]:
    """A strike at 6-12 km straight over the hospital: altitude must not hide it."""
    lon, lat = HOSPITAL
    start = this_hour() + timedelta(days=2)
    body = declaration(
        "operation",
        "Strike package VIPER",
        "strike",
        [
            volume(
                box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01),
                start,
                start + timedelta(hours=3),
                lower_m=6000,
                upper_m=12000,
            )
        ],
    )
    created: dict[str, Any] = declare(server.client(token), body, justification=JUSTIFICATION)
    return created["declaration"]


def _parties(server: Server) -> tuple[dict[str, Any], dict[str, Any]]:
    operator = server.create_party("Northern Air Command", "operator")
    medical = server.create_party("Medical Relief International", "humanitarian")
    return operator, medical


def test_the_humanitarian_sees_the_alert_on_its_site_and_in_its_inbox_without_the_operation(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator, medical = _parties(server)
    hospital = _hospital(server, medical["token"])
    strike = _strike_over(server, operator["token"])

    page = new_page()
    log_in(page, medical["token"])
    # The header says there is an alert to answer; the site's row says so too.
    page.wait_for_selector("#alerts-banner:not([hidden])")
    assert "1 alert to answer" in page.text_content("#alerts-banner")
    row = page.locator(f"#decl-list .decl-item[data-decl-id='{hospital['id']}']")
    assert "protection alert" in row.text_content()
    # The hospital's own panel: a red alert, never a green "no conflicts".
    row.click()
    page.wait_for_selector("#detail-alerts")
    alert = page.text_content("#detail-alerts") or ""
    assert "Protection alert: an operation over it" in alert
    assert "withheld by policy" in alert
    assert page.locator("#detail .badge-ok").count() == 0
    assert "1 protection alert" in page.text_content("#detail-alert-badge")
    assert page.locator(".dc-site-icon.is-alerted").count() == 1

    # The inbox: a protection alert, apart from the others, in plain words.
    page.click("#tab-inbox")
    card = page.locator("#inbox-list .note-protection")
    card.wait_for()
    text = card.text_content() or ""
    assert "Protection alert" in text
    assert "An operation is planned over your hospital “Al-Noor Field Clinic”" in text
    assert "withheld by policy" in text and "coordinator" in text

    # Nothing of the operation reaches the page, whatever it shows. (The operator's name
    # is on the page, rightly: it received the hospital's own notification. It is not in
    # the alerts.)
    page.click("#tab-alerts")
    page.wait_for_selector("#alerts-list .note-protection")
    everything = page.evaluate("document.documentElement.outerHTML")
    for secret in (strike["id"], strike["version"], "VIPER", JUSTIFICATION):
        assert secret not in everything, secret
    assert "strike" not in everything.lower()
    for alert in (
        page.text_content("#alerts-list") or "",
        page.text_content("#inbox-list .note-protection") or "",
    ):
        assert "Northern Air Command" not in alert and operator["id"] not in alert


def test_the_coordinator_alerts_view_lists_protection_and_overdue_alerts(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator, medical = _parties(server)
    coalition = server.create_party("Coalition Air Wing", "operator")
    coordinator = server.client(server.coordinator_token)
    set_acknowledgment_deadline(coordinator, minutes=0.02)  # overdue a second or so after
    hospital = _hospital(server, medical["token"])
    _strike_over(server, operator["token"])
    read_inbox(server.client(coalition["token"]))  # read, never acknowledged: it is late

    page = new_page()
    log_in(page, server.coordinator_token)
    page.wait_for_selector("#alerts-banner:not([hidden])")
    page.click("#alerts-banner")
    page.wait_for_selector("#panel-alerts:not([hidden]) #alerts-list .note-protection")
    protection = page.locator("#alerts-list .note-protection").first.text_content() or ""
    # The coordinator is told everything: the operation, its owner, category, justification,
    # the protected declaration and how close, when.
    assert "Strike package VIPER" in protection
    assert "Northern Air Command" in protection
    assert "strike" in protection
    assert JUSTIFICATION in protection
    assert "Al-Noor Field Clinic" in protection
    assert "Medical Relief International" in protection
    assert "0 m (overlapping)" in protection

    # The escalation of the Coalition's late acknowledgment (made by the server once the
    # deadline passes; the page polls its inbox).
    overdue = page.locator("#alerts-list .note-overdue")
    overdue.first.wait_for(timeout=60_000)
    text = " ".join(overdue.all_text_contents())
    assert "Coalition Air Wing has not acknowledged the notification about" in text
    assert "Al-Noor Field Clinic" in text
    summary = page.text_content("#alerts-summary") or ""
    assert "protection" in summary and "overdue" in summary
    assert page.locator("#alerts-count").is_visible()
    assert hospital["id"]  # (seeded above)


def test_the_operators_declare_flow_over_a_hospital_needs_a_justification(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator, medical = _parties(server)
    hospital = _hospital(server, medical["token"])
    # A conflict that is not protected: another operator's patrol at the same place and time.
    other = server.create_party("Coalition Air Wing", "operator")
    lon, lat = HOSPITAL
    start = this_hour() + timedelta(days=2)
    patrol = declare(
        server.client(other["token"]),
        declaration(
            "operation",
            "Patrol EAST-2",
            "air-patrol",
            [volume(point(lon, lat), start, start + timedelta(hours=3), buffer_m=5000)],
        ),
        justification="Border patrol over the valley, unarmed.",
    )["declaration"]

    page = new_page()
    log_in(page, operator["token"])
    page.click("#tab-declare")
    page.fill("#declare-name", "Strike package VIPER")
    page.fill("#declare-category", "strike")
    page.fill("#declare-geojson", json.dumps(box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)))
    page.fill("#declare-lower", "6000")
    page.fill("#declare-upper", "12000")
    page.fill("#declare-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#declare-end", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#declare-submit")

    # The protected hospital is shown apart from the patrol, with the justification box.
    page.wait_for_selector("#protected-box")
    assert "Al-Noor Field Clinic" in page.text_content("#protected-list")
    assert "Patrol EAST-2" not in page.text_content("#protected-list")
    assert "Patrol EAST-2" in page.text_content("#awareness-list")
    assert page.get_attribute("#declare-justification", "maxlength") == "2000"
    label = page.locator("label[for='declare-justification']").text_content() or ""
    assert "Justification (required)" in label

    # Confirming without a justification is stopped next to the box; nothing is written.
    page.click("#awareness-confirm")
    error = page.wait_for_selector("#declare-justification-error:not([hidden])")
    assert "cannot be empty" in (error.text_content() or "")
    page.fill("#declare-justification", JUSTIFICATION)
    assert page.text_content("#declare-justification-count") == (
        f"{len(JUSTIFICATION)} / 2,000 characters"
    )
    page.click("#awareness-confirm")
    success = page.wait_for_selector("#declare-success")
    assert "Al-Noor Field Clinic" in page.text_content("#declare-protected")
    assert "alerted" in (success.text_content() or "")

    mine = server.client(operator["token"]).get("/v1/declarations", params={"kind": "operation"})
    (created,) = [d for d in mine.json()["declarations"] if d["owner"] == operator["id"]]
    answer = server.client(operator["token"]).get(f"/v1/declarations/{created['id']}")
    assert answer.json()["declaration"]["justification"] == JUSTIFICATION
    conflicts = server.client(operator["token"]).get(f"/v1/declarations/{created['id']}/conflicts")
    ids = {c["declaration"]["id"] for c in conflicts.json()["conflicts"]}
    assert ids == {hospital["id"], patrol["id"]}


def test_a_justification_the_service_asks_for_is_asked_in_the_page(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    """The 409 ``justification_required`` itself (here because the page has no policy to
    tell it the hospital is protected), then the service's 400 naming ``justification``."""
    operator, medical = _parties(server)
    _hospital(server, medical["token"])
    page = new_page()
    page.route(
        "**/v1/policy",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"toml": "", "policy": {"protection": {"kinds": []}}}),
        ),
    )
    log_in(page, operator["token"])
    page.click("#tab-declare")
    lon, lat = HOSPITAL
    start = this_hour() + timedelta(days=2)
    page.fill("#declare-geojson", json.dumps(point(lon, lat)))
    page.fill("#declare-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#declare-end", (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#declare-submit")
    page.wait_for_selector("#awareness")
    assert page.locator("#protected-box").count() == 0  # the page did not know
    page.click("#awareness-confirm")
    # The service names the protected hospital; the page asks for the justification.
    page.wait_for_selector("#protected-box")
    assert "Al-Noor Field Clinic" in page.text_content("#protected-list")
    # A browser that ignores `maxlength` lets 2,001 characters through: the service refuses
    # them (400 naming `justification`), and the page says so next to the box.
    page.evaluate("document.querySelector('#declare-justification').removeAttribute('maxlength')")
    page.fill("#declare-justification", "y" * 2001)
    page.click("#justification-confirm")
    error = page.wait_for_selector("#declare-justification-error:not([hidden])")
    assert re.search(r"2,?000", error.text_content() or "")
    assert page.locator("#declare-success").count() == 0
    page.fill("#declare-justification", JUSTIFICATION)
    page.click("#justification-confirm")
    page.wait_for_selector("#declare-success")


def test_an_answer_of_cannot_assure_is_shown_to_the_owner(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    operator, medical = _parties(server)
    start = this_hour() + timedelta(days=3)
    convoy = declare(
        server.client(medical["token"]),
        declaration(
            "movement",
            "Relief convoy 7",
            "convoy",
            [
                volume(
                    line((36.60, 34.70), (36.90, 34.80)),
                    start,
                    start + timedelta(hours=6),
                    buffer_m=1000,
                )
            ],
        ),
    )["declaration"]

    page = new_page()
    log_in(page, operator["token"])
    page.click("#tab-inbox")
    card = page.locator(f".note[data-decl-id='{convoy['id']}']")
    card.locator("input[type='radio'][value='cannot_assure']").check()
    comment = "Our artillery fires on that road 10:00-12:00; delay the convoy two hours."
    card.locator("textarea").fill(comment)
    card.locator("button.ack").click()
    card.locator(".ack-yes").wait_for()
    assert "Cannot assure" in card.text_content()

    owner = new_page()
    log_in(owner, medical["token"])
    owner.click(f"#decl-list .decl-item[data-decl-id='{convoy['id']}']")
    row = owner.locator(f"#detail-deliveries tr[data-party='{operator['id']}']")
    row.wait_for()
    text = row.text_content() or ""
    assert "Cannot assure" in text and "⚠" in text
    assert comment in text
    assert "is-warning" in (row.get_attribute("class") or "")
    assert "1 cannot assure or denied" in owner.text_content("#detail-deliveries .deliv-summary")

"""End-to-end: a person types a point's coordinates (DMS, MGRS) in the declare form, sees
them read back as decimal, DMS and MGRS, places the point, declares, and sees the position
read back again in the success message and the details panel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from webpage_scenario import this_hour
from webpage_server import Server

pytestmark = pytest.mark.slow

NewPage = Callable[[], Any]
LogIn = Callable[[Any, str], None]

# A hospital at lat 34.738, lon 36.712, in the three notations the service reads back.
DECIMAL = "34.73800, 36.71200"
DMS = "34°44'16.8\"N 36°42'43.2\"E"
MGRS = "37SBU9053346372"


def _readback(page: Any, selector: str) -> dict[str, str]:
    page.wait_for_selector(f"{selector} [data-notation='dms']")
    return {
        notation: page.text_content(f"{selector} [data-notation='{notation}']") or ""
        for notation in ("decimal", "dms", "mgrs")
    }


def _times(page: Any) -> None:
    start = this_hour() + timedelta(days=2)
    page.fill("#declare-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#declare-end", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))


def test_a_point_typed_in_dms_is_read_back_placed_and_declared(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    page = new_page()
    log_in(page, medical["token"])
    page.click("#tab-declare")
    page.fill("#declare-name", "Al-Amal General Hospital")

    # Typed with typographic primes, as pasted from a document.
    page.fill("#declare-coords", "34°44\u203216.8\u2033N 36°42\u203243.2\u2033E")
    shown = _readback(page, "#declare-coords-position")
    assert shown == {"decimal": DECIMAL, "dms": DMS, "mgrs": MGRS}
    # The candidate point is on the map (the draft pane) before it is added.
    assert page.locator(".leaflet-draft-pane path").count() == 1
    page.click("#declare-coords-add")
    assert '"coordinates":[36.712,34.738]' in page.input_value("#declare-geojson")
    page.wait_for_selector("#declare-coords-added")
    assert page.input_value("#declare-coords") == ""

    _times(page)
    page.click("#declare-submit")
    page.wait_for_selector("#declare-success")
    assert _readback(page, "#declare-success-position")["dms"] == DMS
    # The details panel of the new site reads its position back too.
    page.wait_for_selector("#detail:not([hidden]) #detail-position")
    assert _readback(page, "#detail-position") == {"decimal": DECIMAL, "dms": DMS, "mgrs": MGRS}

    (site,) = server.client(medical["token"]).get("/v1/declarations").json()["declarations"]
    assert site["volumes"][0]["geometry"] == {"type": "Point", "coordinates": [36.712, 34.738]}


def test_a_point_typed_in_mgrs_is_read_back_and_placed_with_enter(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    page = new_page()
    log_in(page, medical["token"])
    page.click("#tab-declare")

    page.fill("#declare-coords", "37s bu 90533 46372")  # lower case, spaces
    shown = _readback(page, "#declare-coords-position")
    assert shown["mgrs"] == MGRS
    assert shown["decimal"].startswith("34.738") and ", 36.71" in shown["decimal"]
    page.press("#declare-coords", "Enter")  # places the point; does not send the form
    page.wait_for_selector("#declare-coords-added")
    assert '"type":"Point"' in page.input_value("#declare-geojson")
    assert page.locator("#declare-success").count() == 0


def test_a_mistyped_point_is_explained_next_to_the_field(
    server: Server, new_page: NewPage, log_in: LogIn
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    page = new_page()
    log_in(page, medical["token"])
    page.click("#tab-declare")

    page.fill("#declare-coords", "36°42'E, 34°44'E")
    message = page.wait_for_selector("#declare-coords-message:not([hidden])")
    assert "longitude hemisphere" in (message.text_content() or "")
    assert page.is_disabled("#declare-coords-add")
    assert page.get_attribute("#declare-coords", "aria-invalid") == "true"
    # Corrected, the message goes and the read-back comes.
    page.fill("#declare-coords", "34°44'16.8\"N, 36°42'43.2\"E")
    assert _readback(page, "#declare-coords-position")["decimal"] == DECIMAL
    assert page.is_hidden("#declare-coords-message")

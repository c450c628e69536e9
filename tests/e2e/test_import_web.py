"""End-to-end tests of the Import tab and the Export buttons: a real server, Debian's
Chromium, Playwright (see conftest). A humanitarian picks a file, sees the dry run as a table
and on the map with nothing written, imports, and finds the sites in its list and exports."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from webpage_scenario import box, declaration, declare, iso, this_hour, volume
from webpage_server import Server

pytestmark = pytest.mark.slow

NewPage = Callable[[], Any]
LogIn = Callable[[Any, str], None]

COLUMNS = ["name", "category", "kind", "lat", "lon", "buffer_m", "start", "external_id"]
PHONE = {"width": 390, "height": 844}


def _write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _row(name: str, lat: str, lon: str, external_id: str, **more: str) -> dict[str, str]:
    start = iso(this_hour() - timedelta(days=1))
    return {
        "name": name,
        "category": "hospital",
        "kind": "site",
        "lat": lat,
        "lon": lon,
        "buffer_m": "300",
        "start": start,
        "external_id": external_id,
        **more,
    }


def _sites(server: Server, token: str) -> list[dict[str, Any]]:
    answer = server.client(token).get("/v1/declarations", params={"kind": "site"})
    assert answer.status_code == 200, answer.text
    sites: list[dict[str, Any]] = answer.json()["declarations"]
    return sites


def _names(decls: list[dict[str, Any]]) -> set[str]:
    return {d["metadata"].get("name") for d in decls}


def _count(page: Any, table: str, status: str) -> str:
    return str(page.text_content(f"{table} [data-status='{status}'] strong")).strip()


def _open_import(page: Any, file: Path) -> None:
    page.click("#tab-import")
    page.set_input_files("#import-file", str(file))
    page.wait_for_selector("#import-preview")


def test_a_humanitarian_previews_imports_and_exports_a_csv(
    server: Server, new_page: NewPage, log_in: LogIn, tmp_path: Path
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    sites = _write_csv(
        tmp_path / "sites.csv",
        [
            _row("Al-Amal General Hospital", "34.738", "36.712", "MRI-001"),
            _row("Martyrs' Square School", "34°36'00\"N", "36°54'00\"E", "MRI-002"),
            _row("Swapped Clinic", "134.7", "36.8", "MRI-003"),
            _row("Wide Camp", "34.65", "36.75", "MRI-004", buffer_m="wide"),
        ],
    )

    page = new_page()
    log_in(page, medical["token"])
    _open_import(page, sites)

    # The dry run: every row in the table, the bad ones highlighted and named by column.
    assert "Read as CSV" in page.text_content("#import-format")
    rows = page.locator("#import-preview tr.import-row")
    assert rows.count() == 4
    assert _count(page, "#import-preview-counts", "created") == "2"
    assert _count(page, "#import-preview-counts", "error") == "2"
    for n in (1, 2):
        row = page.locator(f"#import-preview tr[data-row='{n}']")
        assert row.get_attribute("data-status") == "created"
        assert "would create" in row.text_content()
    school = page.locator("#import-preview tr[data-row='2']")
    assert "Martyrs' Square School" in school.text_content()
    assert "34.6" in school.locator(".import-position").text_content()
    for n, column in ((3, "lat"), (4, "buffer_m")):
        row = page.locator(f"#import-preview tr[data-row='{n}']")
        assert row.get_attribute("data-status") == "error"
        assert "is-error" in (row.get_attribute("class") or "")
        assert column in row.locator(".import-column").all_text_contents()

    # The good rows are on the map, in their own layer; nothing is written yet.
    assert page.locator(".import-mark.is-good").count() == 2
    assert _sites(server, medical["token"]) == []
    page.click("#import-preview tr[data-row='1']")
    assert "is-selected" in (page.get_attribute("#import-preview tr[data-row='1']", "class") or "")

    # Import: the results the same way, and the sites in the list.
    submit = page.locator("#import-submit")
    assert submit.text_content() == "Import 2 rows"
    assert "2 rows in error will be left out" in page.text_content("#import-submit-hint")
    submit.click()
    page.wait_for_selector("#import-result")
    assert _count(page, "#import-result-counts", "created") == "2"
    assert _count(page, "#import-result-counts", "error") == "2"
    assert page.locator("#import-result tr.import-row[data-status='created']").count() == 2
    assert "created" in page.text_content("#import-result tr[data-row='1']")
    created = _sites(server, medical["token"])
    assert _names(created) == {"Al-Amal General Hospital", "Martyrs' Square School"}

    page.click("#tab-declarations")
    page.wait_for_selector("#decl-list .decl-item[data-kind='site'] >> nth=1")
    listed = page.text_content("#decl-list") or ""
    assert "Al-Amal General Hospital" in listed
    assert "Martyrs' Square School" in listed
    assert page.locator(".import-mark").count() == 0  # the preview layer left with its tab

    # Export: what the party sees, as CSV and as GeoJSON, downloaded with its token.
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "Al-Amal General Hospital" in exported
    assert "Martyrs' Square School" in exported
    assert (download.value.suggested_filename or "").endswith(".csv")
    with page.expect_download() as download:
        page.click("#export-geojson")
    collection = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    names = {f["properties"].get("name") for f in collection["features"]}
    assert names == {"Al-Amal General Hospital", "Martyrs' Square School"}


def test_rows_that_conflict_with_unseen_declarations_wait_for_a_review(
    server: Server, new_page: NewPage, log_in: LogIn, tmp_path: Path
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    # A policy under which a site inside a restricted area conflicts with it.
    coordinator = server.client(server.coordinator_token)
    before = coordinator.get("/v1/policy").json()["toml"]
    text = before + "\n[separation.restriction-site]\nhorizontal_m = 0\nvertical_m = 0\n"
    changed = coordinator.put("/v1/policy", content=text)
    assert changed.status_code == 200, changed.text
    try:
        _review_then_import(server, new_page, log_in, tmp_path, medical)
    finally:  # the server is shared: the other tests run under the policy they expect
        assert coordinator.put("/v1/policy", content=before).status_code == 200


def _review_then_import(
    server: Server, new_page: NewPage, log_in: LogIn, tmp_path: Path, medical: dict[str, Any]
) -> None:
    start = this_hour() - timedelta(days=2)
    zone = declare(
        server.client(server.coordinator_token),
        declaration(
            "restriction",
            "Closed military zone KILO",
            "designated-area",
            [volume(box(36.6, 34.6, 36.8, 34.8), start, None)],
            restricts={"parties": [], "roles": ["humanitarian"], "allowed_categories": []},
        ),
    )["declaration"]
    sites = _write_csv(
        tmp_path / "sites.csv",
        [
            _row("Inside Clinic", "34.70", "36.70", "MRI-101"),
            _row("Outside School", "35.20", "37.40", "MRI-102"),
        ],
    )

    page = new_page()
    log_in(page, medical["token"])
    _open_import(page, sites)

    # The row inside the zone is held back, and the zone is shown for review.
    inside = page.locator("#import-preview tr[data-row='1']")
    assert inside.get_attribute("data-status") == "error"
    assert "key" in inside.locator(".import-column").all_text_contents()
    review = page.text_content("#import-conflicts") or ""
    assert "Closed military zone KILO" in review
    assert "1 row (1) conflicts with 1 declaration" in review
    assert page.text_content("#import-submit") == "Import 1 row"

    # Reviewed: a new dry run with the zone's version in the key lets the row through.
    page.check("#import-reviewed")
    page.wait_for_selector("#import-preview tr[data-row='1'][data-status='created']")
    assert page.text_content("#import-submit") == "Import 2 rows"
    assert _sites(server, medical["token"]) == []
    page.click("#import-submit")
    page.wait_for_selector("#import-result")
    assert _count(page, "#import-result-counts", "created") == "2"

    imported = _sites(server, medical["token"])
    (clinic,) = [d for d in imported if d["metadata"]["name"] == "Inside Clinic"]
    conflicts = server.client(medical["token"]).get(f"/v1/declarations/{clinic['id']}/conflicts")
    assert [c["declaration"]["id"] for c in conflicts.json()["conflicts"]] == [zone["id"]]


def test_a_refused_file_is_explained_and_the_preview_fits_a_phone(
    server: Server, new_page: NewPage, log_in: LogIn, tmp_path: Path
) -> None:
    medical = server.create_party("Medical Relief International", "humanitarian")
    operator = server.create_party("Northern Air Command", "operator")
    unknown = _write_csv(
        tmp_path / "unknown.csv",
        [{**_row("Al-Amal General Hospital", "34.738", "36.712", "MRI-001"), "colour": "red"}],
        [*COLUMNS, "colour"],
    )
    good = _write_csv(
        tmp_path / "good.csv", [_row("Al-Amal General Hospital", "34.738", "36.712", "MRI-001")]
    )

    page = new_page()
    page.set_viewport_size(PHONE)
    log_in(page, medical["token"])
    page.click("#tab-import")

    # A whole-file refusal (400 naming the column): said plainly, no button, nothing written.
    page.set_input_files("#import-file", str(unknown))
    problem = page.wait_for_selector("#import-problem:not([hidden])")
    assert "The file could not be read" in (problem.text_content() or "")
    assert "colour" in (problem.text_content() or "")
    assert page.locator("#import-submit").count() == 0
    assert page.locator("#import-preview").count() == 0

    # A file this page cannot read at all never leaves the browser.
    notes = _write_csv(tmp_path / "notes.txt", [])
    page.set_input_files("#import-file", str(notes))
    assert "is not a file this page can read" in page.text_content("#import-problem")

    # On a phone the table scrolls sideways inside the panel; the button is in reach.
    page.set_input_files("#import-file", str(good))
    page.wait_for_selector("#import-preview")
    wrap = page.locator(".import-table-wrap")
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    page.locator("#import-submit").scroll_into_view_if_needed()
    assert page.locator("#import-submit").is_visible()
    assert _sites(server, medical["token"]) == []

    # Operators do not import; every party can export.
    other = new_page()
    log_in(other, operator["token"])
    assert other.locator("#tab-import").is_hidden()
    assert other.locator("#export-csv").is_visible()

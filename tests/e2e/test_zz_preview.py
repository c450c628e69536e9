import json
from datetime import timedelta
from test_protection_web import _parties, _hospital, HOSPITAL
from webpage_scenario import box, this_hour

def test_preview(server, new_page, log_in):
    operator, medical = _parties(server)
    _hospital(server, medical["token"])
    page = new_page()
    log_in(page, operator["token"])
    page.click("#tab-declare")
    lon, lat = HOSPITAL
    start = this_hour() + timedelta(days=2)
    page.fill("#declare-name", "Strike package VIPER")
    page.fill("#declare-geojson", json.dumps(box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)))
    page.fill("#declare-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#declare-end", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#declare-submit")
    page.wait_for_selector("#protected-box")
    page.fill("#declare-justification", "Because.")
    page.screenshot(path="/tmp/h13web/declare.png")
    page.click("#awareness-confirm")
    page.wait_for_selector("#declare-success")
    page.screenshot(path="/tmp/h13web/declared.png")
    page.click("#tab-inbox")
    page.wait_for_timeout(500)
    page.screenshot(path="/tmp/h13web/inbox-op.png")

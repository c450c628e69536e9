"""KML and KMZ: placemarks as rows, wherever their folder; no DOCTYPE, no entity, no bomb."""

from __future__ import annotations

import pytest
from import_files import START, errors_of, kml, placemark, rows_of, zipped

from deconflict.errors import InvalidRequest, TooLarge
from deconflict.importing import read_rows

POINT = "<Point><coordinates>36.63,35.93,0</coordinates></Point>"
POLYGON = (
    "<Polygon><outerBoundaryIs><LinearRing><coordinates>36,35 36.1,35 36.1,35.1 36,35"
    "</coordinates></LinearRing></outerBoundaryIs></Polygon>"
)


def test_placemarks_become_rows_with_their_names_and_data() -> None:
    data = kml(
        placemark("مستشفى الرحمة", POINT, category="hospital", start=START, external_id="k1")
        + placemark("Zone", POLYGON, category="camp", start=START)
        + "<Placemark><name>Span</name><TimeSpan><begin>2026-12-01T06:00:00Z</begin></TimeSpan>"
        + f"{POINT}</Placemark>"
    )
    first, second, third = rows_of(data, "kml")
    assert first.document is not None and first.external_id == "k1"
    assert first.document["metadata"] == {"name": "مستشفى الرحمة", "external_id": "k1"}
    assert first.document["volumes"][0]["geometry"] == {
        "type": "Point",
        "coordinates": [36.63, 35.93],
    }
    assert second.document is not None
    assert second.document["volumes"][0]["geometry"]["type"] == "Polygon"
    assert third.document is not None  # its time from the TimeSpan
    assert third.document["volumes"][0]["time"]["start"] == START


def test_a_schema_data_row_and_a_bad_placemark() -> None:
    data = kml(
        '<Placemark><name>S</name><ExtendedData><SchemaData schemaUrl="#s">'
        f'<SimpleData name="start">{START}</SimpleData></SchemaData></ExtendedData>{POINT}'
        "</Placemark>"
        + placemark("Swapped", "<Point><coordinates>36.6,95</coordinates></Point>", start=START)
    )
    good, bad = rows_of(data, "kml")
    assert good.ok and not bad.ok
    assert set(errors_of(bad)) == {"geometry"}


def test_a_kmz_holds_doc_kml() -> None:
    data = zipped({"doc.kml": kml(placemark("A", POINT, start=START)), "files/icon.png": b"x"})
    (row,) = rows_of(data, "kml")
    assert row.ok


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&x;</name>'
            b"</Placemark></kml>",
            id="external-entity",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<kml><Placemark><name>&lol2;</name></Placemark></kml>",
            id="billion-laughs",
        ),
        pytest.param(b"name,lat,lon\n1,2,3\n", id="csv"),
        pytest.param(b"<html><body>hi</body></html>", id="not-kml"),
        pytest.param(b"<kml><Placemark>", id="unclosed"),
        pytest.param(zipped({"readme.txt": b"no kml"}), id="kmz-without-kml"),
    ],
)
def test_a_file_that_is_not_safe_kml_is_a_400(data: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        rows_of(data, "kml")
    assert caught.value.errors[0]["field"] == "body"


def test_a_kmz_bomb_is_refused_before_it_is_inflated() -> None:
    bomb = zipped({"doc.kml": b" " * (64 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    with pytest.raises(TooLarge):
        read_rows(bomb, "kml", max_rows=10, max_bytes=4 * 1024 * 1024)
    with pytest.raises(TooLarge, match="zip bomb"):
        read_rows(bomb, "kml", max_rows=10, max_bytes=1024 * 1024 * 1024)


def test_more_placemarks_than_the_limit_is_413() -> None:
    data = kml("".join(placemark(f"S{n}", POINT, start=START) for n in range(3)))
    with pytest.raises(TooLarge):
        rows_of(data, "kml", max_rows=2)

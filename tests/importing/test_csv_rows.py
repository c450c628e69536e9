"""CSV files as coordinators save them: BOMs, semicolons, Windows line ends, Arabic and
French names, quoted fields; and files that are not CSV at all."""

from __future__ import annotations

import pytest
from import_files import START, errors_of, only_row, rows_of

from deconflict.errors import InvalidRequest, TooLarge

HEADER = "name,category,lat,lon,start,end,external_id"


def test_a_row_becomes_a_declaration_document() -> None:
    row = only_row(f"{HEADER}\nAl-Shifa,hospital,35.93,36.63,{START},,h-1\n".encode(), "csv")
    assert row.errors == []
    assert row.external_id == "h-1"
    assert row.document == {
        "kind": "site",
        "category": "hospital",
        "volumes": [
            {
                "geometry": {"type": "Point", "coordinates": [36.63, 35.93]},
                "buffer_m": 0.0,
                "altitude": {"lower_m": None, "upper_m": None},
                "time": {"start": START, "end": None},
            }
        ],
        "metadata": {"name": "Al-Shifa", "external_id": "h-1"},
        "key": [],
    }


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"\ufeff{HEADER}\nA,school,35.9,36.6,{START},,s1\n", id="byte-order-mark"),
        pytest.param(f"{HEADER}\r\nA,school,35.9,36.6,{START},,s1\r\n", id="windows-line-ends"),
        pytest.param(
            f"{HEADER.replace(',', ';')}\nA;school;35,9;36,6;{START};;s1\n", id="semicolons"
        ),
        pytest.param(
            f"\ufeff{HEADER.replace(',', ';')}\r\nA;school;35,9;36,6;{START};;s1\r\n",
            id="excel-french",
        ),
        pytest.param(
            f"sep=;\n{HEADER.replace(',', ';')}\nA;school;35.9;36.6;{START};;s1\n", id="sep-line"
        ),
        pytest.param(f'{HEADER}\n"A","school","35.9","36.6",{START},,s1\n', id="quoted"),
    ],
)
def test_the_ways_spreadsheets_write_csv_read_the_same(text: str) -> None:
    row = only_row(text.encode(), "csv")
    assert row.errors == []
    assert row.document is not None
    assert row.document["volumes"][0]["geometry"]["coordinates"] == [36.6, 35.9]
    assert row.document["metadata"] == {"name": "A", "external_id": "s1"}


def test_arabic_and_french_names_and_quoted_separators_are_kept() -> None:
    text = (
        f"{HEADER}\n"
        f"مستشفى إدلب الوطني,hospital,35.93,36.63,{START},,a\n"
        f'"École primaire, Saint-Joseph",school,35.90,36.60,{START},,b\n'
        f'"Camp ""north""\nannex",camp,35.80,36.50,{START},,c\n'
    )
    names = [r.document["metadata"]["name"] for r in rows_of(text.encode(), "csv") if r.document]
    assert names == ["مستشفى إدلب الوطني", "École primaire, Saint-Joseph", 'Camp "north"\nannex']


def test_a_bad_row_is_named_and_the_others_go_on() -> None:
    text = (
        f"{HEADER}\n"
        f"Good,clinic,35.9,36.6,{START},,g1\n"
        f"Swapped,clinic,95,36.6,{START},,g2\n"
        f"No time,clinic,35.9,36.6,,,g3\n"
        f"Also good,clinic,35.8,36.5,{START},,g4\n"
    )
    rows = rows_of(text.encode(), "csv")
    assert [r.row for r in rows] == [1, 2, 3, 4]
    assert [r.ok for r in rows] == [True, False, False, True]
    assert "swapped" in errors_of(rows[1])["lat"]
    assert set(errors_of(rows[2])) == {"start"}


def test_blank_lines_yield_no_row_and_keep_the_numbering() -> None:
    text = f"{HEADER}\nA,c,35.9,36.6,{START},,a\n,,,,,,\n\nB,c,35.8,36.5,{START},,b\n"
    assert [r.row for r in rows_of(text.encode(), "csv")] == [1, 4]


def test_a_value_under_no_header_is_a_row_error() -> None:
    row = only_row(f"{HEADER}\nA,c,35.9,36.6,{START},,a,surprise\n".encode(), "csv")
    assert set(errors_of(row)) == {"row"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "body", id="binary"),
        pytest.param("name,lat\nÉcole,1\n".encode("latin-1"), "body", id="latin-1"),
        pytest.param("name,lat\n".encode("utf-16"), "body", id="utf-16"),
        pytest.param(b"PK\x03\x04" + bytes(40), "body", id="a-zip"),
        pytest.param(f"nom,lat,lon,start\nA,1,2,{START}\n".encode(), "nom", id="unknown-column"),
        pytest.param(
            f"name,lattitude,lon,start\nA,1,2,{START}\n".encode(), "lattitude", id="misspelt"
        ),
        pytest.param(b"name,lat,lat\nA,1,2\n", "lat", id="repeated-column"),
        pytest.param(b",,\n", "body", id="no-header"),
        pytest.param(b'name,lat\n"unclosed,1\n', "body", id="unclosed-quote"),
    ],
)
def test_a_file_that_is_not_csv_is_one_400_naming_what(data: bytes, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        rows_of(data, "csv")
    assert caught.value.errors[0]["field"] == field


def test_more_rows_than_the_limit_is_413() -> None:
    text = HEADER + "\n" + "".join(f"S{n},c,35.9,36.6,{START},,{n}\n" for n in range(11))
    assert len(rows_of(text.encode(), "csv", max_rows=11)) == 11
    with pytest.raises(TooLarge):
        rows_of(text.encode(), "csv", max_rows=10)

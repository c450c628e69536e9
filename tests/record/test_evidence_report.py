"""The printable report of an evidence pack (``record.evidence_report``): Arabic names and
every value of a pack render, with the Unicode font or without it, never an exception."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from deconflict.record.evidence_report import render_pdf
from evidence_scenario import ARABIC, build_world, pack_of
from support import FakeClock, make_service, usual_cast


@pytest.fixture(scope="module")
def hospital_pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    for service in make_service(tmp_path_factory.mktemp("report"), FakeClock()):
        cast = usual_cast(service)
        world = build_world(service, cast)
        yield pack_of(cast["relief"], world.hospital)


def test_the_report_embeds_a_unicode_font_for_arabic(hospital_pack: dict[str, object]) -> None:
    pdf = render_pdf(hospital_pack)
    assert pdf.startswith(b"%PDF")
    # DejaVu Sans is installed here (fonts-dejavu-core): a subset of it is embedded.
    assert re.search(rb"/BaseFont /[A-Z]{6}\+DejaVuSans", pdf), "no embedded TrueType font"


@pytest.mark.parametrize("font", ["Helvetica"])
def test_without_a_unicode_font_arabic_becomes_question_marks(
    hospital_pack: dict[str, object], font: str
) -> None:
    assert ARABIC in json.dumps(hospital_pack, ensure_ascii=False)
    assert render_pdf(hospital_pack, font=font).startswith(b"%PDF")


def test_a_pack_with_missing_parts_still_renders() -> None:
    """The report reads what is there: a truncated pack gives a report, not a 500."""
    for pack in ({}, {"declaration": {"volumes": [{"geometry": None}]}}, {"notifications": []}):
        assert render_pdf(pack).startswith(b"%PDF")

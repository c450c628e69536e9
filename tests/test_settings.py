"""Every setting is documented in the README (Datasette's rule)."""

from __future__ import annotations

from pathlib import Path

from deconflict.settings import SETTINGS

README = Path(__file__).parent.parent / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert missing == []

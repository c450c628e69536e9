"""Every setting is documented in the README (Datasette's rule), and the engine's is read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deconflict.engine.index import ConflictIndex
from deconflict.settings import SETTINGS

README = Path(__file__).parents[1] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert missing == []


def test_check_threads_setting_sizes_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECONFLICT_CHECK_THREADS", "1")
    assert ConflictIndex().threads == 1
    monkeypatch.setenv("DECONFLICT_CHECK_THREADS", "3")
    assert ConflictIndex().threads == 3
    monkeypatch.delenv("DECONFLICT_CHECK_THREADS")
    assert ConflictIndex().threads == min(2, len(os.sched_getaffinity(0)))

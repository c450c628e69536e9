"""Registers the shared fixtures and hooks of ``support.py`` for every test module."""

from support import (  # noqa: F401 - pytest finds fixtures and hooks by name here
    cast,
    clock,
    db_url,
    pytest_terminal_summary,
    service,
)

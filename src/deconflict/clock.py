"""Time, in one place, so tests can inject a clock instead of patching internals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time in UTC, truncated to microseconds."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; microseconds only when present."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time; naive times are refused by the callers' validation."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """A server-made timestamp: RFC 3339 UTC with microseconds always present, so that
    stored timestamps sort as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

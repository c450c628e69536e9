"""Time, in one place, so tests can inject a clock instead of patching internals.

**The accepted range.** A time a client sends (a volume's or a subscription's window, a
query's ``start``/``end``) must lie in ``[EARLIEST, LATEST]``: 1900-01-01T00:00:00Z to
9999-12-31T23:59:59Z, UTC. Every part that holds a time round-trips every time in it: the
stored text (``format_time``, always a 4-digit year), Python's ``datetime``, the engine's
float seconds since the epoch (``datetime.timestamp()``; a fraction of a second past
``LATEST`` could round up to year 10000, which ``datetime`` cannot hold) and canonical JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
RANGE_TEXT = "1900-01-01T00:00:00Z and 9999-12-31T23:59:59Z"

# RFC 3339 ``date-time``: a full date, ``T``, a full time with seconds, and a zone.
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_UNPADDED_YEAR = re.compile(r"(\d{1,3})-")


def system_clock() -> datetime:
    """The current time in UTC, truncated to microseconds."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and a 4-digit year; microseconds only when
    present. (``strftime("%Y")`` writes year 999 as ``999``, which no RFC 3339 parser
    reads, hence ``isoformat``.)"""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds" if naive.microsecond else "seconds") + "Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time (with its zone) in the accepted range, in UTC; ``ValueError``
    saying what is wrong otherwise."""
    if not RFC3339.fullmatch(text):
        raise ValueError("must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+23:59 is before year 1 in UTC
        raise ValueError(f"must be between {RANGE_TEXT}") from exc
    return in_range(moment)


def in_range(moment: datetime) -> datetime:
    """``moment`` if it lies in the accepted range, else ``ValueError`` saying the range."""
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must be between {RANGE_TEXT}")
    return moment


def repair_stored_time(text: str) -> str:
    """A stored time as this version writes it: deconflict 0.1 wrote years before 1000
    without their leading zeros (``999-01-01T00:00:00Z``), which no parser reads; such rows
    are in existing records and must still load."""
    match = _UNPADDED_YEAR.match(text)
    return text if match is None else match[1].zfill(4) + text[match.end() - 1 :]


def format_timestamp(moment: datetime) -> str:
    """A server-made timestamp: RFC 3339 UTC with microseconds always present, so that
    stored timestamps sort as text."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

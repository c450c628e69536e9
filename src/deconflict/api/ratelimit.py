"""Per-party rate limits and a throttle on failed authentication (429 ``rate_limited``).

Both live in the memory of one worker process: ``serve`` runs several workers (and any number
of ``serve`` processes may share a database), each with its own buckets, so a party may get
up to that many times the policy's rates, and an address up to that many times its failed
attempts before every worker has locked it out. That bounds what one party or address costs
each worker, which is what they protect; an exact global count would need a shared store
and a round trip on every request. The rates come from the policy in force
(``[rate_limits]``), read as this process last saw it, so a change applies without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from deconflict.errors import RateLimited
from deconflict.policy import RateLimits

Clock = Callable[[], float]

_MAX_ADDRESSES = 100_000
"""Addresses whose failures are remembered; beyond it the oldest are forgotten, so a flood of
addresses cannot grow the table without bound."""


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Failures:
    window_start: float
    count: int
    locked_until: float


class RateLimiter:
    """Token buckets per (party, class of request), and failed tokens per client address."""

    def __init__(self, rates: Callable[[], RateLimits], clock: Clock = time.monotonic) -> None:
        self._rates = rates
        self.clock = clock  # replaceable, for tests that move time by hand
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._failures: dict[str, _Failures] = {}

    # -- parties ------------------------------------------------------------------------

    def admit(self, party_id: str, kind: str) -> None:
        """Take one token from the party's bucket for ``kind`` (``"write"`` or ``"check"``);
        429 with the seconds until the next one when it is empty."""
        rates = self._rates()
        rate, burst = (
            (rates.checks_per_second, rates.checks_burst)
            if kind == "check"
            else (rates.writes_per_second, rates.writes_burst)
        )
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get((party_id, kind))
            if bucket is None:
                bucket = self._buckets[(party_id, kind)] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate
        raise RateLimited(
            f"this party is over its rate of {rate:g} {kind}s per second (burst {burst}); "
            f"retry in {wait:.1f} s",
            retry_after=wait,
        )

    # -- failed authentication ----------------------------------------------------------

    def check_address(self, address: str) -> None:
        """429 while ``address`` is locked out for presenting too many bad tokens."""
        now = self.clock()
        with self._lock:
            failures = self._failures.get(address)
            wait = 0.0 if failures is None else failures.locked_until - now
        if wait > 0:
            raise RateLimited(
                "too many requests with a bad token from this address; retry later",
                retry_after=wait,
            )

    def failed(self, address: str) -> None:
        """Count a bad token from ``address``; past the policy's number within its window,
        lock the address out."""
        rates = self._rates()
        now = self.clock()
        with self._lock:
            failures = self._failures.pop(address, None)  # re-inserted last: newest
            if failures is None or now - failures.window_start > rates.failed_auth_window_s:
                failures = _Failures(now, 0, failures.locked_until if failures else 0.0)
            failures.count += 1
            if failures.count >= rates.failed_auth_per_window:
                failures.locked_until = now + rates.failed_auth_lockout_s
                failures.window_start, failures.count = now, 0
            self._failures[address] = failures
            while len(self._failures) > _MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]

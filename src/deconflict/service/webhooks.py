"""Webhook delivery: signed, retried with backoff, at least once, to allowed addresses only.

Each notification for a party with a webhook is POSTed as JSON to its URL with
``X-Deconflict-Timestamp`` (Unix seconds of the attempt), ``X-Deconflict-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the party's secret>`` (so a receiver can
refuse a replayed delivery as too old) and ``X-Deconflict-Notification-Id`` (receivers
deduplicate by it: a retry after a lost answer sends the same id again). A 2xx answer counts
as delivery; anything else is retried with exponential backoff until the attempts run out.
Attempts are claimed with a lease in a write transaction, so several processes never send the
same attempt.

Where a webhook may go is `deconflict.service.webhook_targets`: the URL is checked when it is
set and again before every attempt, the name is resolved here and every address checked, and the
connection goes to a checked address, never to a second resolution of the name. A delivery
refused for its address is recorded with the reason and not retried; redirects are not
followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
from httpcore import SOCKET_OPTION

from deconflict.clock import format_timestamp
from deconflict.errors import InvalidRequest
from deconflict.service.background import BackgroundLoop
from deconflict.service.deployment import Deployment
from deconflict.service.notifications import mark_delivered, notification_json
from deconflict.service.webhook_targets import Address, Allowed, Refused, Target, parse, resolve
from deconflict.settings import Settings
from deconflict.storage import webhooks

logger = logging.getLogger("deconflict.service.webhooks")

LEASE = timedelta(seconds=60)
BATCH = 20
MAX_ADDRESSES = 3  # addresses of one name tried in turn when connecting fails, in one timeout
# Characters of a path and query sent as they are; others (spaces, non-ASCII) are escaped.
URL_SAFE = "!$%&'()*+,/:;=?@[]~"


def allowed_of(settings: Settings) -> Allowed:
    """The deployment's webhook allow-list; a malformed one fails at start-up."""
    return Allowed.parse(settings.webhook_allow, private=settings.webhook_allow_private)


def check_webhook_url(url: str, field: str, allowed: Allowed) -> None:
    """A webhook URL must be absolute http(s), without user info, to no literal address or
    local name the deployment does not allow; its name is resolved at each delivery."""
    try:
        parse(url, allowed)
    except Refused as refused:
        raise InvalidRequest(refused.reason, field=field) from None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``: the timestamp is signed,
    so a receiver that refuses old timestamps refuses replays."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s … capped at 10 minutes."""
    return timedelta(seconds=min(2**attempts, 600))


def _claim(deployment: Deployment) -> list[dict[str, Any]]:
    """Take a lease on due deliveries, so no other worker or process sends them now."""
    # A cheap read first: most passes find nothing, and need not take the write lock.
    with deployment.db.read() as conn:
        if not webhooks.any_due(conn, format_timestamp(deployment.now())):
            return []
    with deployment.writing() as write:
        return webhooks.claim_due(write.conn, write.at, BATCH, format_timestamp(write.now + LEASE))


class _Deadline(httpcore.NetworkBackend):
    """The system's sockets, with every connect, read and write cut short at the attempt's
    deadline: a per-read timeout alone lets a receiver that answers a byte every few seconds
    hold the delivery of every other party's webhooks for hours."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()
        self.deadline = math.inf

    def left(self, timeout: float | None, expired: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise expired("the attempt ran out of time")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        ip_address(host)  # only ever a checked address, never a name to look up again
        stream = self._sockets.connect_tcp(
            host, port, self.left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, backend: _Deadline) -> None:
        self._stream = stream
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._backend.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._backend.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._backend.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, left), self._backend
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class WebhookSender:
    """Sends a delivery to a checked address of its URL's host, within the timeout.

    The connection goes to the address itself, with the URL's name as the Host header and,
    for https, as the name TLS sends (SNI) and verifies the certificate for. It is httpcore,
    not httpx, so nothing stands between the check and the connection: no proxy or
    ``.netrc`` from the environment, no redirects, no URL parsed again. Connections are not
    kept alive: a pool keys them by address alone, and a connection verified for one party's
    name must not carry a delivery for another's. One thread uses a sender at a time.
    """

    def __init__(
        self, allowed: Allowed, *, timeout_s: float, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.allowed = allowed
        self.timeout_s = timeout_s
        self._sockets = _Deadline()
        self._pool = httpcore.ConnectionPool(
            # httpx's context: certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR when set.
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_keepalive_connections=0,
            network_backend=self._sockets,
        )

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._pool.close()

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> str | None:
        """POST to the URL; None when a 2xx answered, else the error. Raises Refused when
        the URL, or any address its name resolves to, is not allowed."""
        target = parse(url, self.allowed)
        try:
            addresses = resolve(target, self.allowed)
        except OSError as exc:  # a name that does not resolve now may later
            return f"{target.host} does not resolve: {exc}"
        error = f"{target.host} has no address"
        self._sockets.deadline = time.monotonic() + self.timeout_s
        try:
            for address in addresses[:MAX_ADDRESSES]:
                try:
                    return self.post_to(target, address, content, headers)
                except httpcore.ConnectError as exc:  # nothing sent: another address may answer
                    error = f"ConnectError: {exc}"
                except httpcore.TimeoutException as exc:
                    return f"{type(exc).__name__}: no answer within {self.timeout_s:g} s"
                except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                    return f"{type(exc).__name__}: {exc}"
            return error
        finally:
            self._sockets.deadline = math.inf

    def post_to(
        self, target: Target, address: Address, content: bytes, headers: dict[str, str]
    ) -> str | None:
        """POST to this address of the target, under the target's name."""
        url = httpcore.URL(
            scheme=target.scheme.encode("ascii"),
            host=str(address).encode("ascii"),
            port=target.port,
            target=quote(target.path, safe=URL_SAFE).encode("ascii"),
        )
        timeout = self.timeout_s
        extensions: dict[str, Any] = {
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        }
        if target.scheme == "https" and target.literal is None:
            extensions["sni_hostname"] = target.host
        sent = [
            ("Host", target.host_header),
            ("Content-Length", str(len(content))),
            *headers.items(),
        ]
        with self._pool.stream(
            "POST", url, headers=sent, content=content, extensions=extensions
        ) as response:
            # The body is never read: a receiver's answer is its status, and a hostile one
            # could send without end.
            status = response.status
        return None if 200 <= status < 300 else f"HTTP {status}"


@dataclass(frozen=True)
class Outcome:
    error: str | None  # None: delivered
    final: bool = False  # refused for where it goes: retrying would not change that


def _send(sender: WebhookSender, row: dict[str, Any], now: datetime) -> Outcome:
    """POST one notification, timestamped and signed."""
    body = json.dumps(notification_json(row), separators=(",", ":")).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Deconflict-Notification-Id": row["id"],
        "X-Deconflict-Timestamp": timestamp,
        "X-Deconflict-Signature": signature(row["webhook_secret"] or "", timestamp, body),
    }
    try:
        return Outcome(sender.post(row["webhook_url"], body, headers))
    except Refused as refused:
        logger.warning("webhook of %s refused: %s", row["recipient"], refused.reason)
        return Outcome(f"refused: {refused.reason}", final=True)


def _settle(
    deployment: Deployment, row: dict[str, Any], outcome: Outcome, max_attempts: int
) -> None:
    with deployment.writing() as write:
        attempts = row["webhook_attempts"] + 1
        next_at: str | None = None
        if outcome.error is None:
            mark_delivered(write, row["id"], "webhook")
        elif not outcome.final and attempts < max_attempts:
            next_at = format_timestamp(write.now + backoff(attempts))
        webhooks.settle(
            write.conn, row["id"], attempts=attempts, next_at=next_at, last_error=outcome.error
        )


def deliver_due(deployment: Deployment, sender: WebhookSender, max_attempts: int) -> int:
    """One pass: send every due delivery once; returns how many were attempted."""
    rows = _claim(deployment)
    claimed = time.monotonic()
    for sent, row in enumerate(rows):
        if time.monotonic() - claimed + sender.timeout_s > LEASE.total_seconds():
            # The lease could run out during this attempt and another process send it too:
            # hand the rest back for the next pass instead.
            _release(deployment, rows[sent:])
            return sent
        _settle(deployment, row, _send(sender, row, deployment.now()), max_attempts)
    return len(rows)


def _release(deployment: Deployment, rows: list[dict[str, Any]]) -> None:
    with deployment.writing() as write:
        webhooks.release(write.conn, [row["id"] for row in rows])


class WebhookWorker(BackgroundLoop):
    """A background thread of ``deconflict serve`` that delivers webhooks."""

    def __init__(
        self,
        deployment: Deployment,
        allowed: Allowed,
        *,
        timeout_s: float,
        max_attempts: int,
        interval_s: float = 0.5,
    ) -> None:
        super().__init__("webhooks", interval_s=interval_s)
        self.deployment = deployment
        self.allowed = allowed
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts

    def _run(self) -> None:
        # A failed pass settled nothing it had leased: it is retried once the lease expires.
        with WebhookSender(self.allowed, timeout_s=self.timeout_s) as sender:
            self.repeat(
                lambda: bool(deliver_due(self.deployment, sender, self.max_attempts)),
                logger,
                "webhook delivery pass failed",
            )

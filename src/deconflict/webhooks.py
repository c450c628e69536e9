"""Webhook delivery: signed, retried with backoff, at least once.

Each notification for a party with a webhook is POSTed as JSON to its URL with
``X-Deconflict-Signature: sha256=<hex HMAC-SHA256 of the body with the party's secret>``,
``X-Deconflict-Notification-Id`` (receivers deduplicate by it: a retry after a lost answer
sends the same id again) and ``X-Deconflict-Timestamp``. A 2xx answer counts as delivery;
anything else is retried with exponential backoff until the attempts run out. Attempts are
claimed with a lease in a write transaction, so several processes never send the same attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import and_, or_, select, update

from deconflict.clock import format_timestamp
from deconflict.deployment import Deployment
from deconflict.errors import InvalidRequest
from deconflict.notifications import mark_delivered, notification_json
from deconflict.storage.schema import notifications, parties

logger = logging.getLogger("deconflict.webhooks")

LEASE = timedelta(seconds=60)
BATCH = 20


def check_webhook_url(url: str, field: str, *, allow_private: bool = True) -> None:
    """A webhook URL must be absolute http(s); private addresses only where allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("a webhook URL is an absolute http:// or https:// URL", field=field)
    if not allow_private:
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return
        if address.is_private or address.is_loopback or address.is_link_local:
            raise InvalidRequest("webhooks to private addresses are not allowed", field=field)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s … capped at 10 minutes."""
    return timedelta(seconds=min(2**attempts, 600))


def _due(now: str) -> Any:
    return (
        select(notifications, parties.c.webhook_url, parties.c.webhook_secret)
        .join(parties, parties.c.id == notifications.c.recipient)
        .where(
            notifications.c.webhook_next_at.is_not(None),
            notifications.c.webhook_next_at <= now,
            parties.c.webhook_url.is_not(None),
            or_(
                notifications.c.webhook_lease_until.is_(None),
                notifications.c.webhook_lease_until < now,
            ),
        )
        .order_by(notifications.c.webhook_next_at)
        .limit(BATCH)
    )


def _claim(deployment: Deployment) -> list[dict[str, Any]]:
    """Take a lease on due deliveries, so no other worker or process sends them now."""
    # A cheap read first: most passes find nothing, and need not take the write lock.
    with deployment.db.read() as conn:
        if not conn.execute(_due(format_timestamp(deployment.now()))).first():
            return []
    with deployment.writing() as write:
        rows = write.conn.execute(_due(write.at)).mappings().all()
        lease = format_timestamp(write.now + LEASE)
        for row in rows:
            write.conn.execute(
                update(notifications)
                .where(notifications.c.id == row["id"])
                .values(webhook_lease_until=lease)
            )
        return [dict(row) for row in rows]


def _send(client: httpx.Client, row: dict[str, Any]) -> str | None:
    """POST one notification; None when it was accepted, else the error."""
    body = json.dumps(notification_json(row), separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "X-Deconflict-Notification-Id": row["id"],
        "X-Deconflict-Signature": signature(row["webhook_secret"] or "", body),
    }
    try:
        response = client.post(row["webhook_url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def _settle(
    deployment: Deployment, row: dict[str, Any], error: str | None, max_attempts: int
) -> None:
    with deployment.writing() as write:
        attempts = row["webhook_attempts"] + 1
        if error is None:
            values: dict[str, Any] = {"webhook_next_at": None, "webhook_last_error": None}
            mark_delivered(write, row["id"], "webhook")
        elif attempts >= max_attempts:
            values = {"webhook_next_at": None, "webhook_last_error": error}
        else:
            values = {
                "webhook_next_at": format_timestamp(write.now + backoff(attempts)),
                "webhook_last_error": error,
            }
        write.conn.execute(
            update(notifications)
            .where(and_(notifications.c.id == row["id"]))
            .values(webhook_attempts=attempts, webhook_lease_until=None, **values)
        )


def deliver_due(deployment: Deployment, client: httpx.Client, max_attempts: int) -> int:
    """One pass: send every due delivery once; returns how many were attempted."""
    rows = _claim(deployment)
    for row in rows:
        _settle(deployment, row, _send(client, row), max_attempts)
    return len(rows)


class WebhookWorker:
    """A background thread of ``deconflict serve`` that delivers webhooks."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        timeout_s: float,
        max_attempts: int,
        interval_s: float = 0.5,
    ) -> None:
        self.deployment = deployment
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    busy = deliver_due(self.deployment, client, self.max_attempts)
                except Exception:
                    # The worker must outlive a failing pass (a database hiccup, a bad row);
                    # the next pass retries what was not settled once its lease expires.
                    logger.exception("webhook delivery pass failed")
                    busy = 0
                if not busy:
                    self._stop.wait(self.interval_s)

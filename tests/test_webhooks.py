"""Webhooks: signed, retried with backoff, counted as delivered on a 2xx, deduplicable by id.

A real HTTP receiver runs on loopback; the service's clock is the test's, so the backoff is
stepped through without waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from deconflict.webhooks import deliver_due
from support import Service, make_service, point, problem_of, volume


class Receiver:
    """A webhook endpoint that answers with the statuses it is told to, in order."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_webhook_is_signed_retried_and_counts_as_delivery(
    service: Service, receiver: Receiver
) -> None:
    answer = service.coordinator.post(
        "/v1/parties", {"name": "Air Force", "role": "operator", "webhook_url": receiver.url}
    )
    assert answer.status_code == 201, answer.text
    secret = answer.json()["webhook_secret"]
    operator_headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    aid = service.register("Aid", "humanitarian")
    aid.declare_ok("site", [volume(point(36.3, 33.5))])

    receiver.statuses = [500, 503]
    with httpx.Client(timeout=5) as client:
        assert deliver_due(service.deployment, client, max_attempts=5) == 1
        assert deliver_due(service.deployment, client, max_attempts=5) == 0  # backing off
        service.clock.advance(seconds=3)
        assert deliver_due(service.deployment, client, max_attempts=5) == 1
        service.clock.advance(seconds=3)
        assert deliver_due(service.deployment, client, max_attempts=5) == 0  # 4 s now
        service.clock.advance(seconds=2)
        assert deliver_due(service.deployment, client, max_attempts=5) == 1
        service.clock.advance(seconds=60)
        assert deliver_due(service.deployment, client, max_attempts=5) == 0  # done

    assert len(receiver.received) == 3
    ids = {headers["x-deconflict-notification-id"] for headers, _ in receiver.received}
    assert len(ids) == 1  # the same notification each time: receivers deduplicate by it
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-deconflict-signature"], expected)
        assert json.loads(body)["id"] in ids

    note = service.client.get("/v1/inbox", headers=operator_headers).json()["notifications"][0]
    assert note["delivered_at"] is not None
    deliveries = aid.get(f"/v1/declarations/{note['declaration']['id']}/deliveries").json()
    [delivery] = deliveries["deliveries"]
    assert delivery["delivered_at"] == note["delivered_at"]


def test_webhook_gives_up_after_the_last_attempt(service: Service, receiver: Receiver) -> None:
    service.register("Air Force", "operator", webhook_url=receiver.url)
    aid = service.register("Aid", "humanitarian")
    site = aid.declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    receiver.statuses = [500] * 10
    with httpx.Client(timeout=5) as client:
        for _ in range(6):
            deliver_due(service.deployment, client, max_attempts=3)
            service.clock.advance(seconds=700)
    assert len(receiver.received) == 3
    [delivery] = aid.get(f"/v1/declarations/{site['id']}/deliveries").json()["deliveries"]
    assert delivery["delivered_at"] is None


def test_party_sets_its_own_webhook(service: Service, receiver: Receiver) -> None:
    operator = service.register("Air Force", "operator")
    answer = operator.put("/v1/me/webhook", {"url": receiver.url})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["secret"]) == 64
    bad = operator.put("/v1/me/webhook", {"url": "ftp://example.org/x"})
    assert bad.status_code == 400
    assert problem_of(bad)["errors"][0]["field"] == "url"
    aid = service.register("Aid", "humanitarian")
    aid.declare_ok("site", [volume(point(36.3, 33.5))])
    with httpx.Client(timeout=5) as client:
        assert deliver_due(service.deployment, client, max_attempts=3) == 1
    assert len(receiver.received) == 1


def test_serve_delivers_webhooks_in_the_background(tmp_path: Path, receiver: Receiver) -> None:
    from server import init_db, register, serving

    db_url, coordinator = init_db(tmp_path)
    with serving(db_url) as (base, _process):
        register(base, coordinator, "Air Force", "operator", webhook_url=receiver.url)
        aid = register(base, coordinator, "Aid", "humanitarian")
        httpx.post(
            f"{base}/v1/declarations",
            json={"kind": "site", "volumes": [volume(point(36.3, 33.5))]},
            headers={"Authorization": f"Bearer {aid['token']}"},
            timeout=10,
        ).raise_for_status()
        for _ in range(100):
            if receiver.received:
                break
            threading.Event().wait(0.1)
    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0][1])["reason"] == "broadcast"


def test_private_webhook_addresses_can_be_refused(
    tmp_path: Path, clock: object, receiver: Receiver
) -> None:
    from dataclasses import replace

    from starlette.testclient import TestClient

    from deconflict.api.app import create_app
    from deconflict.settings import Settings

    service_iter = make_service(tmp_path, clock)  # type: ignore[arg-type]
    service = next(service_iter)
    strict = replace(Settings.from_environment(), webhook_allow_private=False)
    app = create_app(service.deployment, settings=strict, webhooks=False)
    with TestClient(app) as client:
        answer = client.post(
            "/v1/parties",
            json={"name": "Air Force", "role": "operator", "webhook_url": receiver.url},
            headers=service.coordinator.headers,
        )
    assert answer.status_code == 400
    assert problem_of(answer)["errors"][0]["field"] == "webhook_url"
    service_iter.close()

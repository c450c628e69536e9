"""Webhooks: signed with a timestamp, retried with backoff, counted as delivered on a 2xx,
deduplicable by id, and sent only where the deployment allows, to the address checked.

Real HTTP(S) receivers run on loopback, which a deployment refuses by default: these tests
allow 127.0.0.1 explicitly (``DECONFLICT_WEBHOOK_ALLOW``), as a deployment with an internal
receiver would. The service's clock is the test's, so the backoff is stepped through without
waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from deconflict.service import parties
from deconflict.service.parties import Party
from deconflict.service.webhook_targets import Allowed, Refused, Target, resolve
from deconflict.service.webhooks import WebhookSender, deliver_due
from deconflict.storage.schema import notifications
from support import FakeClock, Service, make_service, point, volume

LOOPBACK = Allowed.parse("127.0.0.1")


class Receiver:
    """A webhook endpoint that answers with the statuses it is told to, in order, and
    records what reached it: headers, body, the peer address and (over TLS) the SNI name."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.peers: list[str] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.peers.append(self.client_address[0])
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.redirect_to = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        scheme = "http"
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hook"
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


@pytest.fixture
def service(
    tmp_path: Path, clock: FakeClock, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Service]:
    """The shared service on each backend, allowing webhooks to the loopback receiver."""
    monkeypatch.setenv("DECONFLICT_WEBHOOK_ALLOW", "127.0.0.1")
    yield from make_service(tmp_path, clock, db_url=db_url)


@pytest.fixture
def sender() -> Iterator[WebhookSender]:
    with WebhookSender(LOOPBACK, timeout_s=5) as s:
        yield s


def verify(secret: str, headers: dict[str, str], body: bytes, now: datetime) -> bool:
    """What a receiver does (docs/api.md): check the signature over timestamp and body, and
    refuse a delivery whose timestamp is more than 5 minutes from its own clock."""
    timestamp = headers["x-deconflict-timestamp"]
    message = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    fresh = abs(now.timestamp() - int(timestamp)) <= 300
    return hmac.compare_digest(headers["x-deconflict-signature"], expected) and fresh


def webhook_state(service: Service) -> dict[str, Any]:
    with service.deployment.db.read() as conn:
        [row] = conn.execute(select(notifications)).mappings().all()
    return dict(row)


def test_webhook_is_signed_retried_and_counts_as_delivery(
    service: Service, receiver: Receiver, sender: WebhookSender
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
    sent_at = []
    sent_at.append(service.clock.now)
    assert deliver_due(service.deployment, sender, max_attempts=5) == 1
    assert deliver_due(service.deployment, sender, max_attempts=5) == 0  # backing off
    service.clock.advance(seconds=3)
    sent_at.append(service.clock.now)
    assert deliver_due(service.deployment, sender, max_attempts=5) == 1
    service.clock.advance(seconds=3)
    assert deliver_due(service.deployment, sender, max_attempts=5) == 0  # 4 s now
    service.clock.advance(seconds=2)
    sent_at.append(service.clock.now)
    assert deliver_due(service.deployment, sender, max_attempts=5) == 1
    service.clock.advance(seconds=60)
    assert deliver_due(service.deployment, sender, max_attempts=5) == 0  # done

    assert len(receiver.received) == 3
    ids = {headers["x-deconflict-notification-id"] for headers, _ in receiver.received}
    assert len(ids) == 1  # the same notification each time: receivers deduplicate by it
    for (headers, body), moment in zip(receiver.received, sent_at, strict=True):
        # Each attempt is stamped with its own time, so a retry is fresh, and signed with it.
        assert headers["x-deconflict-timestamp"] == str(int(moment.timestamp()))
        assert verify(secret, headers, body, now=moment)
        assert json.loads(body)["id"] in ids

    note = service.client.get("/v1/inbox", headers=operator_headers).json()["notifications"][0]
    assert note["delivered_at"] is not None
    deliveries = aid.get(f"/v1/declarations/{note['declaration']['id']}/deliveries").json()
    [delivery] = deliveries["deliveries"]
    assert delivery["delivered_at"] == note["delivered_at"]


def test_receiver_refuses_a_replay_or_a_forged_timestamp(
    service: Service, receiver: Receiver, sender: WebhookSender
) -> None:
    secret = service.coordinator.post(
        "/v1/parties", {"name": "Air Force", "role": "operator", "webhook_url": receiver.url}
    ).json()["webhook_secret"]
    service.register("Aid", "humanitarian").declare_ok("site", [volume(point(36.3, 33.5))])
    assert deliver_due(service.deployment, sender, max_attempts=3) == 1
    [(headers, body)] = receiver.received
    sent = service.clock.now
    assert verify(secret, headers, body, now=sent + timedelta(minutes=4))
    # Replayed later, the same signed request is refused as stale ...
    assert not verify(secret, headers, body, now=sent + timedelta(minutes=6))
    # ... and a replay with a fresh timestamp fails the signature, which covers it.
    forged = {**headers, "x-deconflict-timestamp": str(int(sent.timestamp()) + 360)}
    assert not verify(secret, forged, body, now=sent + timedelta(minutes=6))


def test_webhook_gives_up_after_the_last_attempt(
    service: Service, receiver: Receiver, sender: WebhookSender
) -> None:
    service.register("Air Force", "operator", webhook_url=receiver.url)
    aid = service.register("Aid", "humanitarian")
    site = aid.declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    receiver.statuses = [500] * 10
    for _ in range(6):
        deliver_due(service.deployment, sender, max_attempts=3)
        service.clock.advance(seconds=700)
    assert len(receiver.received) == 3
    [delivery] = aid.get(f"/v1/declarations/{site['id']}/deliveries").json()["deliveries"]
    assert delivery["delivered_at"] is None


def test_party_sets_its_own_webhook(
    service: Service, receiver: Receiver, sender: WebhookSender
) -> None:
    operator = service.register("Air Force", "operator")
    answer = operator.put("/v1/me/webhook", {"url": receiver.url})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["secret"]) == 64
    aid = service.register("Aid", "humanitarian")
    aid.declare_ok("site", [volume(point(36.3, 33.5))])
    assert deliver_due(service.deployment, sender, max_attempts=3) == 1
    assert len(receiver.received) == 1


def test_redirects_are_not_followed(
    service: Service, receiver: Receiver, sender: WebhookSender
) -> None:
    elsewhere = Receiver()
    try:
        receiver.redirect_to = elsewhere.url
        receiver.statuses = [307]
        service.register("Air Force", "operator", webhook_url=receiver.url)
        service.register("Aid", "humanitarian").declare_ok("site", [volume(point(36.3, 33.5))])
        assert deliver_due(service.deployment, sender, max_attempts=3) == 1
    finally:
        elsewhere.close()
    assert len(receiver.received) == 1
    assert elsewhere.received == []  # a redirect could point anywhere, the checks skipped
    state = webhook_state(service)
    assert state["webhook_last_error"] == "HTTP 307"
    assert state["webhook_next_at"] is not None  # an ordinary failure: retried


class Dripper:
    """A hostile receiver: reads the request, then answers a header line every 0.2 s, each
    within any per-read timeout, for 10 s."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)  # a test that never connects must not hang
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                for n in range(50):
                    if self.stop.wait(0.2):
                        return
                    connection.sendall(b"X-Drip-%d: 1\r\n" % n)
                connection.sendall(b"Content-Length: 0\r\n\r\n")
            except OSError:
                return  # the sender hung up, as it should

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.listener.close()


def test_a_receiver_that_answers_slowly_runs_out_of_time() -> None:
    """DECONFLICT_WEBHOOK_TIMEOUT_S bounds the whole attempt, not each read: a receiver that
    dribbles its answer cannot hold the worker (and every other party's deliveries)."""
    dripper = Dripper()
    try:
        with WebhookSender(LOOPBACK, timeout_s=1) as sender:
            error = sender.post(f"http://127.0.0.1:{dripper.port}/hook", b"{}", {})
    finally:
        dripper.close()
    assert error == "ReadTimeout: no answer within 1 s"


def test_deliveries_are_handed_back_when_their_lease_could_run_out(
    service: Service, receiver: Receiver, sender: WebhookSender
) -> None:
    """A pass sends no attempt that could outlast its lease (another process would take it
    and send it too): with a timeout longer than the lease, nothing is sent and the lease is
    released at once for the next pass."""
    service.register("Air Force", "operator", webhook_url=receiver.url)
    service.register("Aid", "humanitarian").declare_ok("site", [volume(point(36.3, 33.5))])
    with WebhookSender(LOOPBACK, timeout_s=61) as patient:
        assert deliver_due(service.deployment, patient, max_attempts=3) == 0
    assert receiver.received == []
    state = webhook_state(service)
    assert (state["webhook_attempts"], state["webhook_lease_until"]) == (0, None)
    assert deliver_due(service.deployment, sender, max_attempts=3) == 1
    assert len(receiver.received) == 1


def _store_webhook(service: Service, party_id: str, url: str) -> None:
    """A URL stored as an earlier version stored it, unchecked (the old default allowed
    every address): delivery checks it again."""
    with service.deployment.writing() as write:
        parties.set_webhook(write, Party(party_id, "Air Force", "operator"), url)


def test_a_stored_url_to_a_local_name_is_refused_at_delivery_and_not_retried(
    service: Service, receiver: Receiver, sender: WebhookSender
) -> None:
    operator = service.register("Air Force", "operator")
    _store_webhook(service, operator.id, f"http://localhost:{receiver.port}/hook")
    service.register("Aid", "humanitarian").declare_ok("site", [volume(point(36.3, 33.5))])
    assert deliver_due(service.deployment, sender, max_attempts=12) == 1
    for _ in range(3):
        service.clock.advance(seconds=700)
        assert deliver_due(service.deployment, sender, max_attempts=12) == 0
    assert receiver.received == []
    state = webhook_state(service)
    assert state["webhook_attempts"] == 1
    assert state["webhook_next_at"] is None
    assert (
        state["webhook_last_error"] == "refused: localhost names this machine or its local network"
    )
    # Nothing is lost: the notification waits in the inbox.
    [note] = operator.get("/v1/inbox").json()["notifications"]
    assert note["id"] == state["id"]


def test_a_name_is_resolved_at_delivery_and_refused_for_a_private_address() -> None:
    """The system resolver's real answer for ``localhost`` (127.0.0.1, maybe ::1 too):
    the check at delivery refuses the name for it, even when the name check is passed."""
    target = Target("http", "localhost", 80, "/", None)
    with pytest.raises(Refused, match=r"^localhost resolves to .*, which is not a public address$"):
        resolve(target, Allowed())
    # Allowing its address lets it through, every address checked.
    assert resolve(target, Allowed.parse("127.0.0.0/8,::1")) != []


def test_an_allowed_name_is_delivered_to_its_checked_address_under_its_own_name(
    tmp_path: Path, clock: FakeClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECONFLICT_WEBHOOK_ALLOW", "localhost")
    services = make_service(tmp_path, clock)
    service = next(services)
    url = f"http://localhost:{receiver.port}/hook?party=air%20force"
    service.register("Air Force", "operator", webhook_url=url)
    service.register("Aid", "humanitarian").declare_ok("site", [volume(point(36.3, 33.5))])
    with WebhookSender(Allowed.parse("localhost"), timeout_s=5) as sender:
        assert deliver_due(service.deployment, sender, max_attempts=3) == 1
    next(services, None)  # runs the fixture's end: the client and the database close
    [(headers, _body)] = receiver.received
    assert headers["host"] == f"localhost:{receiver.port}"
    assert receiver.peers == ["127.0.0.1"]


def test_the_connection_goes_to_the_checked_address_not_a_new_lookup(
    receiver: Receiver, sender: WebhookSender
) -> None:
    """A name that no resolver answers (``.invalid``): the request still arrives, to the
    address given, so nothing looked the name up again between the check and the connect."""
    target = Target("http", "hooks.example.invalid", receiver.port, "/hook", None)
    assert sender.post_to(target, IPv4Address("127.0.0.1"), b"{}", {}) is None
    [(headers, _body)] = receiver.received
    assert headers["host"] == f"hooks.example.invalid:{receiver.port}"


def _tls_for(name: str, tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA and a server certificate for ``name``: (server context, client context)."""
    now = datetime.now(UTC)

    def cert(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = cert("test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert(name, key, ca_name, ca_key, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    return server, ssl.create_default_context(cafile=tmp_path / "ca.pem")


def test_https_sends_and_verifies_the_urls_name_while_connecting_to_the_address(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = _tls_for("hooks.example.invalid", tmp_path)
    https = Receiver(tls=server_tls)
    try:
        with WebhookSender(LOOPBACK, timeout_s=5, ssl_context=client_tls) as sender:
            good = Target("https", "hooks.example.invalid", https.port, "/hook", None)
            assert sender.post_to(good, IPv4Address("127.0.0.1"), b"{}", {}) is None
            # The certificate is for hooks.example.invalid: another name fails verification
            # even though the address is the same, and nothing is sent.
            other = Target("https", "other.example.invalid", https.port, "/hook", None)
            with pytest.raises(httpcore.ConnectError, match="certificate verify failed"):
                sender.post_to(other, IPv4Address("127.0.0.1"), b"{}", {})
    finally:
        https.close()
    assert len(https.received) == 1
    assert https.received[0][0]["host"] == f"hooks.example.invalid:{https.port}"
    assert https.server_names == ["hooks.example.invalid", "other.example.invalid"]


def test_serve_delivers_webhooks_in_the_background(tmp_path: Path, receiver: Receiver) -> None:
    from server import init_db, register, serving

    db_url, coordinator = init_db(tmp_path)
    with serving(db_url, env={"DECONFLICT_WEBHOOK_ALLOW": "127.0.0.1"}) as (base, _process):
        operator = register(base, coordinator, "Air Force", "operator", webhook_url=receiver.url)
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
    headers, body = receiver.received[0]
    assert json.loads(body)["reason"] == "broadcast"
    assert verify(operator["webhook_secret"], headers, body, now=datetime.now(UTC))


def test_serve_refuses_loopback_webhooks_by_default(tmp_path: Path, receiver: Receiver) -> None:
    from server import init_db, serving

    db_url, coordinator = init_db(tmp_path)
    with serving(db_url) as (base, _process):
        answer = httpx.post(
            f"{base}/v1/parties",
            json={"name": "Air Force", "role": "operator", "webhook_url": receiver.url},
            headers={"Authorization": f"Bearer {coordinator}"},
            timeout=10,
        )
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"field": "webhook_url", "message": "127.0.0.1 is not a public address"}
    ]

"""Against a real ``deconflict serve`` process: races, kill -9, the event stream."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import init_db, register, serving

pytestmark = pytest.mark.slow

START = datetime.now(UTC) + timedelta(days=3)


def op_volume(lon: float, lat: float) -> dict[str, Any]:
    return {
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "buffer_m": 1000,
        "altitude": {"lower_m": 0, "upper_m": 3000},
        "time": {"start": START.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": None},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_blind_conflicting_writes_never_both_succeed(tmp_path: Path) -> None:
    db_url, coordinator = init_db(tmp_path)
    with serving(db_url) as (base, _process):
        a = register(base, coordinator, "Air Force A", "operator")
        b = register(base, coordinator, "Air Force B", "operator")
        pairs = 40
        outcomes: list[tuple[int, int]] = []
        with httpx.Client(base_url=base, timeout=30) as client, ThreadPoolExecutor(4) as pool:
            for n in range(pairs):
                # Each pair at its own place, 20 km from the next, so pairs do not interact.
                lon, lat = 36.0 + 0.25 * (n % 20), 33.0 + 0.25 * (n // 20)
                barrier = threading.Barrier(2)

                def send(
                    token: str,
                    lon: float = lon,
                    lat: float = lat,
                    barrier: threading.Barrier = barrier,
                ) -> int:
                    barrier.wait()
                    answer = client.post(
                        "/v1/declarations",
                        json={"kind": "operation", "volumes": [op_volume(lon, lat)]},
                        headers=bearer(token),
                    )
                    if answer.status_code == 409:
                        assert answer.json()["code"] == "missing_awareness"
                    return answer.status_code

                first = pool.submit(send, a["token"])
                second = pool.submit(send, b["token"])
                outcomes.append((first.result(), second.result()))
        assert all(sorted(o) == [201, 409] for o in outcomes), outcomes
    # The record stayed one consistent log through the concurrent writers.
    verified = _verify(db_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_accepted_writes_survive_kill_9(tmp_path: Path) -> None:
    db_url, coordinator = init_db(tmp_path)
    accepted: list[str] = []
    with serving(db_url) as (base, process):
        party = register(base, coordinator, "Air Force A", "operator")
        stop = threading.Event()

        def write_forever() -> None:
            with httpx.Client(base_url=base, timeout=10) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        answer = client.post(
                            "/v1/declarations",
                            json={
                                "kind": "operation",
                                "volumes": [op_volume(30 + (n % 100) * 0.3, 10 + n // 100)],
                            },
                            headers=bearer(party["token"]),
                        )
                    except httpx.HTTPError:
                        return
                    if answer.status_code == 201:
                        accepted.append(answer.json()["declaration"]["id"])

        writer = threading.Thread(target=write_forever)
        writer.start()
        deadline = time.monotonic() + 30
        while len(accepted) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
        writer.join()
    assert len(accepted) >= 25
    with serving(db_url) as (base, _process), httpx.Client(base_url=base, timeout=10) as client:
        for declaration_id in accepted:
            answer = client.get(
                f"/v1/declarations/{declaration_id}", headers=bearer(party["token"])
            )
            assert answer.status_code == 200, declaration_id
    verified = _verify(db_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _verify(db_url: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "deconflict", "verify", "--db", db_url],
        capture_output=True,
        text=True,
    )


def read_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """Read ``count`` notification events from a server-sent event stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if current.get("event") == "notification":
                events.append({**json.loads(current["data"]), "event_id": current["id"]})
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":") and ":" in line:
            name, _, value = line.partition(":")
            current[name] = value.strip()
    return events


def test_event_stream_pushes_and_resumes(tmp_path: Path) -> None:
    db_url, coordinator = init_db(tmp_path)
    with serving(db_url) as (base, _process):
        operator = register(base, coordinator, "Air Force A", "operator")
        aid = register(base, coordinator, "Aid Org", "humanitarian")

        def declare_sites(count: int) -> None:
            time.sleep(0.5)
            for n in range(count):
                httpx.post(
                    f"{base}/v1/declarations",
                    json={"kind": "site", "volumes": [op_volume(36 + n, 34)]},
                    headers=bearer(aid["token"]),
                    timeout=10,
                ).raise_for_status()

        threading.Thread(target=declare_sites, args=(2,)).start()
        with httpx.stream(
            "GET", f"{base}/v1/inbox/stream", headers=bearer(operator["token"]), timeout=30
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response, 2)
        assert [e["seq"] for e in events] == [1, 2]
        assert [e["event_id"] for e in events] == ["1", "2"]
        assert all(e["reason"] == "broadcast" and e["delivered_at"] for e in events)

        declare_sites(1)
        headers = {**bearer(operator["token"]), "Last-Event-ID": "2"}
        with httpx.stream(
            "GET", f"{base}/v1/inbox/stream", headers=headers, timeout=30
        ) as response:
            [resumed] = read_events(response, 1)
        assert resumed["seq"] == 3
        # Browsers' EventSource cannot set headers: the token may come as a parameter.
        with httpx.stream(
            "GET", f"{base}/v1/inbox/stream?access_token={operator['token']}&after=2", timeout=30
        ) as response:
            [again] = read_events(response, 1)
        assert again["seq"] == 3
        assert httpx.get(f"{base}/v1/inbox/stream", timeout=10).status_code == 401

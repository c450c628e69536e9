"""Every guarantee of the service across processes: two ``deconflict serve`` processes in
front of one database (issue 5).

Each test runs on PostgreSQL and on SQLite (two processes on one file are supported too).
The writes of a test go to both processes, so a decision taken by one process must rest
on what the other has committed: awareness under blind conflicting writes, a gapless
per-recipient ``seq``, one signed root per log size, durable writes through a ``kill -9``,
and an in-memory index that never answers from stale data.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from deconflict.record.merkle import verify_consistency, verify_inclusion
from deconflict.record.signing import verify_head
from server import DECONFLICT, register, serving
from support import fresh_postgres_database

pytestmark = pytest.mark.slow

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
OPEN = None  # an open-ended time window


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def operation_volume(
    lon: float,
    lat: float,
    *,
    buffer_m: float = 1000,
    lower_m: float = 0,
    upper_m: float = 3000,
    start: datetime = START,
    hours: float | None = OPEN,
) -> dict[str, Any]:
    """A point volume, three days ahead (beyond every minimum notice)."""
    return {
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "buffer_m": buffer_m,
        "altitude": {"lower_m": lower_m, "upper_m": upper_m},
        "time": {
            "start": iso(start),
            "end": None if hours is None else iso(start + timedelta(hours=hours)),
        },
    }


def grid_place(n: int) -> tuple[float, float]:
    """The n-th place of a grid 0.25° apart between 60°S and 60°N (at least 13.9 km), so
    that writes at different places never conflict: two 1 km buffers plus 9,260 m of
    separation is 11.3 km."""
    row, column = divmod(n, 1280)
    assert row < 480, "the grid has 614,400 places"
    return -160.0 + 0.25 * column, -60.0 + 0.25 * row


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- one deployment, several processes ---------------------------------------------------


@dataclass(frozen=True)
class Initialised:
    """A database after ``deconflict init``, with the key file every process must share."""

    db_url: str
    coordinator: str
    key_file: Path

    @property
    def env(self) -> dict[str, str]:
        # `serve` reads the key path from the environment; `tests/server.serving` passes it on.
        return {"DECONFLICT_KEY_FILE": str(self.key_file)}


def init_deployment(tmp: Path, db_url: str) -> Initialised:
    """``deconflict init`` with the key and the policy in ``tmp`` (never in the cwd)."""
    key_file = tmp / "log.key"
    done = subprocess.run(
        [
            *DECONFLICT,
            "init",
            "--db",
            db_url,
            "--key-file",
            str(key_file),
            "--policy",
            str(tmp / "policy.toml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Initialised(db_url, json.loads(done.stdout)["coordinator_token"], key_file)


@pytest.fixture(params=["postgresql", "sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Initialised]:
    if request.param == "sqlite":
        yield init_deployment(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    else:
        with fresh_postgres_database() as url:
            yield init_deployment(tmp_path, url)


@dataclass
class Server:
    """One running ``serve`` process and a client for it (shared by threads)."""

    base: str
    process: subprocess.Popen[bytes]
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base, timeout=60, limits=httpx.Limits(max_connections=32)
        )

    def declare(self, token: str, volumes: list[dict[str, Any]], **fields: Any) -> httpx.Response:
        return self.client.post(
            "/v1/declarations",
            json={"kind": fields.pop("kind", "operation"), "volumes": volumes, **fields},
            headers=bearer(token),
        )

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        answer = self.client.get(path, params=params, headers=bearer(token) if token else {})
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
        return answer.json()


@contextmanager
def server(deployment: Initialised) -> Iterator[Server]:
    with serving(deployment.db_url, env=deployment.env) as (base, process):
        running = Server(base, process)
        try:
            yield running
        finally:
            running.client.close()


@contextmanager
def two_servers(deployment: Initialised) -> Iterator[tuple[Server, Server]]:
    with ExitStack() as stack:
        yield stack.enter_context(server(deployment)), stack.enter_context(server(deployment))


def verify(db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DECONFLICT, "verify", "--db", db_url], capture_output=True, text=True, timeout=120
    )


def assert_verifies(db_url: str) -> None:
    verified = verify(db_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


# -- 1. awareness under blind conflicting writes ---------------------------------------

PAIRS = 200


def test_blind_pairs_across_processes_have_exactly_one_winner(deployment: Initialised) -> None:
    """200 pairs of conflicting operations by two operators, each unaware of the other, the
    two writes of a pair released together by a barrier, one to each process: exactly one
    of each pair is accepted, the other refused as ``missing_awareness`` naming the winner.

    In every other pair one write leaves 10 ms after the other (to either process in turn),
    so that each process wins some races and the refusals are decided both ways: left
    alone, the process that won the last race tends to win the next, since the other must
    first catch up with the write it lost to."""
    with two_servers(deployment) as (a, b):
        north = register(a.base, deployment.coordinator, "Air Force A", "operator")
        south = register(b.base, deployment.coordinator, "Air Force B", "operator")

        def race(n: int) -> list[tuple[str, httpx.Response]]:
            lon, lat = grid_place(n)
            barrier = threading.Barrier(2)
            # Alternate which operator goes to which process.
            routes = [(north, a), (south, b)] if n % 2 else [(north, b), (south, a)]

            def send(
                party: dict[str, str], to: Server, delay_s: float
            ) -> tuple[str, httpx.Response]:
                barrier.wait(timeout=60)
                time.sleep(delay_s)
                return to.base, to.declare(party["token"], [operation_volume(lon, lat)])

            # Pairs 4k and 4k+1 race level; 4k+2 and 4k+3 give the first route a head start.
            delays = [0.0, 0.01] if n % 4 >= 2 else [0.0, 0.0]
            with ThreadPoolExecutor(2) as pair:
                futures = [
                    pair.submit(send, party, to, delay)
                    for (party, to), delay in zip(routes, delays, strict=True)
                ]
                return [f.result() for f in futures]

        # Four pairs at a time (each at its own place) to keep the processes busy.
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(race, range(PAIRS)))

        winners_by_process: dict[str, int] = defaultdict(int)
        for n, answers in enumerate(outcomes):
            statuses = sorted(answer.status_code for _, answer in answers)
            assert statuses == [201, 409], (n, [a.text for _, a in answers])
            [(won_at, won)] = [(at, x) for at, x in answers if x.status_code == 201]
            [lost] = [x for _, x in answers if x.status_code == 409]
            winners_by_process[won_at] += 1
            assert lost.json()["code"] == "missing_awareness", lost.text
            winner = won.json()["declaration"]
            assert [(m["id"], m["version"]) for m in lost.json()["missing"]] == [
                (winner["id"], winner["version"])
            ], n
        # Both processes won some pairs: the decisions really were taken in both.
        assert len(winners_by_process) == 2, dict(winners_by_process)

        # Never both, seen from either process: exactly one active operation per place.
        for to in (a, b):
            listed = to.get("/v1/declarations", north["token"], kind="operation")
            assert len(listed["declarations"]) == PAIRS
    assert_verifies(deployment.db_url)


# -- 2. per-recipient seq --------------------------------------------------------------

WRITES_PER_WRITER = 25


def inbox(to: Server, token: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    answer = to.get("/v1/inbox", token, after=after, limit=limit)
    notifications: list[dict[str, Any]] = answer["notifications"]
    return notifications


def read_whole_inbox(servers: tuple[Server, Server], token: str) -> list[dict[str, Any]]:
    """The inbox read in pages of 7, alternating between the processes."""
    found: list[dict[str, Any]] = []
    for page in range(10_000):
        more = inbox(servers[page % 2], token, after=found[-1]["seq"] if found else 0, limit=7)
        if not more:
            return found
        found.extend(more)
    raise AssertionError("the inbox never ended")


def test_per_recipient_seq_has_no_gaps_across_processes(deployment: Initialised) -> None:
    """Four writers, each alternating between the processes, concurrently make changes that
    notify a third party: two operators declare operations that conflict with the watcher's
    (and not with each other's: other altitudes or other hours), two aid organisations
    declare sites broadcast to every operator. The watcher follows its inbox through both
    processes meanwhile and never misses a seq. Every inbox is then 1..N with no gap and no
    duplicate, one notification per accepted change, read the same through either process."""
    with two_servers(deployment) as servers:
        a, b = servers
        coordinator = deployment.coordinator
        watcher = register(a.base, coordinator, "Watcher Air Wing", "operator")
        low = register(a.base, coordinator, "Low Flyers", "operator")
        high = register(b.base, coordinator, "High Flyers", "operator")
        relief = register(a.base, coordinator, "Relief", "humanitarian")
        water = register(b.base, coordinator, "Water", "humanitarian")
        watched = a.declare(
            watcher["token"],
            [operation_volume(38.0, 34.0, buffer_m=5000, upper_m=10_000, hours=200)],
        )
        assert watched.status_code == 201, watched.text
        key = [watched.json()["declaration"]["version"]]

        accepted: dict[str, list[str]] = defaultdict(list)  # writer -> declaration ids

        def writer(
            name: str, token: str, kind: str, volume_of: Callable[[int], dict[str, Any]]
        ) -> None:
            for n in range(WRITES_PER_WRITER):
                to = servers[(n + len(name)) % 2]
                answer = to.declare(token, [volume_of(n)], kind=kind, key=key)
                assert answer.status_code == 201, answer.text
                accepted[name].append(answer.json()["declaration"]["id"])

        def low_volume(n: int) -> dict[str, Any]:
            start = START + timedelta(hours=n)
            return operation_volume(38.02, 34.0, upper_m=1000, start=start, hours=0.5)

        def high_volume(n: int) -> dict[str, Any]:
            start = START + timedelta(hours=n)
            return operation_volume(37.98, 34.0, lower_m=5000, upper_m=6000, start=start, hours=0.5)

        def site_volume(n: int) -> dict[str, Any]:
            # Far from every operation: sites conflict with nothing here.
            return operation_volume(41.0 + 0.01 * n, 36.5, buffer_m=100, upper_m=50)

        # Meanwhile the watcher follows its inbox through each process, as a client would,
        # asking only for what comes after the last seq it saw: were a seq ever visible
        # before a smaller one, the follower would skip the smaller one for good.
        followed: dict[str, list[int]] = defaultdict(list)
        writing = threading.Event()
        writing.set()

        def follow(to: Server) -> None:
            while True:
                done = not writing.is_set()
                after = followed[to.base][-1] if followed[to.base] else 0
                followed[to.base].extend(n["seq"] for n in inbox(to, watcher["token"], after))
                if done:
                    return

        with ThreadPoolExecutor(6) as pool:
            followers = [pool.submit(follow, to) for to in servers]
            try:
                for future in [
                    pool.submit(writer, "low", low["token"], "operation", low_volume),
                    pool.submit(writer, "high", high["token"], "operation", high_volume),
                    pool.submit(writer, "relief", relief["token"], "site", site_volume),
                    pool.submit(writer, "water", water["token"], "site", site_volume),
                ]:
                    future.result()
            finally:
                writing.clear()
            for future in followers:
                future.result()

        sites = accepted["relief"] + accepted["water"]
        expected = {
            # The watcher: every operation conflicts with its own; every site is broadcast.
            "watcher": accepted["low"] + accepted["high"] + sites,
            # The other operators are told of the sites only.
            "low": sites,
            "high": sites,
        }
        for base, seqs in followed.items():
            assert seqs == list(range(1, len(expected["watcher"]) + 1)), (base, seqs)
        tokens = {"watcher": watcher["token"], "low": low["token"], "high": high["token"]}
        for name, token in tokens.items():
            read = read_whole_inbox(servers, token)
            seqs = [n["seq"] for n in read]
            assert seqs == list(range(1, len(expected[name]) + 1)), (name, seqs)
            assert len({n["id"] for n in read}) == len(read), name
            assert sorted(n["declaration"]["id"] for n in read) == sorted(expected[name]), name
            # Both processes tell the same story, seq for seq.
            for to in servers:
                again = inbox(to, token)
                assert [(n["seq"], n["id"]) for n in again] == [(n["seq"], n["id"]) for n in read]
    assert_verifies(deployment.db_url)


# -- 3. one log, no forks --------------------------------------------------------------

WRITERS = 4
WRITES_EACH = 30


def test_one_signed_root_per_size_under_concurrent_writers(deployment: Initialised) -> None:
    """Writers on both processes while pollers read ``/v1/log/head`` from both: every head is
    signed by the one key; any two heads of one size (polled or in receipts, from either
    process) are the same head; no poller sees the log shrink; successive heads are proven
    consistent by the service's consistency proofs; and ``deconflict verify`` passes."""
    with two_servers(deployment) as servers:
        public_keys = {to.get("/v1/log/public-key")["public_key"] for to in servers}
        assert len(public_keys) == 1
        [public_key] = public_keys
        operators = [
            register(servers[w % 2].base, deployment.coordinator, f"Wing {w}", "operator")
            for w in range(WRITERS)
        ]
        heads: list[dict[str, Any]] = []  # from /v1/log/head and from receipts
        receipts: list[dict[str, Any]] = []
        polled: dict[str, list[int]] = defaultdict(list)
        writing = threading.Event()
        writing.set()

        def write(w: int) -> None:
            for n in range(WRITES_EACH):
                to = servers[(w + n) % 2]
                place = grid_place(w * WRITES_EACH + n)
                answer = to.declare(operators[w]["token"], [operation_volume(*place)])
                assert answer.status_code == 201, answer.text
                receipts.append(answer.json()["receipt"])

        def poll(to: Server) -> None:
            while writing.is_set():
                head = to.get("/v1/log/head")
                heads.append(head)
                polled[to.base].append(head["size"])

        with ThreadPoolExecutor(WRITERS + len(servers)) as pool:
            pollers = [pool.submit(poll, to) for to in servers]
            try:
                for future in [pool.submit(write, w) for w in range(WRITERS)]:
                    future.result()
            finally:
                writing.clear()
            for future in pollers:
                future.result()
        heads.extend(r["tree_head"] for r in receipts)
        heads.extend(to.get("/v1/log/head") for to in servers)

        assert all(verify_head(public_key, head) for head in heads)
        by_size: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for head in heads:
            by_size[head["size"]].append(head)
        for size, same_size in by_size.items():
            assert all(h == same_size[0] for h in same_size), (size, same_size)
        for base, sizes in polled.items():
            assert sizes == sorted(sizes), f"the log shrank as seen from {base}"
        assert all(r["index"] < r["tree_head"]["size"] for r in receipts)
        sizes = sorted(by_size)
        assert len(sizes) > WRITERS * WRITES_EACH // 2, "too few heads seen to prove much"

        for n, (first, second) in enumerate(pairwise(sizes)):
            proof = servers[n % 2].get("/v1/log/proof/consistency", first=first, second=second)
            assert verify_consistency(
                first,
                second,
                bytes.fromhex(by_size[first][0]["root"]),
                bytes.fromhex(by_size[second][0]["root"]),
                [bytes.fromhex(h) for h in proof["path"]],
            ), (first, second)
        for n, receipt in enumerate(receipts[::7]):
            head = receipt["tree_head"]
            proof = servers[n % 2].get(
                "/v1/log/proof/inclusion", index=receipt["index"], size=head["size"]
            )
            assert verify_inclusion(
                bytes.fromhex(receipt["leaf_hash"]),
                receipt["index"],
                head["size"],
                [bytes.fromhex(h) for h in proof["path"]],
                bytes.fromhex(head["root"]),
            ), receipt
    assert_verifies(deployment.db_url)


# -- 4. durability through kill -9 -----------------------------------------------------


def test_accepted_writes_survive_kill_9_of_one_process(deployment: Initialised) -> None:
    """Writers on both processes; one process is killed with SIGKILL mid-stream. The
    survivor keeps accepting writes (a dead process holds no lock); after a restart every
    write that got a 201 is readable through the survivor and through the restarted
    process, whose index knows them all; and ``deconflict verify`` passes."""
    accepted: dict[str, list[tuple[str, tuple[float, float]]]] = defaultdict(list)
    with ExitStack() as stack:
        a = stack.enter_context(server(deployment))
        b = stack.enter_context(server(deployment))
        writers = [
            register(a.base, deployment.coordinator, f"Wing {w}", "operator") for w in range(4)
        ]
        other = register(a.base, deployment.coordinator, "Late Wing", "operator")
        stop = threading.Event()
        killing = threading.Event()
        killed = threading.Event()
        after_kill: list[str] = []

        def write_until_stopped(w: int, to: Server) -> None:
            n = 0
            while not stop.is_set():
                place = grid_place(w * 100_000 + n)
                n += 1
                try:
                    answer = to.declare(writers[w]["token"], [operation_volume(*place)])
                except httpx.HTTPError:
                    if to is a and killing.is_set():
                        return  # the killed process
                    raise
                assert answer.status_code == 201, answer.text
                declaration_id = answer.json()["declaration"]["id"]
                accepted[to.base].append((declaration_id, place))
                if killed.is_set() and to is b:
                    after_kill.append(declaration_id)

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(write_until_stopped, w, to) for w, to in enumerate([a, a, b, b])]

            def wait_for(condition: Callable[[], bool]) -> None:
                # Until the condition holds, or a writer that should run has stopped (it
                # failed: its error is raised below), or a minute has passed.
                running = futures[2:] if killing.is_set() else futures
                deadline = time.monotonic() + 60
                while not condition() and not any(f.done() for f in running):
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.02)

            try:
                wait_for(lambda: min(len(accepted[a.base]), len(accepted[b.base])) >= 30)
                killing.set()
                a.process.send_signal(signal.SIGKILL)
                a.process.wait()
                killed.set()
                wait_for(lambda: len(after_kill) >= 20)
            finally:
                stop.set()
            for future in futures:
                future.result()
        assert min(len(accepted[a.base]), len(accepted[b.base])) >= 30
        assert len(after_kill) >= 20, "the surviving process stopped accepting writes"

        restarted = stack.enter_context(server(deployment))
        everything = accepted[a.base] + accepted[b.base]
        for to in (b, restarted):
            for declaration_id, _ in everything:
                got = to.client.get(
                    f"/v1/declarations/{declaration_id}", headers=bearer(writers[0]["token"])
                )
                assert got.status_code == 200, (to.base, declaration_id, got.text)
        # The restarted process's index holds what was accepted before and after the kill.
        assert accepted[b.base][-1][0] in after_kill
        for declaration_id, place in (accepted[a.base][0], accepted[b.base][-1]):
            refused = restarted.declare(other["token"], [operation_volume(*place)])
            assert refused.status_code == 409, refused.text
            assert [m["id"] for m in refused.json()["missing"]] == [declaration_id]
    assert_verifies(deployment.db_url)


# -- 5. the index never decides on stale data ------------------------------------------

ROUNDS = 12


def test_index_never_decides_on_stale_data(deployment: Initialised) -> None:
    """What one process commits, the other's next decision sees at once (no sleep): a
    declaration created, moved or withdrawn through one process is seen by a conflicting
    write and by ``POST /v1/conflicts/check`` through the other."""
    with two_servers(deployment) as (a, b):
        x = register(a.base, deployment.coordinator, "Air Force X", "operator")
        y = register(b.base, deployment.coordinator, "Air Force Y", "operator")

        def check(to: Server, lon: float, lat: float) -> list[tuple[str, str]]:
            answer = to.client.post(
                "/v1/conflicts/check",
                json={"kind": "operation", "volumes": [operation_volume(lon, lat)]},
                headers=bearer(y["token"]),
            )
            assert answer.status_code == 200, answer.text
            return [
                (c["declaration"]["id"], c["declaration"]["version"])
                for c in answer.json()["conflicts"]
            ]

        def missing(answer: httpx.Response) -> list[tuple[str, str]]:
            assert answer.status_code == 409, answer.text
            assert answer.json()["code"] == "missing_awareness"
            return [(m["id"], m["version"]) for m in answer.json()["missing"]]

        for n in range(ROUNDS):
            # X writes through one process, Y decides through the other; then the other way.
            p, q = (a, b) if n % 2 == 0 else (b, a)
            here, there = grid_place(2 * n), grid_place(2 * n + 1)

            created = p.declare(x["token"], [operation_volume(*here)])
            assert created.status_code == 201, created.text
            mine = created.json()["declaration"]
            assert check(q, *here) == [(mine["id"], mine["version"])]
            assert missing(q.declare(y["token"], [operation_volume(*here)])) == [
                (mine["id"], mine["version"])
            ]

            moved = p.client.put(
                f"/v1/declarations/{mine['id']}",
                json={"version": mine["version"], "volumes": [operation_volume(*there)]},
                headers=bearer(x["token"]),
            )
            assert moved.status_code == 200, moved.text
            mine = moved.json()["declaration"]
            assert check(q, *here) == []
            assert check(q, *there) == [(mine["id"], mine["version"])]
            assert missing(q.declare(y["token"], [operation_volume(*there)])) == [
                (mine["id"], mine["version"])
            ]

            withdrawn = p.client.delete(
                f"/v1/declarations/{mine['id']}",
                params={"version": mine["version"]},
                headers=bearer(x["token"]),
            )
            assert withdrawn.status_code == 200, withdrawn.text
            assert check(q, *there) == []
            freed = q.declare(y["token"], [operation_volume(*there)])
            assert freed.status_code == 201, freed.text
    assert_verifies(deployment.db_url)


def test_policy_and_revocation_through_one_process_bind_the_other_at_once(
    deployment: Initialised,
) -> None:
    """The policy and the parties are cached per process too: a wider separation put in
    force through one process decides the other's next check and write, and a token revoked
    through one process is refused by the other, at once."""
    with two_servers(deployment) as (a, b):
        coordinator = deployment.coordinator
        x = register(a.base, coordinator, "Air Force X", "operator")
        y = register(b.base, coordinator, "Air Force Y", "operator")
        here, there = (38.0, 34.0), (38.33, 34.0)  # 30 km apart
        mine = a.declare(x["token"], [operation_volume(*here)])
        assert mine.status_code == 201, mine.text
        checked = b.client.post(
            "/v1/conflicts/check",
            json={"kind": "operation", "volumes": [operation_volume(*there)]},
            headers=bearer(y["token"]),
        )
        assert checked.json()["conflicts"] == []

        toml = b.get("/v1/policy", coordinator)["toml"]
        assert "horizontal_m = 9260" in toml
        widened = a.client.put(
            "/v1/policy",
            content=toml.replace("horizontal_m = 9260", "horizontal_m = 50000"),
            headers={**bearer(coordinator), "Content-Type": "text/plain"},
        )
        assert widened.status_code == 200, widened.text
        checked = b.client.post(
            "/v1/conflicts/check",
            json={"kind": "operation", "volumes": [operation_volume(*there)]},
            headers=bearer(y["token"]),
        )
        assert [c["declaration"]["id"] for c in checked.json()["conflicts"]] == [
            mine.json()["declaration"]["id"]
        ]
        refused = b.declare(y["token"], [operation_volume(*there)])
        assert refused.status_code == 409, refused.text

        assert b.get("/v1/me", y["token"])["id"] == y["id"]
        revoked = a.client.delete(f"/v1/parties/{y['id']}", headers=bearer(coordinator))
        assert revoked.status_code == 200, revoked.text
        assert b.client.get("/v1/me", headers=bearer(y["token"])).status_code == 401
        unchecked = b.client.post(  # the check route has its own, faster way to the cache
            "/v1/conflicts/check",
            json={"kind": "operation", "volumes": [operation_volume(*there)]},
            headers=bearer(y["token"]),
        )
        assert unchecked.status_code == 401, unchecked.text
        late = b.declare(y["token"], [operation_volume(*there)], key=[])
        assert late.status_code == 401, late.text
    assert_verifies(deployment.db_url)

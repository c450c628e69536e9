"""schemathesis against a real ``deconflict serve``, as every role and with no token.

It reads the served ``/openapi.json`` and sends requests built from it: the schema's own
examples, its boundaries and negations (the coverage phase: missing and wrong-typed fields,
unsupported methods such as TRACE) and random requests (the fuzzing phase). Every check runs
on every answer: no 5xx; every status, content type, header and body as the schema
documents it; schema-invalid requests refused with a 4xx; a token-needing route refusing a
request without its token.

Left out, and why:
- ``GET /v1/inbox/stream`` never ends (it is an event stream), so a request to it cannot
  complete; tests/api/test_openapi.py checks its problem answers.
- the ``positive_data_acceptance`` check: a request valid by the JSON Schema may still be
  refused with 400 for rules JSON Schema cannot say (a ring that crosses itself, an end
  before its start, a version that is not current, the policy's limits): that is the API
  working, not a fault.
- the ``use_after_free`` check: ``DELETE /v1/declarations/{id}`` withdraws, and a withdrawn
  declaration stays readable (state ``withdrawn``, API.md), as its conflicts and deliveries
  do: the record keeps everything.

The stateful phase follows the schema's links (a created declaration to the routes that read,
withdraw or open it; a party to its revocation; a subscription to its deletion).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server import DECONFLICT, free_port, init_db, register, stop, wait_until_up

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run"]
# Bounded so that the five runs take about two minutes on a 2-core machine.
MAX_EXAMPLES = "25"
ROLES = ["coordinator", "operator", "humanitarian", "observer", "no token"]


def _seed(base: str, tokens: dict[str, str]) -> None:
    """A site and an operation over it, and a subscription, so lists and the inbox are not
    empty and their answers' schemas are exercised."""
    hour = {"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z"}
    site = {"geometry": {"type": "Point", "coordinates": [30.0, 10.0]}, "time": hour}
    headers = {"Authorization": f"Bearer {tokens['humanitarian']}"}
    made = httpx.post(
        f"{base}/v1/declarations", json={"kind": "site", "volumes": [site]}, headers=headers
    )
    assert made.status_code == 201, made.text
    headers = {"Authorization": f"Bearer {tokens['operator']}"}
    key = [made.json()["declaration"]["version"]]
    made = httpx.post(
        f"{base}/v1/declarations",
        json={
            "kind": "operation",
            "volumes": [site],
            "key": key,
            "justification": "Seeded for the schema run: an operation over a protected site.",
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    made = httpx.post(f"{base}/v1/subscriptions", json={"volumes": [site]}, headers=headers)
    assert made.status_code == 201, made.text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A real ``serve``; its log goes to a file (a pipe nobody reads would fill with the
    tracebacks of any 500 and stop the server), shown when a run fails."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    db_url, coordinator = init_db(tmp)
    log = tmp / "serve.log"
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*DECONFLICT, "serve", "--db", db_url, "--port", str(port), "--workers", "1"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        tokens = {"coordinator": coordinator}
        for role in ("operator", "humanitarian", "observer"):
            tokens[role] = register(base, coordinator, f"A {role}", role)["token"]
        _seed(base, tokens)
        yield base, tokens, log
    finally:
        stop(process)


@pytest.mark.parametrize("role", ROLES)
def test_the_api_answers_as_its_schema_says(
    served: tuple[str, dict[str, str], Path], role: str, tmp_path: Path
) -> None:
    base, tokens, log = served
    command = [
        *SCHEMATHESIS,
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance,use_after_free",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "11",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--exclude-path",
        "/v1/inbox/stream",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if role != "no token":
        command += ["--header", f"Authorization: Bearer {tokens[role]}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    errors = [line for line in log.read_text().splitlines() if "Error" in line]
    assert done.returncode == 0, (
        f"schemathesis as {role} found:\n{done.stdout}\n{done.stderr}\n"
        f"the server logged (errors of the whole run so far):\n" + "\n".join(errors[-40:])
    )
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200

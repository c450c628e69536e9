"""Sending an import file to a service in chunks (``deconflict import``).

The file is read here first, with the readers the service uses, so that its whole-file
problems and its bad rows (repeated ``external_id``\\ s across the whole file included) are
known before anything is sent, and a progress bar can say how far the import is. The good
rows then go to ``POST /v1/declarations/import`` a chunk at a time, each chunk as a GeoJSON
FeatureCollection (``export_files.export_geojson``, which the service reads back as the same
documents, whatever the file's own format), and the answers' row numbers are turned back into
the file's own. Each chunk is one request, and one write token of the party's rate limit; a
429 is waited out and the chunk sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from deconflict.importing.export_files import export_geojson
from deconflict.importing.rows import ImportRow, RowError

CHUNK_ROWS: Final = 500
"""Rows per request: enough that a request's overhead is small beside its rows, few enough
that the progress bar moves every second or so."""
RETRIES: Final = 20
"""Times a chunk is sent again after 429 before the upload gives up."""


@dataclass(frozen=True)
class Outcome:
    """One row of the file: its number there, its status and its errors."""

    row: int
    status: str
    errors: list[RowError] = field(default_factory=list)


class UploadError(Exception):
    """The service refused a whole chunk (not one row of it): the message says why."""


def chunk_body(rows: list[ImportRow]) -> bytes:
    """The rows (each with a document) as a GeoJSON FeatureCollection the service reads
    back as the same documents, ``key`` included."""
    collection = json.loads(export_geojson([row.document or {} for row in rows]))
    for row, feature in zip(rows, collection["features"], strict=True):
        key = (row.document or {}).get("key") or []
        if key:
            feature["properties"]["key"] = " ".join(key)
    return json.dumps(collection, ensure_ascii=False).encode("utf-8")


def chunks(rows: list[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def send_chunk(
    client: httpx.Client,
    token: str,
    rows: list[ImportRow],
    *,
    dry_run: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Import ``rows`` in one request; their outcomes, numbered as in the file."""
    params = {"format": "geojson", "dry_run": "true" if dry_run else "false"}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    body = chunk_body(rows)
    for _ in range(RETRIES):
        answer = client.post(
            "/v1/declarations/import", content=body, params=params, headers=headers
        )
        if answer.status_code != 429:
            break
        sleep(float(answer.headers.get("retry-after", "1")))
    if answer.status_code != 200:
        raise UploadError(_problem_text(answer))
    results: list[dict[str, Any]] = answer.json()["results"]
    # A feature's ``row`` counts the chunk's features from 1: the n-th of ``rows``.
    return [
        Outcome(
            rows[int(result["row"]) - 1].row,
            str(result["status"]),
            [RowError(e["field"], e["message"]) for e in result.get("errors", [])],
        )
        for result in results
    ]


def _problem_text(answer: httpx.Response) -> str:
    try:
        problem = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}: {answer.text[:500]}"
    fields = ", ".join(e.get("field", "") for e in problem.get("errors", []))
    named = f" ({fields})" if fields else ""
    return f"HTTP {answer.status_code} {problem.get('code', '')}{named}: {problem.get('detail')}"

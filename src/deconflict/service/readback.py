"""Proof, before a write commits, that the service can read back every row it wrote.

A stored declaration is read back by the conflict index (each worker's sync, every restart),
by update and withdraw (the rule's view of its volumes), and by the API (GET, lists, the
event stream, webhooks); a subscription by every later write that matches it and by its
list. A row that one of them could not read used to be committed anyway, and then broke the
deployment for every party (issue 11: a year written as ``999``, metadata 350 levels deep).
So each write reads its own rows back, inside its transaction and through those very
functions, before it commits. A failure is a 400 naming the field, the transaction rolls
back, and the operator is told in the log: the request's validation let through something
the service cannot hold, which is a gap to close there.

A declaration's geometry is not parsed again with shapely (the slow part of a write, and the
write lock is held here): the stored GeoJSON is what ``geo.geojson.parse_geometry`` made of the
input, and the index's decoder reads it. ``benchmarks/readback.py`` measures the cost.

This is the one place where a write reads its own stored JSON again, on purpose: everything
else in the write works from what it parsed once (the answer, the index after commit), and
this read is what proves that a later reader, which has only the row, will manage.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from deconflict.engine.index import ConflictIndex
from deconflict.errors import InvalidRequest
from deconflict.requests import STORED, VolumeIn
from deconflict.storage.declarations import (
    StoredDeclaration,
    changed_rows,
)
from deconflict.volumes import volumes_from_json

logger = logging.getLogger("deconflict.service.readback")


def prove_declarations(conn: Connection, since_seq: int) -> list[int]:
    """Read back every declaration row this transaction changed (``change_seq`` above
    ``since_seq``, the committed counter when its write lock was taken); returns their
    ``change_seq``, in order."""
    proven: list[int] = []
    for row in changed_rows(conn, since_seq):
        with _reading("volumes", row):
            # The index sync's own decoder, into a throwaway index (a tenth of a millisecond).
            ConflictIndex(threads=1).apply_rows([row])
        with _reading("volumes", row):
            documents = json.loads(row["volumes"])  # as GET and update read them
        if row["state"] == "active":
            _prove_volumes(row, documents)
        with _reading("body", row):
            stored = StoredDeclaration.of_row(row, volumes=documents)
        prove_answer(_fields(stored), row)
        proven.append(row["change_seq"])
    return proven


def _fields(stored: StoredDeclaration) -> dict[str, Any]:
    """The fields the API renders a stored declaration from, unchanged and by the same
    names (``api.declaration_json``, whose test holds it to that): serialising them is
    serialising the answer. Shallow: ``dataclasses.asdict`` would copy the metadata,
    recursively, and fail on depths the answer itself survives."""
    return {f.name: getattr(stored, f.name) for f in dataclasses.fields(stored)}


def prove_subscription(row: Mapping[Any, Any]) -> None:
    """Read back a stored subscription row as later writes and its list read it."""
    # Imported here: subscriptions imports the deployment, whose writes call this.
    from deconflict.service.subscriptions import subscription_json

    with _reading("volumes", row):
        # Exactly as every later write matches it (shapely included: subscriptions are few).
        volumes_from_json(json.loads(row["volumes"]))
    with _reading("kinds", row):
        json.loads(row["kinds"])
    with _reading("body", row):
        document = subscription_json(row)
    prove_answer(document, row)


def prove_answer(document: dict[str, Any], row: Mapping[Any, Any]) -> None:
    """``document`` serialises as the API answers it and as the event stream and webhooks
    send it: ``json.dumps`` to UTF-8 (the routes declare no response model, so FastAPI
    copies the plain document with ``jsonable_encoder`` and Starlette dumps it the same
    way). Should it fail, each top-level field is tried on its own, so that the refusal
    names the one at fault."""
    try:
        _serialise(document)
    except Exception:
        for name, value in document.items():
            with _reading(name, row):
                _serialise({name: value})
        with _reading("body", row):
            _serialise(document)


def _prove_volumes(row: Mapping[Any, Any], documents: list[dict[str, Any]]) -> None:
    """A declaration's volumes as update and withdraw rebuild them (``volumes_from_json``),
    but for the geometry: its shapely parse is that of the input, and it is the slow part
    of a write, which holds the write lock here."""
    for number, document in enumerate(documents):
        with _reading(f"volumes[{number}]", row):
            # The geometry left out: copying it costs most of this, and the index's decoder
            # above has read it already.
            VolumeIn.model_validate({**document, "geometry": {}}, context=STORED)


def _serialise(document: dict[str, Any]) -> None:
    json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")


@contextmanager
def _reading(field: str, row: Mapping[Any, Any]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # whatever a reader raises, the row must not be committed
        logger.error(
            "refused to commit %s: it could not be read back (%s: %s)",
            row.get("id"),
            type(exc).__name__,
            exc,
        )
        raise InvalidRequest(
            f"the service could not store this in a form it can read back: {exc}", field=field
        ) from exc

"""Subscriptions: a party's areas of interest, in space, altitude and time.

A change touches a subscription when one of the declaration's volumes (before or after the
change) meets one of the subscription's volumes: the geometries with their buffers meet, the
altitude bands overlap and the time windows overlap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from deconflict.engine.rule import volumes_conflict
from deconflict.errors import NotFound
from deconflict.record import entries
from deconflict.record.commitments import new_salt
from deconflict.requests import SubscriptionIn
from deconflict.service import readback
from deconflict.service.deployment import Deployment
from deconflict.service.parties import Party, new_id
from deconflict.storage import subscriptions
from deconflict.volumes import Volume, build_volumes, volumes_from_json

# Subscriptions never change once made, so their parsed volumes are cached per process.
_parsed: dict[str, tuple[Volume, ...]] = {}
_parsed_lock = threading.Lock()


@dataclass(frozen=True)
class Subscribed:
    subscription: RowMapping  # as stored
    receipt: dict[str, Any]


def subscription_json(row: Any) -> dict[str, Any]:
    """The subscription document, built here only: the API answers it
    (``deconflict.api.subscriptions``) and every write proves it can (``readback``)."""
    return {
        "id": row["id"],
        "party": row["party"],
        "volumes": json.loads(row["volumes"]),
        "kinds": json.loads(row["kinds"]),
        "created_at": row["created_at"],
    }


def create_subscription(deployment: Deployment, party: Party, body: SubscriptionIn) -> Subscribed:
    limits = deployment.current_policy().limits
    volumes = build_volumes(body.volumes, limits)
    with deployment.writing() as write:
        row = {
            "id": new_id("sub"),
            "party": party.id,
            "volumes": json.dumps([v.to_json() for v in volumes]),
            "kinds": json.dumps(sorted(set(body.kinds))),
            "salt": new_salt(),
            "created_at": write.at,
        }
        stored = subscriptions.insert(write.conn, row)
        readback.prove_subscription(stored)  # every later matching write reads it
        index = write.journal.record(entries.subscription_created_entry, stored)
        return Subscribed(stored, write.journal.receipt(index))


def list_subscriptions(deployment: Deployment, party: Party) -> list[RowMapping]:
    """The party's subscriptions (not deleted), oldest first."""
    with deployment.db.read() as conn:
        return subscriptions.active_of(conn, party.id)


def delete_subscription(deployment: Deployment, party: Party, subscription_id: str) -> None:
    with deployment.writing() as write:
        if not subscriptions.delete(write.conn, subscription_id, party.id, write.at):
            raise NotFound(f"no subscription {subscription_id}")


def subscribers_touched(
    conn: Connection, kind: str, volumes: Iterable[Volume], exclude: str
) -> set[str]:
    """The parties with an active subscription to ``kind`` that ``volumes`` touch."""
    volumes = list(volumes)
    touched: set[str] = set()
    for row in subscriptions.active_but_of(conn, exclude):
        if row["party"] in touched:
            continue
        kinds = json.loads(row["kinds"])
        if kinds and kind not in kinds:
            continue
        with _parsed_lock:
            interest = _parsed.get(row["id"])
        if interest is None:
            interest = tuple(volumes_from_json(json.loads(row["volumes"])))
            with _parsed_lock:
                _parsed[row["id"]] = interest
        if any(volumes_conflict(v, w, 0.0, 0.0) for v in volumes for w in interest):
            touched.add(row["party"])
    return touched

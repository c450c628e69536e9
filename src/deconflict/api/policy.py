"""``/v1/policy``: read by every party, changed by the coordinator (and logged)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.errors import Forbidden, InvalidRequest
from deconflict.policy import parse_policy
from deconflict.service.bootstrap import apply_policy, policy_text
from deconflict.service.deployment import Deployment
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["policy"], route_class=StrictRoute)


def _show(deployment: Deployment) -> dict[str, Any]:
    text = policy_text(deployment)
    return {"toml": text, "policy": parse_policy(text).to_json()}


@router.get("/policy")
async def show(request: Request, _party: Party = Depends(caller)) -> dict[str, Any]:
    return await blocking(_show, deployment_of(request))


def _set(deployment: Deployment, party: Party, text: str) -> dict[str, Any]:
    if party.role != "coordinator":
        raise Forbidden("only the coordinator sets the policy")
    with deployment.writing() as write:
        policy_id = apply_policy(write, text, party)
        head = write.journal.head()
    return {"id": policy_id, "tree_head": head, **_show(deployment)}


@router.put("/policy")
async def replace(request: Request, party: Party = Depends(caller)) -> dict[str, Any]:
    """Put a new policy in force: the body is the TOML text (``Content-Type: text/plain`` or
    ``application/toml``)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the policy must be UTF-8 TOML text", field="body") from exc
    return await blocking(_set, deployment_of(request), party, text)

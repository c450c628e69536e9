"""``/v1/parties`` and ``/v1/me``, and their answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.errors import Forbidden
from deconflict.requests import PartyIn, WebhookIn
from deconflict.service import parties
from deconflict.service.deployment import Deployment
from deconflict.service.parties import Party
from deconflict.service.webhook_targets import Allowed
from deconflict.service.webhooks import check_webhook_url

router = APIRouter(prefix="/v1", tags=["parties"], route_class=StrictRoute)


def party_json(party: Party) -> dict[str, str]:
    return {"id": party.id, "name": party.name, "role": party.role}


def _webhooks_allowed(request: Request) -> Allowed:
    allowed: Allowed = request.app.state.webhooks_allowed
    return allowed


def _register(
    deployment: Deployment, actor: Party, body: PartyIn, allowed: Allowed
) -> dict[str, Any]:
    if actor.role != "coordinator":
        raise Forbidden("only the coordinator registers parties")
    if body.webhook_url is not None:  # "" too: it is no URL
        check_webhook_url(body.webhook_url, "webhook_url", allowed)
    with deployment.writing() as write:
        made = parties.register_party(
            write, name=body.name, role=body.role, actor=actor.id, webhook_url=body.webhook_url
        )
    answer: dict[str, Any] = {
        **party_json(made.party),
        "token": made.token,
        "receipt": made.receipt,
    }
    if made.webhook_secret:
        answer["webhook_secret"] = made.webhook_secret
    return answer


@router.post("/parties", status_code=201)
async def register(
    body: PartyIn, request: Request, actor: Party = Depends(caller)
) -> dict[str, Any]:
    return await blocking(
        _register, deployment_of(request), actor, body, _webhooks_allowed(request)
    )


def _list(deployment: Deployment) -> list[dict[str, str]]:
    with deployment.db.read() as conn:
        return [party_json(p) for p in parties.list_parties(conn)]


@router.get("/parties")
async def list_(request: Request, _party: Party = Depends(caller)) -> dict[str, Any]:
    return {"parties": await blocking(_list, deployment_of(request))}


def _revoke(deployment: Deployment, actor: Party, party_id: str) -> dict[str, Any]:
    with deployment.writing() as write:
        return {"receipt": parties.revoke_party(write, party_id, actor)}


@router.delete("/parties/{party_id}")
async def revoke(party_id: str, request: Request, actor: Party = Depends(caller)) -> dict[str, Any]:
    return await blocking(_revoke, deployment_of(request), actor, party_id)


@router.get("/me")
async def me(party: Party = Depends(caller)) -> dict[str, str]:
    return party_json(party)


def _set_webhook(
    deployment: Deployment, party: Party, body: WebhookIn, allowed: Allowed
) -> dict[str, Any]:
    if body.url is not None:
        check_webhook_url(body.url, "url", allowed)
    with deployment.writing() as write:
        secret = parties.set_webhook(write, party, body.url)
    return {"url": body.url, "secret": secret}


@router.put("/me/webhook")
async def set_webhook(
    body: WebhookIn, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    """Set (or, with ``{"url": null}``, clear) the caller's webhook; the answer holds the
    HMAC-SHA256 secret that signs every delivery, shown once."""
    return await blocking(
        _set_webhook, deployment_of(request), party, body, _webhooks_allowed(request)
    )

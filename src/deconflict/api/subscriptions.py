"""``/v1/subscriptions``: areas of interest, and their answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from deconflict.api.bodies import StrictRoute
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.requests import SubscriptionIn
from deconflict.service import subscriptions
from deconflict.service.parties import Party
from deconflict.service.subscriptions import subscription_json

router = APIRouter(prefix="/v1", tags=["subscriptions"], route_class=StrictRoute)


@router.post("/subscriptions", status_code=201)
async def create(
    body: SubscriptionIn, request: Request, party: Party = Depends(caller)
) -> dict[str, Any]:
    made = await blocking(subscriptions.create_subscription, deployment_of(request), party, body)
    return {"subscription": subscription_json(made.subscription), "receipt": made.receipt}


@router.get("/subscriptions")
async def list_(request: Request, party: Party = Depends(caller)) -> dict[str, Any]:
    found = await blocking(subscriptions.list_subscriptions, deployment_of(request), party)
    return {"subscriptions": [subscription_json(row) for row in found]}


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete(subscription_id: str, request: Request, party: Party = Depends(caller)) -> None:
    await blocking(
        subscriptions.delete_subscription, deployment_of(request), party, subscription_id
    )

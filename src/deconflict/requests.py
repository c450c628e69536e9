"""Request bodies: parsing JSON and validating it into typed models, with field paths.

Every validation error names its field the way API.md writes it (``volumes[0].time.end``), so
a client can point at the offending input.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deconflict.errors import InvalidRequest
from deconflict.policy import Kind, Role
from deconflict.volumes import VolumeIn

Model = TypeVar("Model", bound=BaseModel)


def field_path(location: tuple[int | str, ...]) -> str:
    """``("volumes", 0, "time", "end")`` → ``volumes[0].time.end``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def parse_body(raw: bytes, model: type[Model]) -> Model:
    """Decode and validate a JSON body; 400 ``invalid_request`` naming each bad field."""
    try:
        document = json.loads(raw, parse_constant=_refuse_constant) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="body") from exc
    if not isinstance(document, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    return validate(document, model)


def validate(document: Any, model: type[Model]) -> Model:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [{"field": field_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidRequest(f"{first['field']}: {first['message']}", errors=errors) from exc


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


class RestrictsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parties: list[str] = Field(default_factory=list, max_length=1000)
    roles: list[Role] = Field(default_factory=list)
    allowed_categories: list[str] = Field(default_factory=list, max_length=1000)


class DeclarationIn(BaseModel):
    """``POST /v1/declarations``. Unknown top-level fields are ignored, so a client may send
    back a declaration it read."""

    kind: Kind
    volumes: list[VolumeIn]
    key: list[str] = Field(default_factory=list, max_length=100_000)
    category: str = Field(default="", max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    restricts: RestrictsIn | None = None


class DeclarationUpdate(BaseModel):
    """``PUT /v1/declarations/{id}``: the new volumes; category, metadata and restricts are
    kept when left out."""

    version: str = Field(min_length=1, max_length=64)
    volumes: list[VolumeIn]
    key: list[str] = Field(default_factory=list, max_length=100_000)
    category: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    restricts: RestrictsIn | None = None


class CheckIn(BaseModel):
    """``POST /v1/conflicts/check``: a declaration the caller would make."""

    kind: Kind
    volumes: list[VolumeIn]
    category: str = Field(default="", max_length=200)
    restricts: RestrictsIn | None = None


class SubscriptionIn(BaseModel):
    volumes: list[VolumeIn]
    kinds: list[Kind] = Field(default_factory=list)


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role
    webhook_url: str | None = Field(default=None, max_length=2000)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)


class AckIn(BaseModel):
    comment: str = Field(default="", max_length=10_000)


Change = Literal["created", "updated", "withdrawn"]

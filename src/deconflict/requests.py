"""Request bodies: parsing JSON and validating it into typed models, with field paths.

Every validation error names its field the way API.md writes it (``volumes[0].time.end``), so
a client can point at the offending input.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

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


BODY_DEPTH = 64
"""Levels of objects and arrays a JSON body may nest (the body itself is one)."""
METADATA_DEPTH = 32
"""Levels ``metadata`` may nest (the metadata object itself is one)."""
MAX_QUERY_INT = 2**63 - 1
"""The largest integer a query parameter may hold: SQLite and PostgreSQL compare columns
with signed 64-bit integers, and a larger one fails in the driver."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Integers beyond ±this are refused: JavaScript and many JSON readers hold every number as
a float64, which cannot tell 2**53 + 1 from 2**53."""


def parse_body(raw: bytes, model: type[Model]) -> Model:
    """Decode and validate a JSON body; 400 ``invalid_request`` naming each bad field."""
    document = decode_json(raw) if raw else None
    if not isinstance(document, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    return validate(document, model)


def decode_json(raw: bytes) -> Any:
    """A request body as JSON, strictly: UTF-8 without a byte order mark (API.md: "All bodies
    are JSON (UTF-8)"), no ``NaN``/``Infinity``, and only values every part of the service and
    every JSON reader takes back (``check_json_value``, over at most ``BODY_DEPTH`` levels).
    400 ``invalid_request`` naming the field otherwise."""
    encoding = json.detect_encoding(raw)
    if raw.startswith(b"\xef\xbb\xbf") or encoding != "utf-8":
        found = "a byte order mark" if encoding == "utf-8-sig" else encoding.upper()
        raise InvalidRequest(
            f"the body must be JSON in UTF-8 without a byte order mark; this is {found}",
            field="body",
        )
    try:
        text = raw.decode("utf-8")  # strict: encoded surrogates and bad bytes are refused
        document = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not valid UTF-8: {exc}", field="body") from exc
    except RecursionError as exc:
        raise InvalidRequest(
            f"the body nests more than {BODY_DEPTH} levels of objects and arrays", field="body"
        ) from exc
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="body") from exc
    check_json_value(document, "", BODY_DEPTH)
    return document


def check_json_value(value: Any, field: str, max_depth: int) -> None:
    """Refuse, naming the field, what some reader of a stored value could not take back:
    nesting deeper than ``max_depth``, non-finite numbers, integers beyond
    ±``MAX_SAFE_INTEGER``, and strings that are not Unicode text (a lone surrogate such as
    ``"\\ud800"``, which UTF-8 cannot encode) or hold U+0000 (which PostgreSQL cannot store).
    Iterative, so that no depth makes it recurse."""
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidRequest(
                    f"nested more than {max_depth} levels deep", field=path or "body"
                )
            if isinstance(item, dict):
                for key, member in item.items():
                    # The field's name is shown in the answer, which must be UTF-8 itself.
                    name = key.encode("utf-8", "backslashreplace").decode("utf-8")
                    child = f"{path}.{name}" if path else name
                    _check_string(key, child)
                    stack.append((member, child, depth + 1))
            else:
                stack.extend((member, f"{path}[{n}]", depth + 1) for n, member in enumerate(item))
        elif isinstance(item, str):
            _check_string(item, path or "body")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                raise InvalidRequest(
                    f"the integer {item} is beyond ±(2^53 - 1), which not every JSON reader "
                    "holds exactly",
                    field=path or "body",
                )
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequest("numbers must be finite", field=path or "body")


def _check_string(text: str, field: str) -> None:
    if "\x00" in text:
        raise InvalidRequest("strings may not hold U+0000", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            "strings must be Unicode text: this one holds a lone surrogate", field=field
        ) from exc


def validate(document: Any, model: type[Model]) -> Model:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [{"field": field_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidRequest(f"{first['field']}: {first['message']}", errors=errors) from exc


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    # Also where bodies do not come through ``decode_json``: scenario files, direct calls.
    check_json_value(value, "metadata", METADATA_DEPTH)
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_check_metadata)]
"""A declaration's free-form metadata: any JSON object within the limits of
``check_json_value`` and at most ``METADATA_DEPTH`` levels deep."""


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
    metadata: Metadata = Field(default_factory=dict)
    restricts: RestrictsIn | None = None


class DeclarationUpdate(BaseModel):
    """``PUT /v1/declarations/{id}``: the new volumes; category, metadata and restricts are
    kept when left out."""

    version: str = Field(min_length=1, max_length=64)
    volumes: list[VolumeIn]
    key: list[str] = Field(default_factory=list, max_length=100_000)
    category: str | None = Field(default=None, max_length=200)
    metadata: Metadata | None = None
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

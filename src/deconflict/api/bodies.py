"""Requests checked before FastAPI reads them: JSON bodies decoded strictly, and path and
query parameters free of U+0000.

FastAPI reads a JSON body with ``json.loads``, which guesses UTF-16 and UTF-32, skips a byte
order mark and takes ``NaN``, ``Infinity`` and ``1e400`` (infinite): all accepted, and some
stored values then failed whatever read them back. Routes of this class decode with
``requests.decode_json`` instead, so every JSON body meets the same rules and a refusal is a
400 naming the field. A parameter holding U+0000 (``%00``) is refused too: PostgreSQL cannot
compare a text column with it, and the driver's error would be a 500.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute

from deconflict.errors import InvalidRequest
from deconflict.requests import decode_json


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class StrictRoute(APIRoute):
    """An ``APIRoute`` whose parameters are checked and whose JSON body is decoded by
    ``decode_json`` before FastAPI's own handler runs: an error raised there would be
    answered as a bare "error parsing the body", while one raised here reaches the problem
    handlers with its field."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Answers are plain JSON documents (``dict[str, Any]``), not models. Left to infer a
        # response model from that annotation, FastAPI serialises through pydantic-core,
        # which refuses nesting deeper than 255 levels: a declaration whose metadata an
        # older version accepted that deep (before the 32-level limit) would answer 500 to
        # every reader. Without a model it goes through ``jsonable_encoder``, which does not.
        if isinstance(kwargs.get("response_model", DefaultPlaceholder(None)), DefaultPlaceholder):
            kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        takes_json = self.body_field is not None

        async def strict(request: Request) -> Response:
            request = StrictJSONRequest(request.scope, request.receive)
            _check_parameters(request)
            if takes_json and _is_json(request) and await request.body():
                await request.json()
            return await handle(request)

        return strict


def _check_parameters(request: Request) -> None:
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in str(value):
            raise InvalidRequest(f"{name} may not hold U+0000", field=name)


def _is_json(request: Request) -> bool:
    """Whether FastAPI would read the body as JSON: no content type, or a JSON one."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )

"""JSON request bodies, decoded strictly before FastAPI validates them.

FastAPI reads a JSON body with ``json.loads``, which guesses UTF-16 and UTF-32, skips a byte
order mark and takes ``NaN``, ``Infinity`` and ``1e400`` (infinite): all accepted, and some
stored values then failed whatever read them back. Routes of this class decode with
``requests.decode_json`` instead, so every JSON body meets the same rules and a refusal is a
400 naming the field.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from deconflict.requests import decode_json


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class JSONBodyRoute(APIRoute):
    """An ``APIRoute`` whose JSON body is decoded by ``decode_json``, before FastAPI's own
    handler runs: an error raised there would be answered as a bare "error parsing the
    body", while one raised here reaches the problem handlers with its field."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        takes_json = self.body_field is not None

        async def strict(request: Request) -> Response:
            request = StrictJSONRequest(request.scope, request.receive)
            if takes_json and _is_json(request) and await request.body():
                await request.json()
            return await handle(request)

        return strict


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

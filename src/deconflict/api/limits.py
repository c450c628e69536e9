"""Refuse oversized bodies before anything parses them."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconflict.api.problems import error_response
from deconflict.errors import DeconflictError, InvalidRequest, TooLarge


class BodyLimit:
    """Pure ASGI middleware: 413 ``too_large`` on a declared or streamed body over the limit.

    The limit comes from the policy in force (``limits.body_bytes``; ``limits.import_bytes``
    for an import), read through ``limit_of`` with the request's path so a policy change
    applies without a restart.
    """

    def __init__(self, app: ASGIApp, limit_of: Callable[[str], int]) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(str(scope.get("path", "")))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    refusal: DeconflictError = (
                        TooLarge(f"the body is {declared} bytes; the limit is {limit}")
                        if declared > limit
                        else InvalidRequest("invalid Content-Length")
                    )
                    await error_response(refusal)(scope, receive, send)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Handled like any DeconflictError by the app's problem handlers.
                    raise TooLarge(f"the body is over {limit} bytes", field="body")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge as exc:
            # Raised where no handler stood between the body and this middleware.
            if not response_started:
                await error_response(exc)(scope, receive, send)

"""Limits every request meets before any handler runs: body size and JSON nesting depth.

The body limit is an ASGI middleware in front of the whole application (``/v2.0``, ``/identity``
and the rest): a declared ``Content-Length`` over the limit is refused before a byte of the body is
read, and a streamed (chunked) body is refused as soon as what has arrived passes it, so a client
cannot make the server hold more than the limit in memory. The default is Neutron's and Keystone's
(oslo.middleware ``max_request_body_size`` = 114688 bytes, 112 KiB).

The depth limit is applied by :func:`parse_json`, the one JSON reader of request bodies: orjson
stops at 1024 levels itself, but walking such a document recursively (validation, the NUL check,
storage) would exhaust Python's recursion limit, so anything deeper than :data:`MAX_JSON_DEPTH` is a
400 before any of that runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 114_688
# Deeper than any document the API defines (binding:profile and the like are a few levels).
MAX_JSON_DEPTH = 32
TOO_LARGE_MESSAGE = "Request is too large."


class JsonRejected(ValueError):
    """The body is not JSON, or nests deeper than allowed; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> tuple[Any, bool]:
    """The parsed document and whether any string in it (keys included) holds a NUL.

    One iterative walk answers both, so no document, however deep, recurses in Python.
    """
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc).lower():  # orjson stops at 1024 levels itself
            raise JsonRejected(f"JSON nesting exceeds the maximum depth of {max_depth}.") from None
        raise JsonRejected("Body contains invalid data") from None
    return document, scan(document, max_depth)


def scan(document: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether any string in ``document`` holds a NUL; :class:`JsonRejected` if it is too deep."""
    nul = False
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            nul = nul or "\x00" in value
        elif isinstance(value, dict):
            if depth > max_depth:
                raise JsonRejected(f"JSON nesting exceeds the maximum depth of {max_depth}.")
            for key, item in value.items():
                nul = nul or "\x00" in key
                if isinstance(item, dict | list | str):
                    stack.append((item, depth + 1))
        elif isinstance(value, list | tuple):
            if depth > max_depth:
                raise JsonRejected(f"JSON nesting exceeds the maximum depth of {max_depth}.")
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list | tuple | str))
    return nul


TooLargeResponder = Callable[[Scope], tuple[int, list[tuple[bytes, bytes]], bytes]]


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before the application reads them.

    The body is read here (up to the limit) and replayed to the application, so a handler never
    sees a partial body and a refusal never reaches a handler half-way through its work.
    ``respond`` renders the 413 in the shape of the API the path belongs to.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, respond: TooLargeResponder) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(scope, send)
            return
        if length == 0 or (length is None and not _has_body(scope)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
                       send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        status, headers, body = self.respond(scope)
        # The unread rest of the body makes the connection unusable for another request.
        headers = [*headers, (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A ``receive`` that yields ``messages`` and afterwards waits on ``then`` (disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive

"""The HTTP connection below the ASGI app: bounded request heads, errors in Neutron's body.

uvicorn's httptools protocol buffers a request's URL and headers whole, however large, before the
app sees anything: a client could make the server hold megabytes per connection (a 1 MB header was
accepted). This protocol counts the bytes of each request head as they arrive and refuses the
request as soon as it is over the limit, before buffering more: 414 when the URL (request target)
is longer than ``[server] max_url_length``, 431 when the head (request line and headers) is larger
than ``[server] max_header_size``. Eventlet, under which Neutron runs, answers 414 over 8 KiB of
request line and refuses over-long header lines; the number of query filters is bounded with it.
Malformed requests get a NeutronError body too (uvicorn's own answer is plain text).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing; the refusal is already decided."""


def error_response(status: int, type_name: str, message: str) -> bytes:
    body = orjson.dumps({"NeutronError": {"type": type_name, "message": message, "detail": ""}})
    return b"".join([
        b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status]),
        b"content-type: application/json\r\n",
        b"x-openstack-request-id: req-" + str(uuid.uuid4()).encode() + b"\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
        body,
    ])


class BoundedHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with a bound on each request's head (see the module docstring)."""

    max_url_length = 8192
    max_header_size = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        self._head_bytes = 0
        self._refusal: tuple[int, str, str] | None = None

    def data_received(self, data: bytes) -> None:
        if self._head_open and self._refusal is None:
            room = self.max_header_size - self._head_bytes
            if len(data) > room:
                # Parse only what the limit allows: a head that ends within it carries on (with
                # the rest of the chunk, the body); one that does not is refused unread.
                self._head_bytes = self.max_header_size
                super().data_received(data[:room])
                if self._head_open and self._refusal is None and not self.transport.is_closing():
                    self._refuse(431, "HTTPRequestHeaderFieldsTooLarge",
                                 f"Request header fields are larger than {self.max_header_size} bytes.")
                    return
                if not self.transport.is_closing() and room < len(data):
                    super().data_received(data[room:])
                return
            self._head_bytes += len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.max_url_length:
            self._refusal = (414, "HTTPRequestURITooLong",
                             f"The request URL is longer than {self.max_url_length} bytes.")
            raise HeadTooLarge()
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:  # the parser stopped because a callback refused the head
            self._refuse(*self._refusal)
            return
        self._refuse(400, "HTTPBadRequest", msg)

    def _refuse(self, status: int, type_name: str, message: str) -> None:
        self.transport.write(error_response(status, type_name, message))
        self.transport.close()


def bounded_protocol(max_url_length: int, max_header_size: int) -> type[BoundedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type("ConfiguredHttpProtocol", (BoundedHttpProtocol,),
                {"max_url_length": max_url_length, "max_header_size": max_header_size})

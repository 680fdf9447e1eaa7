"""What a transport does with a message body once it has arrived, identical for every transport.

Transports move bytes; this module turns arriving bytes into handler invocations and answers:
an event body into a handler call (or a logged refusal), a request body into a reply or error body,
a reply body into the caller's result or exception. Keeping it here means the in-process transport
and RabbitMQ cannot drift apart in what they accept, refuse, or report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from neutrino.bus.envelope import Envelope, peek_id
from neutrino.bus.errors import BusError, MalformedEnvelope, RemoteError, UnknownMethod
from neutrino.bus.interface import EventHandler, RpcHandler

log = logging.getLogger(__name__)

UNKNOWN = "-"


async def deliver_event(body: bytes, handler: EventHandler, *, where: str) -> None:
    """Decode an event and run ``handler`` on it; refusals and handler failures are logged, never raised.

    An event that cannot be read (another envelope version, malformed) is dropped: guessing at it
    could apply a wrong change, while dropping one costs only latency (state is level-triggered).
    """
    try:
        envelope = Envelope.decode(body)
        if envelope.kind != "event":
            raise MalformedEnvelope(f"expected an event, got a {envelope.kind}")
    except BusError as exc:
        log.error("bus %s refused an event (id=%s): %s", where, peek_id(body) or UNKNOWN, exc)
        return
    try:
        await handler(envelope)
    except Exception:
        log.exception("bus %s: handler failed on event %s (topic=%s)", where, envelope.id, envelope.topic)


async def answer_request(
    body: bytes,
    handlers: Mapping[str, RpcHandler],
    *,
    target: str,
    sender: str,
    clock: Callable[[], float],
) -> bytes:
    """Run the handler a request names and return the encoded reply or error; never raises an Exception.

    A request that cannot be read is answered with an error naming why (``BusVersionError``,
    ``MalformedEnvelope``), correlated by whatever id could be salvaged, so the caller learns at once
    instead of waiting for its timeout.
    """
    try:
        request = Envelope.decode(body)
        if request.kind != "request":
            raise MalformedEnvelope(f"expected a request, got a {request.kind}")
    except BusError as exc:
        log.error("bus %s refused a request (id=%s): %s", target, peek_id(body) or UNKNOWN, exc)
        return _refusal(body, exc, sender=sender, sent_at=clock())

    method = request.method or UNKNOWN
    handler = handlers.get(method)
    try:
        if handler is None:
            raise UnknownMethod(target, method)
        result = await handler(dict(request.payload))
        if result is None:
            result = {}
        if not isinstance(result, Mapping):
            raise TypeError(f"handler for {method!r} returned {type(result).__name__}, not a mapping")
        return request.reply(result, sent_at=clock(), sender=sender).encode()
    except Exception as exc:  # the handler's failure is the caller's answer, not ours to crash on
        if not isinstance(exc, UnknownMethod):
            log.info("bus %s: %s(%s) failed: %s: %s", target, method, request.id, type(exc).__name__, exc)
        return request.error(type(exc).__name__, str(exc), sent_at=clock(), sender=sender).encode()


def _refusal(body: bytes, exc: BusError, *, sender: str, sent_at: float) -> bytes:
    method = UNKNOWN
    try:
        document = orjson.loads(body)
        if isinstance(document, dict) and isinstance(document.get("method"), str) and document["method"]:
            method = document["method"]
    except orjson.JSONDecodeError:
        pass
    error = Envelope(
        "error",
        peek_id(body) or UNKNOWN,
        {"type": type(exc).__name__, "message": str(exc)},
        sent_at,
        sender,
        method=method,
    )
    return error.encode()


def read_reply(body: bytes) -> dict[str, Any]:
    """The caller's view of an answer: the reply payload, or the exception the answer stands for."""
    envelope = Envelope.decode(body)  # BusVersionError / MalformedEnvelope propagate to the caller
    if envelope.kind == "reply":
        return dict(envelope.payload)
    if envelope.kind == "error":
        raise RemoteError(str(envelope.payload["type"]), str(envelope.payload["message"]))
    raise MalformedEnvelope(f"expected a reply, got a {envelope.kind}")


__all__ = ["answer_request", "deliver_event", "read_reply"]

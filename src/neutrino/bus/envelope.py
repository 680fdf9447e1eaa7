"""The versioned JSON envelope every bus message travels in.

One shape for all four kinds of message, so that every process can tell at the first byte whether it
understands a message at all. The version is checked before anything else is read: a message from a
newer (or older) peer is refused with :class:`BusVersionError`, never half-understood.

Within one version, additive changes are allowed: decoders ignore envelope keys they do not know.
Removing or renaming a field, or changing its meaning, requires a new version.

Wire form (UTF-8 JSON object)::

    {"v": 1, "kind": "event", "id": "...", "topic": "event.port.host-a",
     "payload": {...}, "sent_at": 1718000000.25, "sender": "server.ctl-1"}

``kind`` is one of ``event`` (carries ``topic``), ``request``, ``reply``, ``error`` (carry ``method``).
A reply or error repeats the ``id`` and ``method`` of the request it answers. An error's payload is
``{"type": <exception class name>, "message": <text>}``. ``sent_at`` is seconds since the Unix epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from neutrino.bus.errors import BusVersionError, MalformedEnvelope

PROTOCOL_VERSION = 1

Kind = Literal["event", "request", "reply", "error"]
KINDS: frozenset[str] = frozenset({"event", "request", "reply", "error"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """One bus message. Construction validates the shape, so an Envelope in hand is always sendable.

    The payload mapping is not copied; treat it as read-only once wrapped.
    """

    kind: Kind
    id: str
    payload: Mapping[str, Any]
    sent_at: float
    sender: str
    topic: str | None = None
    method: str | None = None
    v: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if self.v != PROTOCOL_VERSION:
            raise BusVersionError(self.v, PROTOCOL_VERSION)
        if self.kind not in KINDS:
            raise MalformedEnvelope(f"unknown envelope kind {self.kind!r}")
        if not isinstance(self.id, str) or not self.id:
            raise MalformedEnvelope("envelope id must be a non-empty string")
        if not isinstance(self.payload, Mapping):
            raise MalformedEnvelope("envelope payload must be a JSON object")
        if not isinstance(self.sender, str):
            raise MalformedEnvelope("envelope sender must be a string")
        if isinstance(self.sent_at, bool) or not isinstance(self.sent_at, int | float):
            raise MalformedEnvelope("envelope sent_at must be a number of seconds since the epoch")
        if self.kind == "event":
            if not isinstance(self.topic, str) or not self.topic or self.method is not None:
                raise MalformedEnvelope("an event carries a non-empty topic and no method")
        else:
            if not isinstance(self.method, str) or not self.method or self.topic is not None:
                raise MalformedEnvelope(f"a {self.kind} carries a non-empty method and no topic")
        if self.kind == "error" and not (
            isinstance(self.payload.get("type"), str) and isinstance(self.payload.get("message"), str)
        ):
            raise MalformedEnvelope("an error payload is {'type': str, 'message': str}")

    # ---- constructors for each kind ---------------------------------------------------------------

    @classmethod
    def event(
        cls, topic: str, payload: Mapping[str, Any], *, id: str, sent_at: float, sender: str
    ) -> Envelope:
        return cls("event", id, payload, sent_at, sender, topic=topic)

    @classmethod
    def request(
        cls, method: str, payload: Mapping[str, Any], *, id: str, sent_at: float, sender: str
    ) -> Envelope:
        return cls("request", id, payload, sent_at, sender, method=method)

    def reply(self, payload: Mapping[str, Any], *, sent_at: float, sender: str) -> Envelope:
        """The successful answer to this request (same id and method)."""
        return Envelope("reply", self.id, payload, sent_at, sender, method=self.method)

    def error(self, type: str, message: str, *, sent_at: float, sender: str) -> Envelope:
        """The failure answer to this request (same id and method)."""
        return Envelope(
            "error", self.id, {"type": type, "message": message}, sent_at, sender, method=self.method
        )

    # ---- wire form --------------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The UTF-8 JSON wire form. Raises TypeError if the payload is not JSON-serialisable."""
        document: dict[str, Any] = {
            "v": self.v,
            "kind": self.kind,
            "id": self.id,
            "payload": self.payload,
            "sent_at": self.sent_at,
            "sender": self.sender,
        }
        if self.kind == "event":
            document["topic"] = self.topic
        else:
            document["method"] = self.method
        try:
            return orjson.dumps(document)
        except orjson.JSONEncodeError as exc:
            raise TypeError(f"bus payload is not JSON-serialisable: {exc}") from exc

    @classmethod
    def decode(cls, body: bytes) -> Envelope:
        """Parse a wire message; the version is checked first so a foreign version is never misread.

        Raises :class:`BusVersionError` for another version, :class:`MalformedEnvelope` for anything
        that is not a version-1 envelope.
        """
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedEnvelope(f"bus message is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise MalformedEnvelope("bus message is not a JSON object")
        if "v" not in document:
            raise MalformedEnvelope("bus message has no envelope version 'v'")
        version = document["v"]
        if isinstance(version, bool) or version != PROTOCOL_VERSION:
            raise BusVersionError(version, PROTOCOL_VERSION)
        try:
            kind = document["kind"]
            fields = {
                "id": document["id"],
                "payload": document["payload"],
                "sent_at": document["sent_at"],
                "sender": document["sender"],
            }
        except KeyError as exc:
            raise MalformedEnvelope(f"bus message lacks envelope field {exc.args[0]!r}") from None
        if kind == "event":
            fields["topic"] = document.get("topic")
        else:
            fields["method"] = document.get("method")
        return cls(kind=cast(Kind, kind), **fields)


def peek_id(body: bytes) -> str:
    """Best-effort id of an undecodable message, so a refusal can still be correlated; '' if none."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        return document["id"]
    return ""

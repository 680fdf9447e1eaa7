"""The one small interface between the server and the agents; both transports implement it.

Code above the bus (``neutrino.rpc``, the agent roles, the server's event publisher) depends on this
Protocol only, so the all-in-one process (in-process transport) and a deployment (RabbitMQ) run the
same code. What a user may rely on, whichever transport:

- ``publish`` delivers an event to every subscription whose pattern matches the topic (fan-out); a
  subscription made with ``queue=`` joins a named, durable queue whose subscribers *compete*: each
  event routed to that queue goes to one of them, and events wait in it while nobody is subscribed.
  Events nobody subscribed to are dropped: events are hints, state is fetched with ``sync_state``.
- Event handlers of one subscription run one at a time, in delivery order; a handler's exception is
  logged and the event is dropped (not redelivered).
- ``call`` returns the handler's reply, or raises exactly one of :class:`RemoteError`,
  :class:`BusTimeout`, :class:`BusUnavailable`, :class:`BusVersionError`.
- RPC handlers run concurrently; a request is acknowledged only after its handler finished, so a
  serving process that dies mid-request has it redelivered (handlers must tolerate repeats).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias

from neutrino.bus.envelope import Envelope

Message: TypeAlias = Mapping[str, Any]
"""A JSON object: the payload of an event, request or reply."""

EventHandler: TypeAlias = Callable[[Envelope], Awaitable[None]]
"""Receives the whole envelope (topic, sender, sent_at, payload) of one event."""

RpcHandler: TypeAlias = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any] | None]]
"""Receives the request payload, returns the reply payload (None means ``{}``); raising sends an error."""


class Subscription(Protocol):
    """A handle on a consumer; cancelling stops deliveries to its handler."""

    async def cancel(self) -> None:
        """Stop consuming. Safe to call more than once. A durable queue and its backlog are kept."""
        ...


class Bus(Protocol):
    """Events (publish/subscribe) and RPC (call/serve) between neutrino processes."""

    @property
    def sender(self) -> str:
        """This process's name on the bus, stamped into every envelope it sends."""
        ...

    async def start(self) -> None:
        """Connect. Must be awaited before any other method; raises BusUnavailable if it cannot."""
        ...

    async def close(self) -> None:
        """Stop all subscriptions and serving, fail pending calls with BusUnavailable, disconnect."""
        ...

    async def publish(self, topic: str, message: Message) -> None:
        """Send an event to every subscription matching ``topic`` (no wildcards in ``topic``)."""
        ...

    async def subscribe(self, topic: str, handler: EventHandler, *, queue: str | None = None) -> Subscription:
        """Receive events whose topic matches the pattern ``topic`` (``*`` one word, ``#`` any words).

        Without ``queue`` the subscription gets its own copy of every matching event while it lives.
        With ``queue`` it consumes from that durable named queue, competing with other consumers of it.
        """
        ...

    async def call(self, target: str, method: str, payload: Message, timeout: float) -> dict[str, Any]:
        """Invoke ``method`` on whichever process serves ``target`` and return its reply payload."""
        ...

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the bus is back after losing its broker connection.

        Events published meanwhile were lost to this process's subscriptions (their queues died with
        the connection), so a listener refetches its state. Never called by a transport that cannot
        lose its connection (the in-process one).
        """
        ...

    async def serve(self, target: str, handlers: Mapping[str, RpcHandler]) -> Subscription:
        """Answer requests for ``target`` (e.g. ``server`` or ``agent.<host>.<role>``) with ``handlers``.

        Several processes may serve the same target; each request goes to one of them.
        """
        ...

"""The in-process transport: the all-in-one default, and the bus of unit tests.

A :class:`MemoryBroker` plays RabbitMQ's part inside one event loop: it holds event queues with their
topic bindings, and the RPC endpoints per target. Each :class:`MemoryBus` is one client of a broker
(the server and each agent role may have their own, sharing one broker). Messages cross the broker as
encoded bytes, exactly as on the wire, so a payload that would not survive RabbitMQ fails here too.

Semantics follow the AMQP transport (see :mod:`neutrino.bus.interface`): fan-out per subscription,
competing consumers on a named durable queue (which keeps a backlog while nobody consumes), unknown
targets fail fast with BusUnavailable. Nothing survives the process: "durable" means "outlives its
subscribers", not "outlives a restart".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from neutrino.bus.delivery import answer_request, deliver_event, read_reply
from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusTimeout, BusUnavailable
from neutrino.bus.interface import EventHandler, Message, RpcHandler
from neutrino.bus.topics import check_pattern, check_topic, topic_matches

log = logging.getLogger(__name__)

Consumer = Callable[[bytes], None]
"""Takes one event body; must not block (it only enqueues)."""

RequestSink = Callable[[bytes], "asyncio.Future[bytes]"]
"""Takes one request body and returns the future of its encoded answer."""


class _EventQueue:
    """One named queue: its bindings, its consumers (served in turn) and, if durable, its backlog."""

    def __init__(self, name: str, *, durable: bool, backlog_limit: int) -> None:
        self.name = name
        self.durable = durable
        self.patterns: set[str] = set()
        self.consumers: list[Consumer] = []
        self.backlog: deque[bytes] = deque(maxlen=backlog_limit)
        self._turn = 0

    def routes(self, topic: str) -> bool:
        return any(topic_matches(pattern, topic) for pattern in self.patterns)

    def put(self, body: bytes) -> None:
        if self.consumers:
            consumer = self.consumers[self._turn % len(self.consumers)]
            self._turn += 1
            consumer(body)
        elif self.durable:
            if len(self.backlog) == self.backlog.maxlen:
                log.warning("memory bus queue %s is full; dropping its oldest event", self.name)
            self.backlog.append(body)

    def drain(self) -> None:
        while self.consumers and self.backlog:
            self.put(self.backlog.popleft())


class MemoryBroker:
    """Routes encoded envelopes between the MemoryBus clients of one process.

    Its two routing methods, :meth:`publish_event` and :meth:`submit_request`, take raw bytes; they are
    what a MemoryBus uses, and what a test uses to act as a peer speaking another protocol version.
    """

    def __init__(self, *, backlog_limit: int = 10_000) -> None:
        self._backlog_limit = backlog_limit
        self._queues: dict[str, _EventQueue] = {}
        self._endpoints: dict[str, list[RequestSink]] = {}
        self._turns: dict[str, int] = {}

    # ---- routing ------------------------------------------------------------------------------------

    def publish_event(self, topic: str, body: bytes) -> None:
        """Put ``body`` on every queue bound to a pattern matching ``topic``; unrouted events are dropped."""
        for queue in tuple(self._queues.values()):
            if queue.routes(topic):
                queue.put(body)

    def submit_request(self, target: str, body: bytes) -> asyncio.Future[bytes]:
        """Hand a request to one endpoint serving ``target`` (in turn); BusUnavailable if none does."""
        endpoints = self._endpoints.get(target)
        if not endpoints:
            raise BusUnavailable(f"nobody serves {target!r} on the in-process bus")
        turn = self._turns.get(target, 0)
        self._turns[target] = turn + 1
        return endpoints[turn % len(endpoints)](body)

    # ---- topology (used by MemoryBus) ---------------------------------------------------------------

    def bind(self, queue_name: str, pattern: str, *, durable: bool) -> None:
        queue = self._queues.get(queue_name)
        if queue is None:
            queue = self._queues[queue_name] = _EventQueue(
                queue_name, durable=durable, backlog_limit=self._backlog_limit
            )
        queue.patterns.add(pattern)

    def add_consumer(self, queue_name: str, consumer: Consumer) -> None:
        queue = self._queues[queue_name]
        queue.consumers.append(consumer)
        queue.drain()

    def remove_consumer(self, queue_name: str, consumer: Consumer, *, unconsumed: list[bytes]) -> None:
        """Detach ``consumer``; what it had received but not handled goes back to the queue (if durable)."""
        queue = self._queues.get(queue_name)
        if queue is None:
            return
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
        if not queue.durable:
            if not queue.consumers:
                del self._queues[queue_name]
            return
        queue.backlog.extendleft(reversed(unconsumed))
        queue.drain()

    def add_endpoint(self, target: str, sink: RequestSink) -> None:
        self._endpoints.setdefault(target, []).append(sink)

    def remove_endpoint(self, target: str, sink: RequestSink) -> None:
        sinks = self._endpoints.get(target, [])
        if sink in sinks:
            sinks.remove(sink)
        if not sinks:
            self._endpoints.pop(target, None)


class MemorySubscription:
    """One consumer: an inbox and a worker that runs the handler on one event at a time, in order."""

    def __init__(self, broker: MemoryBroker, queue_name: str, handler: EventHandler, *, where: str) -> None:
        self._broker = broker
        self._queue_name = queue_name
        self._handler = handler
        self._where = where
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._current: bytes | None = None
        self._worker: asyncio.Task[None] | None = None
        self.cancelled = False

    def _start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"bus-sub:{self._where}")
        self._broker.add_consumer(self._queue_name, self._inbox.put_nowait)

    async def _run(self) -> None:
        while not self.cancelled:
            body = await self._inbox.get()
            self._current = body
            await deliver_event(body, self._handler, where=self._where)
            self._current = None

    async def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        worker = self._worker
        from_own_handler = worker is asyncio.current_task()
        if worker is not None and not from_own_handler:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        # An event interrupted mid-handler counts as unhandled (as an unacked AMQP delivery would);
        # one whose handler is cancelling us from inside will finish, and the worker stops after it.
        unconsumed = [] if self._current is None or from_own_handler else [self._current]
        while not self._inbox.empty():
            unconsumed.append(self._inbox.get_nowait())
        self._broker.remove_consumer(self._queue_name, self._inbox.put_nowait, unconsumed=unconsumed)


class MemoryEndpoint:
    """Serves one target: each request runs in its own task, so slow handlers don't block others."""

    def __init__(
        self,
        broker: MemoryBroker,
        target: str,
        handlers: Mapping[str, RpcHandler],
        *,
        sender: str,
        clock: Callable[[], float],
    ) -> None:
        self._broker = broker
        self._target = target
        self._handlers = dict(handlers)
        self._sender = sender
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self.cancelled = False

    def _start(self) -> None:
        self._broker.add_endpoint(self._target, self._submit)

    def _submit(self, body: bytes) -> asyncio.Future[bytes]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        task = loop.create_task(self._answer(body, answer), name=f"bus-rpc:{self._target}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return answer

    async def _answer(self, body: bytes, answer: asyncio.Future[bytes]) -> None:
        try:
            reply = await answer_request(
                body, self._handlers, target=self._target, sender=self._sender, clock=self._clock
            )
        except asyncio.CancelledError:
            if not answer.done():
                answer.set_exception(
                    BusUnavailable(f"{self._target!r} stopped serving while handling the request")
                )
            raise
        if not answer.done():  # the caller may have timed out meanwhile
            answer.set_result(reply)

    async def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self._broker.remove_endpoint(self._target, self._submit)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class MemoryBus:
    """A :class:`~neutrino.bus.interface.Bus` client of a :class:`MemoryBroker`."""

    def __init__(
        self,
        broker: MemoryBroker,
        *,
        sender: str,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._broker = broker
        self._sender = sender
        self._clock = clock
        self._new_id = new_id
        self._state = "new"
        self._subscriptions: list[MemorySubscription] = []
        self._endpoints: dict[str, MemoryEndpoint] = {}
        self._pending: set[asyncio.Future[bytes]] = set()

    @property
    def sender(self) -> str:
        return self._sender

    @property
    def broker(self) -> MemoryBroker:
        return self._broker

    async def start(self) -> None:
        if self._state == "closed":
            raise BusUnavailable("this bus was closed; build a new one")
        self._state = "started"

    async def close(self) -> None:
        if self._state == "closed":
            return
        self._state = "closed"
        for subscription in self._subscriptions:
            await subscription.cancel()
        for endpoint in self._endpoints.values():
            await endpoint.cancel()
        self._subscriptions.clear()
        self._endpoints.clear()
        for future in self._pending:
            if not future.done():
                future.set_exception(BusUnavailable("the bus was closed while the call was pending"))

    def _require_started(self) -> None:
        if self._state != "started":
            raise BusUnavailable(f"the bus is {self._state}, not started")

    async def publish(self, topic: str, message: Message) -> None:
        self._require_started()
        envelope = Envelope.event(
            check_topic(topic), message, id=self._new_id(), sent_at=self._clock(), sender=self._sender
        )
        self._broker.publish_event(topic, envelope.encode())

    async def subscribe(
        self, topic: str, handler: EventHandler, *, queue: str | None = None
    ) -> MemorySubscription:
        self._require_started()
        check_pattern(topic)
        queue_name = queue if queue is not None else f"{self._sender}.events.{self._new_id()}"
        self._broker.bind(queue_name, topic, durable=queue is not None)
        subscription = MemorySubscription(
            self._broker, queue_name, handler, where=f"{self._sender}:{queue_name}"
        )
        subscription._start()
        self._subscriptions = [s for s in self._subscriptions if not s.cancelled] + [subscription]
        return subscription

    async def call(self, target: str, method: str, payload: Message, timeout: float) -> dict[str, Any]:
        self._require_started()
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        request = Envelope.request(
            method, payload, id=self._new_id(), sent_at=self._clock(), sender=self._sender
        )
        answer = self._broker.submit_request(target, request.encode())
        self._pending.add(answer)
        try:
            body = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise BusTimeout(target, method, timeout) from None
        finally:
            self._pending.discard(answer)
        return read_reply(body)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """In-process delivery never loses a connection: nothing to call back."""

    async def serve(self, target: str, handlers: Mapping[str, RpcHandler]) -> MemoryEndpoint:
        self._require_started()
        if not target:
            raise ValueError("target must be non-empty")
        existing = self._endpoints.get(target)
        if existing is not None and not existing.cancelled:
            raise ValueError(f"this bus already serves {target!r}")
        endpoint = MemoryEndpoint(self._broker, target, handlers, sender=self._sender, clock=self._clock)
        endpoint._start()
        self._endpoints[target] = endpoint
        return endpoint

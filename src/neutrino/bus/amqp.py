"""The RabbitMQ transport (aio-pika), for deployments with several hosts and server copies.

Broker topology (all declared idempotently by whoever needs it; see docs/agent-contract.md):

- exchange ``neutrino`` (topic, durable): events, routing key = topic, e.g. ``event.port.compute-1``.
  A plain subscription gets its own exclusive queue ``neutrino.events.<sender>.<id>``; a subscription
  with ``queue=NAME`` consumes the durable queue ``NAME`` (competing consumers).
- exchange ``neutrino.rpc`` (direct, durable): requests, routing key = target. Each served target has
  the durable queue ``neutrino.rpc.<target>``. Requests are persistent, published mandatory with
  publisher confirms (unroutable -> BusUnavailable at once) and expire with the caller's timeout, so a
  request nobody answered in time is never executed late.
- replies go through the default exchange to the caller's exclusive ``neutrino.reply.<sender>.<id>``
  queue, correlated by ``correlation_id`` = request id.

Failure behaviour a caller may rely on: the connection is aio-pika's robust connection, which
reconnects by itself and re-declares queues, bindings and consumers. Calls pending when the connection
drops fail with BusUnavailable straight away (their reply queue died with the connection); calls made
while disconnected wait for the reconnection within their own timeout, then fail with BusUnavailable.
A request is acked only after its handler ran and the reply was sent, so a crash mid-handler makes the
broker redeliver it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)
from yarl import URL

from neutrino.bus.delivery import answer_request, deliver_event, read_reply
from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusTimeout, BusUnavailable
from neutrino.bus.interface import EventHandler, Message, RpcHandler
from neutrino.bus.topics import check_pattern, check_topic

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "neutrino"
RPC_EXCHANGE = "neutrino.rpc"
RPC_QUEUE_PREFIX = "neutrino.rpc."
CONTENT_TYPE = "application/json"

# Everything the broker client may raise when the connection or channel is gone or refuses us.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    RuntimeError,
)


def rpc_queue_name(target: str) -> str:
    """The durable queue holding requests for ``target``."""
    return RPC_QUEUE_PREFIX + target


def redacted(url: str) -> str:
    """The broker URL without its password, for logs and error messages."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


class AmqpSubscription:
    """One event consumer; runs its handler on one event at a time, in delivery order, then acks."""

    def __init__(self, queue: AbstractQueue, handler: EventHandler, *, durable: bool, where: str) -> None:
        self._queue = queue
        self._handler = handler
        self._durable = durable
        self._where = where
        self._lock = asyncio.Lock()
        self._consumer_tag: str | None = None
        self.cancelled = False

    async def _start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aio-pika runs each delivery in its own task, created in delivery order; the FIFO lock turns
        # them back into one-at-a-time, in-order handling.
        async with self._lock:
            try:
                if self.cancelled:
                    if self._durable:
                        await message.nack(requeue=True)  # leave it to the queue's other consumers
                    return
                await deliver_event(message.body, self._handler, where=self._where)
                await message.ack()
            except TRANSPORT_ERRORS as exc:
                log.warning("bus %s: could not settle event (broker will redeliver): %s", self._where, exc)

    async def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        try:
            async with asyncio.timeout(5):
                if self._consumer_tag is not None:
                    await self._queue.cancel(self._consumer_tag)
                if not self._durable:
                    await self._queue.delete(if_unused=False, if_empty=False)
        except (TimeoutError, *TRANSPORT_ERRORS) as exc:
            log.warning("bus %s: cancel did not complete cleanly: %s", self._where, exc)


class AmqpEndpoint:
    """Serves one target from its durable request queue."""

    def __init__(
        self, bus: AmqpBus, queue: AbstractQueue, target: str, handlers: Mapping[str, RpcHandler]
    ) -> None:
        self._bus = bus
        self._queue = queue
        self._target = target
        self._handlers = dict(handlers)
        self._consumer_tag: str | None = None
        self.cancelled = False

    async def _start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_request, no_ack=False)

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        if self.cancelled:
            try:
                await message.nack(requeue=True)
            except TRANSPORT_ERRORS:
                pass
            return
        answer = await answer_request(
            message.body, self._handlers, target=self._target, sender=self._bus.sender, clock=self._bus.clock
        )
        try:
            if message.reply_to:
                await self._bus.send_reply(
                    answer, reply_to=message.reply_to, correlation_id=message.correlation_id
                )
            await message.ack()
        except TRANSPORT_ERRORS as exc:
            log.warning("bus %s: could not reply/ack (broker will redeliver): %s", self._target, exc)

    async def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        if self._consumer_tag is None:
            return
        try:
            async with asyncio.timeout(5):
                await self._queue.cancel(self._consumer_tag)
        except (TimeoutError, *TRANSPORT_ERRORS) as exc:
            log.warning("bus %s: cancel did not complete cleanly: %s", self._target, exc)


class AmqpBus:
    """A :class:`~neutrino.bus.interface.Bus` over RabbitMQ."""

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        reconnect_interval: float = 1.0,
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        prefetch: int = 32,
    ) -> None:
        self._url = url
        self._sender = sender
        self._clock = clock
        self._new_id = new_id
        self._reconnect_interval = reconnect_interval
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._prefetch = prefetch
        self._state = "new"
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._consumer: AbstractRobustChannel | None = None
        self._events: AbstractRobustExchange | None = None
        self._rpc: AbstractRobustExchange | None = None
        self._reply_queue: AbstractQueue | None = None
        self._connected = asyncio.Event()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._subscriptions: list[AmqpSubscription] = []
        self._endpoints: dict[str, AmqpEndpoint] = {}
        self._reconnect_listeners: list[Callable[[], None]] = []

    @property
    def sender(self) -> str:
        return self._sender

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now (it comes back by itself after a loss)."""
        return self._connected.is_set()

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            raise BusUnavailable(f"the bus is {self._state}; build a new one")
        options: dict[str, Any] = {}
        if "reconnect_interval" not in URL(self._url).query:
            options["reconnect_interval"] = self._reconnect_interval
        try:
            connection = await aio_pika.connect_robust(
                self._url,
                client_properties={"connection_name": f"neutrino {self._sender}"},
                timeout=self._connect_timeout,
                **options,
            )
        except (TimeoutError, *TRANSPORT_ERRORS) as exc:
            raise BusUnavailable(f"cannot connect to the broker at {redacted(self._url)}: {exc}") from exc
        self._connection = connection
        try:
            await self._declare_topology(connection)
        except BaseException as exc:
            await connection.close()
            if isinstance(exc, TRANSPORT_ERRORS):
                raise BusUnavailable(f"cannot set up the bus on {redacted(self._url)}: {exc}") from exc
            raise
        connection.close_callbacks.add(self._on_connection_lost)
        connection.reconnect_callbacks.add(self._on_reconnected)
        self._connected.set()
        self._state = "started"

    async def _declare_topology(self, connection: AbstractRobustConnection) -> None:
        self._publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._consumer = await connection.channel(publisher_confirms=False)
        await self._consumer.set_qos(prefetch_count=self._prefetch)
        # Declared on both channels so either can be restored first after a reconnection; publishing
        # goes through the publisher channel's objects, the one with confirms and returns.
        for channel in (self._consumer, self._publisher):
            self._events = await channel.declare_exchange(
                EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self._rpc = await channel.declare_exchange(
                RPC_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
            )
        # Named by us (not by the broker) so the robust connection re-declares it under the same name.
        self._reply_queue = await self._consumer.declare_queue(
            f"neutrino.reply.{self._sender}.{self._new_id()}", exclusive=True
        )
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        if self._state == "closed":
            return
        was_started = self._state == "started"
        self._state = "closed"
        # Mark, don't cancel one by one: closing the connection cancels every consumer, deletes the
        # exclusive queues and hands unacked messages back to the broker in one go.
        for subscription in self._subscriptions:
            subscription.cancelled = True
        for endpoint in self._endpoints.values():
            endpoint.cancelled = True
        self._fail_pending("the bus was closed while the call was pending")
        self._connected.clear()
        if was_started and self._connection is not None:
            try:
                await self._connection.close()
            except TRANSPORT_ERRORS as exc:
                log.debug("closing the broker connection: %s", exc)

    def _on_connection_lost(self, _connection: object, exc: BaseException | None = None) -> None:
        self._connected.clear()
        if self._state == "started":
            log.warning("bus %s lost the broker connection (%s); reconnecting", self._sender, exc)
        self._fail_pending("the broker connection was lost before the reply arrived")

    def _on_reconnected(self, _connection: object) -> None:
        # aio-pika calls this once every channel, queue, binding and consumer is restored.
        if self._state == "started":
            log.info("bus %s reconnected to the broker", self._sender)
            self._connected.set()
            for listener in list(self._reconnect_listeners):
                try:
                    listener()
                except Exception:  # noqa: BLE001 - one listener's fault must not stop the others
                    log.exception("bus %s: a reconnection listener failed", self._sender)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect_listeners.append(callback)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BusUnavailable(reason))

    def _require_started(self) -> None:
        if self._state != "started":
            raise BusUnavailable(f"the bus is {self._state}, not started")

    # ---- events -------------------------------------------------------------------------------------

    async def publish(self, topic: str, message: Message) -> None:
        self._require_started()
        assert self._events is not None
        envelope = Envelope.event(
            check_topic(topic), message, id=self._new_id(), sent_at=self._clock(), sender=self._sender
        )
        outgoing = aio_pika.Message(
            envelope.encode(),
            content_type=CONTENT_TYPE,
            message_id=envelope.id,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,  # events are hints; state is re-synced
        )
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._connected.wait()
                await self._events.publish(outgoing, routing_key=topic)
        except TimeoutError:
            raise BusUnavailable(
                f"could not publish {topic!r} within {self._publish_timeout:g}s: broker unreachable"
            ) from None
        except TRANSPORT_ERRORS as exc:
            raise BusUnavailable(f"could not publish {topic!r}: {exc}") from exc

    async def subscribe(
        self, topic: str, handler: EventHandler, *, queue: str | None = None
    ) -> AmqpSubscription:
        self._require_started()
        assert self._consumer is not None
        check_pattern(topic)
        try:
            if queue is None:
                amqp_queue = await self._consumer.declare_queue(
                    f"neutrino.events.{self._sender}.{self._new_id()}", exclusive=True
                )
            else:
                amqp_queue = await self._consumer.declare_queue(queue, durable=True)
            await amqp_queue.bind(EVENTS_EXCHANGE, routing_key=topic)
            subscription = AmqpSubscription(
                amqp_queue, handler, durable=queue is not None, where=f"{self._sender}:{amqp_queue.name}"
            )
            await subscription._start()
        except TRANSPORT_ERRORS as exc:
            raise BusUnavailable(f"could not subscribe to {topic!r}: {exc}") from exc
        self._subscriptions = [s for s in self._subscriptions if not s.cancelled] + [subscription]
        return subscription

    # ---- rpc ----------------------------------------------------------------------------------------

    async def call(self, target: str, method: str, payload: Message, timeout: float) -> dict[str, Any]:
        self._require_started()
        assert self._rpc is not None and self._reply_queue is not None
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        request = Envelope.request(
            method, payload, id=self._new_id(), sent_at=self._clock(), sender=self._sender
        )
        outgoing = aio_pika.Message(
            request.encode(),
            content_type=CONTENT_TYPE,
            message_id=request.id,  # aiormq matches a returned (unroutable) message by its message_id
            correlation_id=request.id,
            reply_to=self._reply_queue.name,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=timeout,
        )
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        sent = False
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
                # Pending from here only: a connection lost while the call waited to be sent must not
                # fail the request it is about to send on the restored connection.
                self._pending[request.id] = answer
                try:
                    await self._rpc.publish(outgoing, routing_key=target, mandatory=True)
                except aiormq.exceptions.PublishError:
                    raise BusUnavailable(f"nobody serves {target!r}: no queue is bound for it") from None
                except aiormq.exceptions.DeliveryError as exc:
                    raise BusUnavailable(f"the broker refused the request to {target!r}: {exc}") from exc
                except TRANSPORT_ERRORS as exc:
                    raise BusUnavailable(f"could not send the request to {target!r}: {exc}") from exc
                sent = True
                body = await answer
        except TimeoutError:
            if sent:
                raise BusTimeout(target, method, timeout) from None
            raise BusUnavailable(
                f"could not deliver {method!r} to {target!r} within {timeout:g}s: broker unreachable"
            ) from None
        finally:
            self._pending.pop(request.id, None)
            # A connection lost while this call still waited to be sent (or during the publish)
            # failed its answer, which nobody will await now: mark the exception as seen, or asyncio
            # logs "Future exception was never retrieved" for each such call when it is collected.
            if answer.done() and not answer.cancelled():
                answer.exception()
        return read_reply(body)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        answer = self._pending.get(message.correlation_id or "")
        if answer is None or answer.done():
            log.debug("bus %s: dropped a late or unknown reply %s", self._sender, message.correlation_id)
            return
        answer.set_result(message.body)

    async def send_reply(self, body: bytes, *, reply_to: str, correlation_id: str | None) -> None:
        """Publish an encoded reply/error to a caller's reply queue (used by this bus's endpoints)."""
        assert self._publisher is not None
        outgoing = aio_pika.Message(
            body,
            content_type=CONTENT_TYPE,
            message_id=self._new_id(),
            correlation_id=correlation_id,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        # Not mandatory: a caller that gave up and left has nobody to tell.
        await self._publisher.default_exchange.publish(outgoing, routing_key=reply_to)

    async def serve(self, target: str, handlers: Mapping[str, RpcHandler]) -> AmqpEndpoint:
        self._require_started()
        assert self._consumer is not None
        if not target:
            raise ValueError("target must be non-empty")
        existing = self._endpoints.get(target)
        if existing is not None and not existing.cancelled:
            raise ValueError(f"this bus already serves {target!r}")
        try:
            queue = await self._consumer.declare_queue(rpc_queue_name(target), durable=True)
            await queue.bind(RPC_EXCHANGE, routing_key=target)
            endpoint = AmqpEndpoint(self, queue, target, handlers)
            await endpoint._start()
        except TRANSPORT_ERRORS as exc:
            raise BusUnavailable(f"could not serve {target!r}: {exc}") from exc
        self._endpoints[target] = endpoint
        return endpoint


__all__ = ["AmqpBus", "AmqpEndpoint", "AmqpSubscription", "rpc_queue_name"]

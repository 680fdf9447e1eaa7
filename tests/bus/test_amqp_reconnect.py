"""The RabbitMQ transport survives losing its broker connection.

The requirement is "survive a broker restart"; restarting the machine's shared broker is off limits,
so the broker instead force-closes every connection on this run's private vhost — to the client that
is indistinguishable from the broker going away and coming back (exclusive queues are gone, unacked
messages are requeued, the client must reconnect and re-declare).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from neutrino.bus.amqp import AmqpBus
from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusTimeout, BusUnavailable
from neutrino.bus.factory import build_bus
from tests.fullstack.broker import BrokerUser

if TYPE_CHECKING:
    from conftest import BrokerAdmin

pytestmark = [pytest.mark.rabbitmq, pytest.mark.asyncio(loop_scope="function")]

WAIT = 5.0
RECOVERY_DEADLINE = 15.0


@pytest_asyncio.fixture(loop_scope="function")
async def server_and_agent(rabbitmq_url: Callable[..., str]) -> AsyncIterator[tuple[AmqpBus, AmqpBus]]:
    url = rabbitmq_url(reconnect_interval="0.2")
    server = build_bus(url, sender="server")
    agent = build_bus(url, sender="agent")
    assert isinstance(server, AmqpBus) and isinstance(agent, AmqpBus)
    try:
        await server.start()
        await agent.start()
        yield server, agent
    finally:
        await agent.close()
        await server.close()


async def call_until_it_works(bus: AmqpBus, target: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Retry a call until the bus has recovered; each attempt itself waits for the reconnection."""
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while True:
        try:
            return await bus.call(target, "echo", payload, timeout=1.0)
        except (BusUnavailable, BusTimeout):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # poll interval between attempts, not a wait for the condition


async def test_bus_recovers_after_the_broker_drops_its_connections(
    server_and_agent: tuple[AmqpBus, AmqpBus], broker_admin: BrokerAdmin, rabbitmq_vhost: str
) -> None:
    server, agent = server_and_agent
    target, topic = f"server-{uuid.uuid4().hex[:8]}", f"event.port.host-{uuid.uuid4().hex[:8]}"
    gate, gated_arrived = asyncio.Event(), asyncio.Event()

    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("gated"):
            gated_arrived.set()
            await gate.wait()
        return payload

    events: asyncio.Queue[Envelope] = asyncio.Queue()

    async def on_event(envelope: Envelope) -> None:
        events.put_nowait(envelope)

    await server.serve(target, {"echo": echo})
    await agent.subscribe(topic, on_event)
    assert await agent.call(target, "echo", {"n": 0}, timeout=WAIT) == {"n": 0}

    pending = asyncio.create_task(agent.call(target, "echo", {"gated": True}, timeout=30))
    try:
        await asyncio.wait_for(gated_arrived.wait(), WAIT)

        closed = await asyncio.to_thread(broker_admin.close_connections, rabbitmq_vhost)
        assert closed >= 2, "both buses' connections should have been on the vhost"

        # The reply queue of the pending call died with the connection: the caller hears so at once.
        with pytest.raises(BusUnavailable):
            await asyncio.wait_for(pending, WAIT)

        assert await call_until_it_works(agent, target, {"n": 1}) == {"n": 1}
        assert server.connected and agent.connected

        # The subscription (an exclusive queue, deleted by the broker) was re-declared and re-bound.
        await server.publish(topic, {"after": "reconnect"})
        envelope = await asyncio.wait_for(events.get(), WAIT)
        assert dict(envelope.payload) == {"after": "reconnect"}
    finally:
        gate.set()
        if not pending.done():
            pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)


async def test_calls_made_while_the_broker_refuses_us_and_a_close_log_no_error(
    rabbitmq_vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls waiting for a connection that keeps failing used to leave failed futures nobody awaited:
    asyncio logged "Future exception was never retrieved" for each, at close or when collected."""
    user = BrokerUser(vhost=rabbitmq_vhost)
    await asyncio.to_thread(user.create)
    bus = build_bus(user.url(reconnect_interval="0.2"), sender="agent-refused")
    assert isinstance(bus, AmqpBus)
    try:
        await bus.start()
        await asyncio.to_thread(user.allow, False)  # reconnection attempts are refused from now on
        assert await asyncio.to_thread(user.close_connections) == 1
        async with asyncio.timeout(RECOVERY_DEADLINE):
            while bus.connected:
                await asyncio.sleep(0.05)
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            calls = [asyncio.create_task(bus.call("nobody", "echo", {"n": n}, timeout=2.0)) for n in range(5)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, BusUnavailable) for r in results), results
            await bus.close()
            del calls, results
            gc.collect()
            await asyncio.sleep(0)
        noise = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert noise == []
        assert any("lost the broker connection" in r.getMessage() for r in caplog.records)  # it was lost meanwhile
    finally:
        await bus.close()
        await asyncio.to_thread(user.delete)

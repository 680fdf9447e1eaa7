"""The bus contract, run against every transport (in-process and RabbitMQ) by the ``rig`` fixture.

Whatever a test here asserts, code above the bus may rely on under both transports.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusTimeout, BusUnavailable, RemoteError

if TYPE_CHECKING:
    from conftest import BusRig

pytestmark = pytest.mark.asyncio(loop_scope="function")

WAIT = 5.0  # upper bound for a condition that should hold within milliseconds


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Inbox:
    """Collects the events a handler receives, so a test can wait for the next one."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self._arrived: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        self._arrived.put_nowait(envelope)

    async def next(self) -> Envelope:
        return await asyncio.wait_for(self._arrived.get(), WAIT)

    def payloads(self) -> list[dict[str, Any]]:
        return [dict(envelope.payload) for envelope in self.envelopes]


# ---- events -----------------------------------------------------------------------------------------


async def test_every_subscriber_of_a_topic_receives_each_event(rig: BusRig) -> None:
    server = await rig.make_bus("server")
    agent_a, agent_b = await rig.make_bus("agent-a"), await rig.make_bus("agent-b")
    topic = f"event.port.{unique('host')}"
    inbox_a, inbox_b = Inbox(), Inbox()
    await agent_a.subscribe(topic, inbox_a.handler)
    await agent_b.subscribe(topic, inbox_b.handler)

    await server.publish(topic, {"resource": "port", "id": "p1", "revision": 3, "op": "update"})

    for inbox in (inbox_a, inbox_b):
        envelope = await inbox.next()
        assert envelope.kind == "event"
        assert envelope.topic == topic
        assert envelope.sender == "server"
        assert envelope.sent_at == rig.now
        assert dict(envelope.payload) == {"resource": "port", "id": "p1", "revision": 3, "op": "update"}


async def test_events_reach_only_subscriptions_whose_pattern_matches(rig: BusRig) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    host_a, host_b = unique("host-a"), unique("host-b")
    exact_a, exact_b, any_resource_a, everything = Inbox(), Inbox(), Inbox(), Inbox()
    await agent.subscribe(f"event.port.{host_a}", exact_a.handler)
    await agent.subscribe(f"event.port.{host_b}", exact_b.handler)
    await agent.subscribe(f"event.*.{host_a}", any_resource_a.handler)
    await agent.subscribe("event.#", everything.handler)

    await server.publish(f"event.port.{host_a}", {"n": 1})
    await server.publish(f"event.port.{host_b}", {"n": 2})
    await server.publish(f"event.network.{host_a}", {"n": 3})
    # Per-queue order is preserved, so by the time a later event arrives an earlier one would have too.
    await server.publish(f"event.port.{host_a}", {"n": 4})
    await server.publish(f"event.port.{host_b}", {"n": 5})

    for inbox, expected in (
        (exact_a, [1, 4]),
        (exact_b, [2, 5]),
        (any_resource_a, [1, 3, 4]),
        (everything, [1, 2, 3, 4, 5]),
    ):
        for _ in expected:
            await inbox.next()
        assert [payload["n"] for payload in inbox.payloads()] == expected


async def test_subscribers_of_one_named_queue_compete_for_its_events(rig: BusRig) -> None:
    server = await rig.make_bus("server")
    worker_1, worker_2 = await rig.make_bus("worker-1"), await rig.make_bus("worker-2")
    topic, queue = f"event.router.{unique('h')}", unique("neutrino-test-queue")
    received: list[int] = []
    all_in = asyncio.Event()
    seen_by: dict[str, int] = {"worker-1": 0, "worker-2": 0}

    def handler_for(name: str):
        async def handler(envelope: Envelope) -> None:
            received.append(envelope.payload["n"])
            seen_by[name] += 1
            if len(received) >= 10:
                all_in.set()

        return handler

    await worker_1.subscribe(topic, handler_for("worker-1"), queue=queue)
    await worker_2.subscribe(topic, handler_for("worker-2"), queue=queue)
    for n in range(10):
        await server.publish(topic, {"n": n})

    await asyncio.wait_for(all_in.wait(), WAIT)
    assert sorted(received) == list(range(10)), "each event goes to exactly one competing consumer"
    assert seen_by["worker-1"] > 0 and seen_by["worker-2"] > 0


async def test_cancelled_subscription_receives_nothing_more(rig: BusRig) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    topic = f"event.port.{unique('h')}"
    cancelled, staying = Inbox(), Inbox()
    subscription = await agent.subscribe(topic, cancelled.handler)
    await agent.subscribe(topic, staying.handler)

    await server.publish(topic, {"n": 1})
    await cancelled.next()
    await subscription.cancel()
    await server.publish(topic, {"n": 2})
    await staying.next()
    await staying.next()

    assert [p["n"] for p in cancelled.payloads()] == [1]
    assert [p["n"] for p in staying.payloads()] == [1, 2]


# ---- rpc --------------------------------------------------------------------------------------------


async def test_call_returns_the_handlers_reply(rig: BusRig) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    target = unique("server")
    seen: list[dict[str, Any]] = []

    async def report_state(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(payload)
        return {"accepted": True, "host": payload["host"]}

    await server.serve(target, {"report_state": report_state})

    reply = await agent.call(target, "report_state", {"host": "compute-1", "load": 2}, timeout=WAIT)

    assert reply == {"accepted": True, "host": "compute-1"}
    assert seen == [{"host": "compute-1", "load": 2}]


async def test_handler_exception_reaches_the_caller_as_remote_error(rig: BusRig) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    target = unique("server")

    async def get_devices_details(payload: dict[str, Any]) -> dict[str, Any]:
        raise LookupError(f"no port {payload['device']}")

    await server.serve(target, {"get_devices_details": get_devices_details})

    with pytest.raises(RemoteError) as caught:
        await agent.call(target, "get_devices_details", {"device": "tap1234"}, timeout=WAIT)
    assert (caught.value.type, caught.value.message) == ("LookupError", "no port tap1234")

    with pytest.raises(RemoteError) as unknown:
        await agent.call(target, "no_such_method", {}, timeout=WAIT)
    assert unknown.value.type == "UnknownMethod"


async def test_call_without_a_reply_in_time_raises_bus_timeout(rig: BusRig) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    target = unique("server")
    release = asyncio.Event()

    async def stuck(payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {}

    await server.serve(target, {"sync_state": stuck})
    try:
        with pytest.raises(BusTimeout) as caught:
            await agent.call(target, "sync_state", {"host": "h", "role": "l2"}, timeout=0.3)
        assert (caught.value.target, caught.value.method) == (target, "sync_state")
    finally:
        release.set()


async def test_call_to_a_target_nobody_serves_fails_with_bus_unavailable(rig: BusRig) -> None:
    agent = await rig.make_bus("agent")

    with pytest.raises(BusUnavailable):
        await agent.call(unique("agent.nowhere.l2"), "sync_state", {}, timeout=WAIT)


async def test_concurrent_calls_each_get_their_own_reply(rig: BusRig) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    target = unique("server")
    count = 12
    arrived: set[int] = set()
    all_arrived = asyncio.Event()
    releases = {n: asyncio.Event() for n in range(count)}

    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        n = payload["n"]
        arrived.add(n)
        if len(arrived) == count:
            all_arrived.set()
        await releases[n].wait()
        return {"n": n, "square": n * n}

    await server.serve(target, {"echo": echo})
    calls = [asyncio.create_task(agent.call(target, "echo", {"n": n}, timeout=WAIT)) for n in range(count)]
    try:
        await asyncio.wait_for(all_arrived.wait(), WAIT)  # all requests are in flight together
        for n in reversed(range(count)):  # answer in the opposite order to the questions
            releases[n].set()
        replies = await asyncio.gather(*calls)
    finally:
        for event in releases.values():
            event.set()
        await asyncio.gather(*calls, return_exceptions=True)

    assert replies == [{"n": n, "square": n * n} for n in range(count)]


# ---- versioning -------------------------------------------------------------------------------------


def future_envelope(**fields: Any) -> bytes:
    """What a peer speaking envelope version 2 might send."""
    return orjson.dumps({"v": 2, "id": "from-the-future", "sent_at": 1.0, "sender": "newer", **fields})


async def test_event_from_a_future_envelope_version_is_refused_not_misread(
    rig: BusRig, caplog: pytest.LogCaptureFixture
) -> None:
    server, agent = await rig.make_bus("server"), await rig.make_bus("agent")
    topic = f"event.port.{unique('h')}"
    inbox = Inbox()
    await agent.subscribe(topic, inbox.handler)

    await rig.raw.publish_event(topic, future_envelope(kind="event", topic=topic, payload={"n": 1}))
    await server.publish(topic, {"n": 2})
    await inbox.next()

    assert [p["n"] for p in inbox.payloads()] == [2]
    assert any("envelope version 2" in record.getMessage() for record in caplog.records)


async def test_request_from_a_future_envelope_version_is_answered_with_a_version_error(rig: BusRig) -> None:
    server = await rig.make_bus("server")
    target = unique("server")
    calls: list[dict[str, Any]] = []

    async def report_state(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        return {}

    await server.serve(target, {"report_state": report_state})

    body = await rig.raw.request(
        target, future_envelope(kind="request", method="report_state", payload={"host": "h"}), WAIT
    )

    answer = Envelope.decode(body)
    assert answer.kind == "error"
    assert answer.id == "from-the-future"
    assert answer.payload["type"] == "BusVersionError"
    assert calls == [], "the handler must not run on a message it cannot read"

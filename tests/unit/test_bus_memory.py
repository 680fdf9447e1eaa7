"""Pure parts of the bus (envelope, topic matching, reply reading) and what is specific to the
in-process transport. The behaviour shared with RabbitMQ is in tests/bus/test_bus_contract.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import pytest_asyncio

from neutrino.bus.amqp import AmqpBus
from neutrino.bus.delivery import read_reply
from neutrino.bus.envelope import PROTOCOL_VERSION, Envelope
from neutrino.bus.errors import BusUnavailable, BusVersionError, MalformedEnvelope, RemoteError
from neutrino.bus.factory import build_bus
from neutrino.bus.memory import MemoryBroker, MemoryBus
from neutrino.bus.topics import event_topic, topic_matches

# Async tests run in a loop of their own, the same one the make_bus fixture builds its buses in.
in_test_loop = pytest.mark.asyncio(loop_scope="function")

WAIT = 5.0


def wire(**fields: Any) -> bytes:
    return orjson.dumps(fields)


# ---- envelope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [
        Envelope.event("event.port.h1", {"id": "p"}, id="e1", sent_at=1.5, sender="server"),
        Envelope.request("sync_state", {"host": "h1", "role": "l2"}, id="r1", sent_at=2.0, sender="agent"),
    ],
)
def test_envelope_survives_the_wire_unchanged(envelope: Envelope) -> None:
    assert Envelope.decode(envelope.encode()) == envelope


def test_reply_and_error_repeat_the_id_and_method_of_their_request() -> None:
    request = Envelope.request("report_state", {}, id="r1", sent_at=1.0, sender="agent")

    reply = Envelope.decode(request.reply({"ok": True}, sent_at=2.0, sender="server").encode())
    error = Envelope.decode(request.error("ValueError", "bad", sent_at=2.0, sender="server").encode())

    assert (reply.kind, reply.id, reply.method, dict(reply.payload)) == (
        "reply",
        "r1",
        "report_state",
        {"ok": True},
    )
    assert (error.kind, error.id, error.method) == ("error", "r1", "report_state")
    assert dict(error.payload) == {"type": "ValueError", "message": "bad"}


def test_wire_form_is_the_documented_json_object() -> None:
    body = Envelope.event("event.network.all", {"op": "delete"}, id="e9", sent_at=3.25, sender="s").encode()

    assert orjson.loads(body) == {
        "v": 1,
        "kind": "event",
        "id": "e9",
        "topic": "event.network.all",
        "payload": {"op": "delete"},
        "sent_at": 3.25,
        "sender": "s",
    }


@pytest.mark.parametrize("version", [2, 0, "1", True, None])
def test_another_envelope_version_is_refused_before_anything_else_is_read(version: object) -> None:
    # Even a shape this process would call malformed is reported as a version problem first.
    body = wire(v=version, kind="telegram", body="whatever")

    with pytest.raises(BusVersionError) as caught:
        Envelope.decode(body)

    assert caught.value.version == version
    assert caught.value.supported == PROTOCOL_VERSION
    assert f"envelope version {version!r}" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        wire(kind="event", id="x", topic="t", payload={}, sent_at=1, sender="s"),  # no version at all
        wire(v=1, kind="event", id="x", payload={}, sent_at=1, sender="s"),  # event without topic
        wire(
            v=1, kind="request", id="x", topic="t", payload={}, sent_at=1, sender="s"
        ),  # request without method
        wire(v=1, kind="poke", id="x", method="m", payload={}, sent_at=1, sender="s"),
        wire(v=1, kind="request", id="x", method="m", payload=[1], sent_at=1, sender="s"),
        wire(v=1, kind="error", id="x", method="m", payload={"oops": 1}, sent_at=1, sender="s"),
        wire(v=1, kind="request", id="", method="m", payload={}, sent_at=1, sender="s"),
        wire(v=1, kind="request", method="m", payload={}, sent_at=1, sender="s"),
    ],
)
def test_malformed_messages_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        Envelope.decode(body)


def test_unknown_envelope_fields_of_the_same_version_are_ignored() -> None:
    body = wire(v=1, kind="request", id="x", method="m", payload={}, sent_at=1, sender="s", trace="abc")

    assert Envelope.decode(body).method == "m"


def test_an_envelope_of_another_version_cannot_be_built() -> None:
    with pytest.raises(BusVersionError):
        Envelope("event", "e1", {}, 1.0, "s", topic="t", v=2)


def test_a_payload_that_is_not_json_fails_at_the_sender() -> None:
    envelope = Envelope.event("event.port.h", {"when": object()}, id="e", sent_at=1.0, sender="s")

    with pytest.raises(TypeError):
        envelope.encode()


# ---- reading replies ----------------------------------------------------------------------------------


def test_reading_a_reply_gives_its_payload_or_raises_what_it_stands_for() -> None:
    request = Envelope.request("m", {}, id="r", sent_at=1.0, sender="a")

    assert read_reply(request.reply({"x": 1}, sent_at=1.0, sender="b").encode()) == {"x": 1}
    with pytest.raises(RemoteError) as caught:
        read_reply(
            request.error("PortNotFound", "Port p could not be found.", sent_at=1.0, sender="b").encode()
        )
    assert (caught.value.type, caught.value.message) == ("PortNotFound", "Port p could not be found.")
    with pytest.raises(BusVersionError):
        read_reply(wire(v=2, kind="reply", id="r", method="m", payload={}, sent_at=1, sender="b"))


# ---- topics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("event.port.h1", "event.port.h1", True),
        ("event.port.h1", "event.port.h2", False),
        ("event.*.h1", "event.network.h1", True),
        ("event.*.h1", "event.network.h1.example", False),
        ("event.#", "event", True),
        ("event.#", "event.port.h1.example.org", True),
        ("#", "anything.at.all", True),
        ("event.#.all", "event.port.all", True),
        ("event.#.all", "event.all", True),
        ("event.#.all", "event.port.h1", False),
        ("*.port.*", "event.port.h1", True),
        ("*", "event.port", False),
    ],
)
def test_topic_patterns_follow_amqp_topic_exchange_rules(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_event_topics_name_resource_and_host_or_all() -> None:
    assert event_topic("port", "compute-1") == "event.port.compute-1"
    assert event_topic("network") == "event.network.all"
    with pytest.raises(ValueError):
        event_topic("port.binding", "h")


# ---- the in-process transport -------------------------------------------------------------------------


MakeBus = Callable[[str], Awaitable[MemoryBus]]


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest_asyncio.fixture(loop_scope="function")
async def make_bus(broker: MemoryBroker) -> AsyncIterator[MakeBus]:
    buses: list[MemoryBus] = []

    async def make(sender: str) -> MemoryBus:
        bus = MemoryBus(broker, sender=sender)
        buses.append(bus)
        await bus.start()
        return bus

    try:
        yield make
    finally:
        for bus in buses:
            await bus.close()


@in_test_loop
async def test_named_queue_keeps_events_until_someone_subscribes(make_bus: MakeBus) -> None:
    server, agent = await make_bus("server"), await make_bus("agent")
    first = await agent.subscribe("event.port.h1", _ignore, queue="l2-h1")
    await first.cancel()  # the queue and its binding outlive the subscriber

    await server.publish("event.port.h1", {"n": 1})
    await server.publish("event.port.h1", {"n": 2})
    received: asyncio.Queue[int] = asyncio.Queue()

    async def record(envelope: Envelope) -> None:
        received.put_nowait(envelope.payload["n"])

    await agent.subscribe("event.port.h1", record, queue="l2-h1")

    assert [await asyncio.wait_for(received.get(), WAIT) for _ in range(2)] == [1, 2]


@in_test_loop
async def test_events_a_cancelled_competing_consumer_had_not_finished_go_to_the_others(
    make_bus: MakeBus,
) -> None:
    server, slow, fast = await make_bus("server"), await make_bus("slow"), await make_bus("fast")
    started, never = asyncio.Event(), asyncio.Event()
    fast_seen: list[int] = []
    fast_got_all = asyncio.Event()

    async def stuck(envelope: Envelope) -> None:
        started.set()
        await never.wait()

    async def record(envelope: Envelope) -> None:
        fast_seen.append(envelope.payload["n"])
        if len(fast_seen) == 3:
            fast_got_all.set()

    slow_subscription = await slow.subscribe("event.router.#", stuck, queue="l3")
    await fast.subscribe("event.router.#", record, queue="l3")
    for n in range(3):  # round robin: 0 -> slow (stuck on it), 1 -> fast, 2 -> slow's inbox
        await server.publish("event.router.all", {"n": n})
    await asyncio.wait_for(started.wait(), WAIT)

    await slow_subscription.cancel()

    await asyncio.wait_for(fast_got_all.wait(), WAIT)
    assert sorted(fast_seen) == [0, 1, 2]


@in_test_loop
async def test_a_handler_may_cancel_its_own_subscription_and_still_finish(make_bus: MakeBus) -> None:
    server, agent = await make_bus("server"), await make_bus("agent")
    finished: list[int] = []
    other: asyncio.Queue[int] = asyncio.Queue()
    holder: dict[str, Any] = {}

    async def one_shot(envelope: Envelope) -> None:
        await holder["subscription"].cancel()
        finished.append(envelope.payload["n"])

    async def witness(envelope: Envelope) -> None:
        other.put_nowait(envelope.payload["n"])

    holder["subscription"] = await agent.subscribe("event.port.h", one_shot)
    await agent.subscribe("event.port.h", witness)
    await server.publish("event.port.h", {"n": 1})
    await server.publish("event.port.h", {"n": 2})

    assert [await asyncio.wait_for(other.get(), WAIT) for _ in range(2)] == [1, 2]
    assert finished == [1]


@in_test_loop
async def test_requests_to_a_target_served_twice_are_shared_between_the_servers(make_bus: MakeBus) -> None:
    one, two, agent = await make_bus("server-1"), await make_bus("server-2"), await make_bus("agent")

    def who(name: str):
        async def handler(payload: dict[str, Any]) -> dict[str, Any]:
            return {"by": name}

        return handler

    await one.serve("server", {"whoami": who("server-1")})
    await two.serve("server", {"whoami": who("server-2")})

    answers = [(await agent.call("server", "whoami", {}, timeout=WAIT))["by"] for _ in range(4)]

    assert sorted(answers) == ["server-1", "server-1", "server-2", "server-2"]


@in_test_loop
async def test_a_bus_serves_a_target_only_once_at_a_time(make_bus: MakeBus) -> None:
    server = await make_bus("server")
    endpoint = await server.serve("server", {})

    with pytest.raises(ValueError):
        await server.serve("server", {})
    await endpoint.cancel()
    await server.serve("server", {})


@in_test_loop
async def test_handler_results_none_and_non_mappings(make_bus: MakeBus) -> None:
    server, agent = await make_bus("server"), await make_bus("agent")

    async def nothing(payload: dict[str, Any]) -> None:
        return None

    async def a_list(payload: dict[str, Any]) -> Any:
        return [1, 2]

    await server.serve("server", {"update_device_up": nothing, "bad": a_list})

    assert await agent.call("server", "update_device_up", {"device": "tap1"}, timeout=WAIT) == {}
    with pytest.raises(RemoteError) as caught:
        await agent.call("server", "bad", {}, timeout=WAIT)
    assert caught.value.type == "TypeError"


@in_test_loop
async def test_closing_the_caller_fails_its_pending_calls(make_bus: MakeBus) -> None:
    server, agent = await make_bus("server"), await make_bus("agent")
    arrived, never = asyncio.Event(), asyncio.Event()

    async def stuck(payload: dict[str, Any]) -> dict[str, Any]:
        arrived.set()
        await never.wait()
        return {}

    await server.serve("server", {"sync_state": stuck})
    pending = asyncio.create_task(agent.call("server", "sync_state", {}, timeout=30))
    await asyncio.wait_for(arrived.wait(), WAIT)

    await agent.close()

    with pytest.raises(BusUnavailable):
        await asyncio.wait_for(pending, WAIT)


@in_test_loop
async def test_a_server_closing_mid_request_fails_the_call(make_bus: MakeBus) -> None:
    server, agent = await make_bus("server"), await make_bus("agent")
    arrived, never = asyncio.Event(), asyncio.Event()

    async def stuck(payload: dict[str, Any]) -> dict[str, Any]:
        arrived.set()
        await never.wait()
        return {}

    await server.serve("server", {"sync_state": stuck})
    pending = asyncio.create_task(agent.call("server", "sync_state", {}, timeout=30))
    await asyncio.wait_for(arrived.wait(), WAIT)

    await server.close()

    with pytest.raises(BusUnavailable):
        await asyncio.wait_for(pending, WAIT)


@in_test_loop
async def test_a_bus_refuses_work_before_start_and_after_close(broker: MemoryBroker) -> None:
    bus = MemoryBus(broker, sender="s")
    with pytest.raises(BusUnavailable):
        await bus.publish("event.port.h", {})
    await bus.start()
    await bus.close()
    with pytest.raises(BusUnavailable):
        await bus.call("server", "m", {}, timeout=1)
    with pytest.raises(BusUnavailable):
        await bus.start()


@in_test_loop
async def test_publishing_a_wildcard_topic_is_refused(make_bus: MakeBus) -> None:
    server = await make_bus("server")

    with pytest.raises(ValueError):
        await server.publish("event.*.h1", {})


@in_test_loop
async def test_an_event_handler_failure_is_logged_and_later_events_still_arrive(
    make_bus: MakeBus, caplog: pytest.LogCaptureFixture
) -> None:
    server, agent = await make_bus("server"), await make_bus("agent")
    handled: asyncio.Queue[int] = asyncio.Queue()

    async def fragile(envelope: Envelope) -> None:
        if envelope.payload["n"] == 1:
            raise RuntimeError("boom")
        handled.put_nowait(envelope.payload["n"])

    await agent.subscribe("event.port.h", fragile)
    await server.publish("event.port.h", {"n": 1})
    await server.publish("event.port.h", {"n": 2})

    assert await asyncio.wait_for(handled.get(), WAIT) == 2
    assert any("handler failed" in record.getMessage() for record in caplog.records)


@in_test_loop
async def test_build_bus_picks_the_transport_from_the_url(broker: MemoryBroker) -> None:
    memory = build_bus("memory://", sender="server", broker=broker)
    amqp = build_bus("amqp://guest:guest@127.0.0.1:5672/", sender="server")

    assert isinstance(memory, MemoryBus) and memory.broker is broker
    assert isinstance(amqp, AmqpBus) and not amqp.connected
    with pytest.raises(ValueError):
        build_bus("kafka://somewhere", sender="server")
    with pytest.raises(ValueError):
        build_bus("memory://", sender="")


async def _ignore(envelope: Envelope) -> None:
    return None


@in_test_loop
async def test_an_unreachable_broker_fails_start_with_bus_unavailable_without_the_password() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    bus = build_bus("amqp://neutrino:s3cret@127.0.0.1:1/", sender="agent")

    with pytest.raises(BusUnavailable) as caught:
        await bus.start()

    assert "s3cret" not in str(caught.value)
    with pytest.raises(BusUnavailable):
        await bus.publish("event.port.h", {})

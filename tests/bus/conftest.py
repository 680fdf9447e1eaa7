"""Fixtures for the bus behaviour suite: one rig per transport, and a private RabbitMQ vhost.

The AMQP tests use the machine's shared RabbitMQ but only inside a vhost they create with a unique
name and delete afterwards, so other users of the broker see nothing. Broker administration goes
through the management HTTP API when it is enabled, else through ``rabbitmqctl``. Nothing here ever
restarts the broker: the reconnect test closes *our* connections from the broker side instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import aio_pika
import httpx
import pytest
import pytest_asyncio
from yarl import URL

from neutrino.bus.amqp import EVENTS_EXCHANGE, RPC_EXCHANGE
from neutrino.bus.factory import build_bus
from neutrino.bus.interface import Bus
from neutrino.bus.memory import MemoryBroker

BROKER_URL = os.environ.get("NEUTRINO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MANAGEMENT_URL = os.environ.get("NEUTRINO_TEST_RABBITMQ_MANAGEMENT", "http://127.0.0.1:15672")

# Fixed clock for envelopes, so tests can assert sent_at exactly.
FIXED_NOW = 1_718_000_000.5


class BrokerAdmin:
    """Creates/deletes vhosts and closes connections on the shared broker, scoped to one vhost."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self._http: httpx.Client | None = None
        try:
            client = httpx.Client(base_url=MANAGEMENT_URL, auth=(user, password), timeout=5)
            if client.get("/api/overview").status_code == 200:
                self._http = client
            else:
                client.close()
        except httpx.HTTPError:
            self._http = None
        if self._http is None and shutil.which("rabbitmqctl") is None:
            pytest.skip("neither the RabbitMQ management API nor rabbitmqctl is available to make a vhost")

    @property
    def via(self) -> str:
        return "management-api" if self._http is not None else "rabbitmqctl"

    def add_vhost(self, vhost: str) -> None:
        if self._http is not None:
            self._http.put(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
            self._http.put(
                f"/api/permissions/{quote(vhost, safe='')}/{quote(self.user, safe='')}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
            return
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        if self._http is not None:
            self._http.delete(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
            self._http.close()
            return
        _rabbitmqctl("delete_vhost", vhost)

    def close_connections(self, vhost: str) -> int:
        """Force-close every client connection on ``vhost`` (as a broker restart would); returns how many."""
        if self._http is not None:
            listing = self._http.get(f"/api/vhosts/{quote(vhost, safe='')}/connections")
            listing.raise_for_status()
            names = [entry["name"] for entry in listing.json()]
            for name in names:
                self._http.delete(
                    f"/api/connections/{quote(name, safe='')}", headers={"X-Reason": "neutrino bus test"}
                )
            return len(names)
        listing = _rabbitmqctl("list_connections", "--no-table-headers", "pid", "vhost")
        pids = [
            line.split("\t")[0]
            for line in listing.splitlines()
            if "\t" in line and line.split("\t")[1] == vhost
        ]
        for pid in pids:
            _rabbitmqctl("close_connection", pid, "neutrino bus test")
        return len(pids)


def _rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip() or result.stdout}")
    return result.stdout


def _broker_listening(url: str) -> bool:
    parsed = URL(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5672), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker_admin() -> BrokerAdmin:
    if not _broker_listening(BROKER_URL):
        pytest.skip(f"RabbitMQ is not listening at {URL(BROKER_URL).with_password('***')}")
    parsed = URL(BROKER_URL)
    return BrokerAdmin(parsed.user or "guest", parsed.password or "guest")


@pytest.fixture(scope="session")
def rabbitmq_vhost(broker_admin: BrokerAdmin) -> Iterator[str]:
    """A vhost of our own for the whole run, deleted (with everything in it) at the end, even on failure."""
    vhost = f"neutrino-bus-test-{uuid.uuid4().hex[:12]}"
    try:
        broker_admin.add_vhost(vhost)
        yield vhost
    finally:
        broker_admin.delete_vhost(vhost)


def vhost_url(vhost: str, **query: str) -> str:
    return str(URL(BROKER_URL).with_path("/" + vhost).with_query(query or None))


@pytest.fixture
def rabbitmq_url(rabbitmq_vhost: str) -> Callable[..., str]:
    """Builds broker URLs on this run's vhost; keyword arguments become query options."""

    def url(**query: str) -> str:
        return vhost_url(rabbitmq_vhost, **query)

    return url


# ---- the rig: make buses of one transport, and speak raw bytes on it like a foreign peer ---------


@dataclass
class RawPeer:
    """Sends hand-made bytes onto the bus, as a process speaking another envelope version would."""

    publish_event: Callable[[str, bytes], Awaitable[None]]
    request: Callable[[str, bytes, float], Awaitable[bytes]]


@dataclass
class BusRig:
    transport: str
    make_bus: Callable[[str], Awaitable[Bus]]
    raw: RawPeer
    now: float = FIXED_NOW
    buses: list[Bus] = field(default_factory=list)


def _memory_peer(broker: MemoryBroker) -> RawPeer:
    async def publish_event(topic: str, body: bytes) -> None:
        broker.publish_event(topic, body)

    async def request(target: str, body: bytes, timeout: float) -> bytes:
        return await asyncio.wait_for(broker.submit_request(target, body), timeout)

    return RawPeer(publish_event, request)


def _amqp_peer(url: str, connections: list[aio_pika.abc.AbstractConnection]) -> RawPeer:
    async def channel() -> aio_pika.abc.AbstractChannel:
        connection = await aio_pika.connect(url)
        connections.append(connection)
        return await connection.channel()

    async def publish_event(topic: str, body: bytes) -> None:
        ch = await channel()
        exchange = await ch.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(aio_pika.Message(body), routing_key=topic)

    async def request(target: str, body: bytes, timeout: float) -> bytes:
        ch = await channel()
        exchange = await ch.declare_exchange(RPC_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        replies = await ch.declare_queue(exclusive=True)
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            if not answer.done():
                answer.set_result(message.body)

        await replies.consume(on_reply, no_ack=True)
        await exchange.publish(
            aio_pika.Message(body, reply_to=replies.name, correlation_id="raw-1"),
            routing_key=target,
            mandatory=True,
        )
        return await asyncio.wait_for(answer, timeout)

    return RawPeer(publish_event, request)


# Function loop on both sides: the buses' tasks must live in the loop the test itself runs in.
@pytest_asyncio.fixture(
    loop_scope="function", params=["memory", pytest.param("amqp", marks=pytest.mark.rabbitmq)]
)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[BusRig]:
    """Buses of one transport (each test runs once per transport); all closed at the end, even on failure."""
    buses: list[Bus] = []
    raw_connections: list[aio_pika.abc.AbstractConnection] = []
    if request.param == "memory":
        broker = MemoryBroker()
        url = "memory://"
        raw = _memory_peer(broker)
    else:
        broker = None
        url = vhost_url(request.getfixturevalue("rabbitmq_vhost"))
        raw = _amqp_peer(url, raw_connections)

    async def make_bus(sender: str) -> Bus:
        bus = build_bus(url, sender=sender, broker=broker, clock=lambda: FIXED_NOW)
        buses.append(bus)
        await bus.start()
        return bus

    try:
        yield BusRig(transport=request.param, make_bus=make_bus, raw=raw, buses=buses)
    finally:
        for bus in buses:
            await bus.close()
        for connection in raw_connections:
            await connection.close()

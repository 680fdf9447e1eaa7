"""When an agent resyncs in full to recover lost events: on a new server start (heard in a heartbeat
reply or announced on ``event.server.all``), not on heartbeats that merely time out (it backs off),
after a random delay within the window the server sized (no resync storm). The broker side (a
dropped connection) is in tests/api/test_agent_reconnect.py, against a real RabbitMQ."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from neutrino.agent.process import AgentProcess
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.factory import build_bus
from neutrino.bus.memory import MemoryBroker
from neutrino.contract.rpc import SERVER_STARTED_TOPIC, SERVER_TARGET, server_news


class CountingRole:
    name, agent_type, binary, topic = "l2", "Linux bridge agent", "neutrino-linuxbridge-agent", "N/A"

    def __init__(self, rpc: AgentRpcClient | None = None) -> None:
        self.rpc = rpc
        self.resyncs = 0  # that got through

    def configurations(self) -> Mapping[str, Any]:
        return {}

    async def start(self) -> None:
        pass

    async def resync(self) -> None:
        if self.rpc is not None:
            await self.rpc.sync_state(self.name)
        self.resyncs += 1

    async def on_event(self, envelope: Envelope) -> None:
        pass

    async def stop(self) -> None:
        pass


async def _until(check: Any) -> None:
    async with asyncio.timeout(30):
        while not check():
            await asyncio.sleep(0.01)


class Rig:
    """An agent on the in-process bus and a server stand-in whose epoch and speed the test sets."""

    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.agent_bus = build_bus("memory://", sender="agent.h1", broker=self.broker)
        self.server_bus = build_bus("memory://", sender="server", broker=self.broker)
        rpc = AgentRpcClient(self.agent_bus, "h1", timeout=0.1)
        self.role = CountingRole(rpc)
        self.epoch = "e1"
        self.reports: list[dict[str, Any]] = []
        self.answering = asyncio.Event()
        self.answering.set()
        self.agent = AgentProcess("h1", self.agent_bus, rpc, [self.role], report_interval=0.05, resync_interval=3600, rng=random.Random(7))

    async def report_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.reports.append(payload)
        await self.answering.wait()
        return {"status": "alive", **server_news(self.epoch, 0.05)}

    async def sync_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def serve(self) -> None:
        await self.server_bus.serve(SERVER_TARGET, {"report_state": self.report_state, "sync_state": self.sync_state})

    async def more_heartbeats(self, count: int = 3) -> None:
        seen = len(self.reports)
        await _until(lambda: len(self.reports) >= seen + count)

    async def __aenter__(self) -> Rig:
        await self.agent_bus.start()
        await self.server_bus.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.answering.set()
        await self.agent.stop()
        await self.agent_bus.close()
        await self.server_bus.close()


def test_a_new_server_start_brings_one_full_resync() -> None:
    async def run() -> None:
        async with Rig() as rig:
            await rig.serve()
            await rig.agent.start()
            await rig.more_heartbeats()
            assert (rig.agent.recovery_resyncs, rig.role.resyncs) == (0, 1)  # only the one at start
            assert rig.agent.resync_window == 0.05  # as the server sized it

            rig.epoch = "e2"  # the server restarted: the next heartbeat reply says so
            await _until(lambda: rig.agent.recovery_resyncs == 1 and rig.role.resyncs == 2)
            await rig.more_heartbeats()
            assert (rig.agent.recovery_resyncs, rig.role.resyncs) == (1, 2)

            # A start announced on the all-hosts topic brings one resync without waiting for a heartbeat.
            await rig.server_bus.publish(SERVER_STARTED_TOPIC, server_news("e3", 0.05))
            await _until(lambda: rig.agent.recovery_resyncs == 2 and rig.role.resyncs == 3)
            rig.epoch = "e3"
            await rig.more_heartbeats()
            assert (rig.agent.recovery_resyncs, rig.role.resyncs) == (2, 3)

    asyncio.run(run())


def test_a_server_that_was_never_reached_brings_the_sync_that_failed_at_start() -> None:
    async def run() -> None:
        async with Rig() as rig:
            await rig.agent.start()
            await _until(lambda: rig.agent.heartbeat_failures >= 2)  # nobody serves yet
            assert rig.role.resyncs == 0
            await rig.serve()  # its first heartbeat reply names its start: news to the role not synced
            await _until(lambda: rig.role.resyncs == 1)
            assert rig.agent.recovery_resyncs == 1

    asyncio.run(run())


def test_heartbeats_that_time_out_back_off_and_bring_no_resync() -> None:
    async def run() -> None:
        async with Rig() as rig:
            await rig.serve()
            await rig.agent.start()
            await rig.more_heartbeats()
            rig.answering.clear()  # a server too busy to answer within the heartbeat's timeout
            await _until(lambda: rig.agent.heartbeat_timeouts >= 3)
            rig.answering.set()  # the same server (same epoch) catches up
            await rig.more_heartbeats(5)
            assert rig.agent.heartbeat_timeouts >= 3
            assert (rig.agent.recovery_resyncs, rig.role.resyncs) == (0, 1)

    asyncio.run(run())


def test_each_timeout_doubles_the_wait_for_the_next_reply_up_to_one_report_interval() -> None:
    bus = build_bus("memory://", sender="agent.h1", broker=MemoryBroker())
    agent = AgentProcess("h1", bus, AgentRpcClient(bus, "h1", timeout=30), [], report_interval=30.0)
    assert [agent.heartbeat_timeout(k) for k in range(4)] == [10.0, 20.0, 30.0, 30.0]


def test_the_recovery_delay_stays_within_one_report_interval_and_spreads() -> None:
    agent = AgentProcess("h1", None, None, [], report_interval=30.0, rng=random.Random(1))  # type: ignore[arg-type]
    delays = [agent.recovery_delay() for _ in range(1000)]
    assert all(0 <= d <= 30.0 for d in delays)
    # 1000 agents back at once: no second of the interval gets more than a few percent of them.
    per_second = [sum(1 for d in delays if int(d) == s) for s in range(30)]
    assert max(per_second) < 60

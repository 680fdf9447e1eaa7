"""An agent whose heartbeats fail (server or broker away: events were lost) resyncs in full once
they get through again, after a random delay within one report interval (no resync storm)."""

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
from neutrino.contract.rpc import SERVER_TARGET


class CountingRole:
    name, agent_type, binary, topic = "l2", "Linux bridge agent", "neutrino-linuxbridge-agent", "N/A"

    def __init__(self) -> None:
        self.resyncs = 0

    def configurations(self) -> Mapping[str, Any]:
        return {}

    async def start(self) -> None:
        pass

    async def resync(self) -> None:
        self.resyncs += 1

    async def on_event(self, envelope: Envelope) -> None:
        pass

    async def stop(self) -> None:
        pass


async def _until(check: Any) -> None:
    async with asyncio.timeout(30):
        while not check():
            await asyncio.sleep(0.01)


def test_heartbeats_that_get_through_again_bring_one_full_resync() -> None:
    async def run() -> None:
        broker = MemoryBroker()
        agent_bus = build_bus("memory://", sender="agent.h1", broker=broker)
        server_bus = build_bus("memory://", sender="server", broker=broker)
        await agent_bus.start()
        await server_bus.start()
        role = CountingRole()
        agent = AgentProcess("h1", agent_bus, AgentRpcClient(agent_bus, "h1", timeout=0.1), [role],
                             report_interval=0.05, resync_interval=3600, rng=random.Random(7))
        await agent.start()
        try:
            await _until(lambda: agent.heartbeat_failures >= 2 and role.resyncs == 1)  # nobody answers
            assert agent.recovery_resyncs == 0
            reports: list[dict[str, Any]] = []

            async def report_state(payload: dict[str, Any]) -> dict[str, Any]:
                reports.append(payload)
                return {"status": "alive"}

            await server_bus.serve(SERVER_TARGET, {"report_state": report_state})
            await _until(lambda: agent.recovery_resyncs == 1 and role.resyncs == 2)
            seen = len(reports)
            await _until(lambda: len(reports) >= seen + 3)  # more heartbeats, no more resyncs
            assert (agent.recovery_resyncs, role.resyncs) == (1, 2)
        finally:
            await agent.stop()
            await agent_bus.close()
            await server_bus.close()

    asyncio.run(run())


def test_the_recovery_delay_stays_within_one_report_interval_and_spreads() -> None:
    agent = AgentProcess("h1", None, None, [], report_interval=30.0, rng=random.Random(1))  # type: ignore[arg-type]
    delays = [agent.recovery_delay() for _ in range(1000)]
    assert all(0 <= d <= 30.0 for d in delays)
    # 1000 agents back at once: no second of the interval gets more than a few percent of them.
    per_second = [sum(1 for d in delays if int(d) == s) for s in range(30)]
    assert max(per_second) < 60

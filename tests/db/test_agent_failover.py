"""Failover as service calls: networks and routers of dead DHCP and L3 agents move to alive agents.

The server is composed in-process (``build_server``) on a migrated SQLite database; agents register
through ``report_state`` as over the bus. Time is the agent service's clock (the one it is built
with, set forward by the test) so that "dead for twice agent_down_time" takes no real minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from neutrino.config import load_settings
from neutrino.context import RequestContext
from neutrino.db.migrate import upgrade
from neutrino.server import Server, build_server
from neutrino.services.listing import ListQuery

DOWN = 10  # agent_down_time_seconds: dead after 20 s without a report


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Rig:
    server: Server
    clock: Clock
    ctx: RequestContext

    @property
    def services(self) -> dict[str, Any]:
        return self.server.services

    async def report(self, host: str, agent_type: str, *, start: bool = False) -> str:
        answer = await self.services["agent"].report_state({
            "host": host, "agent_type": agent_type, "availability_zone": "nova", "start_flag": start,
            "binary": "neutron-dhcp-agent" if agent_type == "DHCP agent" else "neutron-l3-agent"})
        return str(answer["agent_id"])

    async def dhcp_hosts(self, network_id: str) -> list[str]:
        found = await self.services["dhcp_scheduler"].dhcp_agents(self.ctx, network_id, None)
        return [a["host"] for a in found["agents"]]

    async def l3_hosts(self, router_id: str) -> list[str]:
        found = await self.services["l3_scheduler"].l3_agents(self.ctx, router_id, None)
        return [a["host"] for a in found["agents"]]


@pytest_asyncio.fixture(loop_scope="function")
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'failover.sqlite'}"
    await asyncio.to_thread(upgrade, url)
    settings = load_settings(environ={}, overrides={
        "database": {"url": url}, "server": {"state_dir": str(tmp_path), "allow_automatic_l3agent_failover": True},
        "agent": {"agent_down_time_seconds": DOWN}})
    server = build_server(settings)
    clock = Clock(dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
    server.services["agent"].clock = clock
    try:
        yield Rig(server, clock, RequestContext.admin())
    finally:
        await server.close()


async def _network_with_dhcp(rig: Rig) -> str:
    [net] = await rig.services["network"].create_many(rig.ctx, [{"name": "failover", "project_id": "p1"}])
    await rig.services["subnet"].create_many(rig.ctx, [{"network_id": net["id"], "ip_version": 4,
                                                        "cidr": "10.66.0.0/24", "project_id": "p1"}])
    return str(net["id"])


async def test_networks_leave_a_dhcp_agent_dead_for_twice_the_down_time(rig: Rig) -> None:
    dhcp = rig.services["dhcp_scheduler"]
    await rig.report("dhcp-1", "DHCP agent", start=True)
    await rig.report("dhcp-2", "DHCP agent", start=True)
    network_id = await _network_with_dhcp(rig)
    [first] = await rig.dhcp_hosts(network_id)
    other = "dhcp-2" if first == "dhcp-1" else "dhcp-1"

    # Down (no report for 15 s) but not dead yet (20 s): nothing moves.
    rig.clock.advance(15)
    await rig.report(other, "DHCP agent")
    assert await dhcp.reschedule_from_down_agents() == []
    assert await rig.dhcp_hosts(network_id) == [first]

    # Dead, and past its start-up time (20 s plus 2 s per network): the network moves.
    rig.clock.advance(10)
    await rig.report(other, "DHCP agent")
    first_id = (await rig.services["agent"].list(rig.ctx, ListQuery(filters={"host": [first]})))[0]["id"]
    assert await dhcp.reschedule_from_down_agents() == [(network_id, first_id)]
    assert await rig.dhcp_hosts(network_id) == [other]
    assert (await rig.services["network"].get(rig.ctx, network_id))["availability_zones"] == ["nova"]

    # With no DHCP agent alive at all, networks stay where they are (moving them would serve nobody).
    rig.clock.advance(100)
    assert await dhcp.reschedule_from_down_agents() == []
    assert await rig.dhcp_hosts(network_id) == [other]


async def test_a_freshly_started_dhcp_agent_is_not_dead_yet(rig: Rig) -> None:
    dhcp = rig.services["dhcp_scheduler"]
    await rig.report("dhcp-1", "DHCP agent", start=True)
    network_id = await _network_with_dhcp(rig)
    rig.clock.advance(21)  # no report for 21 s, but started 21 s ago with one network: 22 s of grace
    await rig.report("dhcp-2", "DHCP agent", start=True)
    assert await dhcp.reschedule_from_down_agents() == []
    assert await rig.dhcp_hosts(network_id) == ["dhcp-1"]
    rig.clock.advance(2)
    await rig.report("dhcp-2", "DHCP agent")
    assert [n for n, _ in await dhcp.reschedule_from_down_agents()] == [network_id]
    assert await rig.dhcp_hosts(network_id) == ["dhcp-2"]


async def test_routers_leave_a_dead_l3_agent_through_the_periodic_check(rig: Rig) -> None:
    failover = rig.services["agent_failover"]
    assert failover.dhcp is not None and failover.l3 is not None  # both enabled by this server's settings
    await rig.report("l3-1", "L3 agent", start=True)
    [router] = await rig.services["router"].create_many(rig.ctx, [{"name": "r", "project_id": "p1"}])
    assert await rig.l3_hosts(router["id"]) == ["l3-1"]

    # Its agent dies while no other L3 agent exists: the router stays (rescheduling failed, logged).
    rig.clock.advance(30)
    await failover.check_once()
    assert await rig.l3_hosts(router["id"]) == ["l3-1"]

    # An administratively disabled dead agent keeps its routers, as in Neutron.
    l3_1 = (await rig.services["agent"].list(rig.ctx, ListQuery(filters={"host": ["l3-1"]})))[0]["id"]
    await rig.services["agent"].update(rig.ctx, l3_1, {"admin_state_up": False})
    await rig.report("l3-2", "L3 agent", start=True)
    await failover.check_once()
    assert await rig.l3_hosts(router["id"]) == ["l3-1"]

    await rig.services["agent"].update(rig.ctx, l3_1, {"admin_state_up": True})
    await failover.check_once()
    assert await rig.l3_hosts(router["id"]) == ["l3-2"]
    assert (await rig.services["router"].get(rig.ctx, router["id"]))["availability_zones"] == ["nova"]


async def test_l3_failover_is_off_unless_configured(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'off.sqlite'}"
    await asyncio.to_thread(upgrade, url)
    server = build_server(load_settings(environ={}, overrides={
        "database": {"url": url}, "server": {"state_dir": str(tmp_path)}}))
    try:
        failover = server.services["agent_failover"]
        # Neutron's defaults: DHCP failover on, L3 failover off.
        assert failover.dhcp is not None and failover.l3 is None
        assert failover.interval == 37.5  # half of the default agent_down_time (75 s)
    finally:
        await server.close()

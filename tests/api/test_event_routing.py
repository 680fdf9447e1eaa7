"""Events reach only the hosts that need them, counted on the real bus (RabbitMQ, a vhost of this
test's own; the server on PostgreSQL).

Three hosts, each an agent as far as the server can tell (registered L2 agents, subscribed as an
agent process subscribes: ``event.*.<host>`` and ``event.*.all``):

* host A holds a port on network 1 in group WEB, whose rule admits group DB as remote group;
* host B holds ports on network 2, one of them in group DB;
* host C holds a port on network 3 in a group nobody names.

A port change on network 2 reaches B; it reaches A only when the port is (or was) in group DB (A's
remote-group address set must change), never C; nothing goes to every host.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.factory import build_bus
from neutrino.bus.interface import Bus
from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, ok
from tests.support.routing_rig import Rig, routing_rig
from tests.support.tenants import cloud_persona

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with routing_rig(tmp_path_factory.mktemp("routing")) as made:
        yield made


@dataclass
class Heard:
    """What one host's agent process hears, by topic family."""

    own: list[dict[str, Any]] = field(default_factory=list)
    everyone: list[dict[str, Any]] = field(default_factory=list)

    def ids(self) -> set[str]:
        return {e["id"] for e in self.own + self.everyone}


async def _host(bus: Bus, host: str) -> Heard:
    heard = Heard()

    async def own(envelope: Envelope) -> None:
        heard.own.append(dict(envelope.payload))

    async def everyone(envelope: Envelope) -> None:
        heard.everyone.append(dict(envelope.payload))

    await bus.subscribe(f"event.*.{host}", own)
    await bus.subscribe("event.*.all", everyone)
    rpc = AgentRpcClient(bus, host, timeout=20)
    await rpc.report_state({"role": "l2", "agent_type": "Linux bridge agent", "binary": "neutrino-linuxbridge-agent",
                            "topic": "N/A", "availability_zone": "nova", "start_flag": True,
                            "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.41",
                                               "bridge_mappings": {}}})
    return heard


class Cloud:
    def __init__(self, server: LiveServer) -> None:
        self.demo = api(server, cloud_persona(server, "neutrino-demo"))
        self.compute = api(server, cloud_persona(server, "neutrino-compute"))

    def network(self, cidr: str) -> str:
        net = created(self.demo.post("/networks", json={"network": {"name": f"rt-{uuid.uuid4().hex[:6]}"}}), "network")
        created(self.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}}),
                "subnet")
        return str(net["id"])

    def group(self, name: str) -> str:
        return str(created(self.demo.post("/security-groups", json={"security_group": {"name": name}}),
                           "security_group")["id"])

    def port(self, network_id: str, host: str, groups: list[str]) -> dict[str, Any]:
        port = created(self.demo.post("/ports", json={"port": {"network_id": network_id, "security_groups": groups}}),
                       "port")
        return ok(self.compute.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": host}}), "port")

    def rename(self, port_id: str, name: str) -> dict[str, Any]:
        return ok(self.demo.put(f"/ports/{port_id}", json={"port": {"name": name}}), "port")


async def _until(heard: Heard, port_id: str, revision: int) -> None:
    async with asyncio.timeout(20):
        while not any(e["id"] == port_id and e.get("revision", 0) >= revision for e in heard.own):
            await asyncio.sleep(0.05)


def test_port_events_reach_the_hosts_of_their_network_and_remote_groups_only(rig: Rig) -> None:
    a, b, c = (f"{n}-{rig.tag}" for n in ("hosta", "hostb", "hostc"))
    cloud = Cloud(rig.server)

    async def scenario() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.routing-{rig.tag}")
        await bus.start()
        try:
            heard = {h: await _host(bus, h) for h in (a, b, c)}
            net1, net2, net3 = [await asyncio.to_thread(cloud.network, cidr)
                                for cidr in ("10.71.1.0/24", "10.71.2.0/24", "10.71.3.0/24")]
            web, dbg, lone, plain = [await asyncio.to_thread(cloud.group, n) for n in ("web", "db", "lone", "plain")]
            # WEB admits DB's members: A's firewall keeps DB's addresses in a set.
            created(await asyncio.to_thread(cloud.demo.post, "/security-group-rules", json={"security_group_rule": {
                "security_group_id": web, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": dbg}}), "security_group_rule")
            pa = await asyncio.to_thread(cloud.port, net1, a, [web])
            pc = await asyncio.to_thread(cloud.port, net3, c, [lone])
            for h in (a, b, c):
                heard[h].own.clear()
                heard[h].everyone.clear()

            # A port of no interesting group on network 2: host B's business alone.
            plain_port = await asyncio.to_thread(cloud.port, net2, b, [plain])
            # A port of group DB on network 2: B's, and A's remote-group set.
            db_port = await asyncio.to_thread(cloud.port, net2, b, [dbg])
            # It leaves group DB: A must hear that too (its address leaves A's set).
            left = await asyncio.to_thread(lambda: ok(cloud.demo.put(f"/ports/{db_port['id']}", json={
                "port": {"security_groups": [plain]}}), "port"))
            # A rename of the plain port: B only (the plain port never was in DB).
            renamed = await asyncio.to_thread(cloud.rename, plain_port["id"], "renamed")

            # Sentinels: a change to each host's own port; once heard, everything before it was too.
            sa = await asyncio.to_thread(cloud.rename, pa["id"], "sentinel")
            sc = await asyncio.to_thread(cloud.rename, pc["id"], "sentinel")
            await _until(heard[a], pa["id"], sa["revision_number"])
            await _until(heard[c], pc["id"], sc["revision_number"])
            await _until(heard[b], plain_port["id"], renamed["revision_number"])
            await _until(heard[b], db_port["id"], left["revision_number"])

            on_a = [(e["id"], e["op"]) for e in heard[a].own if e["id"] != pa["id"]]
            assert on_a == [(db_port["id"], "create"), (db_port["id"], "update"), (db_port["id"], "update")], on_a
            assert heard[c].ids() == {pc["id"]}, heard[c]
            assert plain_port["id"] in heard[b].ids() and pa["id"] not in heard[b].ids()
            # The events say which groups the port is (and was) in.
            assert set(heard[a].own[-2]["security_group_ids"]) == {plain, dbg}
            # Nothing of it went to every host.
            assert [e for h in (a, b, c) for e in heard[h].everyone] == []
        finally:
            await bus.close()

    asyncio.run(scenario())


def test_a_network_change_reaches_only_the_hosts_on_it(rig: Rig) -> None:
    a, b = (f"{n}-{rig.tag}" for n in ("neta", "netb"))
    cloud = Cloud(rig.server)

    async def scenario() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.routing-net-{rig.tag}")
        await bus.start()
        try:
            heard = {h: await _host(bus, h) for h in (a, b)}
            net1, net2 = [await asyncio.to_thread(cloud.network, cidr) for cidr in ("10.72.1.0/24", "10.72.2.0/24")]
            pa = await asyncio.to_thread(cloud.port, net1, a, [])
            await asyncio.to_thread(cloud.port, net2, b, [])
            for h in (a, b):
                heard[h].own.clear()
            await asyncio.to_thread(lambda: ok(cloud.demo.put(f"/networks/{net2}", json={
                "network": {"name": "renamed"}}), "network"))
            sentinel = await asyncio.to_thread(cloud.rename, pa["id"], "sentinel")
            await _until(heard[a], pa["id"], sentinel["revision_number"])
            async with asyncio.timeout(20):
                while not any(e["id"] == net2 for e in heard[b].own):
                    await asyncio.sleep(0.05)
            assert net2 not in heard[a].ids()
            assert [e for h in (a, b) for e in heard[h].everyone] == []
        finally:
            await bus.close()

    asyncio.run(scenario())


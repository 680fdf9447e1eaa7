"""Events reach only the hosts that need them, counted on the real bus (RabbitMQ, a vhost of this
test's own; the server on PostgreSQL).

Three hosts, each an agent as far as the server can tell (registered L2 agents, subscribed as an
agent process subscribes: ``event.*.<host>`` and ``event.*.all``):

* host A holds a port on network 1 in group WEB, whose rule admits group DB as remote group;
* host B holds ports on network 2, one of them in group DB;
* host C holds a port on network 3 in a group nobody names.

A port change on network 2 reaches B; it reaches A only when the port is (or was) in group DB (A's
remote-group address set must change), never C; nothing goes to every host.

And an agent that lost events (its broker connection dropped while a port was bound to its host)
converges on them by itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from neutrino.agent.process import AgentProcess
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.factory import build_bus
from neutrino.bus.interface import Bus
from neutrino.contract import codec
from neutrino.contract.metering import MeteringState
from tests.fullstack.broker import BrokerUser
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



def test_metering_events_reach_the_l3_agents_hosts_whose_metering_state_holds_their_routers_labels(rig: Rig) -> None:
    """Labels apply to every router of their project (shared ones to all): their changes go to the
    hosts of the L3 agents, where metering agents count, and to no other host."""
    router_host, compute_host = (f"{n}-{rig.tag}" for n in ("meter", "compute"))
    admin = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))

    async def scenario() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.routing-meter-{rig.tag}")
        await bus.start()
        try:
            heard = {h: await _host(bus, h) for h in (router_host, compute_host)}
            rpc = AgentRpcClient(bus, router_host, timeout=20)
            await rpc.report_state({"role": "l3", "agent_type": "L3 agent", "binary": "neutrino-l3-agent",
                                    "topic": "l3_agent", "availability_zone": "nova", "start_flag": True,
                                    "configurations": {}})
            label = await asyncio.to_thread(lambda: created(admin.post("/metering/metering-labels", json={
                "metering_label": {"name": f"m-{rig.tag}"}}), "metering_label"))
            rule = await asyncio.to_thread(lambda: created(admin.post("/metering/metering-label-rules", json={
                "metering_label_rule": {"metering_label_id": label["id"], "direction": "egress",
                                        "destination_ip_prefix": "198.18.0.0/24"}}), "metering_label_rule"))
            await asyncio.to_thread(admin.delete, f"/metering/metering-labels/{label['id']}")
            async with asyncio.timeout(20):
                while [e["op"] for e in heard[router_host].own if e["id"] == label["id"]] != ["create", "delete"]:
                    await asyncio.sleep(0.05)
            assert any(e["id"] == rule["id"] for e in heard[router_host].own)
            assert not heard[compute_host].ids() & {label["id"], rule["id"]}
            assert [e for h in heard.values() for e in h.everyone] == []
            assert (await rpc.sync_state("metering"))["routers"] == []  # no router here yet

            # The metering agents' desired state, as Neutron's get_sync_data_metering: the admin-up
            # routers of the host's L3 agent, each with its project's labels and the shared ones.
            demo_project = cloud_persona(rig.server, "neutrino-demo").project_id

            def make(path: str, key: str, **body: Any) -> dict[str, Any]:
                made = created(admin.post(path, json={key: body}), key)
                cleanup.append(f"{path}/{made['id']}")
                return made

            up = await asyncio.to_thread(make, "/routers", "router", name="m-up", project_id=demo_project)
            await asyncio.to_thread(make, "/routers", "router", name="m-down", project_id=demo_project,
                                    admin_state_up=False)
            mine = await asyncio.to_thread(make, "/metering/metering-labels", "metering_label", name="mine",
                                           project_id=demo_project)
            shared = await asyncio.to_thread(make, "/metering/metering-labels", "metering_label", name="all",
                                             shared=True)
            await asyncio.to_thread(make, "/metering/metering-labels", "metering_label", name="admins")
            await asyncio.to_thread(make, "/metering/metering-label-rules", "metering_label_rule",
                                    metering_label_id=mine["id"], direction="ingress", excluded=True,
                                    remote_ip_prefix="10.0.0.7/24")
            state = codec.decode(MeteringState, await rpc.sync_state("metering"))
            assert [r.router_id for r in state.routers] == [up["id"]]
            labels = {label.id: label for label in state.routers[0].labels}
            assert set(labels) == {mine["id"], shared["id"]}
            assert [(r.direction, r.excluded, r.remote_ip_prefix) for r in labels[mine["id"]].rules] == [
                ("ingress", True, "10.0.0.0/24")]
            assert labels[shared["id"]].shared and state.routers[0].project_id == demo_project
        finally:
            await bus.close()

    cleanup: list[str] = []
    try:
        asyncio.run(scenario())
    finally:
        for path in reversed(cleanup):
            admin.delete(path)
        admin.close()


class L2StandIn:
    """The l2 role's conversation with the server without a kernel: the ports of its last full sync,
    and the port events it heard."""

    name, agent_type, binary, topic = "l2", "Linux bridge agent", "neutrino-linuxbridge-agent", "N/A"

    def __init__(self, rpc: AgentRpcClient) -> None:
        self.rpc = rpc
        self.synced: set[str] = set()
        self.heard: set[str] = set()

    def configurations(self) -> dict[str, Any]:
        return {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.43", "bridge_mappings": {}}

    async def start(self) -> None:
        pass

    async def resync(self) -> None:
        state = await self.rpc.sync_state("l2")
        self.synced = {p["port_id"] for p in state["ports"]}

    async def on_event(self, envelope: Envelope) -> None:
        if envelope.payload.get("resource") == "port":
            self.heard.add(str(envelope.payload["id"]))

    async def stop(self) -> None:
        pass


async def _wait(check: Any, what: str) -> None:
    async with asyncio.timeout(60):
        while not check():
            await asyncio.sleep(0.05)


def test_an_agent_whose_broker_connection_dropped_resyncs_and_converges_on_what_it_missed(rig: Rig) -> None:
    """Between two heartbeats (heartbeats every hour here), the broker drops the agent's connection
    and refuses it back while a port is bound to its host: the event has no queue to go to. Once
    back, the agent resyncs at once and has the port; no periodic resync could have (hourly too)."""
    host = f"drop-{rig.tag}"
    cloud = Cloud(rig.server)
    user = BrokerUser(vhost=rig.bus_url.rsplit("/", 1)[1])

    async def scenario() -> None:
        await asyncio.to_thread(user.create)
        bus = build_bus(user.url(reconnect_interval="0.2"), sender=f"agent.{host}")
        await bus.start()
        rpc = AgentRpcClient(bus, host, timeout=20)
        role = L2StandIn(rpc)
        agent = AgentProcess(host, bus, rpc, [role], report_interval=3600, resync_interval=3600)
        try:
            net = await asyncio.to_thread(cloud.network, "10.73.1.0/24")
            await agent.start()
            # The first heartbeat's reply named the server's start and the window to spread over.
            await _wait(lambda: agent.resync_window is not None, "the first heartbeat")
            assert agent.resync_window == 1.0  # a few agents: the shortest spread
            before = await asyncio.to_thread(cloud.port, net, host, [])
            await _wait(lambda: before["id"] in role.heard, "the event of a port bound here")

            await asyncio.to_thread(user.allow, False)
            assert await asyncio.to_thread(user.close_connections) == 1
            await _wait(lambda: not bus.connected, "the connection to drop")  # type: ignore[attr-defined]
            missed = await asyncio.to_thread(cloud.port, net, host, [])
            assert bus.connected is False  # type: ignore[attr-defined]  # still refused: the event was lost
            await asyncio.to_thread(user.allow, True)

            await _wait(lambda: missed["id"] in role.synced, "the agent to converge")
            assert agent.recovery_resyncs == 1
            assert missed["id"] not in role.heard  # converged through the resync, not an event
        finally:
            await agent.stop()
            await bus.close()
            await asyncio.to_thread(user.delete)


def test_a_network_log_reaches_the_hosts_of_its_ports_and_their_firewall_state(rig: Rig) -> None:
    """Security group logging (``logging``): a log of a group goes to the hosts holding the group's
    ports (create, disable, delete), whose firewall ``sync_state`` carries it while it is enabled."""
    a, b = (f"{n}-{rig.tag}" for n in ("loga", "logb"))
    cloud = Cloud(rig.server)
    admin = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))
    project = cloud_persona(rig.server, "neutrino-demo").project_id

    def logs_heard(heard: Heard, log_id: str) -> list[str]:
        return [e["op"] for e in heard.own + heard.everyone if e["id"] == log_id and e["resource"] == "log"]

    async def until_heard(heard: Heard, log_id: str, op: str) -> None:
        async with asyncio.timeout(20):
            while op not in logs_heard(heard, log_id):
                await asyncio.sleep(0.05)

    async def scenario() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.routing-log-{rig.tag}")
        await bus.start()
        try:
            heard = {h: await _host(bus, h) for h in (a, b)}
            rpc = {h: AgentRpcClient(bus, h, timeout=20) for h in (a, b)}
            net1, net2 = [await asyncio.to_thread(cloud.network, cidr) for cidr in ("10.73.1.0/24", "10.73.2.0/24")]
            group, other = [await asyncio.to_thread(cloud.group, name) for name in ("logged", "unlogged")]
            pa = await asyncio.to_thread(cloud.port, net1, a, [group])
            await asyncio.to_thread(cloud.port, net2, b, [other])
            log = await asyncio.to_thread(lambda: created(admin.post("/log/logs", json={"log": {
                "resource_type": "security_group", "resource_id": group, "event": "DROP",
                "project_id": project}}), "log"))
            await until_heard(heard[a], log["id"], "create")
            state = await rpc[a].sync_state("firewall")
            (entry,) = state["logs"]
            assert (entry["id"], entry["event"], entry["security_group_id"]) == (log["id"], "DROP", group)
            assert entry["port_ids"] == [pa["id"]] and entry["project_id"] == project
            assert (await rpc[b].sync_state("firewall"))["logs"] == []

            await asyncio.to_thread(lambda: ok(admin.put(f"/log/logs/{log['id']}", json={
                "log": {"enabled": False}}), "log"))
            await until_heard(heard[a], log["id"], "update")
            assert (await rpc[a].sync_state("firewall"))["logs"] == []
            await asyncio.to_thread(lambda: admin.delete(f"/log/logs/{log['id']}").raise_for_status())
            await until_heard(heard[a], log["id"], "delete")  # its audience was read before it went
            sentinel = await asyncio.to_thread(cloud.rename, pa["id"], "sentinel")
            await _until(heard[a], pa["id"], sentinel["revision_number"])
            assert logs_heard(heard[b], log["id"]) == []
        finally:
            await bus.close()

    asyncio.run(scenario())


async def _l3_host(bus: Bus, host: str, zone: str) -> Heard:
    """A host whose agent process runs an L3 agent in availability zone ``zone`` (and hears events as
    any agent process does). Routers hinted to a zone of the test's own keep other tests' agents out."""
    heard = Heard()

    async def own(envelope: Envelope) -> None:
        heard.own.append(dict(envelope.payload))

    await bus.subscribe(f"event.*.{host}", own)
    await AgentRpcClient(bus, host, timeout=20).report_state({
        "role": "l3", "agent_type": "L3 agent", "binary": "neutrino-l3-agent", "topic": "l3_agent",
        "availability_zone": zone, "start_flag": True, "configurations": {"agent_mode": "legacy"}})
    return heard


def _retire(admin: Any, hosts: Sequence[str]) -> None:
    """The test's L3 agents set admin down: other tests' unhinted routers never go to them."""
    for host in hosts:
        for agent in admin.get("/agents", params={"host": host}).json()["agents"]:
            ok(admin.put(f"/agents/{agent['id']}", json={"agent": {"admin_state_up": False}}), "agent")


def test_a_new_port_reaches_every_l3_agent_hosting_an_ha_router_of_its_network(rig: Rig) -> None:
    """An HA router's standby must hear of a new instance on the router's networks at once (its
    host's l2 population and the router's own state), not at its next periodic resync: a port event
    goes to every L3 agent hosting a router of the network, active or standby alike."""
    x, y, compute = (f"{n}-{rig.tag}" for n in ("hax", "hay", "hac"))
    cloud = Cloud(rig.server)
    admin = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))

    async def scenario() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.routing-ha-{rig.tag}")
        await bus.start()
        try:
            zone = f"az-ha-{rig.tag}"
            heard = {h: await _l3_host(bus, h, zone) for h in (x, y)}
            await _host(bus, compute)
            net = await asyncio.to_thread(cloud.network, "10.74.1.0/24")
            project = (await asyncio.to_thread(cloud.demo.get, f"/networks/{net}")).json()["network"]["project_id"]
            router = created(await asyncio.to_thread(admin.post, "/routers", json={"router": {
                "name": "ha-routing", "project_id": project, "ha": True, "availability_zone_hints": [zone]}}),
                "router")
            subnet = (await asyncio.to_thread(cloud.demo.get, "/subnets", params={"network_id": net})).json()[
                "subnets"][0]
            ok(await asyncio.to_thread(cloud.demo.put, f"/routers/{router['id']}/add_router_interface",
                                       json={"subnet_id": subnet["id"]}), None)
            agents = (await asyncio.to_thread(admin.get, f"/routers/{router['id']}/l3-agents")).json()["agents"]
            assert sorted(a["host"] for a in agents) == sorted((x, y)), agents
            for h in heard.values():
                h.own.clear()

            port = await asyncio.to_thread(cloud.port, net, compute, [])
            for h in (x, y):
                async with asyncio.timeout(20):
                    while not any(e["id"] == port["id"] for e in heard[h].own):
                        await asyncio.sleep(0.05)
        finally:
            await bus.close()
            await asyncio.to_thread(_retire, admin, (x, y))

    asyncio.run(scenario())


def test_an_ha_router_goes_to_max_l3_agents_per_router_agents_when_more_are_alive(rig: Rig) -> None:
    """Four alive L3 agents (on four hosts) and ``max_l3_agents_per_router`` at its default of 3: an
    HA router is hosted by exactly three of them, one HA port each."""
    admin = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))
    hosts = [f"max{n}-{rig.tag}" for n in range(4)]
    zone = f"az-max-{rig.tag}"

    async def scenario() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.routing-max-{rig.tag}")
        await bus.start()
        try:
            for h in hosts:
                await _l3_host(bus, h, zone)
            router = created(await asyncio.to_thread(admin.post, "/routers", json={"router": {
                "name": "ha-max", "ha": True, "availability_zone_hints": [zone]}}), "router")
            agents = (await asyncio.to_thread(admin.get, f"/routers/{router['id']}/l3-agents")).json()["agents"]
            assert len(agents) == 3 and len({a["host"] for a in agents}) == 3 and {a["host"] for a in agents} <= set(
                hosts), agents
            ha_ports = (await asyncio.to_thread(admin.get, "/ports", params={
                "device_id": router["id"], "device_owner": "network:router_ha_interface"})).json()["ports"]
            assert sorted(p["binding:host_id"] for p in ha_ports) == sorted(a["host"] for a in agents)
            assert (await asyncio.to_thread(admin.delete, f"/routers/{router['id']}")).status_code == 204
        finally:
            await bus.close()
            await asyncio.to_thread(_retire, admin, hosts)

    asyncio.run(scenario())

"""A remote-group member on another network opens this host's firewall, through a routed event alone.

A real server (PostgreSQL, RabbitMQ on a vhost of this test's own) and, on host A (a namespace with
a bridge and two instance namespaces, plugged as os-vif would), a real agent process running the
firewall role over the bus, with its periodic resync an hour away. Instance WEB admits ICMP from
group DB only. Instance CLIENT (group PLAIN) may also send from 10.62.0.50 (an allowed address
pair). A port of group DB with that address appears on network 2, bound to host B: host A has no
port on network 2, so only the event routing that follows remote groups can tell host A; CLIENT's
pings from 10.62.0.50 then reach WEB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from kernel_scratch import Scratch, ip, run_in_namespace

from neutrino.agent.process import AgentProcess
from neutrino.agent.roles.firewall.role import FirewallConfig, FirewallRole
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.factory import build_bus
from neutrino.contract.names import bridge_name
from tests.support.neutron_http import api, created, ok
from tests.support.routing_rig import Rig, routing_rig
from tests.support.tenants import cloud_persona

pytestmark = [pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq]

PAIR = "10.62.0.50"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with routing_rig(tmp_path_factory.mktemp("fw-routing")) as made:
        yield made


def _plug(scratch: Scratch, hostns: str, name: str, port: dict[str, Any], *extra: str) -> str:
    """An instance namespace whose eth0 is the port (MAC, address), its tap on the network's bridge."""
    bridge = bridge_name(port["network_id"])
    if ip("-n", hostns, "link", "show", bridge, check=False).returncode != 0:
        ip("-n", hostns, "link", "add", bridge, "type", "bridge")
        ip("-n", hostns, "link", "set", bridge, "up")
    ns = scratch.namespace(name)
    ip("netns", "add", ns)
    tap = f"tap{port['id'][:11]}"
    ip("-n", hostns, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("-n", hostns, "link", "set", tap, "master", bridge, "up")
    ip("-n", ns, "link", "set", "eth0", "address", port["mac_address"])
    ip("-n", ns, "addr", "add", f"{port['fixed_ips'][0]['ip_address']}/24", "dev", "eth0")
    for address in extra:
        ip("-n", ns, "addr", "add", f"{address}/32", "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "link", "set", "lo", "up")
    return ns


async def _answered(src: str, dst: str, source: str) -> bool:
    ip("-n", src, "neigh", "flush", "dev", "eth0")
    ran = await run_in_namespace(src, "ping", "-n", "-c", "2", "-W", "1", "-i", "0.3", "-I", source, dst)
    return ran.returncode == 0


async def _blocked(src: str, dst: str, source: str) -> bool:
    """Probes left and none was answered (not: could not send at all)."""
    ip("-n", src, "neigh", "flush", "dev", "eth0")
    ran = await run_in_namespace(src, "ping", "-n", "-c", "2", "-W", "1", "-i", "0.3", "-I", source, dst)
    return ran.returncode == 1 and "2 packets transmitted, 0 received" in ran.stdout.decode()


async def test_a_remote_group_member_on_another_network_reaches_this_hosts_firewall(
        rig: Rig, scratch: Scratch) -> None:
    host_a, host_b = f"fwa-{rig.tag}", f"fwb-{rig.tag}"
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))

    def network(cidr: str) -> str:
        net = created(demo.post("/networks", json={"network": {"name": f"fw-{cidr}"}}), "network")
        created(demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}}),
                "subnet")
        return str(net["id"])

    def group(name: str) -> str:
        return str(created(demo.post("/security-groups", json={"security_group": {"name": name}}),
                           "security_group")["id"])

    def port(network_id: str, host: str, groups: list[str], **extra: Any) -> dict[str, Any]:
        made = created(demo.post("/ports", json={"port": {"network_id": network_id, "security_groups": groups,
                                                          **extra}}), "port")
        return ok(compute.put(f"/ports/{made['id']}", json={"port": {"binding:host_id": host}}), "port")

    bus = build_bus(rig.bus_url, sender=f"agent.{host_a}")
    await bus.start()
    agent: AgentProcess | None = None
    try:
        for host in (host_a, host_b):  # each host's L2 agent is alive, so its ports bind
            await AgentRpcClient(bus, host, timeout=20).report_state({
                "role": "l2", "agent_type": "Linux bridge agent", "binary": "neutrino-linuxbridge-agent",
                "topic": "N/A", "availability_zone": "nova", "start_flag": True,
                "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.51", "bridge_mappings": {}}})
        net1, net2 = await asyncio.to_thread(network, "10.61.0.0/24"), await asyncio.to_thread(network, "10.62.0.0/24")
        web, dbg, plain = [await asyncio.to_thread(group, n) for n in ("web", "db", "plain")]
        created(await asyncio.to_thread(demo.post, "/security-group-rules", json={"security_group_rule": {
            "security_group_id": web, "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
            "remote_group_id": dbg}}), "security_group_rule")
        web_port = await asyncio.to_thread(port, net1, host_a, [web])
        client_port = await asyncio.to_thread(port, net1, host_a, [plain],
                                              allowed_address_pairs=[{"ip_address": PAIR}])

        hostns = scratch.namespace("host")
        ip("netns", "add", hostns)
        ip("-n", hostns, "link", "set", "lo", "up")
        web_ns = _plug(scratch, hostns, "web", web_port)
        ip("-n", web_ns, "route", "add", "10.62.0.0/24", "dev", "eth0")  # replies to the pair address
        client_ns = _plug(scratch, hostns, "client", client_port, PAIR)
        web_ip = web_port["fixed_ips"][0]["ip_address"]

        rpc = AgentRpcClient(bus, host_a, timeout=20)
        role = FirewallRole(FirewallConfig(host_a, netns=hostns), rpc)
        agent = AgentProcess(host_a, bus, rpc, [role], resync_interval=3600.0)
        await agent.start()  # its one full resync now; the next an hour away
        async with asyncio.timeout(120):
            while role.target.state is None or len(role.target.state.ports) < 2:
                await asyncio.sleep(0.2)
        await role.resync()  # the start's resync finished (the next ones come from events alone)
        assert await _blocked(client_ns, web_ip, PAIR)

        # A member of DB on network 2, on host B, takes the pair's address.
        refreshes = role.refreshes
        await asyncio.to_thread(port, net2, host_b, [dbg], fixed_ips=[{"ip_address": PAIR}])
        async with asyncio.timeout(120):
            while not await _answered(client_ns, web_ip, PAIR):
                await asyncio.sleep(0.5)
        assert role.refreshes > refreshes  # a hint did it (the role's periodic resync is an hour away)
    finally:
        if agent is not None:
            await agent.stop()
        await bus.close()
        demo.close()
        compute.close()

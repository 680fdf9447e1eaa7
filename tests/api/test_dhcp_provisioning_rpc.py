"""The DHCP provisioning block against a live server: a port on a network an alive DHCP agent serves
goes ACTIVE only once its host's l2 role *and* that DHCP agent reported it (``dhcp_ready_on_ports``),
as Neutron's DHCP provisioning block; a report counts only for the port's current MAC and
addresses and only from an agent serving its network; a changed address makes a replugged port wait
for the DHCP agent again; DHCP ports and ports on subnets without DHCP are not held back.

A server of its own (its DHCP agent takes every network made here); the test speaks the agent
contract as the compute host's L2 agent and as the DHCP host's L2 and DHCP agents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.factory import build_bus
from neutrino.contract.names import tap_name
from tests.api.test_device_status_rpc import Rig
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import start_server
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import cloud_persona

pytestmark = pytest.mark.rabbitmq

AGENT_TYPES = {"l2": ("Linux bridge agent", "neutrino-linuxbridge-agent", "N/A"),
               "dhcp": ("DHCP agent", "neutrino-dhcp-agent", "dhcp_agent")}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with shared_broker_vhost() as url:
        tag = uuid.uuid4().hex[:6]
        config = f'[bus]\nurl = "{url}"\n[agent]\nhost = "srv-{tag}"\nroles = []\nagent_down_time_seconds = 900\n'
        server = start_server(tmp_path_factory.mktemp("dhcp-provisioning") / "state", extra_config=config)
        try:
            yield Rig(server, url, f"dp-{tag}")
        finally:
            server.stop()


async def _register(rpc: AgentRpcClient, roles: tuple[str, ...], tunnel_ip: str) -> None:
    for role in roles:
        agent_type, binary, topic = AGENT_TYPES[role]
        await rpc.report_state({"role": role, "agent_type": agent_type, "binary": binary, "topic": topic,
                                "availability_zone": "nova", "start_flag": True,
                                "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": tunnel_ip,
                                                   "bridge_mappings": {}} if role == "l2" else {}})


async def _hosts(rig: Rig, work: Any) -> Any:
    """``work(compute, dhcp)``: the compute host runs l2; the DHCP host runs l2 and dhcp."""
    bus = build_bus(rig.bus_url, sender=f"agent.{rig.host}")
    await bus.start()
    try:
        compute = AgentRpcClient(bus, f"{rig.host}-compute", timeout=20)
        dhcp = AgentRpcClient(bus, f"{rig.host}-dhcp", timeout=20)
        await _register(compute, ("l2",), "192.0.2.51")
        await _register(dhcp, ("l2", "dhcp"), "192.0.2.52")
        return await work(compute, dhcp)
    finally:
        await bus.close()


def _status(client: httpx.Client, port_id: str) -> str:
    return str(ok(client.get(f"/ports/{port_id}"), "port")["status"])


def _network(demo: httpx.Client, cidr: str, *, enable_dhcp: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    network = created(demo.post("/networks", json={"network": {"name": f"dp-{uuid.uuid4().hex[:6]}"}}), "network")
    subnet = created(demo.post("/subnets", json={"subnet": {
        "network_id": network["id"], "cidr": cidr, "ip_version": 4, "enable_dhcp": enable_dhcp}}), "subnet")
    return network, subnet


def _bound_port(rig: Rig, network_id: str, host: str) -> dict[str, Any]:
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))
    port = created(demo.post("/ports", json={"port": {"network_id": network_id}}), "port")
    bound = ok(compute.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": host}}), "port")
    assert bound["binding:vif_type"] == "bridge", bound
    return bound


def test_a_port_waits_for_the_dhcp_agent_serving_its_network(rig: Rig) -> None:
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
    admin = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))

    async def work(compute: AgentRpcClient, dhcp: AgentRpcClient) -> None:
        network, subnet = _network(demo, "10.93.0.0/24")
        agents = ok(admin.get(f"/networks/{network['id']}/dhcp-agents"), "agents")
        assert [a["host"] for a in agents] == [dhcp.host]
        port = _bound_port(rig, network["id"], compute.host)
        pid, mac, ip = port["id"], port["mac_address"], port["fixed_ips"][0]["ip_address"]
        device = tap_name(pid)
        reply = await compute.update_device_list([device], [])
        assert reply["ports"][device]["changed"] is False and _status(demo, pid) == "DOWN"

        # What the DHCP agent served before (another address), and a host that serves nothing, do not count.
        assert (await dhcp.dhcp_ready_on_ports([(pid, mac, ["10.93.0.250"])]))["activated"] == []
        assert (await compute.dhcp_ready_on_ports([(pid, mac, [ip])]))["activated"] == []
        assert _status(demo, pid) == "DOWN"
        assert (await dhcp.dhcp_ready_on_ports([(pid, mac.upper(), [ip])]))["activated"] == [pid]
        assert _status(demo, pid) == "ACTIVE"

        # A new address: the port stays ACTIVE (as in Neutron), but replugged it waits for the agent again.
        moved = ok(demo.put(f"/ports/{pid}", json={"port": {"fixed_ips": [
            {"subnet_id": subnet["id"], "ip_address": "10.93.0.77"}]}}), "port")
        assert moved["status"] == "ACTIVE"
        await compute.update_device_list([], [device])
        await compute.update_device_list([device], [])
        assert _status(demo, pid) == "DOWN"
        assert (await dhcp.dhcp_ready_on_ports([(pid, mac, [ip])]))["activated"] == []
        assert (await dhcp.dhcp_ready_on_ports([(pid, mac, ["10.93.0.77"])]))["activated"] == [pid]
        assert _status(demo, pid) == "ACTIVE"

        # A new MAC (unbound, changed, bound again): the report for the old one no longer counts.
        binder = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))
        ok(binder.put(f"/ports/{pid}", json={"port": {"binding:host_id": ""}}), "port")
        new_mac = ok(admin.put(f"/ports/{pid}", json={"port": {"mac_address": "fa:16:3e:93:00:77"}}),
                     "port")["mac_address"]
        ok(binder.put(f"/ports/{pid}", json={"port": {"binding:host_id": compute.host}}), "port")
        await compute.update_device_list([device], [])
        assert _status(demo, pid) == "DOWN"
        assert (await dhcp.dhcp_ready_on_ports([(pid, mac, ["10.93.0.77"])]))["activated"] == []
        assert (await dhcp.dhcp_ready_on_ports([(pid, new_mac, ["10.93.0.77"])]))["activated"] == [pid]

        # DHCP first, then l2: also ACTIVE, on l2's report.
        second = _bound_port(rig, network["id"], compute.host)
        await dhcp.dhcp_ready_on_ports([(second["id"], second["mac_address"],
                                         [second["fixed_ips"][0]["ip_address"]])])
        assert _status(demo, second["id"]) == "DOWN"
        reply = await compute.update_device_list([tap_name(second["id"])], [])
        assert reply["ports"][tap_name(second["id"])]["changed"] is True

        # The network's DHCP port itself waits for nobody but its host's l2 role.
        (dhcp_port,) = ok(admin.get("/ports", params={"network_id": network["id"],
                                                       "device_owner": "network:dhcp"}), "ports")
        assert dhcp_port["binding:host_id"] == dhcp.host
        await dhcp.update_device_list([tap_name(dhcp_port["id"])], [])
        assert _status(admin, dhcp_port["id"]) == "ACTIVE"
        for p in (pid, second["id"]):
            assert demo.delete(f"/ports/{p}").status_code == 204
        assert demo.delete(f"/networks/{network['id']}").status_code == 204

    asyncio.run(_hosts(rig, work))


def test_a_port_without_a_dhcp_subnet_is_not_held_back(rig: Rig) -> None:
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))

    async def work(compute: AgentRpcClient, dhcp: AgentRpcClient) -> None:
        network, _ = _network(demo, "10.94.0.0/24", enable_dhcp=False)
        port = _bound_port(rig, network["id"], compute.host)
        reply = await compute.update_device_list([tap_name(port["id"])], [])
        assert reply["ports"][tap_name(port["id"])]["changed"] is True
        assert _status(demo, port["id"]) == "ACTIVE"
        assert demo.delete(f"/ports/{port['id']}").status_code == 204
        assert demo.delete(f"/networks/{network['id']}").status_code == 204

    asyncio.run(_hosts(rig, work))

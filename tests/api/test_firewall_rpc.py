"""The firewall role's side of the agent contract against a live server: ``sync_state(host,
"firewall")`` carries the host's ports, their groups' rules (protocols as numbers) and the
members of remote groups; on a host that runs a firewall agent a port goes ACTIVE only once both
the l2 and the firewall roles reported it (per-role provisioning), elsewhere l2 alone suffices.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.factory import build_bus
from neutrino.contract import codec
from neutrino.contract.firewall import FirewallState
from neutrino.contract.names import tap_name
from tests.api.test_device_status_rpc import Rig
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import start_server
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import cloud_persona

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with shared_broker_vhost() as url:
        tag = uuid.uuid4().hex[:6]
        config = f'[bus]\nurl = "{url}"\n[agent]\nhost = "srv-{tag}"\nroles = []\nagent_down_time_seconds = 900\n'
        server = start_server(tmp_path_factory.mktemp("firewall-rpc") / "state", extra_config=config)
        try:
            yield Rig(server, url, f"fw-{tag}")
        finally:
            server.stop()


async def _as_host(rig: Rig, host: str, roles: tuple[str, ...], work: Any) -> Any:
    bus = build_bus(rig.bus_url, sender=f"agent.{host}")
    await bus.start()
    try:
        rpc = AgentRpcClient(bus, host, timeout=20)
        types = {"l2": ("Linux bridge agent", "neutrino-linuxbridge-agent"),
                 "firewall": ("Neutrino firewall agent", "neutrino-firewall-agent")}
        for role in roles:
            await rpc.report_state({"role": role, "agent_type": types[role][0], "binary": types[role][1],
                                    "topic": "N/A", "availability_zone": "nova", "start_flag": True,
                                    "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.41",
                                                       "bridge_mappings": {}} if role == "l2" else {}})
        return await work(rpc)
    finally:
        await bus.close()


def _port_on(rig: Rig, host: str, **body: Any) -> tuple[dict[str, Any], Any]:
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))
    network = created(demo.post("/networks", json={"network": {"name": f"fw-{uuid.uuid4().hex[:6]}"}}), "network")
    created(demo.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.92.0.0/24",
                                                   "ip_version": 4}}), "subnet")
    port = created(demo.post("/ports", json={"port": {"network_id": network["id"], **body}}), "port")
    bound = ok(compute.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": host}}), "port")
    assert bound["binding:vif_type"] == "bridge", bound
    return port, demo


def test_sync_state_carries_rules_as_numbers_and_remote_group_members(rig: Rig) -> None:
    host = f"{rig.host}-state"

    async def work(rpc: AgentRpcClient) -> tuple[FirewallState, dict[str, Any], dict[str, Any]]:
        group_port, demo = _port_on(rig, host)
        rule = created(demo.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": group_port["security_groups"][0], "direction": "ingress", "ethertype": "IPv6",
            "protocol": "icmp", "port_range_min": 128}}), "security_group_rule")
        return codec.decode(FirewallState, await rpc.sync_state("firewall")), group_port, rule

    state, group_port, rule = asyncio.run(_as_host(rig, host, ("l2", "firewall"), work))
    group = group_port["security_groups"][0]
    (port,) = state.ports
    assert port.port_id == group_port["id"] and port.device == tap_name(group_port["id"]) and port.filtered
    assert port.fixed_ips == tuple(f["ip_address"] for f in group_port["fixed_ips"])
    rules = {r.rule_id: r for g in state.groups for r in g.rules}
    assert rules[rule["id"]].protocol == 58 and rules[rule["id"]].port_range_min == 128
    # The default group's ingress rules name the group itself: its members' addresses come along.
    assert list(state.remote_groups[group]) == list(port.fixed_ips)


def test_port_goes_active_only_after_l2_and_firewall_reported(rig: Rig) -> None:
    host = f"{rig.host}-both"

    async def work(rpc: AgentRpcClient) -> None:
        port, demo = _port_on(rig, host)
        device = tap_name(port["id"])
        await rpc.update_device_list([device], [])
        assert ok(demo.get(f"/ports/{port['id']}"), "port")["status"] == "DOWN"
        await rpc.provisioning_complete("firewall", [device])
        assert ok(demo.get(f"/ports/{port['id']}"), "port")["status"] == "ACTIVE"

    asyncio.run(_as_host(rig, host, ("l2", "firewall"), work))


def test_firewall_first_then_l2_also_activates(rig: Rig) -> None:
    host = f"{rig.host}-fwfirst"

    async def work(rpc: AgentRpcClient) -> None:
        port, demo = _port_on(rig, host)
        device = tap_name(port["id"])
        await rpc.provisioning_complete("firewall", [device])
        assert ok(demo.get(f"/ports/{port['id']}"), "port")["status"] == "DOWN"
        reply = await rpc.update_device_list([device], [])
        assert reply["ports"][device]["changed"] is True
        assert ok(demo.get(f"/ports/{port['id']}"), "port")["status"] == "ACTIVE"

    asyncio.run(_as_host(rig, host, ("l2", "firewall"), work))


def test_without_a_firewall_agent_l2_alone_activates(rig: Rig) -> None:
    host = f"{rig.host}-l2only"

    async def work(rpc: AgentRpcClient) -> None:
        port, demo = _port_on(rig, host)
        await rpc.update_device_list([tap_name(port["id"])], [])
        assert ok(demo.get(f"/ports/{port['id']}"), "port")["status"] == "ACTIVE"

    asyncio.run(_as_host(rig, host, ("l2",), work))

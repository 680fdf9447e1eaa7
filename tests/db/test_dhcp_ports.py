"""DHCP ports follow DHCP agents: made on scheduling, re-addressed with subnets, moved on failover,
removed with the agent's network, and ``sync_state(host, "dhcp")`` describes what dnsmasq serves.

Service calls on a migrated SQLite database, agents registered through ``report_state`` (the rig of
the failover tests, whose clock the test moves forward).
"""

from __future__ import annotations

from typing import Any

from neutrino.contract import codec
from neutrino.services.dhcp_agents import (
    RESERVED_DHCP_PORT,
    CreatePort,
    DeletePort,
    ExistingDhcpPort,
    UpdatePort,
    dhcp_device_id,
    plan_dhcp_ports,
)
from neutrino.services.listing import ListQuery
from tests.db.test_agent_failover import Rig, _network_with_dhcp, rig  # noqa: F401 - the fixture


async def _dhcp_ports(rig: Rig, network_id: str) -> list[dict[str, Any]]:  # noqa: F811
    return await rig.services["port"].list(rig.ctx, ListQuery(filters={"network_id": [network_id],
                                                                        "device_owner": ["network:dhcp"]}))


def test_device_id_is_neutrons() -> None:
    # neutron.common.utils.get_dhcp_agent_device_id: uuid5 of the short host name.
    expected = "dhcpa4759065-eb4f-5a46-96b0-019ee60cabef-net"
    assert dhcp_device_id("compute-1.example.org", "net") == expected
    assert dhcp_device_id("compute-1", "net") == expected


def test_plan_hands_a_reserved_port_over_before_making_one_and_deletes_leftovers() -> None:
    net = "n1"
    reserved = ExistingDhcpPort("p-reserved", RESERVED_DHCP_PORT, "", ("s1",))
    gone_host = ExistingDhcpPort("p-old", dhcp_device_id("old", net), "old", ("s1",))
    kept = ExistingDhcpPort("p-a", dhcp_device_id("a", net), "a", ("s1",))

    assert plan_dhcp_ports(net, ["a", "b"], ["s1"], [kept, reserved]) == [UpdatePort("p-reserved", "b", False)]
    assert plan_dhcp_ports(net, ["a"], ["s1"], [kept, gone_host]) == [DeletePort("p-old", "old")]
    assert plan_dhcp_ports(net, ["a", "c"], ["s1", "s2"], [kept]) == [UpdatePort("p-a", "a", True), CreatePort("c")]
    # No DHCP subnet: nobody needs a port (reserved ones wait).
    assert plan_dhcp_ports(net, ["a"], [], [kept, reserved]) == [DeletePort("p-a", "a")]


async def test_scheduling_makes_one_dhcp_port_per_agent_with_an_address_per_dhcp_subnet(rig: Rig) -> None:  # noqa: F811
    await rig.report("dhcp-1", "DHCP agent", start=True)
    network_id = await _network_with_dhcp(rig)

    [port] = await _dhcp_ports(rig, network_id)
    assert port["device_id"] == dhcp_device_id("dhcp-1", network_id)
    assert port["binding:host_id"] == "dhcp-1"
    assert [ip["ip_address"] for ip in port["fixed_ips"]] == ["10.66.0.2"]  # the lowest free address

    [subnet] = await rig.services["subnet"].create_many(rig.ctx, [{
        "network_id": network_id, "ip_version": 4, "cidr": "10.67.0.0/24", "project_id": "p1"}])
    [port] = await _dhcp_ports(rig, network_id)
    assert sorted(ip["ip_address"] for ip in port["fixed_ips"]) == ["10.66.0.2", "10.67.0.2"]

    state = codec.encode(await rig.services["dhcp_agents"].sync_state("dhcp-1"))
    [net] = state["networks"]
    assert net["network_id"] == network_id
    assert net["dhcp_port"]["port_id"] == port["id"]
    assert {s["cidr"] for s in net["subnets"]} == {"10.66.0.0/24", "10.67.0.0/24"}
    assert net["dns_domain"] == "openstacklocal."
    assert subnet["id"] in {s["subnet_id"] for s in net["subnets"]}
    assert (await rig.services["dhcp_agents"].sync_state("dhcp-2")).networks == ()


async def test_removing_a_network_from_an_agent_removes_its_port(rig: Rig) -> None:  # noqa: F811
    agent_id = await rig.report("dhcp-1", "DHCP agent", start=True)
    network_id = await _network_with_dhcp(rig)
    assert len(await _dhcp_ports(rig, network_id)) == 1

    await rig.services["dhcp_scheduler"].remove_dhcp_network(rig.ctx, agent_id, network_id, None)
    assert await _dhcp_ports(rig, network_id) == []

    await rig.services["dhcp_scheduler"].add_dhcp_network(rig.ctx, agent_id, {"network_id": network_id})
    [port] = await _dhcp_ports(rig, network_id)
    assert port["binding:host_id"] == "dhcp-1"


async def test_two_agents_per_network_get_two_ports_and_failover_moves_the_dead_ones(rig: Rig) -> None:  # noqa: F811
    rig.services["dhcp_scheduler"].per_network = 2
    for host in ("dhcp-1", "dhcp-2"):
        await rig.report(host, "DHCP agent", start=True)
    network_id = await _network_with_dhcp(rig)
    ports = await _dhcp_ports(rig, network_id)
    assert sorted(p["binding:host_id"] for p in ports) == ["dhcp-1", "dhcp-2"]
    moving = next(p for p in ports if p["binding:host_id"] == "dhcp-1")

    # dhcp-1 dies; dhcp-3 appears and takes its network and its port (same address).
    rig.clock.advance(30)
    await rig.report("dhcp-2", "DHCP agent")
    await rig.report("dhcp-3", "DHCP agent", start=True)
    await rig.services["dhcp_scheduler"].reschedule_from_down_agents()
    ports = {p["binding:host_id"]: p for p in await _dhcp_ports(rig, network_id)}
    assert sorted(ports) == ["dhcp-2", "dhcp-3"]
    assert ports["dhcp-3"]["id"] == moving["id"]
    assert ports["dhcp-3"]["fixed_ips"] == moving["fixed_ips"]
    assert ports["dhcp-3"]["device_id"] == dhcp_device_id("dhcp-3", network_id)

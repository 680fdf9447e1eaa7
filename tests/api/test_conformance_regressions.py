"""Behaviours the official suites (tempest, neutron-tempest-plugin) check that no other module covers.

Each test names the suite test that found the difference; the full run is ``scripts/conformance.sh``
(results in docs/conformance.md).
"""

from __future__ import annotations

import ipaddress
import uuid

import httpx

from tests.support.neutron_http import created


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ports_take_addresses_from_the_subnet_serving_their_device_owner(adm: httpx.Client) -> None:
    # SubnetServiceTypeTestJSON.test_allocate_ips_are_from_correct_subnet: "test:type_1" is a valid
    # service type in Neutron (its prefix check accepts any first letter of "compute:").
    net = created(adm.post("/networks", json={"network": {"name": _name("svc-types")}}), "network")
    try:
        cidrs = {}
        for owner, cidr in (("test:type_1", "192.168.201.0/24"), ("test:type_2", "192.168.202.0/24")):
            created(adm.post("/subnets", json={"subnet": {
                "network_id": net["id"], "ip_version": 4, "cidr": cidr,
                "service_types": [owner, "network:distributed"]}}), "subnet")
            cidrs[owner] = ipaddress.ip_network(cidr)
        for owner, cidr in cidrs.items():
            port = created(adm.post("/ports", json={"port": {"network_id": net["id"], "device_owner": owner}}), "port")
            [fixed] = port["fixed_ips"]
            assert ipaddress.ip_address(fixed["ip_address"]) in cidr, (owner, fixed)
    finally:
        for port in adm.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
            adm.delete(f"/ports/{port['id']}")
        adm.delete(f"/networks/{net['id']}")


def test_agent_type_filter_ignores_case_as_neutrons_mysql_does(adm: httpx.Client) -> None:
    # tempest's DHCPAgentSchedulersTestJSON and PortsTestJSON.test_port_shut_down look for
    # agent_type "DHCP Agent" and skip when nothing answers; Neutron's agent is "DHCP agent".
    agents = adm.get("/agents").json()["agents"]
    assert agents, "the all-in-one server runs agents"
    kind = agents[0]["agent_type"]
    exact = adm.get("/agents", params={"agent_type": kind}).json()["agents"]
    assert exact and {a["agent_type"] for a in exact} == {kind}
    for spelling in (kind.upper(), kind.swapcase()):
        assert adm.get("/agents", params={"agent_type": spelling}).json()["agents"] == exact

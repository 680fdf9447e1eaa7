"""Routers through the whole stack: API -> server -> bus -> l3 and l2 roles -> kernel -> packets.

A network node (a simulated host whose agent runs the ``l2`` and ``l3`` roles) hosts every router;
instances live on the compute hosts ``h1``/``h2``. Routing, SNAT and floating IPs are proven with
packets between instances and an "outside" namespace on the physical segment (which has no route
to any project subnet, so an answer proves the NAT); router namespaces and devices are read back
with iproute2, never with the agent's own view.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fullstack.deployment import PHYSNET, Deployment, Instance
from tests.fullstack.networking_api import ApiError, NetworkingApi
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.underlay import in_netns, ip, links, namespace_exists

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]

NETWORK_NODE = "net"


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@pytest.fixture(scope="module")
def network_node(deployment: Deployment) -> str:
    """The host running the l3 role (added once; the deployment's teardown cleans it up)."""
    if NETWORK_NODE not in deployment.agents:
        deployment.add_host(NETWORK_NODE, roles="l2,l3")
    name = deployment.host(NETWORK_NODE).name
    wait_until("the L3 agent reporting", lambda: any(
        a["agent_type"] == "L3 agent" and a["alive"] for a in deployment.api().agents(host=name)))
    return name


@dataclass
class Routers:
    """Routers a test makes; ``close`` takes them apart (floating IPs, gateway, interfaces) even on failure."""

    deployment: Deployment
    made: list[tuple[str, str]] = field(default_factory=list)  # (router id, cloud)
    floating_ips: list[str] = field(default_factory=list)

    def api(self, cloud: str = "neutrino-demo") -> NetworkingApi:
        return self.deployment.api(cloud)

    def create(self, label: str, *, cloud: str = "neutrino-demo", **attrs: Any) -> dict[str, Any]:
        router = self.api(cloud).request("POST", "/routers", json={"router": {
            "name": self.deployment.unique(label), **attrs}})["router"]
        self.made.append((router["id"], cloud))
        return router

    def add_interface(self, router_id: str, subnet_id: str, cloud: str = "neutrino-demo") -> dict[str, Any]:
        return self.api(cloud).request("PUT", f"/routers/{router_id}/add_router_interface",
                                       json={"subnet_id": subnet_id})

    def remove_interface(self, router_id: str, subnet_id: str, cloud: str = "neutrino-demo") -> None:
        self.api(cloud).request("PUT", f"/routers/{router_id}/remove_router_interface", json={"subnet_id": subnet_id})

    def delete(self, router_id: str, cloud: str = "neutrino-demo") -> None:
        self.api(cloud).request("DELETE", f"/routers/{router_id}", expect=(204, 404))
        self.made = [(r, c) for r, c in self.made if r != router_id]

    def floating_ip(self, network_id: str, port_id: str) -> dict[str, Any]:
        fip = self.api().request("POST", "/floatingips", json={"floatingip": {
            "floating_network_id": network_id, "port_id": port_id}})["floatingip"]
        self.floating_ips.append(fip["id"])
        return fip

    def close(self) -> None:
        admin = self.api("neutrino-admin")
        for fip_id in self.floating_ips:
            with contextlib.suppress(ApiError):
                admin.request("DELETE", f"/floatingips/{fip_id}", expect=(204, 404))
        for router_id, _ in self.made:
            with contextlib.suppress(ApiError):
                admin.request("PUT", f"/routers/{router_id}", json={"router": {"external_gateway_info": None}})
            with contextlib.suppress(ApiError):
                for port in admin.ports(device_id=router_id, device_owner="network:router_interface"):
                    admin.request("PUT", f"/routers/{router_id}/remove_router_interface",
                                  json={"port_id": port["id"]})
            with contextlib.suppress(ApiError):
                admin.request("DELETE", f"/routers/{router_id}", expect=(204, 404))
        self.made.clear()


@pytest.fixture
def routers(deployment: Deployment, scenario: Scenario) -> Iterator[Routers]:
    made = Routers(deployment)
    try:
        yield made
    finally:
        made.close()  # before the scenario deletes the networks


def reaches(deployment: Deployment, source: Instance, address: str, timeout: float = 20) -> bool:
    """Ping until answered: the other hosts learn where a router port lives (l2 population) a moment
    after it went ACTIVE, and a failed ARP answers the first pings with "unreachable" at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if deployment.ping(source, address, deadline=2).received == 1:
            return True
    return False


def router_devices(router_id: str) -> dict[str, dict[str, Any]]:
    namespace = f"qrouter-{router_id}"
    return links(namespace) if namespace_exists(namespace) else {}


def addresses(namespace: str, device: str) -> set[str]:
    out = json.loads(ip("-n", namespace, "-j", "address", "show", "dev", device).stdout or "[]")
    return {f"{i['local']}/{i['prefixlen']}" for link in out for i in link.get("addr_info", ())}


def interface_ports(deployment: Deployment, router_id: str) -> list[dict[str, Any]]:
    return deployment.api().ports(device_id=router_id, device_owner="network:router_interface")


def test_router_connects_two_subnets_and_takes_its_interfaces_away_again(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    left, left_subnet = scenario.network("left", "10.87.1.0/24")
    right, right_subnet = scenario.network("right", "10.87.2.0/24")
    a, b = scenario.instances_of([InstanceSpec("left-a", left["id"], "h1"),
                                  InstanceSpec("right-b", right["id"], "h2")])
    # Without a router the two subnets do not reach each other.
    assert deployment.unreachable(a, b.ip_address).received == 0

    router = routers.create("r-two")
    routers.add_interface(router["id"], left_subnet["id"])
    routers.add_interface(router["id"], right_subnet["id"])
    ports = interface_ports(deployment, router["id"])
    assert len(ports) == 2
    for port in ports:  # bound to the network node, wired by its L2 role, reported up
        assert deployment.api().wait_port_status(port["id"], "ACTIVE")["binding:host_id"] == network_node

    assert reaches(deployment, a, b.ip_address)
    assert reaches(deployment, b, a.ip_address)
    devices = router_devices(router["id"])
    by_port = {p["fixed_ips"][0]["subnet_id"]: p for p in ports}
    for subnet, port in ((left_subnet, by_port[left_subnet["id"]]), (right_subnet, by_port[right_subnet["id"]])):
        device = devices[f"qr-{port['id'][:11]}"]
        assert device["address"] == port["mac_address"]
        assert f"{subnet['gateway_ip']}/24" in addresses(f"qrouter-{router['id']}", device["ifname"])
    assert in_netns(f"qrouter-{router['id']}", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    host_links = links(deployment.host(NETWORK_NODE).netns)
    assert host_links[f"tap{by_port[right_subnet['id']]['id'][:11]}"]["master"] == f"brq{right['id'][:11]}"

    # An admin-down router keeps its ports plumbed (still ACTIVE) but forwards nothing.
    routers.api().request("PUT", f"/routers/{router['id']}", json={"router": {"admin_state_up": False}})
    wait_until("the router ends going down", lambda: not any(
        "UP" in d["flags"] for name, d in router_devices(router["id"]).items() if name.startswith("qr-")))
    assert deployment.unreachable(a, b.ip_address).received == 0
    assert all(deployment.api().port(p["id"])["status"] == "ACTIVE" for p in ports)
    routers.api().request("PUT", f"/routers/{router['id']}", json={"router": {"admin_state_up": True}})
    assert reaches(deployment, a, b.ip_address)

    # Removing an interface removes its device (and the tap with it); the subnets are apart again.
    routers.remove_interface(router["id"], right_subnet["id"])
    right_device = f"qr-{by_port[right_subnet['id']]['id'][:11]}"
    wait_until("the qr- device going", lambda: right_device not in router_devices(router["id"]))
    assert f"qr-{by_port[left_subnet['id']]['id'][:11]}" in router_devices(router["id"])
    assert f"tap{by_port[right_subnet['id']]['id'][:11]}" not in links(deployment.host(NETWORK_NODE).netns)
    assert deployment.unreachable(a, b.ip_address).received == 0

    # Deleting the router removes its namespace.
    routers.remove_interface(router["id"], left_subnet["id"])
    routers.delete(router["id"])
    wait_until("the router namespace going", lambda: not namespace_exists(f"qrouter-{router['id']}"))


def test_snat_reaches_the_outside_and_a_floating_ip_is_reachable_from_it(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("ext", "198.51.100.1/24")
    try:
        external, _ = scenario.network(
            "external", "198.51.100.0/24", cloud="neutrino-admin",
            subnet={"gateway_ip": "198.51.100.1",
                    "allocation_pools": [{"start": "198.51.100.10", "end": "198.51.100.99"}]},
            **{"router:external": True, "provider:network_type": "flat", "provider:physical_network": PHYSNET})
        inside, inside_subnet = scenario.network("inside", "10.88.0.0/24")
        (a,) = scenario.instances_of([InstanceSpec("inside-a", inside["id"], "h1")])

        router = routers.create("r-gw", external_gateway_info={"network_id": external["id"]})
        routers.add_interface(router["id"], inside_subnet["id"])
        gateway = deployment.api().ports(device_id=router["id"], device_owner="network:router_gateway")[0]
        for port in [gateway, *interface_ports(deployment, router["id"])]:
            deployment.api().wait_port_status(port["id"], "ACTIVE")
        gateway_ip = gateway["fixed_ips"][0]["ip_address"]
        namespace = f"qrouter-{router['id']}"
        routes = in_netns(namespace, "ip", "route", "show", "default").stdout
        assert f"via 198.51.100.1 dev qg-{gateway['id'][:11]}" in routes

        # SNAT: the outside has no route to 10.88.0.0/24, so only a translated ping is answered.
        assert reaches(deployment, a, "198.51.100.1")
        conntrack = in_netns(namespace, "conntrack", "-L", "-p", "icmp").stdout
        assert f"src=198.51.100.1 dst={gateway_ip}" in conntrack, conntrack
        # (What makes the answered ping proof of SNAT: the outside has no way back to 10.88.0.0/24.)
        no_route = in_netns(outside, "ip", "route", "get", a.ip_address)
        assert no_route.returncode != 0 and "Network is unreachable" in no_route.stderr, no_route

        # A floating IP: reachable from the outside, mapped 1:1 onto the instance.
        fip = routers.floating_ip(external["id"], a.port_id)
        address = fip["floating_ip_address"]
        wait_until("the floating IP going ACTIVE", lambda: routers.api().request(
            "GET", f"/floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE")
        answer = in_netns(outside, "ping", "-n", "-c", "1", "-w", "5", address)
        assert answer.returncode == 0, answer.stdout
        # ... and the instance's own traffic now leaves as the floating IP.
        assert reaches(deployment, a, "198.51.100.1")
        conntrack = in_netns(namespace, "conntrack", "-L", "-p", "icmp").stdout
        assert f"src=198.51.100.1 dst={address}" in conntrack, conntrack
    finally:
        deployment.underlay.remove_outside(outside)

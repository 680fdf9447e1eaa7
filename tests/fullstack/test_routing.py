"""Routers through the whole stack: API -> server -> bus -> l3 and l2 roles -> kernel -> packets.

A network node (a simulated host whose agent runs the ``l2`` and ``l3`` roles) hosts every router;
instances live on the compute hosts ``h1``/``h2``. Routing, SNAT and floating IPs are proven with
packets between instances and an "outside" namespace on the physical segment (which has no route
to any project subnet, so an answer proves the NAT); router namespaces and devices are read back
with iproute2, never with the agent's own view.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from neutrino.bus.factory import build_bus
from tests.fullstack.deployment import PHYSNET, Deployment, Instance, agent_time
from tests.fullstack.networking_api import ApiError, NetworkingApi
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.underlay import in_netns, ip, links, namespace_exists
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]

NETWORK_NODE = "net"


@pytest.fixture(scope="module")
def network_node(deployment: Deployment) -> str:
    """The host running the l3 role, and metering beside it (added once; the deployment's teardown cleans it up)."""
    if NETWORK_NODE not in deployment.agents:
        deployment.add_host(NETWORK_NODE, roles="l2,l3,metering")
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

    def wired_to(self, label: str, external: dict[str, Any], subnet: dict[str, Any]) -> tuple[dict[str, Any],
                                                                                            dict[str, Any]]:
        """A router with a gateway on ``external`` and an interface on ``subnet``, its ports ACTIVE;
        returns (router, gateway port)."""
        router = self.create(label, external_gateway_info={"network_id": external["id"]})
        self.add_interface(router["id"], subnet["id"])
        api = self.deployment.api()
        gateway = api.ports(device_id=router["id"], device_owner="network:router_gateway")[0]
        for port in [gateway, *interface_ports(self.deployment, router["id"])]:
            api.wait_port_status(port["id"], "ACTIVE")
        return router, gateway

    def close(self) -> None:
        admin = self.api("neutrino-admin")
        for fip_id in self.floating_ips:
            with contextlib.suppress(ApiError):
                # A floating IP with port forwardings cannot be deleted (409), as in Neutron.
                forwardings = f"/floatingips/{fip_id}/port_forwardings"
                for pf in admin.request("GET", forwardings)["port_forwardings"]:
                    admin.request("DELETE", f"{forwardings}/{pf['id']}", expect=(204, 404))
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


def router_ns(router_id: str) -> str:
    """The router's namespace on the host serving it (each agent prefixes its own with its host name)."""
    suffix = f"qrouter-{router_id}"
    found = sorted(n for n in os.listdir("/run/netns") if n.endswith(suffix)) if os.path.isdir("/run/netns") else []
    return found[0] if found else suffix


def router_devices(router_id: str) -> dict[str, dict[str, Any]]:
    namespace = router_ns(router_id)
    return links(namespace) if namespace_exists(namespace) else {}


def addresses(namespace: str, device: str) -> set[str]:
    out = json.loads(ip("-n", namespace, "-j", "address", "show", "dev", device).stdout or "[]")
    return {f"{i['local']}/{i['prefixlen']}" for link in out for i in link.get("addr_info", ())}


def interface_ports(deployment: Deployment, router_id: str) -> list[dict[str, Any]]:
    return deployment.api().ports(device_id=router_id, device_owner="network:router_interface")


def external_network(scenario: Scenario, label: str, prefix: str) -> dict[str, Any]:
    """A flat external network ``<prefix>.0/24`` on the physical segment, its gateway ``<prefix>.1``
    (an outside namespace's address), floating IPs from ``<prefix>.10``-``.99``."""
    network, _ = scenario.network(
        label, f"{prefix}.0/24", cloud="neutrino-admin",
        subnet={"gateway_ip": f"{prefix}.1", "allocation_pools": [{"start": f"{prefix}.10", "end": f"{prefix}.99"}]},
        **{"router:external": True, "provider:network_type": "flat", "provider:physical_network": PHYSNET})
    return network


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
        assert f"{subnet['gateway_ip']}/24" in addresses(router_ns(router['id']), device["ifname"])
    assert in_netns(router_ns(router['id']), "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
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
    wait_until("the router namespace going", lambda: not namespace_exists(router_ns(router['id'])))


def test_snat_reaches_the_outside_and_a_floating_ip_is_reachable_from_it(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("ext", "198.51.100.1/24")
    try:
        external = external_network(scenario, "external", "198.51.100")
        inside, inside_subnet = scenario.network("inside", "10.88.0.0/24")
        (a,) = scenario.instances_of([InstanceSpec("inside-a", inside["id"], "h1")])

        router, gateway = routers.wired_to("r-gw", external, inside_subnet)
        gateway_ip = gateway["fixed_ips"][0]["ip_address"]
        namespace = router_ns(router['id'])
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


ECHO_PEER = str(Path(__file__).with_name("echo_peer.py"))


@contextlib.contextmanager
def echo_service(netns: str, *specs: str) -> Iterator[None]:
    """``echo_peer.py serve`` inside ``netns`` (answers "<port> <peer address>"); killed on exit."""
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, ECHO_PEER, "serve", *specs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
        yield
    finally:
        proc.kill()
        proc.wait(timeout=10)


def ask(netns: str, proto: str, address: str, port: int) -> str | None:
    """One request to the echo service at address:port from ``netns``: its answer, or None."""
    ran = in_netns(netns, sys.executable, ECHO_PEER, "ask", proto, address, str(port))
    return ran.stdout.strip() if ran.returncode == 0 else None


def answer_of(netns: str, proto: str, address: str, port: int, timeout: float = 30) -> str:
    """Ask until answered (router ports, l2 population and NAT come up a moment after the API call)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = ask(netns, proto, address, port)
        if got is not None:
            return got
    raise AssertionError(f"{proto} {address}:{port} did not answer {netns} within {timeout}s")


def neighbour_mac(netns: str, address: str) -> str | None:
    out = json.loads(ip("-n", netns, "-j", "neigh", "show", address).stdout or "[]")
    return out[0].get("lladdr") if out else None


def nat_table(router_id: str) -> str:
    return in_netns(router_ns(router_id), "nft", "list", "table", "ip", "neutrino-nat").stdout


def test_port_forwardings_hairpin_and_gratuitous_arp(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("pf-ext", "203.0.113.1/24")
    try:
        external = external_network(scenario, "pf-external", "203.0.113")
        inside, inside_subnet = scenario.network("pf-inside", "10.89.0.0/24")
        a, b = scenario.instances_of([InstanceSpec("pf-a", inside["id"], "h1"),
                                      InstanceSpec("pf-b", inside["id"], "h2")])
        router, gateway = routers.wired_to("r-pf", external, inside_subnet)
        gateway_ip = gateway["fixed_ips"][0]["ip_address"]
        api = routers.api()

        # Gratuitous ARP: the outside holds a wrong entry for the floating IP; associating it makes
        # the router announce the address, and the entry points to the gateway port without any
        # traffic from the outside.
        fip_b = api.request("POST", "/floatingips", json={"floatingip": {
            "floating_network_id": external["id"]}})["floatingip"]
        routers.floating_ips.append(fip_b["id"])
        address_b = fip_b["floating_ip_address"]
        ip("-n", outside, "neigh", "replace", address_b, "lladdr", "02:00:5e:00:53:01", "dev", "eth0", "nud", "stale")
        api.request("PUT", f"/floatingips/{fip_b['id']}", json={"floatingip": {"port_id": b.port_id}})
        wait_until("the outside learning the floating IP's MAC from the gratuitous ARP",
                   lambda: neighbour_mac(outside, address_b) == gateway["mac_address"])

        # Port forwardings on a second floating IP, to services in instance a.
        fip_pf = api.request("POST", "/floatingips", json={"floatingip": {
            "floating_network_id": external["id"]}})["floatingip"]
        routers.floating_ips.append(fip_pf["id"])
        address = fip_pf["floating_ip_address"]
        forwardings = f"/floatingips/{fip_pf['id']}/port_forwardings"

        def forward(protocol: str, internal: str, external_ports: str) -> dict[str, Any]:
            return api.request("POST", forwardings, json={"port_forwarding": {
                "protocol": protocol, "internal_port_id": a.port_id, "internal_ip_address": a.ip_address,
                "internal_port_range": internal, "external_port_range": external_ports}})["port_forwarding"]

        with echo_service(a.namespace, "tcp:22", "udp:53", "tcp:4000", "tcp:4001", "tcp:4002"), \
                echo_service(b.namespace, "tcp:7000"):
            ssh = forward("tcp", "22", "2222")
            forward("udp", "53", "5353")
            forward("tcp", "4000:4002", "3000:3002")
            wait_until("the forwarding floating IP going ACTIVE", lambda: api.request(
                "GET", f"/floatingips/{fip_pf['id']}")["floatingip"]["status"] == "ACTIVE")
            # From the outside: each forwarding reaches its internal port; the service sees the real client.
            assert answer_of(outside, "tcp", address, 2222) == "22 203.0.113.1"
            assert answer_of(outside, "udp", address, 5353) == "53 203.0.113.1"
            assert [answer_of(outside, "tcp", address, p) for p in (3000, 3001, 3002)] == \
                ["4000 203.0.113.1", "4001 203.0.113.1", "4002 203.0.113.1"]
            # The floating IP's own 1:1 NAT still works beside the forwardings.
            assert answer_of(outside, "tcp", address_b, 7000) == "7000 203.0.113.1"

            # Hairpin: behind the same router, b reaches a's forwarding and a reaches b's floating IP;
            # each sees the other as from the outside (b by its floating IP, a by the router's gateway).
            assert answer_of(b.namespace, "tcp", address, 2222) == f"22 {address_b}"
            assert answer_of(a.namespace, "tcp", address_b, 7000) == f"7000 {gateway_ip}"
            assert reaches(deployment, a, address_b)

            # Changing a forwarding moves it; the old external port is the router's own again (refused).
            api.request("PUT", f"{forwardings}/{ssh['id']}", json={"port_forwarding": {"external_port": 2223}})
            wait_until("the forwarding moving", lambda: "dport 2223" in nat_table(router["id"])
                       and "dport 2222" not in nat_table(router["id"]))
            assert answer_of(outside, "tcp", address, 2223) == "22 203.0.113.1"
            assert ask(outside, "tcp", address, 2222) is None

            # Deleting every forwarding stops them and takes the address off the gateway.
            for pf in api.request("GET", forwardings)["port_forwardings"]:
                api.request("DELETE", f"{forwardings}/{pf['id']}", expect=(204,))
            qg = f"qg-{gateway['id'][:11]}"
            wait_until("the forwarding address and rules leaving the router", lambda: f"{address}/32" not in addresses(
                router_ns(router['id']), qg) and "dport" not in nat_table(router["id"]))
            assert api.request("GET", f"/floatingips/{fip_pf['id']}")["floatingip"]["status"] == "DOWN"
            assert ask(outside, "tcp", address, 2223) is None
            assert answer_of(outside, "tcp", address_b, 7000) == "7000 203.0.113.1"
    finally:
        deployment.underlay.remove_outside(outside)


def router_status(routers: Routers, router_id: str) -> str:
    return str(routers.api().request("GET", f"/routers/{router_id}")["router"]["status"])


def test_a_router_whose_wiring_fails_is_error_with_the_reason_and_active_once_wired(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    inside, inside_subnet = scenario.network("st-inside", "10.86.0.0/24")
    router = routers.create("r-status")
    port = routers.api().request("POST", "/ports", json={"port": {"network_id": inside["id"], "fixed_ips": [
        {"subnet_id": inside_subnet["id"], "ip_address": inside_subnet["gateway_ip"]}]}})["port"]
    # Something not Neutrino's holds the name the router port's host end needs on the network node.
    host_netns = deployment.host(NETWORK_NODE).netns
    squatter = f"tap{port['id'][:11]}"
    ip("-n", host_netns, "link", "add", squatter, "type", "bridge")  # (this kernel has no dummy devices)
    try:
        routers.api().request("PUT", f"/routers/{router['id']}/add_router_interface", json={"port_id": port["id"]})
        wait_until("the router going ERROR", lambda: router_status(routers, router["id"]) == "ERROR")

        def reported_reason() -> str | None:
            agent = next(a for a in deployment.api().agents(host=network_node) if a["agent_type"] == "L3 agent")
            return agent["configurations"]["reconciler"]["failed_objects"].get(router["id"])

        wait_until("the agent reporting why", lambda: reported_reason() is not None)
        assert squatter in str(reported_reason()), reported_reason()
        assert router["id"] in deployment.agents[NETWORK_NODE].log_tail(400)
    finally:
        ip("-n", host_netns, "link", "del", squatter, check=False)
    # The name free again, the agent's retry wires the router.
    wait_until("the router going ACTIVE", lambda: router_status(routers, router["id"]) == "ACTIVE", timeout=90)
    deployment.api().wait_port_status(port["id"], "ACTIVE")
    assert f"qr-{port['id'][:11]}" in router_devices(router["id"])


def radvd_pids(router_id: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", f"radvd.*{router_id}"], capture_output=True, text=True,
                          check=False).stdout.split()


def test_an_ipv6_slaac_instance_configures_itself_from_the_router_and_reaches_the_outside(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("v6-ext", "198.18.0.1/24")
    try:
        ip("-n", outside, "address", "add", "2001:db8:e::1/64", "dev", "eth0", "nodad")
        external = external_network(scenario, "v6-external", "198.18.0")
        deployment.api().create_subnet(external["id"], "2001:db8:e::/64", deployment.unique("v6-ext6"), ip_version=6,
                                       gateway_ip="2001:db8:e::1", enable_dhcp=False)
        demo = deployment.api("neutrino-demo")
        inside = demo.create_network(deployment.unique("v6-inside"))
        scenario.networks.append(inside["id"])
        # (Neutron refuses IPv6 modes on a subnet without DHCP; no DHCP agent runs here.)
        inside_subnet = demo.create_subnet(inside["id"], "2001:db8:5::/64", deployment.unique("v6-inside"),
                                           ip_version=6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
        (a,) = scenario.instances_of([InstanceSpec("v6-a", inside["id"], "h1")])
        router, gateway = routers.wired_to("r-v6", external, inside_subnet)
        gateway = deployment.api().port(gateway["id"]) or gateway
        gateway_v6 = next(ip["ip_address"] for ip in gateway["fixed_ips"] if ":" in ip["ip_address"])
        namespace = router_ns(router['id'])
        assert f"default via 2001:db8:e::1 dev qg-{gateway['id'][:11]}" in in_netns(
            namespace, "ip", "-6", "route", "show", "default").stdout
        # (radvd runs as two processes: the daemon and its privilege-separation helper.)
        wait_until("radvd running in the router namespace", lambda: radvd_pids(router["id"]) != [])
        assert router_status(routers, router["id"]) == "ACTIVE"

        # The instance forgets its static IPv6 set-up and solicits: the advertisement gives it back
        # its SLAAC address (the one the port holds), a default route via the router and the MTU.
        ip("-n", a.namespace, "-6", "address", "flush", "dev", "eth0", "scope", "global")
        ip("-n", a.namespace, "-6", "route", "flush", "default")
        in_netns(a.namespace, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.autoconf=1",
                 check=True)
        ip("-n", a.namespace, "link", "set", "eth0", "down")
        ip("-n", a.namespace, "link", "set", "eth0", "up")

        def slaac_address() -> bool:
            out = json.loads(ip("-n", a.namespace, "-6", "-j", "address", "show", "dev", "eth0", "scope",
                                "global").stdout or "[]")
            return any(i["local"] == a.ip_address and i.get("dynamic") for link in out for i in link["addr_info"])

        wait_until("the instance configuring its address from the router advertisement", slaac_address)
        assert "proto ra" in ip("-n", a.namespace, "-6", "route", "show", "default").stdout
        mtu = in_netns(a.namespace, "sysctl", "-n", "net.ipv6.conf.eth0.mtu").stdout.strip()
        assert mtu == str(deployment.api().network(inside["id"])["mtu"])

        # Routed, not translated: the outside routes the project prefix to the router's gateway address
        # and sees the instance's own address.
        ip("-n", outside, "-6", "route", "add", "2001:db8:5::/64", "via", gateway_v6)
        assert reaches(deployment, a, "2001:db8:e::1")
        answer = in_netns(outside, "ping", "-n", "-c", "1", "-w", "5", a.ip_address)
        assert answer.returncode == 0, answer.stdout

        # Restarting the agent leaves radvd alone: the same processes once the new agent has resynced.
        before = sorted(radvd_pids(router["id"]))
        agent = deployment.agents[NETWORK_NODE]
        agent.stop()
        agent.start()

        def resynced() -> bool:
            l3 = next(r for r in deployment.api().agents(host=network_node) if r["agent_type"] == "L3 agent")
            beat = agent_time(l3.get("heartbeat_timestamp"))
            reconciler = l3["configurations"]["reconciler"]
            return (beat is not None and beat >= agent.started_at and reconciler["full_resyncs"] >= 1
                    and reconciler["pending"] == 0)

        wait_until("the restarted agent's first full resync", resynced, timeout=60)
        assert sorted(radvd_pids(router["id"])) == before

        routers.close()
        wait_until("the router namespace going", lambda: not namespace_exists(namespace))
        assert radvd_pids(router["id"]) == []
    finally:
        deployment.underlay.remove_outside(outside)


def test_an_extra_route_with_two_nexthops_spreads_flows_over_both(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    left, left_subnet = scenario.network("ecmp-left", "10.85.1.0/24")
    right, right_subnet = scenario.network("ecmp-right", "10.85.2.0/24")
    client, hop_a, hop_b = scenario.instances_of([InstanceSpec("ecmp-c", left["id"], "h1"),
                                                  InstanceSpec("ecmp-a", right["id"], "h1"),
                                                  InstanceSpec("ecmp-b", right["id"], "h2")])
    router = routers.create("r-ecmp")
    routers.add_interface(router["id"], left_subnet["id"])
    routers.add_interface(router["id"], right_subnet["id"])
    routers.api().request("PUT", f"/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "10.99.85.0/24", "nexthop": hop_a.ip_address},
        {"destination": "10.99.85.0/24", "nexthop": hop_b.ip_address}]}})
    # The namespace's name carries its agent's prefix, found only once the agent has made it.
    wait_until("the router namespace", lambda: router_ns(router["id"]) != f"qrouter-{router['id']}")
    namespace = router_ns(router['id'])
    wait_until("the ECMP route", lambda: in_netns(namespace, "ip", "route", "show", "10.99.85.0/24").stdout.count(
        "nexthop via") == 2)
    assert reaches(deployment, client, hop_a.ip_address) and reaches(deployment, client, hop_b.ip_address)
    # Each nexthop counts what arrives for the routed prefix (it does not forward it further).
    for hop in (hop_a, hop_b):
        in_netns(hop.namespace, "nft", "add table ip ecmp; add chain ip ecmp pre { type filter hook prerouting "
                 "priority -300; }; add rule ip ecmp pre ip daddr 10.99.85.7 udp dport 9999 counter", check=True)
    sender = ("import socket\nfor _ in range(32):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "    s.sendto(b'x', ('10.99.85.7', 9999))\n    s.close()\n")
    in_netns(client.namespace, sys.executable, "-c", sender, check=True)

    def counted(hop: Instance) -> int:
        listing = json.loads(in_netns(hop.namespace, "nft", "-j", "list", "table", "ip", "ecmp").stdout)
        return sum(e["rule"]["expr"][-1]["counter"]["packets"] for e in listing["nftables"] if "rule" in e)

    wait_until("all 32 flows arriving", lambda: counted(hop_a) + counted(hop_b) == 32)
    assert counted(hop_a) > 0 and counted(hop_b) > 0, (counted(hop_a), counted(hop_b))


def test_a_conntrack_helper_lets_an_ftp_style_related_connection_through_snat(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("cth-ext", "198.18.1.1/24")
    try:
        external = external_network(scenario, "cth-external", "198.18.1")
        inside, inside_subnet = scenario.network("cth-inside", "10.84.0.0/24")
        (a,) = scenario.instances_of([InstanceSpec("cth-a", inside["id"], "h1")])
        router, _ = routers.wired_to("r-cth", external, inside_subnet)
        helpers = f"/routers/{router['id']}/conntrack_helpers"
        api = routers.api()

        def ftp_data() -> str | None:
            ran = in_netns(a.namespace, sys.executable, ECHO_PEER, "ftp-ask", "198.18.1.1", "21", a.ip_address,
                           "40021")
            return ran.stdout.strip() if ran.returncode == 0 else None

        with echo_service(outside, "ftp:21"):
            assert reaches(deployment, a, "198.18.1.1")
            # Without a helper the server is told to connect to the private address, which it cannot reach.
            assert ftp_data() is None
            # A disallowed helper is refused and changes nothing.
            with pytest.raises(ApiError, match="400"):
                api.request("POST", helpers, json={"conntrack_helper": {"protocol": "tcp", "port": 21,
                                                                         "helper": "tftp"}})
            made = api.request("POST", helpers, json={"conntrack_helper": {
                "protocol": "tcp", "port": 21, "helper": "ftp"}})["conntrack_helper"]
            assert api.request("GET", f"/routers/{router['id']}")["router"]["conntrack_helpers"] == [
                {"protocol": "tcp", "port": 21, "helper": "ftp"}]
            wait_until("the helper in the router namespace", lambda: 'ct helper set "ftp-tcp"' in nat_table(router["id"]))
            # With it the PORT command is rewritten to the gateway address and the data connection comes back in.
            assert ftp_data() == "data"
            api.request("DELETE", f"{helpers}/{made['id']}", expect=(204,))
            wait_until("the helper leaving", lambda: "ct helper" not in nat_table(router["id"]))
            assert ftp_data() is None
    finally:
        deployment.underlay.remove_outside(outside)


# ---- metering ----------------------------------------------------------------------------------------


class BusListener:
    """Every event on ``pattern`` of the deployment's bus, heard by a plain subscription of its own."""

    def __init__(self, bus_url: str, pattern: str) -> None:
        self.heard: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(bus_url, pattern), daemon=True)
        self._thread.start()
        assert self._ready.wait(60), "the test's bus listener did not connect"

    def _run(self, bus_url: str, pattern: str) -> None:
        async def main() -> None:
            bus = build_bus(bus_url, sender=f"test-listener-{os.getpid()}")
            await bus.start()

            async def heard(envelope: Any) -> None:
                self.heard.append(dict(envelope.payload))

            await bus.subscribe(pattern, heard)
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await bus.close()

        self._loop.run_until_complete(main())

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def meters(namespace: str) -> dict[str, tuple[int, int]]:
    """The metering table's named counters in a router namespace, read with nft itself."""
    out = in_netns(namespace, "nft", "-j", "list", "counters", "table", "inet", "neutrino-metering")
    if out.returncode != 0:
        return {}
    return {c["counter"]["name"]: (c["counter"]["packets"], c["counter"]["bytes"])
            for c in json.loads(out.stdout)["nftables"] if "counter" in c}


def has_metering_table(namespace: str) -> bool:
    return "neutrino-metering" in in_netns(namespace, "nft", "list", "tables").stdout


def label_bytes_in_metrics(deployment: Deployment, label_id: str) -> float:
    assert deployment.server is not None
    total = 0.0
    for line in httpx.get(f"{deployment.server.url}/metrics", timeout=30).text.splitlines():
        if line.startswith("neutrino_metering_label_bytes_total{") and f'label_id="{label_id}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


PING_PAYLOAD = 1000
PING_PACKET = PING_PAYLOAD + 8 + 20  # ICMP and IPv4 headers: what nftables counts of each echo
PINGS = 5


def test_metering_counts_a_labels_gateway_traffic_leaves_out_excluded_and_reports_on_the_bus(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("mtr-ext", "198.18.3.1/24")
    ip("-n", outside, "address", "add", "198.18.3.2/24", "dev", "eth0")
    admin = deployment.api("neutrino-admin")
    labels: list[str] = []
    listener = BusListener(deployment.bus_url, "metering.#")
    try:
        external = external_network(scenario, "mtr-external", "198.18.3")
        inside, inside_subnet = scenario.network("mtr-inside", "10.86.1.0/24")
        (a,) = scenario.instances_of([InstanceSpec("mtr-a", inside["id"], "h1")])
        router, gateway = routers.wired_to("mtr-r", external, inside_subnet)
        namespace = router_ns(router["id"])
        assert reaches(deployment, a, "198.18.3.1")
        # Another project's router on the same external network, with that project's own label.
        other = routers.create("mtr-other", cloud="neutrino-admin", external_gateway_info={"network_id": external["id"]})
        other_gateway = admin.ports(device_id=other["id"], device_owner="network:router_gateway")[0]
        admin.wait_port_status(other_gateway["id"], "ACTIVE")

        def label(project_id: str, *rules: dict[str, Any]) -> str:
            made = admin.request("POST", "/metering/metering-labels", json={"metering_label": {
                "name": deployment.unique("mtr"), "project_id": project_id}})["metering_label"]
            labels.append(made["id"])
            for rule in rules:
                admin.request("POST", "/metering/metering-label-rules", json={"metering_label_rule": {
                    "metering_label_id": made["id"], **rule}})
            return str(made["id"])

        mine = label(router["project_id"],
                     {"direction": "egress", "destination_ip_prefix": "198.18.3.0/24"},
                     {"direction": "egress", "destination_ip_prefix": "198.18.3.2/32", "excluded": True},
                     {"direction": "ingress", "source_ip_prefix": "198.18.3.0/24"})
        theirs = label(other["project_id"], {"direction": "egress", "destination_ip_prefix": "198.18.3.0/24"},
                       {"direction": "ingress", "source_ip_prefix": "198.18.3.0/24"})
        egress, ingress = f"m-{mine}-egress", f"m-{mine}-ingress"
        wait_until("the label's counters in the router", lambda: {egress, ingress} <= set(meters(namespace)))
        other_ns = router_ns(other["id"])
        wait_until("the other project's label in its router", lambda: f"m-{theirs}-egress" in meters(other_ns))
        # A label applies to its project's routers only.
        assert not any(theirs in name for name in meters(namespace))
        assert not any(mine in name for name in meters(other_ns))

        before = meters(namespace)
        sent = deployment.ping(a, "198.18.3.1", count=PINGS, interval=0.2, size=PING_PAYLOAD)
        assert sent.received == PINGS, sent
        counted = meters(namespace)
        assert counted[egress][1] - before[egress][1] >= PINGS * PING_PACKET
        assert counted[egress][0] - before[egress][0] >= PINGS
        assert counted[ingress][1] - before[ingress][1] >= PINGS * PING_PACKET
        # Excluded: echoes to 198.18.3.2 leave uncounted; their replies (ingress, not excluded) count.
        excluded = deployment.ping(a, "198.18.3.2", count=PINGS, interval=0.2, size=PING_PAYLOAD)
        assert excluded.received == PINGS, excluded
        after = meters(namespace)
        assert after[egress] == counted[egress]
        assert after[ingress][1] - counted[ingress][1] >= PINGS * PING_PACKET
        # The other project's label saw none of it.
        assert meters(other_ns)[f"m-{theirs}-egress"] == (0, 0)

        # A rule change rewrites the chains around the counters: what they counted stays.
        admin.request("POST", "/metering/metering-label-rules", json={"metering_label_rule": {
            "metering_label_id": mine, "direction": "ingress", "source_ip_prefix": "203.0.113.0/24",
            "excluded": True}})
        wait_until("the new rule in the label's chain", lambda: "203.0.113.0/24" in in_netns(
            namespace, "nft", "list", "chain", "inet", "neutrino-metering", f"label-{mine}").stdout)
        assert meters(namespace)[egress][1] >= after[egress][1]

        # The reports: Neutron's l3.meter notification per label, with what was counted.
        total = (after[egress][1] - before[egress][1]) + (after[ingress][1] - before[ingress][1])

        def reported() -> int:
            return sum(m["payload"]["bytes"] for m in list(listener.heard)
                       if m.get("event_type") == "l3.meter" and m["payload"].get("label_id") == mine)

        wait_until("reports of the label's traffic on the bus", lambda: reported() >= total)
        report = next(m for m in listener.heard if m["payload"].get("label_id") == mine)
        assert report["publisher_id"] == f"metering.{network_node}"
        assert {"pkts", "bytes", "time", "first_update", "last_update", "label_id", "project_id",
                "tenant_id", "host"} <= set(report["payload"])
        assert report["payload"]["project_id"] == router["project_id"]
        assert report["payload"]["host"] == network_node
        # The server heard them too and counts them per label in /metrics.
        wait_until("the label's bytes in /metrics", lambda: label_bytes_in_metrics(deployment, mine) >= total)
        agent = next(x for x in deployment.api().agents(host=network_node) if x["agent_type"] == "Metering agent")
        assert agent["binary"] == "neutrino-metering-agent" and agent["alive"]

        # A router without a gateway has nothing to meter: its table goes, its namespace stays.
        admin.request("PUT", f"/routers/{other['id']}", json={"router": {"external_gateway_info": None}})
        wait_until("the table of the router without gateway gone", lambda: not has_metering_table(other_ns))
        assert namespace_exists(other_ns)
        # Deleting the labels takes the tables away.
        for label_id in labels:
            admin.request("DELETE", f"/metering/metering-labels/{label_id}", expect=(204,))
        labels.clear()
        wait_until("no metering table left", lambda: not has_metering_table(namespace))
    finally:
        for label_id in labels:
            with contextlib.suppress(ApiError):
                admin.request("DELETE", f"/metering/metering-labels/{label_id}", expect=(204, 404))
        listener.close()
        deployment.underlay.remove_outside(outside)

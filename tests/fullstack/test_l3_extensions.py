"""The L3 role's extensions through the whole stack, with packets: floating IP and gateway IP
bandwidth limits (``qos-fip``, ``qos-gateway-ip``) and NDP proxies (``l3-ndp-proxy``,
``l3-ext-ndp-proxy``).

The routers, the network node and the outside namespace come from ``test_routing``'s fixtures and
helpers (one deployment for every fullstack module). Throughput is TCP for 3 s, measured by the
receiver (``tests/support/throughput.py``); a limit holds when the rate is within 20% of it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

import pytest

from tests.fullstack import test_routing
from tests.fullstack.deployment import PHYSNET, Deployment
from tests.fullstack.networking_api import ApiError
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.test_routing import Routers, external_network, reaches, router_ns
from tests.fullstack.underlay import in_netns, ip
from tests.support import throughput
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]

# The routing tests' fixtures: the network node (its l3 role serves every router) and the routers a
# test makes, taken apart after it.
network_node = test_routing.network_node
routers = test_routing.routers
RECEIVE = throughput.receiver(65536)
SEND = throughput.sender(65536, connect_timeout=5)
LIMIT_KBPS = 10_000


def _stream(listener_ns: str, listener: str, listen: str, connector_ns: str, connector: str, target: str,
            measured_by_listener: bool) -> float:
    """Runs a listening script (it prints "ready"), then a connecting one; the Mbit/s one of them printed."""
    listening = subprocess.Popen(["ip", "netns", "exec", listener_ns, sys.executable, "-c", listener, listen],
                                 stdout=subprocess.PIPE, text=True)
    try:
        assert listening.stdout is not None and listening.stdout.readline() == "ready\n"
        connected = in_netns(connector_ns, sys.executable, "-c", connector, target, timeout=60)
        assert connected.returncode == 0, connected.stderr
        out, _ = listening.communicate(timeout=30)
        return float((out if measured_by_listener else connected.stdout).strip())
    finally:
        if listening.poll() is None:
            listening.kill()
            listening.wait()


def mbits(receiver_ns: str, listen: str, sender_ns: str, target: str) -> float:
    """Mbit/s a TCP stream from ``sender_ns`` to ``target`` delivers to ``listen`` in ``receiver_ns``."""
    return _stream(receiver_ns, RECEIVE, listen, sender_ns, SEND, target, True)


def downloaded(server_ns: str, server: str, client_ns: str) -> float:
    """Mbit/s ``client_ns`` receives on a connection it opens to ``server`` (which sends)."""
    return _stream(server_ns, throughput.DOWNLOAD_SERVER, server, client_ns, throughput.DOWNLOAD, server, False)


def limited(rate: float) -> bool:
    return abs(rate - LIMIT_KBPS / 1000) <= LIMIT_KBPS / 1000 * 0.2


def shaped_addresses(router_id: str, device: str) -> set[str]:
    """Addresses with a u32 filter on the device's egress (read with tc, not from the agent)."""
    out = json.loads(in_netns(router_ns(router_id), "tc", "-j", "filter", "show", "dev", device).stdout or "[]")
    return {".".join(str(int(m["value"], 16) >> s & 255) for s in (24, 16, 8, 0))
            for f in out if (m := (f.get("options") or {}).get("match"))}


def policy_of(deployment: Deployment, label: str) -> dict[str, Any]:
    """An admin QoS policy limiting both directions to ``LIMIT_KBPS``."""
    api = deployment.api()
    policy = api.request("POST", "/qos/policies", json={"policy": {
        "name": deployment.unique(label), "shared": True}})["policy"]
    for direction in ("egress", "ingress"):
        api.request("POST", f"/qos/policies/{policy['id']}/bandwidth_limit_rules", json={"bandwidth_limit_rule": {
            "max_kbps": LIMIT_KBPS, "max_burst_kbps": LIMIT_KBPS // 10, "direction": direction}})
    return policy


def test_floating_ip_and_gateway_ip_bandwidth_limits_hold_both_ways_and_lift_with_the_policy(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    outside = deployment.underlay.add_outside("qos-ext", "198.51.101.1/24")
    policy = None
    try:
        external = external_network(scenario, "qos-external", "198.51.101")
        inside, inside_subnet = scenario.network("qos-inside", "10.89.0.0/24")
        a, b = scenario.instances_of([InstanceSpec("qos-a", inside["id"], "h1"),
                                      InstanceSpec("qos-b", inside["id"], "h2")])
        router, gateway = routers.wired_to("r-qos", external, inside_subnet)
        device = f"qg-{gateway['id'][:11]}"
        fip_a = routers.floating_ip(external["id"], a.port_id)
        fip_b = routers.floating_ip(external["id"], b.port_id)
        api = routers.api()
        for fip in (fip_a, fip_b):
            wait_until("the floating IP going ACTIVE", lambda fip=fip: api.request(
                "GET", f"/floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE")
        policy = policy_of(deployment, "fip-limit")

        # The policy on a's floating IP: a's traffic is limited both ways, b's (same router) is not.
        api.request("PUT", f"/floatingips/{fip_a['id']}", json={"floatingip": {"qos_policy_id": policy["id"]}})
        wait_until("the floating IP's limit on the gateway",
                   lambda: shaped_addresses(router["id"], device) == {fip_a["floating_ip_address"]})
        out_a = mbits(outside, "198.51.101.1", a.namespace, "198.51.101.1")
        in_a = mbits(a.namespace, a.ip_address, outside, fip_a["floating_ip_address"])
        out_b = mbits(outside, "198.51.101.1", b.namespace, "198.51.101.1")
        in_b = mbits(b.namespace, b.ip_address, outside, fip_b["floating_ip_address"])
        assert limited(out_a) and limited(in_a), (out_a, in_a)
        assert out_b > 3 * LIMIT_KBPS / 1000 and in_b > 3 * LIMIT_KBPS / 1000, (out_b, in_b)
        l3 = next(r for r in deployment.api().agents(host=network_node) if r["agent_type"] == "L3 agent")
        assert "fip_qos" in l3["configurations"]["extensions"]

        # Without the policy the limit is gone.
        api.request("PUT", f"/floatingips/{fip_a['id']}", json={"floatingip": {"qos_policy_id": None}})
        wait_until("the floating IP's limit going", lambda: shaped_addresses(router["id"], device) == set())
        out_a, in_a = (mbits(outside, "198.51.101.1", a.namespace, "198.51.101.1"),
                       mbits(a.namespace, a.ip_address, outside, fip_a["floating_ip_address"]))
        assert out_a > 3 * LIMIT_KBPS / 1000 and in_a > 3 * LIMIT_KBPS / 1000, (out_a, in_a)

        # The gateway IP's policy limits SNAT traffic (a without its floating IP), not b's floating IP.
        api.request("DELETE", f"/floatingips/{fip_a['id']}", expect=(204,))
        gateway_ip = gateway["fixed_ips"][0]["ip_address"]
        deployment.api().request("PUT", f"/routers/{router['id']}", json={"router": {"external_gateway_info": {
            "network_id": external["id"], "qos_policy_id": policy["id"]}}})
        wait_until("the gateway IP's limit", lambda: shaped_addresses(router["id"], device) == {gateway_ip})
        snat_out = mbits(outside, "198.51.101.1", a.namespace, "198.51.101.1")
        snat_in = downloaded(outside, "198.51.101.1", a.namespace)  # the answers come to the gateway IP
        out_b, in_b = (mbits(outside, "198.51.101.1", b.namespace, "198.51.101.1"),
                       downloaded(outside, "198.51.101.1", b.namespace))
        assert limited(snat_out) and limited(snat_in), (snat_out, snat_in)
        assert out_b > 3 * LIMIT_KBPS / 1000 and in_b > 3 * LIMIT_KBPS / 1000, (out_b, in_b)
        # A rule changed in the policy reaches the gateway.
        rules = deployment.api().request("GET", f"/qos/policies/{policy['id']}/bandwidth_limit_rules")
        egress_rule = next(r for r in rules["bandwidth_limit_rules"] if r["direction"] == "egress")
        deployment.api().request("PUT", f"/qos/policies/{policy['id']}/bandwidth_limit_rules/{egress_rule['id']}",
                                 json={"bandwidth_limit_rule": {"max_kbps": 2 * LIMIT_KBPS}})
        wait_until("the gateway IP's new rate", lambda: "rate 20Mbit" in in_netns(
            router_ns(router["id"]), "tc", "class", "show", "dev", device).stdout)
        deployment.api().request("PUT", f"/routers/{router['id']}", json={"router": {"external_gateway_info": {
            "network_id": external["id"], "qos_policy_id": None}}})
        wait_until("the gateway IP's limit going", lambda: shaped_addresses(router["id"], device) == set())
    finally:
        routers.close()
        if policy is not None:
            with contextlib.suppress(ApiError):
                deployment.api().request("DELETE", f"/qos/policies/{policy['id']}", expect=(204, 404))
        deployment.underlay.remove_outside(outside)


def answers(outside: str, address: str) -> bool:
    return in_netns(outside, "ping", "-6", "-n", "-c", "1", "-w", "2", address).returncode == 0


def proxy_entries(router_id: str) -> str:
    return in_netns(router_ns(router_id), "ip", "-6", "neigh", "show", "proxy").stdout


def test_an_ndp_proxy_makes_an_internal_ipv6_address_reachable_from_the_external_network_until_deleted(
    deployment: Deployment, scenario: Scenario, routers: Routers, network_node: str
) -> None:
    admin, demo = deployment.api(), deployment.api("neutrino-demo")
    outside = deployment.underlay.add_outside("ndp-ext", "198.51.102.1/24")
    made: list[tuple[str, str]] = []  # (path, id), deleted in reverse after the routers
    instance = None
    try:
        ip("-n", outside, "address", "add", "2001:db8:f00::1/64", "dev", "eth0", "nodad")
        # NDP proxies need the external and internal IPv6 subnets in one address scope.
        scope = admin.request("POST", "/address-scopes", json={"address_scope": {
            "name": deployment.unique("ndp-scope"), "ip_version": 6, "shared": True}})["address_scope"]
        made.append(("/address-scopes", scope["id"]))
        pool = admin.request("POST", "/subnetpools", json={"subnetpool": {
            "name": deployment.unique("ndp-pool"), "prefixes": ["2001:db8:f00::/48"], "default_prefixlen": 64,
            "address_scope_id": scope["id"], "shared": True}})["subnetpool"]
        made.append(("/subnetpools", pool["id"]))
        external = admin.create_network(deployment.unique("ndp-external"), **{
            "router:external": True, "provider:network_type": "flat", "provider:physical_network": PHYSNET})
        made.append(("/networks", external["id"]))
        admin.create_subnet(external["id"], "2001:db8:f00::/64", deployment.unique("ndp-ext6"), ip_version=6,
                            subnetpool_id=pool["id"], gateway_ip="2001:db8:f00::1", enable_dhcp=False)
        inside = demo.create_network(deployment.unique("ndp-inside"))
        made.append(("/networks", inside["id"]))
        inside_subnet = demo.create_subnet(inside["id"], "2001:db8:f00:1::/64", deployment.unique("ndp-inside"),
                                           ip_version=6, subnetpool_id=pool["id"], enable_dhcp=False)
        (instance,) = scenario.instances_of([InstanceSpec("ndp-a", inside["id"], "h1")])
        router, gateway = routers.wired_to("r-ndp", external, inside_subnet)
        demo.request("PUT", f"/routers/{router['id']}", json={"router": {"enable_ndp_proxy": True}})
        gateway_v6 = gateway["fixed_ips"][0]["ip_address"]
        wait_until("the router's NDP filter", lambda: in_netns(
            router_ns(router["id"]), "nft", "list", "table", "ip6", "neutrino-ndp").returncode == 0)

        # Routed IPv6 works (with a route via the router's gateway address, the outside answers the
        # instance), but a router with NDP proxies on lets nothing new in that no proxy names.
        ip("-n", outside, "-6", "route", "add", "2001:db8:f00:1::/64", "via", gateway_v6)
        assert reaches(deployment, instance, "2001:db8:f00::1"), ip("-n", instance.namespace, "-6", "route").stdout
        assert not answers(outside, instance.ip_address)
        # The outside treats the internal prefix as on link: only a neighbour advertisement for the
        # address brings its packets to the router.
        ip("-n", outside, "-6", "route", "replace", "2001:db8:f00:1::/64", "dev", "eth0")
        assert not answers(outside, instance.ip_address)

        proxy = demo.request("POST", "/ndp_proxies", json={"ndp_proxy": {
            "name": deployment.unique("ndp"), "router_id": router["id"], "port_id": instance.port_id}})["ndp_proxy"]
        assert proxy["ip_address"] == instance.ip_address
        wait_until("the outside reaching the instance through the NDP proxy",
                   lambda: answers(outside, instance.ip_address), timeout=60)
        assert instance.ip_address in proxy_entries(router["id"])
        l3 = next(r for r in admin.agents(host=network_node) if r["agent_type"] == "L3 agent")
        assert "ndp_proxy" in l3["configurations"]["extensions"]

        # Deleted: the entry goes, and with it the way in (the outside's neighbour cache still
        # sends to the router, which lets in only what an NDP proxy names).
        demo.request("DELETE", f"/ndp_proxies/{proxy['id']}", expect=(204,))
        wait_until("the proxy entry going", lambda: instance.ip_address not in proxy_entries(router["id"]))
        assert not answers(outside, instance.ip_address)
    finally:
        routers.close()
        if instance is not None:
            scenario.delete(instance)
        for path, oid in reversed(made):
            with contextlib.suppress(ApiError):
                admin.request("DELETE", f"{path}/{oid}", expect=(204, 404))
        deployment.underlay.remove_outside(outside)

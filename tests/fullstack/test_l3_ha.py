"""HA routers (L3 HA) through the whole stack: two network nodes, keepalived, a failover, real packets.

A member's router is HA by the server's ``l3_ha`` default; it lands on both network nodes, each
with a ``<host>-qrouter-<router>`` namespace and keepalived; only the active one holds the
addresses. A continuous ping from the instance to the outside and one from the outside to its
floating IP keep running while the active node dies (agent and router namespaces killed, links
down); the test waits until both pings are answered again and ``ha_state`` has flipped, then
brings the node back and checks that nothing moved back. Deleting the router leaves no namespace,
keepalived, HA port or HA network behind.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.contract.names import eui64_link_local
from tests.fullstack.conftest import why_fullstack_cannot_run
from tests.fullstack.deployment import Deployment
from tests.fullstack.l3_ha import (
    COMPUTE,
    NODES,
    OUTSIDE,
    ContinuousPing,
    GarpWatch,
    HaRouter,
    RaWatch,
    addresses_in,
    ha_deployment,
    keepalived_anywhere,
    keepalived_pids,
    power_off,
    power_on,
    radvd_pids,
    router_namespaces,
)
from tests.fullstack.networking_api import ApiError
from tests.fullstack.scenario import Scenario
from tests.fullstack.underlay import in_netns, ip
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = why_fullstack_cannot_run()
    if reason:
        pytest.skip(reason)
    with ha_deployment(Path(tmp_path_factory.mktemp("l3ha"))) as deployment:
        yield deployment


def test_an_ha_router_fails_over_to_the_standby_node_and_stays_there(ha: Deployment) -> None:
    scenario = Scenario(ha)
    router = HaRouter(ha, scenario)
    pings: list[ContinuousPing] = []
    try:
        router.build()
        api = ha.api()
        assert api.request("GET", f"/routers/{router.id}")["router"]["ha"] is True
        # Both nodes host it: a namespace and keepalived each, an HA port each on the project's HA network.
        wait_until("a namespace with keepalived on both nodes", lambda: all(
            keepalived_pids(router.namespace_on(label)) for label in NODES), timeout=60)
        project = router.router["project_id"]
        ha_networks = [n for n in api.request("GET", "/networks")["networks"]
                       if n["name"] == f"HA network tenant {project}"]
        assert len(ha_networks) == 1 and ha_networks[0]["project_id"] == ""
        ha_ports = api.ports(device_id=router.id, device_owner="network:router_ha_interface")
        assert sorted(p["binding:host_id"] for p in ha_ports) == sorted(ha.host(n).name for n in NODES)
        assert all(p["fixed_ips"][0]["ip_address"].startswith("169.254.") for p in ha_ports)
        assert len(api.ports(device_id=router.id, device_owner="network:ha_router_replicated_interface")) == 1

        active = router.wait_serving()
        standby = next(label for label in NODES if label != active)
        # Only the active node holds the gateway, interface and floating addresses.
        assert router.holds_gateway(active) and not router.holds_gateway(standby)
        standby_addresses = addresses_in(router.namespace_on(standby))
        assert not any(a for dev, a in standby_addresses.items() if dev.startswith(("qr-", "qg-"))), standby_addresses

        pings = [ContinuousPing(router.instance.namespace, OUTSIDE),
                 ContinuousPing(router.outside, router.fip["floating_ip_address"])]
        wait_until("both continuous pings answered", lambda: all(p.last_answered() > 0 for p in pings))
        power_off(ha, active)
        at_kill = [p.sent for p in pings]
        # The standby takes over: pings resume both ways, and the API says so.
        wait_until("pings answered again after the failover", lambda: all(
            p.answered_after(seq) for p, seq in zip(pings, at_kill, strict=True)), timeout=120)
        survivor = ha.host(standby).name
        wait_until("ha_state showing the survivor active", lambda: router.states().get(survivor) == "active",
                   timeout=60)
        assert router.states()[ha.host(active).name] == "standby"
        assert router.holds_gateway(standby)

        # The dead node returns: it comes back as standby, nothing moves back.
        power_on(ha, active)
        wait_until("keepalived on the returned node", lambda: bool(keepalived_pids(router.namespace_on(active))),
                   timeout=60)
        returned_ha = next(p for p in ha_ports if p["binding:host_id"] == ha.host(active).name)
        ha_device = f"ha-{returned_ha['id'][:11]}"
        wait_until("the returned node's HA port wired", lambda: bool(
            addresses_in(router.namespace_on(active)).get(ha_device)), timeout=60)
        survivor_pids = keepalived_pids(router.namespace_on(standby))
        at_return = [p.sent for p in pings]
        wait_until("pings still answered after the node returned", lambda: all(
            p.answered_after(seq + 10) for p, seq in zip(pings, at_return, strict=True)), timeout=60)
        assert router.states() == {survivor: "active", ha.host(active).name: "standby"}
        assert router.holds_gateway(standby) and not router.holds_gateway(active)
        assert keepalived_pids(router.namespace_on(standby)) == survivor_pids
    finally:
        for p in pings:
            p.stop()
        router_id = router.router.get("id")
        router.close()
        scenario.close()
    assert router_id
    # Nothing left: namespaces, keepalived, HA ports, the HA network (the project's last HA router went).
    wait_until("every namespace of the router gone", lambda: not router_namespaces(router_id), timeout=60)
    wait_until("keepalived of the router gone", lambda: not keepalived_anywhere(router_id), timeout=30)
    assert not ha.api().ports(device_id=router_id)
    assert not [n for n in ha.api().request("GET", "/networks")["networks"] if n["name"].startswith("HA network")]


def test_restarting_the_active_agent_causes_no_failover(ha: Deployment) -> None:
    """Nor does it restart keepalived or radvd: the same processes run once the new agent resynced."""
    scenario = Scenario(ha)
    router = HaRouter(ha, scenario, prefix="198.51.100", cidr="10.78.0.0/24")
    v6: dict[str, str] = {}
    try:
        router.build("restart")
        # An IPv6 subnet too, so the active node runs radvd as well.
        v6 = ha.api("neutrino-demo").create_subnet(
            router.subnet["network_id"], "2001:db8:6b::/64", ha.unique("restart-v6"), ip_version=6,
            ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
        ha.api("neutrino-demo").request("PUT", f"/routers/{router.id}/add_router_interface",
                                        json={"subnet_id": v6["id"]})
        active = router.wait_serving()
        ns = router.namespace_on(active)
        wait_until("radvd on the active node", lambda: bool(radvd_pids(ns)), timeout=60)
        pids = keepalived_pids(ns)
        radvd = radvd_pids(ns)
        ping = ContinuousPing(router.instance.namespace, OUTSIDE)
        try:
            wait_until("the ping answered", lambda: ping.last_answered() > 0)
            agent = ha.agents[active]
            agent.stop()
            agent.start()
            ha.wait_agent_started(active, timeout=90)
            # After the restarted agent's first full resync (its reconciler reports a completed round).
            wait_until("the restarted agent resynced", lambda: any(
                a["agent_type"] == "L3 agent" and (a["configurations"].get("reconciler") or {}).get("full_resyncs", 0)
                >= 1 for a in ha.api().agents(host=ha.host(active).name)), timeout=60)
            seq = ping.sent
            wait_until("the ping answered after the restart", lambda: ping.answered_after(seq + 5))
            lost, _ = ping.gap_after(0)
            assert keepalived_pids(ns) == pids
            assert radvd_pids(ns) == radvd
            assert router.states()[ha.host(active).name] == "active"
            assert router.holds_gateway(active)
            assert lost == 0, f"{lost} probes lost across the agent restart"
        finally:
            ping.stop()
    finally:
        if v6:
            with contextlib.suppress(ApiError):
                ha.api().request("PUT", f"/routers/{router.id}/remove_router_interface",
                                 json={"subnet_id": v6["id"]})
        router.close()
        scenario.close()


def test_an_ha_router_advertises_and_routes_ipv6_from_the_active_node_only_and_after_a_failover(
        ha: Deployment) -> None:
    """IPv6 on an HA router: the active node's radvd gives the instance its SLAAC address and a
    default route via the router's link-local address (a keepalived virtual address, the same on
    both nodes); the instance pings the external network's IPv6 side. The standby sends no router
    advertisement and runs no radvd, until it takes over: then the instance still reaches outside."""
    scenario = Scenario(ha)
    router = HaRouter(ha, scenario, prefix="198.51.102", cidr="10.79.0.0/24")
    watch: RaWatch | None = None
    dead: str | None = None
    subnet6: dict[str, str] = {}
    try:
        router.build("v6ha")
        ip("-n", router.outside, "address", "add", "2001:db8:e6::1/64", "dev", "eth0", "nodad")
        admin, demo = ha.api(), ha.api("neutrino-demo")
        admin.create_subnet(router.external["id"], "2001:db8:e6::/64", ha.unique("v6ha-ext6"), ip_version=6,
                            gateway_ip="2001:db8:e6::1", enable_dhcp=False)
        inside = demo.create_network(ha.unique("v6ha-inside"))
        scenario.networks.append(inside["id"])
        subnet6 = demo.create_subnet(inside["id"], "2001:db8:6a::/64", ha.unique("v6ha-inside"), ip_version=6,
                                     ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
        demo.request("PUT", f"/routers/{router.id}/add_router_interface", json={"subnet_id": subnet6["id"]})
        vm = scenario.instance("v6ha-v6", inside["id"], COMPUTE)
        active = router.wait_serving()
        standby = next(label for label in NODES if label != active)
        (qr,) = admin.ports(device_id=router.id, network_id=inside["id"])
        gateway = admin.ports(device_id=router.id, device_owner="network:router_gateway")[0]
        gateway_v6 = next(a["ip_address"] for a in gateway["fixed_ips"] if ":" in a["ip_address"])
        # Everything the standby's copy of the interface sends reaches its host's bridge through this.
        watch = RaWatch(ha.host(standby).netns, f"tap{qr['id'][:11]}")
        wait_until("radvd on the active node", lambda: bool(radvd_pids(router.namespace_on(active))), timeout=60)
        assert not radvd_pids(router.namespace_on(standby))
        # The standby holds no IPv6 address at all, not even a link-local one (it has the master's MACs).
        standby_ns = router.namespace_on(standby)
        assert not [a for dev, a in addresses_in(standby_ns).items() if dev.startswith(("qr-", "qg-")) and a]

        # The instance forgets its static IPv6 set-up and solicits: the active node's advertisement
        # gives it back its SLAAC address and a default route via the router's link-local address.
        ip("-n", vm.namespace, "-6", "address", "flush", "dev", "eth0", "scope", "global")
        ip("-n", vm.namespace, "-6", "route", "flush", "default")
        in_netns(vm.namespace, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.autoconf=1",
                 check=True)
        ip("-n", vm.namespace, "link", "set", "eth0", "down")
        ip("-n", vm.namespace, "link", "set", "eth0", "up")
        wait_until("the instance configuring its address from the active node's advertisement", lambda: any(
            i["local"] == vm.ip_address and i.get("dynamic") for link in json.loads(
                ip("-n", vm.namespace, "-6", "-j", "address", "show", "dev", "eth0", "scope", "global").stdout
                or "[]") for i in link["addr_info"]), timeout=60)
        default = ip("-n", vm.namespace, "-6", "route", "show", "default").stdout
        assert f"via {eui64_link_local(qr['mac_address'])}" in default and "proto ra" in default, default
        ip("-n", router.outside, "-6", "route", "add", "2001:db8:6a::/64", "via", gateway_v6)
        wait_until("the instance reaching the outside over IPv6", lambda: ha.ping(
            vm, "2001:db8:e6::1", deadline=2).received == 1, timeout=60)
        assert watch.sent() == 0, watch.counts

        # The active node dies: the standby takes over, advertises, and IPv6 still gets out.
        power_off(ha, active)
        dead = active
        wait_until("radvd on the new active node", lambda: bool(radvd_pids(standby_ns)), timeout=120)
        wait_until("the instance reaching the outside over IPv6 after the failover", lambda: ha.ping(
            vm, "2001:db8:e6::1", deadline=2).received == 1, timeout=120)
        assert router.states().get(ha.host(standby).name) == "active"
        # The new active node answers the instance's solicitation: its default route comes back, via
        # the same link-local address.
        ip("-n", vm.namespace, "-6", "route", "flush", "default")
        ip("-n", vm.namespace, "link", "set", "eth0", "down")
        ip("-n", vm.namespace, "link", "set", "eth0", "up")
        wait_until("the new active node's advertisement giving the instance its default route", lambda: "proto ra" in ip(
            "-n", vm.namespace, "-6", "route", "show", "default").stdout, timeout=60)
        assert f"via {eui64_link_local(qr['mac_address'])}" in ip("-n", vm.namespace, "-6", "route", "show",
                                                                  "default").stdout
        # What the watch saw before is not blind: it sees the new active node's advertisements.
        radvd_log = Path("/run/neutrino") / ha.host(standby).name / "l3" / f"{router.id}.log"
        assert watch.sent() > 0, (watch.counts, radvd_log.read_text() if radvd_log.exists() else "no radvd log")
    finally:
        if watch is not None:
            watch.stop()
        if dead is not None:
            power_on(ha, dead)
        if router.router and subnet6:
            with contextlib.suppress(ApiError):
                ha.api().request("PUT", f"/routers/{router.id}/remove_router_interface",
                                 json={"subnet_id": subnet6["id"]})
        router.close()
        scenario.close()


def test_a_floating_ip_added_to_an_active_ha_router_is_announced_by_gratuitous_arp(ha: Deployment) -> None:
    """The upstream network learns a new floating IP's MAC at once: the active node sends a
    gratuitous ARP for it out of ``qg-`` (seen on the outside host's NIC), well before keepalived's
    own repeat of its announcements ``garp_master_delay`` (60 s) after it became master."""
    scenario = Scenario(ha)
    router = HaRouter(ha, scenario, prefix="198.51.103", cidr="10.80.0.0/24")
    watch: GarpWatch | None = None
    fip: dict[str, str] = {}
    try:
        router.build("garp")
        router.wait_serving()
        watch = GarpWatch(router.outside, "eth0")
        second = scenario.instance("garp-vm2", router.subnet["network_id"], COMPUTE)
        fip = ha.api().request("POST", "/floatingips", json={"floatingip": {
            "floating_network_id": router.external["id"], "port_id": second.port_id}})["floatingip"]
        address = fip["floating_ip_address"]
        wait_until("a gratuitous ARP for the new floating IP on the external network",
                   lambda: watch is not None and address in watch.announced, timeout=30)
        wait_until("the new floating IP answering the outside", lambda: in_netns(
            router.outside, "ping", "-n", "-c", "1", "-W", "1", address).returncode == 0, timeout=60)
    finally:
        if watch is not None:
            watch.stop()
        if fip:
            with contextlib.suppress(ApiError):
                ha.api().request("DELETE", f"/floatingips/{fip['id']}", expect=(204, 404))
        router.close()
        scenario.close()


def test_a_router_converted_from_ha_to_legacy_and_back_keeps_carrying_traffic(ha: Deployment) -> None:
    """Admin sets the router down, turns ``ha`` off and up again: one node serves it, without
    keepalived, and the instance reaches the outside and its floating IP answers; turned HA again,
    both nodes host it with keepalived, one active, and traffic flows once more."""
    scenario = Scenario(ha)
    router = HaRouter(ha, scenario, prefix="198.51.104", cidr="10.81.0.0/24")
    admin = ha.api()

    def convert(to_ha: bool) -> None:
        url = f"/routers/{router.id}"
        admin.request("PUT", url, json={"router": {"admin_state_up": False}})
        admin.request("PUT", url, json={"router": {"ha": to_ha}})
        admin.request("PUT", url, json={"router": {"admin_state_up": True}})

    def reaches_both_ways() -> bool:
        return (ha.ping(router.instance, f"{router.prefix}.1", deadline=2).received == 1 and in_netns(
            router.outside, "ping", "-n", "-c", "1", "-W", "1", router.fip["floating_ip_address"]).returncode == 0)

    try:
        router.build("conv")
        router.wait_serving()
        convert(False)
        assert admin.request("GET", f"/routers/{router.id}")["router"]["ha"] is False
        wait_until("one node serving the legacy router, without keepalived", lambda: len(
            router_namespaces(router.id)) == 1 and not keepalived_anywhere(router.id), timeout=120)
        wait_until("traffic both ways through the legacy router", reaches_both_ways, timeout=120)
        assert not admin.ports(device_id=router.id, device_owner="network:router_ha_interface")

        convert(True)
        wait_until("keepalived on both nodes again", lambda: all(
            keepalived_pids(router.namespace_on(label)) for label in NODES), timeout=120)
        router.wait_serving()
        wait_until("traffic both ways through the HA router", reaches_both_ways, timeout=120)
    finally:
        router.close()
        scenario.close()
    wait_until("every namespace of the router gone", lambda: not router_namespaces(router.id), timeout=60)


def test_an_extra_route_with_two_nexthops_on_an_ha_router_carries_flows_through_both(ha: Deployment) -> None:
    """On an HA router the extra routes are keepalived's virtual routes: two nexthops of one
    destination make one ECMP route on the active node, and flows from the instance reach both."""
    scenario = Scenario(ha)
    router = HaRouter(ha, scenario, prefix="198.51.105", cidr="10.82.0.0/24")
    try:
        router.build("ecmp")
        right, right_subnet = scenario.network("ecmp-right", "10.82.1.0/24")
        ha.api("neutrino-demo").request("PUT", f"/routers/{router.id}/add_router_interface",
                                        json={"subnet_id": right_subnet["id"]})
        hops = [scenario.instance(f"ecmp-hop{n}", right["id"], COMPUTE) for n in (1, 2)]
        ha.api("neutrino-demo").request("PUT", f"/routers/{router.id}", json={"router": {"routes": [
            {"destination": "10.99.82.0/24", "nexthop": hop.ip_address} for hop in hops]}})
        active = router.wait_serving()
        wait_until("the ECMP route on the active node", lambda: in_netns(
            router.namespace_on(active), "ip", "route", "show", "10.99.82.0/24").stdout.count("nexthop via") == 2,
            timeout=60)
        for hop in hops:
            in_netns(hop.namespace, "nft", "add table ip ecmp; add chain ip ecmp pre { type filter hook prerouting "
                     "priority -300; }; add rule ip ecmp pre ip daddr 10.99.82.7 udp dport 9999 counter", check=True)
            wait_until("the router reaching the hop", lambda hop=hop: ha.ping(
                router.instance, hop.ip_address, deadline=2).received == 1, timeout=60)
        sender = ("import socket\nfor _ in range(32):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "    s.sendto(b'x', ('10.99.82.7', 9999))\n    s.close()\n")
        in_netns(router.instance.namespace, sys.executable, "-c", sender, check=True)

        def counted(hop: Any) -> int:
            listing = json.loads(in_netns(hop.namespace, "nft", "-j", "list", "table", "ip", "ecmp").stdout)
            return sum(e["rule"]["expr"][-1]["counter"]["packets"] for e in listing["nftables"] if "rule" in e)

        wait_until("all 32 flows arriving", lambda: sum(counted(h) for h in hops) == 32, timeout=60)
        assert all(counted(h) > 0 for h in hops), [counted(h) for h in hops]
    finally:
        with contextlib.suppress(ApiError):
            ha.api().request("PUT", f"/routers/{router.id}", json={"router": {"routes": []}})
        if router.router:
            with contextlib.suppress(ApiError, NameError):
                ha.api().request("PUT", f"/routers/{router.id}/remove_router_interface",
                                 json={"subnet_id": right_subnet["id"]})
        router.close()
        scenario.close()

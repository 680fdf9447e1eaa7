"""The l3 planner (pure): what it does for a router the kernel lacks, and nothing for one it holds."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from neutrino.agent.roles.l3.actions import (
    AddAddress,
    AddMultipathRoute,
    AddRoute,
    AnnounceAddress,
    EnsureKeepalived,
    EnsureNamespace,
    EnsurePortDevice,
    EnsureRadvd,
    LoadNat,
    RemoveDevice,
    RemoveNamespace,
    RemoveRoute,
    SetSysctl,
    StopKeepalived,
    StopRadvd,
)
from neutrino.agent.roles.l3.nat import nat_body
from neutrino.agent.roles.l3.plan import (
    ADDR_GEN_MODE,
    FORWARDING,
    HA_SYSCTLS,
    L3KernelView,
    RouterView,
    desired_routes,
    plan,
)
from neutrino.agent.roles.l3.vrrp import keepalived_config
from neutrino.contract.l3 import (
    ConntrackHelper,
    FloatingIp,
    HaRouter,
    L3Router,
    L3State,
    PortForwarding,
    RouterAddress,
    RouterPort,
)
from neutrino.dataplane.daemons import config_digest
from neutrino.dataplane.netlink import Link, Route
from neutrino.dataplane.nftables import body_digest

ROUTER = "9450e960-767a-41c2-a01c-cfcbd98b9a22"
NS = f"qrouter-{ROUTER}"
INSIDE = RouterPort("d0a3a5b8-3b71-411f-aaeb-814dccbbe91c", "net-in", "fa:16:3e:00:00:01", 1450,
                    (RouterAddress("sub-in", "10.0.0.1", "10.0.0.0/24", "10.0.0.1"),))
OUTSIDE = RouterPort("d0bf28bd-6b00-4f00-8000-000000000001", "net-ex", "fa:16:3e:00:00:02", 1500,
                     (RouterAddress("sub-ex", "172.24.4.84", "172.24.4.0/24", "172.24.4.1"),))
FIP = FloatingIp("fip-1", "172.24.4.93", "10.0.0.5", "port-vm")
FORWARDING_SYSCTLS = dict(FORWARDING)
STATE = L3State("net-1", (L3Router(ROUTER, "p", True, True, 3, (INSIDE,), OUTSIDE, (("10.99.0.0/16", "10.0.0.50"),),
                                   (FIP,)),))


def converged_view(router: L3Router) -> L3KernelView:
    """The kernel as the apply step leaves it for ``router``."""
    links, host_links = {}, {}
    for index, (name, port) in enumerate((("qr-d0a3a5b8-3b", INSIDE), ("qg-d0bf28bd-6b", OUTSIDE))):
        tap = f"tap{port.port_id[:11]}"
        links[name] = Link(name, 10 + index, "veth", None, port.mtu, port.mac_address, "up", router.admin_state_up,
                           "neutrino:net-1", link_index=20 + index)
        host_links[tap] = Link(tap, 20 + index, "veth", "brq", port.mtu, "aa:aa:aa:aa:aa:aa", "up", True,
                               "neutrino:net-1", link_index=10 + index)
    addresses = {"qr-d0a3a5b8-3b": frozenset({"10.0.0.1/24"}),
                 "qg-d0bf28bd-6b": frozenset({"172.24.4.84/24", "172.24.4.93/32"})}
    routes = (Route(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_address("172.24.4.1"), "qg-d0bf28bd-6b"),
              Route(ipaddress.ip_network("10.99.0.0/16"), ipaddress.ip_address("10.0.0.50"), "qr-d0a3a5b8-3b"),
              Route(ipaddress.ip_network("10.0.0.0/24"), None, "qr-d0a3a5b8-3b"))
    body = nat_body(router, "qg-d0bf28bd-6b")
    view = RouterView(links, addresses, routes, dict(FORWARDING),
                      body_digest(body) if body else None)
    return L3KernelView({NS: view}, host_links)


def test_a_new_router_is_built_in_order() -> None:
    actions = plan(STATE, L3KernelView({}, {}))
    assert actions[0] == EnsureNamespace(NS)
    assert [type(a) for a in actions[1:1 + len(FORWARDING)]] == [SetSysctl] * len(FORWARDING)
    kinds = [type(a) for a in actions]
    assert kinds.index(EnsurePortDevice) < kinds.index(AddAddress) < kinds.index(AddRoute) < kinds.index(LoadNat)
    assert AddAddress(NS, "qg-d0bf28bd-6b", "172.24.4.93/32") in actions
    assert AddRoute(NS, "0.0.0.0/0", "172.24.4.1", "qg-d0bf28bd-6b") in actions
    assert AddRoute(NS, "10.99.0.0/16", "10.0.0.50", None) in actions
    nat = next(a for a in actions if isinstance(a, LoadNat))
    assert "ip daddr 172.24.4.93 dnat to 10.0.0.5" in nat.body
    assert 'oifname "qg-d0bf28bd-6b" ip saddr { 10.0.0.0/24 } snat to 172.24.4.84' in nat.body


def test_a_converged_router_needs_nothing() -> None:
    assert plan(STATE, converged_view(STATE.routers[0])) == []


def test_gone_interfaces_and_routers_are_removed() -> None:
    router = replace(STATE.routers[0], interfaces=())
    actions = plan(replace(STATE, routers=(router,)), converged_view(STATE.routers[0]))
    assert RemoveDevice("qr-d0a3a5b8-3b", netns=NS) in actions
    assert plan(replace(STATE, routers=()), converged_view(STATE.routers[0])) == [RemoveNamespace(NS)]


def test_an_admin_down_router_keeps_its_ports_but_forwards_nothing() -> None:
    down = replace(STATE.routers[0], admin_state_up=False)
    actions = plan(replace(STATE, routers=(down,)), L3KernelView({}, {}))
    ports = [a for a in actions if isinstance(a, EnsurePortDevice)]
    assert len(ports) == 2 and not any(p.up for p in ports)
    assert not any(isinstance(a, AddRoute | LoadNat) for a in actions)


def test_a_new_floating_ip_is_announced_once_its_nat_is_loaded() -> None:
    actions = plan(STATE, L3KernelView({}, {}))
    kinds = [type(a) for a in actions]
    assert actions[-1] == AnnounceAddress(NS, "qg-d0bf28bd-6b", "172.24.4.93")
    assert kinds.index(LoadNat) < kinds.index(AnnounceAddress)
    assert kinds.count(AnnounceAddress) == 1  # the gateway's own address is not a floating IP


def test_port_forwardings_dnat_their_ports_and_put_their_address_on_the_gateway() -> None:
    single = PortForwarding("pf-1", "fip-2", "172.24.4.94", "tcp", "10.0.0.6", 22, 22, 2222, 2222)
    ranged = PortForwarding("pf-2", "fip-2", "172.24.4.94", "udp", "10.0.0.6", 5000, 5002, 6000, 6002)
    onto_one = PortForwarding("pf-3", "fip-2", "172.24.4.94", "tcp", "10.0.0.6", 80, 80, 8000, 8009)
    router = replace(STATE.routers[0], port_forwardings=(single, ranged, onto_one))
    actions = plan(replace(STATE, routers=(router,)), converged_view(STATE.routers[0]))
    assert AddAddress(NS, "qg-d0bf28bd-6b", "172.24.4.94/32") in actions
    assert actions[-1] == AnnounceAddress(NS, "qg-d0bf28bd-6b", "172.24.4.94")
    body = next(a for a in actions if isinstance(a, LoadNat)).body
    assert "ip daddr 172.24.4.94 tcp dport 2222 dnat to 10.0.0.6:22" in body
    assert "ip daddr 172.24.4.94 udp dport 6000-6002 dnat to 10.0.0.6:udp dport map { 6000 : 5000, 6001 : 5001, " \
           "6002 : 5002 }" in body
    assert "ip daddr 172.24.4.94 tcp dport 8000-8009 dnat to 10.0.0.6:80" in body
    # The floating IP's own 1:1 NAT stays as it was.
    assert "ip daddr 172.24.4.93 dnat to 10.0.0.5" in body


def test_hairpin_connections_are_snatted_to_the_clients_floating_ip_or_the_gateway() -> None:
    body = nat_body(STATE.routers[0], "qg-d0bf28bd-6b")
    assert body is not None
    post = body.split("chain postrouting", 1)[1]
    assert "ip saddr 10.0.0.5 ct status dnat snat to 172.24.4.93" in post
    assert "ip saddr { 10.0.0.0/24 } ct status dnat snat to 172.24.4.84" in post
    assert post.index("ct status dnat snat to 172.24.4.93") < post.index("ct status dnat snat to 172.24.4.84")
    # Without a floating IP or forwarding nothing is DNATed, so there is no hairpin rule.
    plain = nat_body(replace(STATE.routers[0], floating_ips=()), "qg-d0bf28bd-6b")
    assert plain is not None and "ct status dnat" not in plain


def test_several_nexthops_of_one_destination_make_one_ecmp_route() -> None:
    router = replace(STATE.routers[0], routes=(("10.99.0.0/16", "10.0.0.50"), ("10.99.0.0/16", "10.0.0.49")))
    actions = plan(replace(STATE, routers=(router,)), converged_view(STATE.routers[0]))
    # The single-nexthop route goes, the multipath one takes its place.
    assert actions == [RemoveRoute(NS, "10.99.0.0/16"), AddMultipathRoute(NS, "10.99.0.0/16", ("10.0.0.49", "10.0.0.50"))]
    view = converged_view(STATE.routers[0])
    ecmp = Route(ipaddress.ip_network("10.99.0.0/16"), None, None,
                 (ipaddress.ip_address("10.0.0.49"), ipaddress.ip_address("10.0.0.50")))
    namespace = replace(view.namespaces[NS], routes=(*view.namespaces[NS].routes[:1], ecmp))
    assert plan(replace(STATE, routers=(router,)), L3KernelView({NS: namespace}, view.host_links)) == []


def test_an_ipv6_slaac_subnet_gets_router_advertisements_and_losing_it_stops_them() -> None:
    v6 = RouterPort("e1a3a5b8-3b71-411f-aaeb-814dccbbe91c", "net-6", "fa:16:3e:00:00:03", 1450,
                    (RouterAddress("sub-6", "2001:db8:1::1", "2001:db8:1::/64", "2001:db8:1::1", "slaac", "slaac"),))
    router = replace(STATE.routers[0], interfaces=(INSIDE, v6))
    actions = plan(replace(STATE, routers=(router,)), L3KernelView({}, {}))
    radvd = [a for a in actions if isinstance(a, EnsureRadvd)]
    assert len(radvd) == 1 and "interface qr-e1a3a5b8-3b" in radvd[0].config
    assert "AdvLinkMTU 1450;" in radvd[0].config and "AdvAutonomous on;" in radvd[0].config
    assert "AdvManagedFlag" not in radvd[0].config and "AdvOtherConfigFlag" not in radvd[0].config
    running = replace(converged_view(STATE.routers[0]).namespaces[NS], radvd_digest=config_digest(radvd[0].config))
    # The subnet gone: radvd stops; the router gone: radvd stops before its namespace goes.
    assert StopRadvd(NS, ROUTER) in plan(STATE, L3KernelView({NS: running}, {}))
    assert plan(replace(STATE, routers=()), L3KernelView({NS: running}, {})) == [StopRadvd(NS, ROUTER),
                                                                                RemoveNamespace(NS)]


def test_conntrack_helpers_are_ct_helper_objects_assigned_by_port_even_without_a_gateway() -> None:
    helpers = (ConntrackHelper("tcp", 21, "ftp"), ConntrackHelper("udp", 1719, "h323"), ConntrackHelper("tcp", 2121, "ftp"))
    body = nat_body(replace(STATE.routers[0], gateway=None, floating_ips=(), conntrack_helpers=helpers), None)
    assert body is not None and "snat" not in body
    assert 'ct helper ftp-tcp {\n    type "ftp" protocol tcp' in body
    assert 'type "RAS" protocol udp' in body  # the kernel's name of the H.323 helper over UDP
    assert 'tcp dport 21 ct helper set "ftp-tcp"' in body and 'tcp dport 2121 ct helper set "ftp-tcp"' in body
    assert 'udp dport 1719 ct helper set "h323-udp"' in body
    assert nat_body(replace(STATE.routers[0], gateway=None), None) is None


# ---- HA routers (L3 HA): keepalived holds the addresses and routes while it runs ----

HA_PORT = RouterPort("e1e1e1e1-aaaa-4bbb-8ccc-000000000003", "ha-net", "fa:16:3e:00:00:03", 1450,
                     (RouterAddress("sub-ha", "169.254.192.7", "169.254.192.0/18"),))
HA_ROUTER = replace(STATE.routers[0], ha=HaRouter(HA_PORT, 5, 2, "standby"))


def ha_view(router: L3Router, *, keepalived: str | None, addresses: dict[str, frozenset[str]],
            forwarding: str = "0", radvd: str | None = None) -> L3KernelView:
    base = converged_view(STATE.routers[0])
    view = base.namespaces[NS]
    links = dict(view.links)
    host_links = dict(base.host_links)
    links["ha-e1e1e1e1-aa"] = Link("ha-e1e1e1e1-aa", 12, "veth", None, 1450, HA_PORT.mac_address, "up", True,
                                   "neutrino:net-1", link_index=22)
    host_links["tape1e1e1e1-aa"] = Link("tape1e1e1e1-aa", 22, "veth", "brq", 1450, "aa:aa:aa:aa:aa:ab", "up", True,
                                        "neutrino:net-1", link_index=12)
    sysctls = {key: value for key, value in (*HA_SYSCTLS, *FORWARDING)}
    return L3KernelView({NS: replace(view, links=links, addresses=addresses, sysctls=sysctls,
                                     keepalived_digest=keepalived, radvd_digest=radvd, device_forwarding={
                                         "qr-d0a3a5b8-3b": forwarding, "qg-d0bf28bd-6b": forwarding})}, host_links)


def test_an_ha_router_starts_keepalived_once_its_devices_are_there_and_holds_no_address_itself() -> None:
    actions = plan(L3State("net-1", (HA_ROUTER,)), L3KernelView({}, {}))
    kinds = [type(a) for a in actions]
    assert kinds.index(EnsureKeepalived) > max(i for i, k in enumerate(kinds) if k is EnsurePortDevice)
    # Only the HA port's own address is the plan's; no routes, no gratuitous ARP (keepalived's).
    assert [a for a in actions if isinstance(a, AddAddress)] == [AddAddress(NS, "ha-e1e1e1e1-aa", "169.254.192.7/18")]
    assert not [a for a in actions if isinstance(a, AddRoute | AddMultipathRoute | AnnounceAddress)]
    # IPv6 stays on, but the devices make no link-local address of their own (keepalived's on the
    # master), take no router advertisement and forward only on the master.
    assert SetSysctl(NS, "net.ipv6.conf.default.addr_gen_mode", "1") in actions
    assert SetSysctl(NS, "net.ipv6.conf.default.forwarding", "0") in actions
    assert actions.index(SetSysctl(NS, "net.ipv6.conf.default.forwarding", "0")) > actions.index(
        SetSysctl(NS, "net.ipv6.conf.all.forwarding", "1")) and kinds.index(EnsurePortDevice) > kinds.index(SetSysctl)
    config = next(a for a in actions if isinstance(a, EnsureKeepalived)).config
    assert "virtual_router_id 5" in config and "nopreempt" in config
    assert "169.254.0.5/24 dev ha-e1e1e1e1-aa" in config and "172.24.4.93/32 dev qg-d0bf28bd-6b" in config
    assert "0.0.0.0/0 via 172.24.4.1 dev qg-d0bf28bd-6b" in config


MASTER = {"qr-d0a3a5b8-3b": frozenset({"10.0.0.1/24"}),
          "qg-d0bf28bd-6b": frozenset({"172.24.4.84/24", "172.24.4.93/32"}),
          "ha-e1e1e1e1-aa": frozenset({"169.254.192.7/18", "169.254.0.5/24"})}


def test_a_running_ha_router_master_is_left_alone() -> None:
    config = keepalived_config(HA_ROUTER, desired_routes(HA_ROUTER))
    assert config is not None
    view = ha_view(HA_ROUTER, keepalived=config_digest(config), addresses=MASTER, forwarding="1")
    actions = plan(L3State("net-1", (HA_ROUTER,)), view)
    assert not [a for a in actions if not isinstance(a, LoadNat)], actions


V6_INSIDE = replace(INSIDE, fixed_ips=(*INSIDE.fixed_ips, RouterAddress(
    "sub-v6", "2001:db8:5::1", "2001:db8:5::/64", "2001:db8:5::1", ipv6_ra_mode="slaac")))
V6_OUTSIDE = replace(OUTSIDE, fixed_ips=(*OUTSIDE.fixed_ips, RouterAddress(
    "sub-ex6", "2001:db8:e::7", "2001:db8:e::/64", "2001:db8:e::1")))
V6_HA_ROUTER = replace(HA_ROUTER, interfaces=(V6_INSIDE,), gateway=V6_OUTSIDE)


def test_an_ha_router_holds_its_ipv6_addresses_link_local_ones_included_as_keepalived_virtual_addresses() -> None:
    config = keepalived_config(V6_HA_ROUTER, desired_routes(V6_HA_ROUTER))
    assert config is not None
    # The EUI-64 link-local address of each device's MAC, so it moves with a failover.
    assert "fe80::f816:3eff:fe00:1/64 dev qr-d0a3a5b8-3b scope link" in config
    assert "fe80::f816:3eff:fe00:2/64 dev qg-d0bf28bd-6b scope link" in config
    assert "2001:db8:5::1/64 dev qr-d0a3a5b8-3b" in config and "2001:db8:e::7/64 dev qg-d0bf28bd-6b" in config
    assert "::/0 via 2001:db8:e::1 dev qg-d0bf28bd-6b" in config


def test_only_the_master_of_an_ha_router_advertises_and_forwards_on_its_devices() -> None:
    config = keepalived_config(V6_HA_ROUTER, desired_routes(V6_HA_ROUTER))
    assert config is not None
    state = L3State("net-1", (V6_HA_ROUTER,))
    digest = config_digest(config)
    backup = {"ha-e1e1e1e1-aa": frozenset({"169.254.192.7/18"})}
    # A backup: no radvd, no forwarding on its devices (nothing joins the all-routers groups).
    actions = plan(state, ha_view(V6_HA_ROUTER, keepalived=digest, addresses=backup))
    assert not [a for a in actions if isinstance(a, EnsureRadvd | SetSysctl)], actions
    # Becoming master: radvd starts and the devices forward.
    actions = plan(state, ha_view(V6_HA_ROUTER, keepalived=digest, addresses=MASTER))
    assert SetSysctl(NS, "net.ipv6.conf.qr-d0a3a5b8-3b.forwarding", "1") in actions
    assert SetSysctl(NS, "net.ipv6.conf.qg-d0bf28bd-6b.forwarding", "1") in actions
    radvd = next(a for a in actions if isinstance(a, EnsureRadvd))
    assert "interface qr-d0a3a5b8-3b" in radvd.config and "prefix 2001:db8:5::/64" in radvd.config
    # A master that falls back to backup: radvd stops, forwarding goes off.
    actions = plan(state, ha_view(V6_HA_ROUTER, keepalived=digest, addresses=backup, forwarding="1",
                                  radvd=config_digest(radvd.config)))
    assert StopRadvd(NS, ROUTER) in actions
    assert SetSysctl(NS, "net.ipv6.conf.qr-d0a3a5b8-3b.forwarding", "0") in actions


def test_a_router_turned_ha_or_back_gets_its_namespace_made_again() -> None:
    plain = {"qr-d0a3a5b8-3b": frozenset({"10.0.0.1/24"}), "qg-d0bf28bd-6b": frozenset({"172.24.4.84/24"})}
    legacy_view = converged_view(STATE.routers[0])
    legacy_view = replace(legacy_view, namespaces={NS: replace(
        legacy_view.namespaces[NS], addresses=plain, sysctls={**FORWARDING_SYSCTLS, ADDR_GEN_MODE: "0"})})
    actions = plan(L3State("net-1", (HA_ROUTER,)), legacy_view)
    assert actions[:2] == [RemoveNamespace(NS), EnsureNamespace(NS)]
    assert isinstance(actions[-1], EnsureKeepalived)
    # No longer HA: keepalived stops first (taking its addresses), then the namespace is made again.
    legacy = STATE.routers[0]
    actions = plan(L3State("net-1", (legacy,)), ha_view(legacy, keepalived="abc", addresses=plain))
    assert actions[:3] == [StopKeepalived(NS, ROUTER), RemoveNamespace(NS), EnsureNamespace(NS)]
    assert AddAddress(NS, "qr-d0a3a5b8-3b", "10.0.0.1/24") in actions
    assert not [a for a in actions if isinstance(a, EnsureKeepalived)]


def test_a_removed_ha_router_stops_keepalived_before_its_namespace_goes() -> None:
    view = ha_view(HA_ROUTER, keepalived="abc", addresses={})
    assert plan(L3State("net-1", ()), view) == [StopKeepalived(NS, ROUTER), RemoveNamespace(NS)]

"""The l3 role's extension planners (pure): gateway bandwidth limits (qos-fip, qos-gateway-ip) and
NDP proxies, and the parsing of tc's listings they are compared with (captured on this kernel)."""

from __future__ import annotations

from dataclasses import replace

from neutrino.agent.actions import RemoveDevice
from neutrino.agent.roles.l3.actions import (
    LoadNdpFilter,
    ProxyNeighbour,
    RemoveNdpFilter,
    SetSysctl,
    ShapeGateway,
    UnproxyNeighbour,
)
from neutrino.agent.roles.l3.ndp_proxy import ndp_filter_body, plan_ndp
from neutrino.agent.roles.l3.qos import ShapingView, gateway_limits, plan_shaping
from neutrino.contract.l3 import FloatingIp, GatewayQos, L3Router, NdpProxy, RouterAddress, RouterPort
from neutrino.contract.qos import BandwidthLimit
from neutrino.dataplane.address_shaping import (
    DESTINATION,
    SOURCE,
    AddressLimit,
    AddressShaping,
    ShapedAddress,
    parse_class_bursts,
    parse_u32_addresses,
)
from neutrino.dataplane.nftables import body_digest

NS = "qrouter-r"
GW = RouterPort("0bf28bd6-b000-4000-8000-000000000001", "ext", "fa:16:3e:00:00:02", 1500,
                (RouterAddress("s4", "172.24.4.84", "172.24.4.0/24", "172.24.4.1"),
                 RouterAddress("s6", "2001:db8::84", "2001:db8::/64", "2001:db8::1")))
QG, IFB = "qg-0bf28bd6-b0", "ifb0bf28bd6-b0"
TEN = BandwidthLimit(10_000, 1_000)
FIPS = (FloatingIp("f1", "172.24.4.93", "10.0.0.5", "p1", "ACTIVE", TEN, TEN),
        FloatingIp("f2", "172.24.4.94", "10.0.0.6", "p2", "ACTIVE"))


def router(**attrs: object) -> L3Router:
    return replace(L3Router("r", "p", True, True, 1, (), GW, (), FIPS), **attrs)


def test_limits_are_per_ipv4_address_and_the_plan_leaves_held_ones_alone() -> None:
    r = router(gateway_qos=GatewayQos(egress=BandwidthLimit(5_000)))
    egress, ingress = gateway_limits(r)
    assert egress == (AddressLimit("172.24.4.84", 5_000, 4_000), AddressLimit("172.24.4.93", 10_000, 1_000))
    assert ingress == (AddressLimit("172.24.4.93", 10_000, 1_000),)  # the IPv6 gateway address is not shaped
    assert plan_shaping(r, NS, ShapingView()) == [ShapeGateway(NS, QG, IFB, egress, ingress)]
    held = AddressShaping(frozenset({ShapedAddress("172.24.4.84", 5_000_000, 500_000),
                                     ShapedAddress("172.24.4.93", 10_000_000, 125_000)}),
                          frozenset({ShapedAddress("172.24.4.93", 10_000_000, 128_000)}), True, True)
    assert plan_shaping(r, NS, ShapingView({QG: held}, frozenset({IFB}))) == []
    # A rate changed, or the policy went: shaped again (to nothing).
    faster = router(floating_ips=(FloatingIp("f1", "172.24.4.93", "10.0.0.5", "p1", "ACTIVE", TEN,
                                             BandwidthLimit(20_000)),), gateway_qos=r.gateway_qos)
    assert [type(a) for a in plan_shaping(faster, NS, ShapingView({QG: held}, frozenset({IFB})))] == [ShapeGateway]
    bare = router(floating_ips=())
    assert plan_shaping(bare, NS, ShapingView({QG: held}, frozenset({IFB}))) == [ShapeGateway(NS, QG, IFB)]
    # The IFB of a gateway the router no longer has goes.
    assert plan_shaping(router(gateway=None), NS, ShapingView({}, frozenset({IFB}))) == [RemoveDevice(IFB, NS)]


def test_ndp_proxies_act_only_while_the_router_enables_them() -> None:
    on = router(enable_ndp_proxy=True, ndp_proxies=(NdpProxy("n1", "2001:db8:1::5", "p1"),))
    body = ndp_filter_body(on)
    assert body is not None and '"qg-0bf28bd6-b0" ip6 daddr { 2001:db8:1::5 } accept' in body
    key = f"net.ipv6.conf.{QG}.proxy_ndp"
    assert plan_ndp(on, NS, {}, {key: "0"}, None) == [
        LoadNdpFilter(NS, body), SetSysctl(NS, key, "1"), ProxyNeighbour(NS, QG, "2001:db8:1::5")]
    assert plan_ndp(on, NS, {QG: frozenset({"2001:db8:1::5"})}, {key: "1"}, body_digest(body)) == []
    off = router(ndp_proxies=on.ndp_proxies)
    assert plan_ndp(off, NS, {QG: frozenset({"2001:db8:1::5"})}, {key: "1"}, body_digest(body)) == [
        UnproxyNeighbour(NS, QG, "2001:db8:1::5"), SetSysctl(NS, key, "0"), RemoveNdpFilter(NS)]


def test_tc_listings_read_back_as_address_classes() -> None:
    classes = parse_class_bursts("class htb 4e51:1 root prio 0 rate 10Mbit ceil 10Mbit burst 125Kb cburst 125Kb \n"
                                "class htb 4e51:2 root prio 0 rate 1234Kbit ceil 1234Kbit burst 126335b cburst 1599b \n")
    assert classes == {"4e51:1": (10_000_000, 125_000), "4e51:2": (1_234_000, 126_335)}
    egress = [{"parent": "4e51:", "kind": "u32", "options": {"fh": "800:", "ht_divisor": 1}},
              {"parent": "4e51:", "kind": "u32", "options": {"fh": "800::800", "flowid": "4e51:1", "match": {
                  "value": "a4d000a", "mask": "ffffffff", "offmask": "", "off": 12}}}]
    ingress = [{"parent": "ffff:", "kind": "u32", "options": {"fh": "800::800", "match": {
        "value": "a4d000a", "mask": "ffffffff", "offmask": "", "off": 16}, "actions": [
        {"order": 1, "kind": "mirred", "mirred_action": "redirect", "direction": "egress", "to_dev": "ifbx"}]}}]
    assert parse_u32_addresses(egress, SOURCE) == {"10.77.0.10": "4e51:1"}
    assert parse_u32_addresses(egress, DESTINATION) == {}
    assert parse_u32_addresses(ingress, DESTINATION) == {"10.77.0.10": "ifbx"}

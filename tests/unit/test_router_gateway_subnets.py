"""Which new external subnets give an existing router gateway an address (Neutron's
``update_router_gw_ports`` plus its SLAAC pass), decided without a database."""

from __future__ import annotations

from neutrino.services.ipam.records import SubnetInfo
from neutrino.services.router_checks import gateway_takes_new_subnet

V4 = SubnetInfo("v4", "ext", "203.0.113.0/24", 4)
V6 = SubnetInfo("v6", "ext", "2001:db8:1::/64", 6)
SLAAC = SubnetInfo("slaac", "ext", "2001:db8:2::/64", 6, ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
ON_V4 = [{"subnet_id": "v4", "ip_address": "203.0.113.9"}]
ON_V4_V6 = ON_V4 + [{"subnet_id": "v6", "ip_address": "2001:db8:1::9"}]
SUBNETS = {s.id: s for s in (V4, V6, SLAAC)}


def subnet(subnet_id: str, cidr: str, version: int, **kw: object) -> SubnetInfo:
    return SubnetInfo(subnet_id, "ext", cidr, version, **kw)  # type: ignore[arg-type]


def test_a_plain_ipv4_subnet_gives_nothing_even_to_a_gateway_without_ipv4() -> None:
    new = subnet("n4", "192.0.2.0/24", 4)
    assert not gateway_takes_new_subnet(new, ON_V4, SUBNETS)
    assert not gateway_takes_new_subnet(new, [{"subnet_id": "v6", "ip_address": "2001:db8:1::9"}], SUBNETS)


def test_an_ipv4_subnet_for_gateways_gives_one_only_to_a_gateway_without_ipv4() -> None:
    new = subnet("n4", "192.0.2.0/24", 4, service_types=("network:router_gateway",))
    assert gateway_takes_new_subnet(new, [{"subnet_id": "v6", "ip_address": "2001:db8:1::9"}], SUBNETS)
    assert gateway_takes_new_subnet(new, [], SUBNETS)
    assert not gateway_takes_new_subnet(new, ON_V4, SUBNETS)


def test_a_stateful_ipv6_subnet_gives_one_while_the_gateway_has_no_stateful_ipv6_or_two_addresses() -> None:
    new = subnet("n6", "2001:db8:9::/64", 6)
    assert gateway_takes_new_subnet(new, ON_V4, SUBNETS)
    assert not gateway_takes_new_subnet(new, ON_V4_V6, SUBNETS)
    assert not gateway_takes_new_subnet(new, [{"subnet_id": "v6", "ip_address": "2001:db8:1::9"}], SUBNETS)
    # SLAAC addresses do not count as stateful ones.
    with_slaac = ON_V4 + [{"subnet_id": "slaac", "ip_address": "2001:db8:2::f816:3eff:fe00:1"}]
    assert gateway_takes_new_subnet(new, with_slaac, SUBNETS)


def test_slaac_always_gives_an_address_unless_gateways_are_excluded_or_it_has_one() -> None:
    new = subnet("n6", "2001:db8:9::/64", 6, ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    assert gateway_takes_new_subnet(new, ON_V4_V6, SUBNETS)
    assert not gateway_takes_new_subnet(new, [{"subnet_id": "n6", "ip_address": "2001:db8:9::1"}], SUBNETS)
    excluded = subnet("n6", "2001:db8:9::/64", 6, ipv6_address_mode="slaac", ipv6_ra_mode="slaac",
                      service_types=("compute:nova",))
    assert not gateway_takes_new_subnet(excluded, ON_V4, SUBNETS)

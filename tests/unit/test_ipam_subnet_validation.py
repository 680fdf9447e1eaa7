"""Subnet create/update decisions against Neutron's captured responses and documented rules."""

from __future__ import annotations

import pytest

from neutrino import errors
from neutrino.services.ipam.records import UNSET, SubnetInfo
from neutrino.services.ipam.subnet_validation import (
    HostRoute,
    SubnetLimits,
    SubnetRequest,
    SubnetSpec,
    SubnetUpdateRequest,
    check_subnet_request,
    check_subnetpool_affinity,
    decide_subnet_create,
    decide_subnet_update,
    default_allocation_pools,
    resolve_subnet_source,
    subnet_mtu_minimum,
)

NET = "6435c920-f18e-42b6-98a3-26282eb4400e"


def create(existing: list[SubnetInfo] | None = None, **fields: object) -> SubnetSpec:
    fields.setdefault("ip_version", 4)
    return decide_subnet_create(SubnetRequest(network_id=NET, **fields), existing=existing or [])


def existing_subnet(cidr: str, subnet_id: str = "s-old", **fields: object) -> SubnetInfo:
    version = 6 if ":" in cidr else 4
    return SubnetInfo(id=subnet_id, network_id=NET, cidr=cidr, ip_version=version, **fields)


def message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# ---- captured examples ------------------------------------------------------------------------------


def test_ipv4_defaults_match_captured_subnet_create():
    spec = create(cidr="192.168.10.0/24")
    assert spec.cidr == "192.168.10.0/24"
    assert spec.gateway_ip == "192.168.10.1"
    assert spec.allocation_pools_as_dicts() == [{"start": "192.168.10.2", "end": "192.168.10.254"}]
    assert spec.dns_nameservers == () and spec.host_routes == () and spec.service_types == ()
    assert spec.enable_dhcp is True and spec.ipv6_ra_mode is None and spec.ipv6_address_mode is None


def test_ipv6_slaac_defaults_match_captured_subnet_create():
    spec = create(ip_version=6, cidr="fd00:10::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert spec.gateway_ip == "fd00:10::"
    assert spec.allocation_pools_as_dicts() == [{"start": "fd00:10::1", "end": "fd00:10::ffff:ffff:ffff:ffff"}]
    assert spec.ipv6_ra_mode == spec.ipv6_address_mode == "slaac"


def test_out_of_range_prefix_is_not_in_cidr_format():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/33")
    assert excinfo.value.type_name == "InvalidInput"
    assert message(excinfo) == "Invalid input for operation: 10.0.0.0/33 is not in a CIDR format."


def test_garbage_cidr_is_not_in_cidr_format():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="not-a-cidr")
    assert message(excinfo) == "Invalid input for operation: not-a-cidr is not in a CIDR format."


def test_overlap_with_subnet_on_same_network_is_invalid_input():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create([existing_subnet("192.168.10.0/24")], cidr="192.168.10.128/25")
    assert message(excinfo) == (
        "Invalid input for operation: Requested subnet with cidr: 192.168.10.128/25 for network: "
        f"{NET} overlaps with another subnet.")


# ---- CIDR ---------------------------------------------------------------------------------------------


def test_host_bits_are_masked():
    assert create(cidr="10.0.0.7/24").cidr == "10.0.0.0/24"
    assert create(ip_version=6, cidr="2001:DB8::7/64").cidr == "2001:db8::/64"


def test_cidr_without_slash_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0")
    assert message(excinfo) == "Invalid input for operation: '10.0.0.0' is not a valid IP subnet."


def test_cidr_family_must_match_ip_version():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(ip_version=6, cidr="10.0.0.0/24")
    assert message(excinfo) == "Invalid input for operation: cidr '10.0.0.0/24' does not match the ip_version '6'."


def test_unknown_ip_version_is_refused():
    with pytest.raises(errors.InvalidInput):
        create(ip_version=5, cidr="10.0.0.0/24")


def test_ipv6_unspecified_network_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(ip_version=6, cidr="::/64")
    assert "IPv6 subnet '::' is not supported" in message(excinfo)


def test_prefix_zero_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="0.0.0.0/0", enable_dhcp=False)
    assert "0 is not allowed as CIDR prefix length" in message(excinfo)


def test_overlap_on_another_network_or_other_family_is_allowed():
    other_family = existing_subnet("fd00::/64")
    assert create([other_family], cidr="10.0.0.0/24").cidr == "10.0.0.0/24"


def test_containing_cidr_also_overlaps():
    with pytest.raises(errors.InvalidInput):
        create([existing_subnet("10.0.5.0/24")], cidr="10.0.0.0/16")


@pytest.mark.parametrize(("cidr", "ip_version", "expected"), [
    ("10.0.0.0/31", 4, "Subnet has a prefix length that is incompatible with DHCP service enabled"),
    ("fd00::/127", 6, "Subnet has a prefix length that is incompatible with DHCP service enabled"),
    ("224.0.0.0/24", 4, "Multicast IP subnet is not supported if enable_dhcp is True"),
    ("ff02::/64", 6, "Multicast IP subnet is not supported if enable_dhcp is True"),
    ("127.0.0.0/24", 4, "Loopback IP subnet is not supported if enable_dhcp is True"),
    ("0.0.0.0/24", 4, "First IP '0.0.0.0' of network is not supported if enable_dhcp is True."),
])
def test_dhcp_needs_a_servable_unicast_subnet(cidr, ip_version, expected):
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(ip_version=ip_version, cidr=cidr)
    assert expected in message(excinfo)
    # Without DHCP the same subnets are acceptable.
    assert create(ip_version=ip_version, cidr=cidr, enable_dhcp=False).cidr == cidr


# ---- gateway and pools --------------------------------------------------------------------------------


def test_null_gateway_means_no_gateway_and_full_pool():
    spec = create(cidr="10.0.0.0/24", gateway_ip=None)
    assert spec.gateway_ip is None
    assert spec.allocation_pools == (("10.0.0.1", "10.0.0.254"),)


def test_gateway_in_middle_splits_default_pool():
    spec = create(cidr="10.0.0.0/24", gateway_ip="10.0.0.100")
    assert spec.allocation_pools == (("10.0.0.1", "10.0.0.99"), ("10.0.0.101", "10.0.0.254"))


def test_gateway_outside_cidr_is_allowed_on_link():
    spec = create(cidr="10.0.0.0/24", gateway_ip="192.168.0.1")
    assert spec.gateway_ip == "192.168.0.1"
    assert spec.allocation_pools == (("10.0.0.1", "10.0.0.254"),)


@pytest.mark.parametrize("gateway", ["10.0.0.0", "10.0.0.255"])
def test_gateway_cannot_be_ipv4_network_or_broadcast(gateway):
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", gateway_ip=gateway)
    assert message(excinfo) == "Invalid input for operation: Gateway is not valid on subnet."


def test_gateway_family_must_match():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", gateway_ip="fd00::1")
    assert "gateway_ip 'fd00::1' does not match the ip_version '4'" in message(excinfo)


def test_malformed_gateway_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", gateway_ip="10.0.0")
    assert "'10.0.0' is not a valid IP address" in message(excinfo)


def test_ipv6_gateway_is_canonicalised():
    assert create(ip_version=6, cidr="fd00::/64", gateway_ip="FD00:0::1").gateway_ip == "fd00::1"


def test_small_ipv4_subnets_use_whole_range():
    assert default_allocation_pools(__import__("ipaddress").ip_network("10.0.0.0/31"), None) == (
        ("10.0.0.0", "10.0.0.1"),)
    assert create(cidr="10.0.0.4/32", enable_dhcp=False).allocation_pools == (("10.0.0.4", "10.0.0.4"),)
    # /31 default gateway is the second address, leaving the first for ports.
    assert create(cidr="10.0.0.0/31", enable_dhcp=False).allocation_pools == (("10.0.0.0", "10.0.0.0"),)


def test_user_pools_are_kept_in_order_and_canonical():
    spec = create(ip_version=6, cidr="fd00::/64", allocation_pools=[
        {"start": "FD00::100", "end": "fd00::1ff"}, {"start": "fd00::10", "end": "fd00::20"}])
    assert spec.allocation_pools == (("fd00::100", "fd00::1ff"), ("fd00::10", "fd00::20"))


def test_reversed_pool_is_invalid():
    with pytest.raises(errors.InvalidAllocationPool) as excinfo:
        create(cidr="10.0.0.0/24", allocation_pools=[{"start": "10.0.0.9", "end": "10.0.0.2"}])
    assert excinfo.value.type_name == "InvalidAllocationPool"
    assert message(excinfo) == "The allocation pool {'start': '10.0.0.9', 'end': '10.0.0.2'} is not valid."


def test_pool_of_other_family_is_invalid():
    with pytest.raises(errors.InvalidAllocationPool) as excinfo:
        create(cidr="10.0.0.0/24", allocation_pools=[{"start": "fd00::2", "end": "fd00::9"}])
    assert message(excinfo) == "The allocation pool fd00::2-fd00::9 is not valid."


@pytest.mark.parametrize(("start", "end"), [("10.0.0.0", "10.0.0.9"), ("10.0.0.2", "10.0.0.255"),
                                            ("10.0.0.2", "10.0.1.9")])
def test_pool_beyond_usable_range_is_out_of_bounds(start, end):
    with pytest.raises(errors.OutOfBoundsAllocationPool) as excinfo:
        create(cidr="10.0.0.0/24", allocation_pools=[{"start": start, "end": end}])
    assert message(excinfo) == f"The allocation pool {start}-{end} spans beyond the subnet cidr 10.0.0.0/24."
    assert isinstance(excinfo.value, errors.BadRequest)


def test_ipv6_pool_may_not_include_network_address():
    with pytest.raises(errors.OutOfBoundsAllocationPool):
        create(ip_version=6, cidr="fd00::/64", allocation_pools=[{"start": "fd00::", "end": "fd00::9"}])


def test_overlapping_pools_conflict():
    with pytest.raises(errors.OverlappingAllocationPools) as excinfo:
        create(cidr="10.0.0.0/24", allocation_pools=[
            {"start": "10.0.0.50", "end": "10.0.0.60"}, {"start": "10.0.0.2", "end": "10.0.0.10"},
            {"start": "10.0.0.5", "end": "10.0.0.20"}])
    assert isinstance(excinfo.value, errors.Conflict)
    assert message(excinfo) == ("Found overlapping allocation pools: 10.0.0.2-10.0.0.10 10.0.0.5-10.0.0.20 "
                                "for subnet 10.0.0.0/24.")


def test_gateway_inside_pool_conflicts():
    with pytest.raises(errors.GatewayConflictWithAllocationPools) as excinfo:
        create(cidr="10.0.0.0/24", allocation_pools=[{"start": "10.0.0.1", "end": "10.0.0.100"}])
    assert isinstance(excinfo.value, errors.Conflict)
    assert message(excinfo) == "Gateway ip 10.0.0.1 conflicts with allocation pool 10.0.0.1-10.0.0.100."


def test_empty_pool_list_gives_subnet_without_pools():
    assert create(cidr="10.0.0.0/24", allocation_pools=[]).allocation_pools == ()


@pytest.mark.parametrize(("pools", "expected"), [
    ("10.0.0.2", "Invalid data format for allocation pools"),
    ([{"start": "10.0.0.2"}], "Validation of dictionary's keys failed. Expected keys: {'end', 'start'} "
                              "Provided keys: {'start'}"),
    ([{"start": "10.0.0.2", "end": "banana"}], "'banana' is not a valid IP address"),
])
def test_malformed_pools_are_invalid_input(pools, expected):
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", allocation_pools=pools)
    assert expected in message(excinfo)


# ---- DNS servers, host routes, service types ---------------------------------------------------------


def test_dns_nameservers_keep_order():
    assert create(cidr="10.0.0.0/24", dns_nameservers=["8.8.8.8", "1.1.1.1"]).dns_nameservers == ("8.8.8.8", "1.1.1.1")


def test_duplicate_nameserver_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", dns_nameservers=["8.8.8.8", "8.8.8.8"])
    assert "Duplicate nameserver '8.8.8.8'" in message(excinfo)


def test_nameserver_of_other_family_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", dns_nameservers=["fd00::53"])
    assert "dns_nameserver 'fd00::53' does not match the ip_version '4'" in message(excinfo)


def test_invalid_nameserver_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", dns_nameservers=["dns.example"])
    assert "'dns.example' is not a valid nameserver. 'dns.example' is not a valid IP address" in message(excinfo)


def test_too_many_nameservers_is_exhausted():
    with pytest.raises(errors.DNSNameServersExhausted) as excinfo:
        create(cidr="10.0.0.0/24", dns_nameservers=[f"10.1.0.{i}" for i in range(1, 7)])
    assert message(excinfo) == ("Unable to complete operation for new subnet. "
                                "The number of DNS nameservers exceeds the limit 5.")
    assert isinstance(excinfo.value, errors.BadRequest)


def test_host_routes_are_validated_and_canonical():
    spec = create(ip_version=6, cidr="fd00::/64",
                  host_routes=[{"destination": "FD01::/64", "nexthop": "FD00::1"}])
    assert spec.host_routes == (HostRoute("fd01::/64", "fd00::1"),)


@pytest.mark.parametrize(("route", "expected"), [
    ({"destination": "10.1.0.1/24", "nexthop": "10.0.0.1"}, "'10.1.0.1/24' is not a valid CIDR"),
    ({"destination": "10.1.0.0", "nexthop": "10.0.0.1"}, "'10.1.0.0' is not a valid CIDR"),
    ({"destination": "127.0.0.0/8", "nexthop": "10.0.0.1"}, "'127.0.0.0/8' is not a routable CIDR"),
    ({"destination": "10.1.0.0/24", "nexthop": "fd00::1"}, "nexthop 'fd00::1' does not match the ip_version '4'"),
    ({"destination": "fd01::/64", "nexthop": "10.0.0.1"}, "destination 'fd01::/64' does not match the ip_version '4'"),
    ({"destination": "10.1.0.0/24"}, "Validation of dictionary's keys failed."),
])
def test_bad_host_routes_are_refused(route, expected):
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", host_routes=[route])
    assert expected in message(excinfo)


def test_duplicate_host_route_is_refused():
    route = {"destination": "10.1.0.0/24", "nexthop": "10.0.0.1"}
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", host_routes=[route, dict(route)])
    assert "Duplicate hostroute" in message(excinfo)


def test_too_many_host_routes_is_exhausted():
    routes = [{"destination": f"10.{i}.0.0/16", "nexthop": "10.0.0.1"} for i in range(1, 4)]
    with pytest.raises(errors.HostRoutesExhausted) as excinfo:
        decide_subnet_create(SubnetRequest(network_id=NET, ip_version=4, cidr="10.0.0.0/24", host_routes=routes),
                             existing=[], limits=SubnetLimits(max_host_routes=2))
    assert message(excinfo) == "Unable to complete operation for new subnet. The number of host routes exceeds the limit 2."


def test_service_types_must_name_device_owner_prefixes():
    assert create(cidr="10.0.0.0/24", service_types=["network:floatingip", "compute:nova"]).service_types == (
        "network:floatingip", "compute:nova")
    # Neutron's quirk: a type starting with any letter of "compute:" passes (tempest uses test:type_1).
    assert create(cidr="10.0.0.0/24", service_types=["test:type_1"]).service_types == ("test:type_1",)
    with pytest.raises(errors.InvalidSubnetServiceType) as excinfo:
        create(cidr="10.0.0.0/24", service_types=["foo:bar"])
    assert "Subnet service type foo:bar does not correspond to a valid device owner." in message(excinfo)
    with pytest.raises(errors.InvalidInputSubnetServiceType):
        create(cidr="10.0.0.0/24", service_types=[7])


# ---- IPv6 modes -------------------------------------------------------------------------------------


def test_ipv6_modes_are_refused_on_ipv4():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", ipv6_ra_mode="slaac")
    assert "ipv6_ra_mode is not valid when ip_version is 4" in message(excinfo)
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(cidr="10.0.0.0/24", ipv6_address_mode="slaac")
    assert "ipv6_address_mode is not valid when ip_version is 4" in message(excinfo)


def test_different_modes_are_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(ip_version=6, cidr="fd00::/64", ipv6_ra_mode="slaac", ipv6_address_mode="dhcpv6-stateful")
    assert ("ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid. "
            "If both attributes are set, they must be the same value") in message(excinfo)


def test_modes_require_dhcp():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(ip_version=6, cidr="fd00::/64", ipv6_address_mode="slaac", enable_dhcp=False)
    assert "cannot be set when enable_dhcp is set to False" in message(excinfo)


def test_auto_address_modes_require_64():
    with pytest.raises(errors.InvalidInput) as excinfo:
        create(ip_version=6, cidr="fd00::/80", ipv6_ra_mode="dhcpv6-stateless")
    assert "Invalid CIDR fd00::/80 for IPv6 address mode." in message(excinfo)
    assert create(ip_version=6, cidr="fd00::/80", ipv6_address_mode="dhcpv6-stateful").cidr == "fd00::/80"


def test_unknown_mode_is_refused():
    with pytest.raises(errors.InvalidInput):
        create(ip_version=6, cidr="fd00::/64", ipv6_ra_mode="bogus")


# ---- subnet pools as a source -------------------------------------------------------------------------


def test_pool_allocated_subnet_gets_first_host_gateway_in_both_families():
    spec = decide_subnet_create(SubnetRequest(network_id=NET, ip_version=6), existing=[],
                                allocated_cidr="fd00:0:0:5::/64", subnetpool_id="pool")
    assert spec.gateway_ip == "fd00:0:0:5::1"
    assert spec.allocation_pools == (("fd00:0:0:5::2", "fd00::5:ffff:ffff:ffff:ffff"),)
    assert spec.subnetpool_id == "pool"


def test_source_resolution_follows_neutron():
    assert resolve_subnet_source(ip_version=4, cidr="10.0.0.0/24") is None
    assert resolve_subnet_source(ip_version=4, subnetpool_id="p") == "p"
    assert resolve_subnet_source(ip_version=4, use_default_subnetpool=True, default_subnetpool_id="d") == "d"
    cases = [
        (dict(cidr="10.0.0.0/24", prefixlen=24), "cidr and prefixlen must not be supplied together"),
        (dict(subnetpool_id="p", use_default_subnetpool=True),
         "subnetpool_id and use_default_subnetpool cannot both be specified"),
        (dict(use_default_subnetpool=True), "No default subnetpool found for IPv4"),
        (dict(), "a subnetpool must be specified in the absence of a cidr"),
        (dict(subnetpool_id="p", allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.9"}]),
         "allocation_pools allowed only for specific subnet requests."),
    ]
    for fields, expected in cases:
        with pytest.raises(errors.BadRequest) as excinfo:
            resolve_subnet_source(ip_version=4, **fields)
        assert message(excinfo) == f"Bad subnets request: {expected}."


def test_request_checks_run_before_pool_allocation():
    with pytest.raises(errors.InvalidInput):
        check_subnet_request(SubnetRequest(network_id=NET, ip_version=4, dns_nameservers=["fd00::1"]))
    check_subnet_request(SubnetRequest(network_id=NET, ip_version=4, dns_nameservers=["10.0.0.53"]))


def test_subnetpool_affinity():
    plain = existing_subnet("10.0.0.0/24")
    pooled = existing_subnet("10.1.0.0/24", subnetpool_id="p1")
    check_subnetpool_affinity([plain], ip_version=4, subnetpool_id=None)
    check_subnetpool_affinity([pooled], ip_version=4, subnetpool_id="p1")
    check_subnetpool_affinity([pooled], ip_version=6, subnetpool_id=None)
    with pytest.raises(errors.NetworkSubnetPoolAffinityError):
        check_subnetpool_affinity([plain], ip_version=4, subnetpool_id="p1")
    with pytest.raises(errors.NetworkSubnetPoolAffinityError):
        check_subnetpool_affinity([pooled], ip_version=4, subnetpool_id=None)
    check_subnetpool_affinity([pooled], ip_version=4, subnetpool_id="p2", subnetpool_address_scope_id="as",
                              network_address_scope_id="as")
    with pytest.raises(errors.NetworkAddressScopeAffinityError):
        check_subnetpool_affinity([pooled], ip_version=4, subnetpool_id="p2", subnetpool_address_scope_id="other",
                                  network_address_scope_id="as")


def test_mtu_minimums():
    assert subnet_mtu_minimum(4, 1500) is None
    assert subnet_mtu_minimum(6, 1500) is None
    assert subnet_mtu_minimum(4, 1000) is None
    assert subnet_mtu_minimum(6, 1000) == 1280
    assert subnet_mtu_minimum(4, 60) == 68
    assert subnet_mtu_minimum(4, None) is None


# ---- update -------------------------------------------------------------------------------------------


def current() -> SubnetSpec:
    return create(cidr="10.0.0.0/24", dns_nameservers=["8.8.8.8"])


def test_update_without_changes_returns_same_subnet():
    spec = current()
    assert decide_subnet_update(spec, SubnetUpdateRequest(), subnet_id="s1") == spec


def test_update_replaces_lists():
    spec = decide_subnet_update(current(), SubnetUpdateRequest(
        dns_nameservers=["1.1.1.1", "9.9.9.9"], host_routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.0.9"}],
        allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.20"}]), subnet_id="s1")
    assert spec.dns_nameservers == ("1.1.1.1", "9.9.9.9")
    assert spec.host_routes == (HostRoute("10.9.0.0/16", "10.0.0.9"),)
    assert spec.allocation_pools == (("10.0.0.10", "10.0.0.20"),)


def test_update_null_lists_clear_them():
    spec = decide_subnet_update(current(), SubnetUpdateRequest(dns_nameservers=None, allocation_pools=None),
                                subnet_id="s1")
    assert spec.dns_nameservers == () and spec.allocation_pools == ()


def test_update_gateway_does_not_recompute_pools_but_must_avoid_them():
    spec = decide_subnet_update(current(), SubnetUpdateRequest(gateway_ip="10.0.0.254",
                                allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.200"}]), subnet_id="s1")
    assert spec.gateway_ip == "10.0.0.254"
    with pytest.raises(errors.GatewayConflictWithAllocationPools):
        decide_subnet_update(current(), SubnetUpdateRequest(gateway_ip="10.0.0.50"), subnet_id="s1")


def test_update_removing_gateway_keeps_pools():
    spec = decide_subnet_update(current(), SubnetUpdateRequest(gateway_ip=None), subnet_id="s1")
    assert spec.gateway_ip is None
    assert spec.allocation_pools == current().allocation_pools


def test_gateway_held_by_router_port_cannot_change():
    with pytest.raises(errors.GatewayIpInUse) as excinfo:
        decide_subnet_update(current(), SubnetUpdateRequest(gateway_ip=None), subnet_id="s1", gateway_port_id="p9")
    assert message(excinfo) == "Current gateway ip 10.0.0.1 already in use by port p9. Unable to update."
    # Re-sending the same gateway is not a change.
    same = decide_subnet_update(current(), SubnetUpdateRequest(gateway_ip="10.0.0.1"), subnet_id="s1",
                                gateway_port_id="p9")
    assert same.gateway_ip == "10.0.0.1"


def test_update_nameserver_limit_names_the_subnet():
    with pytest.raises(errors.DNSNameServersExhausted) as excinfo:
        decide_subnet_update(current(), SubnetUpdateRequest(dns_nameservers=["10.1.0.1", "10.1.0.2"]),
                             subnet_id="s1", limits=SubnetLimits(max_dns_nameservers=1))
    assert "Unable to complete operation for s1." in message(excinfo)


def test_turning_dhcp_on_rechecks_cidr():
    no_dhcp = create(cidr="10.0.0.0/31", enable_dhcp=False)
    with pytest.raises(errors.InvalidInput):
        decide_subnet_update(no_dhcp, SubnetUpdateRequest(enable_dhcp=True), subnet_id="s1")


def test_dhcp_cannot_be_disabled_while_ipv6_modes_are_set():
    slaac = create(ip_version=6, cidr="fd00::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    with pytest.raises(errors.InvalidInput) as excinfo:
        decide_subnet_update(slaac, SubnetUpdateRequest(enable_dhcp=False), subnet_id="s1")
    assert "Cannot disable enable_dhcp with ipv6 attributes set" in message(excinfo)


def test_update_pools_are_revalidated():
    with pytest.raises(errors.OutOfBoundsAllocationPool):
        decide_subnet_update(current(), SubnetUpdateRequest(allocation_pools=[{"start": "10.0.0.2", "end": "10.0.1.2"}]),
                             subnet_id="s1")


def test_spec_info_carries_ipam_view():
    info = create(cidr="10.0.0.0/24", service_types=["network:dhcp"]).info("s1")
    assert info.id == "s1" and info.network_id == NET and info.allocation_pools == (("10.0.0.2", "10.0.0.254"),)
    assert info.service_types == ("network:dhcp",) and not info.is_auto_address


def test_unset_keeps_what_none_clears():
    # An absent gateway_ip (UNSET) keeps the gateway and its pools; an explicit null removes it and
    # the pools then cover the gateway address too (absent and null must not be confused).
    spec = current()
    assert decide_subnet_update(spec, SubnetUpdateRequest(gateway_ip=UNSET), subnet_id="s1") == spec
    cleared = decide_subnet_update(spec, SubnetUpdateRequest(gateway_ip=None), subnet_id="s1")
    assert spec.gateway_ip == "10.0.0.1" and cleared.gateway_ip is None
    assert create(cidr="10.0.0.0/24").allocation_pools == (("10.0.0.2", "10.0.0.254"),)
    assert create(cidr="10.0.0.0/24", gateway_ip=None).allocation_pools == (("10.0.0.1", "10.0.0.254"),)
    assert repr(UNSET) == "UNSET"

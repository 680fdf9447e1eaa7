"""Port fixed_ips planning: create (given / absent / []) and update diffs."""

from __future__ import annotations

import pytest

from neutrino import errors
from neutrino.services.ipam.addresses import eui64_address
from neutrino.services.ipam.fixed_ips import (
    AddressPlan,
    AnyAddress,
    SpecificAddress,
    candidate_subnets,
    parse_fixed_ips,
    plan_fixed_ips_update,
    plan_port_addresses,
    subnet_ids_off_network,
)
from neutrino.services.ipam.records import UNSET, FixedIp, SubnetInfo

NET = "6435c920-f18e-42b6-98a3-26282eb4400e"
MAC = "fa:16:3e:71:f6:22"
V4 = SubnetInfo(id="d1e9fb43-bb3d-4e66-9d9b-29739096e148", network_id=NET, cidr="192.168.10.0/24", ip_version=4,
                gateway_ip="192.168.10.1", allocation_pools=(("192.168.10.2", "192.168.10.254"),))
SLAAC = SubnetInfo(id="71bce8fe-bc0f-4aa3-9082-b4bd91c3832d", network_id=NET, cidr="fd00:10::/64", ip_version=6,
                   gateway_ip="fd00:10::", allocation_pools=(("fd00:10::1", "fd00:10::ffff:ffff:ffff:ffff"),),
                   ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
STATEFUL = SubnetInfo(id="s6-stateful", network_id=NET, cidr="fd00:20::/64", ip_version=6, gateway_ip="fd00:20::",
                      allocation_pools=(("fd00:20::1", "fd00:20::ffff:ffff:ffff:ffff"),),
                      ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
V4_B = SubnetInfo(id="s4-b", network_id=NET, cidr="10.0.0.0/24", ip_version=4, gateway_ip="10.0.0.1",
                  allocation_pools=(("10.0.0.2", "10.0.0.254"),))
SLAAC_EUI = "fd00:10::f816:3eff:fe71:f622"


def plan(requested: object = UNSET, subnets=(V4, SLAAC), owner: str = "", mac: str = MAC) -> AddressPlan:
    return plan_port_addresses(requested, subnets=list(subnets), network_id=NET, device_owner=owner, mac_address=mac)


def message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# ---- create: no fixed_ips -----------------------------------------------------------------------------


def test_default_plan_one_ipv4_one_stateful_ipv6_and_eui64_per_slaac():
    result = plan(subnets=(V4, V4_B, SLAAC, STATEFUL))
    assert result.requests == (
        AnyAddress((V4.id, V4_B.id)), AnyAddress((STATEFUL.id,)), SpecificAddress(SLAAC.id, SLAAC_EUI, eui64=True))
    assert result.prefer_lowest is False


def test_network_without_subnets_gives_port_without_addresses():
    assert plan(subnets=()).requests == ()


def test_router_interface_gets_no_implicit_eui64():
    assert plan(owner="network:router_interface").requests == (AnyAddress((V4.id,)),)


@pytest.mark.parametrize("owner", ["network:dhcp", "network:distributed"])
def test_dhcp_and_distributed_ports_take_lowest_address(owner):
    assert plan(owner=owner).prefer_lowest is True


# ---- create: fixed_ips given --------------------------------------------------------------------------


def test_captured_fixed_ip_port_also_gets_its_slaac_address():
    result = plan([{"subnet_id": V4.id, "ip_address": "192.168.10.50"}])
    assert result.requests == (SpecificAddress(V4.id, "192.168.10.50"), SpecificAddress(SLAAC.id, SLAAC_EUI, eui64=True))
    assert eui64_address(SLAAC.cidr, MAC) == SLAAC_EUI


def test_captured_ip_not_in_subnet_is_invalid_ip_for_subnet():
    with pytest.raises(errors.InvalidIpForSubnet) as excinfo:
        plan([{"subnet_id": V4.id, "ip_address": "10.9.9.9"}])
    assert excinfo.value.type_name == "InvalidIpForSubnet"
    assert message(excinfo) == "IP address 10.9.9.9 is not a valid IP for the specified subnet."


def test_subnet_only_entry_allocates_on_that_subnet():
    assert plan([{"subnet_id": V4_B.id}], subnets=(V4, V4_B)).requests == (AnyAddress((V4_B.id,)),)


def test_ip_only_entry_finds_its_subnet():
    assert plan([{"ip_address": "10.0.0.9"}], subnets=(V4, V4_B)).requests == (SpecificAddress(V4_B.id, "10.0.0.9"),)


def test_ip_outside_every_subnet_is_invalid_for_network():
    with pytest.raises(errors.InvalidIpForNetwork) as excinfo:
        plan([{"ip_address": "172.16.0.9"}])
    assert message(excinfo) == ("IP address 172.16.0.9 is not a valid IP for any of the subnets on the "
                                "specified network.")


def test_address_outside_pools_but_inside_cidr_is_accepted():
    assert plan([{"subnet_id": V4.id, "ip_address": "192.168.10.1"}], subnets=(V4,)).requests == (
        SpecificAddress(V4.id, "192.168.10.1"),)


@pytest.mark.parametrize("ip", ["192.168.10.0", "192.168.10.255"])
def test_ipv4_network_and_broadcast_are_refused(ip):
    with pytest.raises(errors.InvalidIpForSubnet):
        plan([{"subnet_id": V4.id, "ip_address": ip}])
    with pytest.raises(errors.InvalidIpForNetwork):
        plan([{"ip_address": ip}])


def test_ipv6_network_address_only_for_router_and_ownerless_ports():
    request = [{"subnet_id": STATEFUL.id, "ip_address": "fd00:20::"}]
    assert plan(request, subnets=(STATEFUL,)).requests == (SpecificAddress(STATEFUL.id, "fd00:20::"),)
    assert plan(request, subnets=(STATEFUL,), owner="network:router_gateway").requests
    with pytest.raises(errors.InvalidIpForSubnet):
        plan(request, subnets=(STATEFUL,), owner="compute:nova")


def test_subnet_of_another_network_is_invalid_input():
    with pytest.raises(errors.InvalidInput) as excinfo:
        plan([{"subnet_id": "elsewhere"}])
    assert message(excinfo) == (f"Invalid input for operation: Failed to create port on network {NET}, because "
                                "fixed_ips included invalid subnet elsewhere.")


def test_subnet_ids_off_network_are_reported_for_existence_check():
    assert subnet_ids_off_network([{"subnet_id": V4.id}, {"subnet_id": "x"}, {"subnet_id": "x"}], [V4]) == ("x",)
    assert subnet_ids_off_network(UNSET, [V4]) == ()


def test_entry_without_subnet_or_ip_is_invalid():
    with pytest.raises(errors.InvalidInput) as excinfo:
        plan([{}])
    assert "IP allocation requires subnet_id or ip_address" in message(excinfo)


def test_network_without_subnets_refuses_fixed_ips():
    with pytest.raises(errors.InvalidInput) as excinfo:
        plan([{"ip_address": "10.0.0.5"}], subnets=())
    assert "IP allocation requires subnets for network" in message(excinfo)


def test_empty_fixed_ips_still_gets_slaac_address_but_nothing_else():
    assert plan([]).requests == (SpecificAddress(SLAAC.id, SLAAC_EUI, eui64=True),)
    assert plan([], subnets=(V4,)).requests == ()


def test_duplicate_address_in_request_is_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        plan([{"ip_address": "192.168.10.5"}, {"ip_address": "192.168.10.5"}])
    assert "Duplicate IP address '192.168.10.5'" in message(excinfo)


def test_duplicate_subnet_entries_are_legitimate():
    assert plan([{"subnet_id": V4.id}, {"subnet_id": V4.id}], subnets=(V4,)).requests == (
        AnyAddress((V4.id,)), AnyAddress((V4.id,)))


@pytest.mark.parametrize(("value", "expected"), [
    ("192.168.10.5", "Invalid data format for fixed IP: '192.168.10.5'"),
    (["192.168.10.5"], "Invalid data format for fixed IP: '192.168.10.5'"),
    ([{"ip_address": "192.168.10"}], "'192.168.10' is not a valid IP address"),
])
def test_malformed_fixed_ips_are_invalid_input(value, expected):
    with pytest.raises(errors.InvalidInput) as excinfo:
        parse_fixed_ips(value)
    assert expected in message(excinfo)


def test_specific_addresses_come_before_any_requests():
    result = plan([{"subnet_id": V4_B.id}, {"ip_address": "192.168.10.9"}], subnets=(V4, V4_B))
    assert result.requests == (SpecificAddress(V4.id, "192.168.10.9"), AnyAddress((V4_B.id,)))


def test_specific_ipv6_address_is_canonicalised():
    result = plan([{"ip_address": "FD00:20:0::9"}], subnets=(STATEFUL,))
    assert result.requests == (SpecificAddress(STATEFUL.id, "fd00:20::9"),)


# ---- auto-address subnets -----------------------------------------------------------------------------


def test_specific_address_on_slaac_must_be_the_eui64():
    with pytest.raises(errors.AllocationOnAutoAddressSubnet) as excinfo:
        plan([{"subnet_id": SLAAC.id, "ip_address": "fd00:10::5"}])
    assert isinstance(excinfo.value, errors.InvalidInput)
    assert message(excinfo) == (f"IPv6 address fd00:10::5 cannot be directly assigned to a port on subnet {SLAAC.id} "
                                "as the subnet is configured for automatic addresses")


def test_requesting_the_eui64_explicitly_asks_for_it_once():
    result = plan([{"ip_address": SLAAC_EUI}])
    assert result.requests == (SpecificAddress(SLAAC.id, SLAAC_EUI),)


def test_router_interface_may_pick_any_address_on_slaac():
    result = plan([{"subnet_id": SLAAC.id, "ip_address": "fd00:10::1"}], owner="network:router_interface")
    assert result.requests == (SpecificAddress(SLAAC.id, "fd00:10::1"),)
    result = plan([{"subnet_id": SLAAC.id}], owner="network:router_interface")
    assert result.requests == (AnyAddress((SLAAC.id,)),)


def test_slaac_subnet_named_by_id_gives_its_eui64_once():
    assert plan([{"subnet_id": SLAAC.id}]).requests == (SpecificAddress(SLAAC.id, SLAAC_EUI, eui64=True),)


# ---- service types ------------------------------------------------------------------------------------


FIP_SUBNET = SubnetInfo(id="fip", network_id=NET, cidr="172.24.4.0/24", ip_version=4,
                        allocation_pools=(("172.24.4.2", "172.24.4.254"),), service_types=("network:floatingip",))
NOVA_SUBNET = SubnetInfo(id="nova", network_id=NET, cidr="172.24.5.0/24", ip_version=4,
                         allocation_pools=(("172.24.5.2", "172.24.5.254"),), service_types=("compute:nova",),
                         enable_dhcp=False)


def test_dedicated_subnets_come_first_then_plain_ones():
    chosen = candidate_subnets([V4, FIP_SUBNET], "network:floatingip", network_id=NET)
    assert [s.id for s in chosen] == ["fip", V4.id]
    assert plan(subnets=(V4, FIP_SUBNET), owner="network:floatingip").requests == (AnyAddress(("fip", V4.id)),)


def test_ports_of_other_owners_skip_dedicated_subnets():
    assert [s.id for s in candidate_subnets([V4, FIP_SUBNET], "compute:nova", network_id=NET)] == [V4.id]
    with pytest.raises(errors.InvalidInput):
        plan([{"subnet_id": "fip"}], subnets=(V4, FIP_SUBNET), owner="compute:nova")


def test_no_eligible_subnet_is_generation_failure():
    with pytest.raises(errors.IpAddressGenerationFailureNoMatchingSubnet) as excinfo:
        plan(subnets=(FIP_SUBNET,), owner="compute:nova")
    assert isinstance(excinfo.value, errors.Conflict)
    assert message(excinfo) == (f"No valid service subnet for the given device owner, network {NET}, "
                                "service type compute:nova.")


def test_dhcp_port_may_use_dhcp_enabled_dedicated_subnets():
    assert [s.id for s in candidate_subnets([FIP_SUBNET, NOVA_SUBNET], "network:dhcp", network_id=NET)] == ["fip"]


# ---- update -------------------------------------------------------------------------------------------


PORT_V4 = FixedIp(V4.id, "192.168.10.5")
PORT_EUI = FixedIp(SLAAC.id, SLAAC_EUI)


def update(requested: object, current=(PORT_V4, PORT_EUI), subnets=(V4, SLAAC), owner: str = "",
           mac: str = MAC, **flags: bool):
    return plan_fixed_ips_update(list(current), requested, subnets=list(subnets), network_id=NET,
                                 device_owner=owner, mac_address=mac, port_id="port-1", **flags)


def test_untouched_fixed_ips_keep_everything():
    change = update(UNSET)
    assert change.keep == (PORT_V4, PORT_EUI) and change.release == () and change.allocate.requests == ()


def test_subnet_entry_reuses_existing_address():
    change = update([{"subnet_id": V4.id}])
    assert change.keep == (PORT_V4, PORT_EUI) and change.release == () and change.allocate.requests == ()


def test_listed_address_already_held_is_kept():
    change = update([{"subnet_id": V4.id, "ip_address": "192.168.10.5"}])
    assert change.keep == (PORT_V4, PORT_EUI) and change.allocate.requests == ()


def test_new_address_replaces_old_one_and_slaac_stays():
    change = update([{"ip_address": "192.168.10.7"}])
    assert change.keep == (PORT_EUI,)
    assert change.release == (PORT_V4,)
    assert change.allocate.requests == (SpecificAddress(V4.id, "192.168.10.7"),)


def test_empty_list_releases_all_but_auto_addresses():
    change = update([])
    assert change.keep == (PORT_EUI,) and change.release == (PORT_V4,) and change.allocate.requests == ()


def test_second_subnet_entry_adds_an_address():
    change = update([{"subnet_id": V4.id}, {"subnet_id": V4.id}])
    assert change.keep == (PORT_V4, PORT_EUI)
    assert change.allocate.requests == (AnyAddress((V4.id,)),)


def test_router_port_releases_unlisted_slaac_address():
    router_ip = FixedIp(SLAAC.id, "fd00:10::1")
    change = update([{"subnet_id": V4.id}], current=(PORT_V4, router_ip), owner="network:router_interface")
    assert change.keep == (PORT_V4,) and change.release == (router_ip,)


def test_new_auto_address_subnet_is_picked_up_on_update():
    change = update([{"subnet_id": V4.id}], current=(PORT_V4,))
    assert change.allocate.requests == (SpecificAddress(SLAAC.id, SLAAC_EUI, eui64=True),)


def test_ipv4_change_on_protected_router_port_is_refused():
    with pytest.raises(errors.IPAddressChangeNotAllowed) as excinfo:
        update([{"ip_address": "192.168.10.7"}], ip_change_forbidden=True)
    assert message(excinfo) == "IP updates for port port-1 are not allowed"
    with pytest.raises(errors.IPAddressChangeNotAllowed):
        update([{"subnet_id": V4.id}, {"subnet_id": V4.id}], ip_change_forbidden=True)
    # IPv6-only changes are allowed.
    change = update([{"subnet_id": V4.id}, {"subnet_id": STATEFUL.id}], subnets=(V4, SLAAC, STATEFUL),
                    ip_change_forbidden=True)
    assert change.allocate.requests == (AnyAddress((STATEFUL.id,)),)


def test_mac_change_rederives_eui64_addresses():
    new_mac = "fa:16:3e:00:00:01"
    change = update(UNSET, mac=new_mac, mac_changed=True)
    assert change.keep == (PORT_V4,)
    assert change.release == (PORT_EUI,)
    assert change.allocate.requests == (SpecificAddress(SLAAC.id, eui64_address(SLAAC.cidr, new_mac), eui64=True),)


def test_update_errors_match_create_errors():
    with pytest.raises(errors.InvalidIpForSubnet):
        update([{"subnet_id": V4.id, "ip_address": "10.9.9.9"}])
    with pytest.raises(errors.AllocationOnAutoAddressSubnet):
        update([{"subnet_id": V4.id}, {"subnet_id": SLAAC.id, "ip_address": "fd00:10::77"}])

"""The IP availability arithmetic: pools are counted, not the CIDR, and networks sum their subnets."""

from __future__ import annotations

from neutrino.services.ip_availability import availability_view, subnet_total_ips


def test_total_counts_allocation_pools_inclusively() -> None:
    pools = [{"start": "10.0.0.2", "end": "10.0.0.99"}, {"start": "10.0.0.101", "end": "10.0.0.254"}]
    assert subnet_total_ips("10.0.0.0/24", pools) == 98 + 154


def test_total_is_the_whole_cidr_without_pools() -> None:
    assert subnet_total_ips("10.0.0.0/30", []) == 4
    assert subnet_total_ips("2001:db8::/64", []) == 2 ** 64


def test_network_totals_are_the_sums_of_its_subnets() -> None:
    network = {"id": "n", "name": "net", "project_id": "p"}
    subnets = [
        {"id": "a", "name": "a", "cidr": "10.0.0.0/29", "ip_version": 4,
         "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.6"}]},
        {"id": "b", "name": "b", "cidr": "2001:db8::/126", "ip_version": 6, "allocation_pools": []},
    ]
    view = availability_view(network, subnets, {"a": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]})
    assert (view["total_ips"], view["used_ips"]) == (5 + 4, 3)
    assert [(s["subnet_id"], s["total_ips"], s["used_ips"]) for s in view["subnet_ip_availability"]] == \
        [("a", 5, 3), ("b", 4, 0)]
    assert view["project_id"] == view["tenant_id"] == "p"


def test_details_split_the_cidr_from_the_pools_as_neutron_counts() -> None:
    network = {"id": "n", "name": "net", "project_id": "p"}
    subnets = [
        # The gateway .1 is allocated outside the pool; IPv4 loses network and broadcast addresses.
        {"id": "a", "name": "a", "cidr": "10.0.0.0/29", "ip_version": 4,
         "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.6"}]},
        {"id": "b", "name": "b", "cidr": "2001:db8::/126", "ip_version": 6,
         "allocation_pools": [{"start": "2001:db8::1", "end": "2001:db8::3"}]},
    ]
    view = availability_view(network, subnets, {"a": ["10.0.0.1", "10.0.0.2", "10.0.0.3"], "b": ["2001:db8::2"]})
    by_id = {s["subnet_id"]: s["ip_availability_details"] for s in view["subnet_ip_availability"]}
    assert by_id["a"] == {"total_ips_in_subnet": 6, "total_ips_in_allocation_pool": 5,
                          "used_ips_in_subnet": 3, "used_ips_in_allocation_pool": 2}
    assert by_id["b"] == {"total_ips_in_subnet": 4, "total_ips_in_allocation_pool": 3,
                          "used_ips_in_subnet": 1, "used_ips_in_allocation_pool": 1}
    assert view["ip_availability_details"] == {"total_ips_in_subnet": 10, "total_ips_in_allocation_pool": 8,
                                               "used_ips_in_subnet": 4, "used_ips_in_allocation_pool": 3}


def test_network_without_subnets_reports_zeros() -> None:
    view = availability_view({"id": "n", "name": "", "project_id": "p"}, [], {})
    assert (view["total_ips"], view["used_ips"], view["subnet_ip_availability"]) == (0, 0, [])

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
    view = availability_view(network, subnets, {"a": 3})
    assert (view["total_ips"], view["used_ips"]) == (5 + 4, 3)
    assert [(s["subnet_id"], s["total_ips"], s["used_ips"]) for s in view["subnet_ip_availability"]] == \
        [("a", 5, 3), ("b", 4, 0)]
    assert view["project_id"] == view["tenant_id"] == "p"


def test_network_without_subnets_reports_zeros() -> None:
    view = availability_view({"id": "n", "name": "", "project_id": "p"}, [], {})
    assert (view["total_ips"], view["used_ips"], view["subnet_ip_availability"]) == (0, 0, [])

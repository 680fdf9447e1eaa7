"""Subnet pools: prefix compaction, bounds, updates, quota and prefix allocation."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrino import errors
from neutrino.services.ipam.prefixes import (
    PrefixRequest,
    SubnetPoolSpec,
    add_prefixes,
    allocate_prefix,
    check_address_scope_prefixes,
    check_address_scope_version,
    compact_prefixes,
    decide_subnetpool,
    decide_subnetpool_update,
    free_space,
    plan_prefix_request,
    remove_prefixes,
)


def message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# ---- create -----------------------------------------------------------------------------------------


def test_defaults_per_family():
    v4 = decide_subnetpool(["10.0.0.0/16"])
    assert (v4.ip_version, v4.min_prefixlen, v4.max_prefixlen, v4.default_prefixlen) == (4, 8, 32, 8)
    v6 = decide_subnetpool(["2001:db8::/48"])
    assert (v6.ip_version, v6.min_prefixlen, v6.max_prefixlen, v6.default_prefixlen) == (6, 64, 128, 64)
    assert v4.default_quota is None


def test_overlapping_and_adjacent_prefixes_are_compacted():
    pool = decide_subnetpool(["10.0.0.128/25", "10.0.0.0/25", "10.0.0.0/26", "192.168.0.7/24"])
    assert pool.prefixes == ("10.0.0.0/24", "192.168.0.0/24")
    # Adjacent but unaligned ranges stay two CIDRs; aligned ones merge.
    assert compact_prefixes(["10.0.2.0/24", "10.0.1.0/24"]) == ("10.0.1.0/24", "10.0.2.0/24")
    assert compact_prefixes(["10.0.3.0/24", "10.0.2.0/24"]) == ("10.0.2.0/23",)


def test_empty_prefix_list():
    with pytest.raises(errors.EmptySubnetPoolPrefixList) as excinfo:
        decide_subnetpool([])
    assert message(excinfo) == "Empty subnet pool prefix list."


def test_mixed_families():
    with pytest.raises(errors.PrefixVersionMismatch) as excinfo:
        decide_subnetpool(["10.0.0.0/8", "fd00::/8"])
    assert message(excinfo) == "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


@pytest.mark.parametrize("prefix", ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/255.0.0.0", "bogus/8"])
def test_malformed_prefixes(prefix):
    with pytest.raises(errors.InvalidInput) as excinfo:
        decide_subnetpool([prefix])
    assert f"'{prefix}' is not a valid IP subnet" in message(excinfo)


def test_duplicate_prefixes_are_refused():
    with pytest.raises(errors.InvalidInput) as excinfo:
        decide_subnetpool(["10.0.0.0/8", "10.0.0.0/8"])
    assert "Duplicate items in the list: '10.0.0.0/8'" in message(excinfo)


@pytest.mark.parametrize(("bounds", "expected"), [
    (dict(min_prefixlen=24, max_prefixlen=16), "Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16."),
    (dict(max_prefixlen=33), "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."),
    (dict(min_prefixlen=16, default_prefixlen=8), "Illegal prefix bounds: default_prefixlen=8, min_prefixlen=16."),
    (dict(max_prefixlen=24, default_prefixlen=28), "Illegal prefix bounds: default_prefixlen=28, max_prefixlen=24."),
])
def test_inconsistent_bounds(bounds, expected):
    with pytest.raises(errors.IllegalSubnetPoolPrefixBounds) as excinfo:
        decide_subnetpool(["10.0.0.0/8"], **bounds)
    assert message(excinfo) == expected


def test_negative_min_prefixlen():
    with pytest.raises(errors.UnsupportedMinSubnetPoolPrefix) as excinfo:
        decide_subnetpool(["10.0.0.0/8"], min_prefixlen=-1)
    assert message(excinfo) == "Prefix '-1' not supported in IPv4 pool."


def test_integer_strings_are_accepted_like_neutron_converter():
    assert decide_subnetpool(["10.0.0.0/8"], default_prefixlen="24").default_prefixlen == 24
    with pytest.raises(errors.InvalidInput):
        decide_subnetpool(["10.0.0.0/8"], default_prefixlen="big")


# ---- update -----------------------------------------------------------------------------------------


def pool(**fields: object) -> SubnetPoolSpec:
    return decide_subnetpool(["10.0.0.0/16"], **fields)


def test_prefixes_may_grow():
    assert decide_subnetpool_update(pool(), prefixes=["10.0.0.0/15"]).prefixes == ("10.0.0.0/15",)
    assert decide_subnetpool_update(pool(), prefixes=["10.0.0.0/16", "10.5.0.0/16"]).prefixes == (
        "10.0.0.0/16", "10.5.0.0/16")


def test_prefixes_may_not_shrink():
    with pytest.raises(errors.IllegalSubnetPoolPrefixUpdate) as excinfo:
        decide_subnetpool_update(pool(), prefixes=["10.0.0.0/17"])
    assert message(excinfo) == "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes."


def test_update_rechecks_bounds_with_kept_values():
    with pytest.raises(errors.IllegalSubnetPoolPrefixBounds):
        decide_subnetpool_update(pool(), min_prefixlen=16)  # the kept default (8) is now below min
    updated = decide_subnetpool_update(pool(), min_prefixlen=16, default_prefixlen=24, default_quota=512)
    assert (updated.min_prefixlen, updated.default_prefixlen, updated.default_quota) == (16, 24, 512)
    assert decide_subnetpool_update(updated, default_quota=None).default_quota is None


def test_add_prefixes_merges():
    assert add_prefixes(pool(), ["10.1.0.0/16"]) == ("10.0.0.0/15",)
    assert add_prefixes(pool(), []) == ("10.0.0.0/16",)
    with pytest.raises(errors.PrefixVersionMismatch):
        add_prefixes(pool(), ["fd00::/64"])


def test_remove_prefixes():
    assert remove_prefixes(pool(), ["10.0.128.0/17"], allocated_cidrs=["10.0.0.0/24"]) == ("10.0.0.0/17",)
    assert remove_prefixes(pool(), ["192.168.0.0/16"], allocated_cidrs=[]) == ("10.0.0.0/16",)
    with pytest.raises(errors.IllegalSubnetPoolPrefixUpdate) as excinfo:
        remove_prefixes(pool(), ["10.0.0.0/17"], allocated_cidrs=["10.0.0.0/24"])
    assert message(excinfo) == ("Illegal update to prefixes: One or more the prefixes to be removed is in use "
                                "by a subnet..")


# ---- allocation -------------------------------------------------------------------------------------


def test_lowest_block_from_fresh_pool():
    p = pool(default_prefixlen=24)
    request = plan_prefix_request(p, ip_version=4)
    assert request == PrefixRequest(24)
    assert allocate_prefix(p, request, allocated_cidrs=[]) == "10.0.0.0/24"
    assert allocate_prefix(p, request, allocated_cidrs=["10.0.0.0/24"]) == "10.0.1.0/24"


def test_best_fit_keeps_large_blocks_whole():
    p = pool()
    # Free: 10.0.0.0/24 is taken except... make 10.0.1.0/25 the only small hole.
    allocated = ["10.0.0.0/24", "10.0.1.128/25"]
    assert allocate_prefix(p, PrefixRequest(26), allocated_cidrs=allocated) == "10.0.1.0/26"


def test_prefixlen_outside_bounds():
    p = pool(min_prefixlen=16, max_prefixlen=28, default_prefixlen=24)
    with pytest.raises(errors.MaxPrefixSubnetAllocationError) as excinfo:
        allocate_prefix(p, PrefixRequest(29), allocated_cidrs=[])
    assert message(excinfo) == "Unable to allocate subnet with prefix length 29, maximum allowed prefix is 28."
    with pytest.raises(errors.MinPrefixSubnetAllocationError) as excinfo:
        allocate_prefix(p, PrefixRequest(15), allocated_cidrs=[])
    assert message(excinfo) == "Unable to allocate subnet with prefix length 15, minimum allowed prefix is 16."


def test_no_space_is_a_conflict():
    p = decide_subnetpool(["10.0.0.0/24"], min_prefixlen=24)
    with pytest.raises(errors.SubnetAllocationError) as excinfo:
        allocate_prefix(p, PrefixRequest(24), allocated_cidrs=["10.0.0.0/24"])
    assert isinstance(excinfo.value, errors.Conflict)
    assert message(excinfo) == "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /24."


def test_specific_cidr_must_be_free():
    p = pool()
    request = plan_prefix_request(p, ip_version=4, cidr="10.0.5.7/24")
    assert request == PrefixRequest(24, "10.0.5.0/24")
    assert allocate_prefix(p, request, allocated_cidrs=["10.0.0.0/24"]) == "10.0.5.0/24"
    for taken in (["10.0.5.0/24"], ["10.0.5.128/25"], ["10.0.0.0/16"]):
        with pytest.raises(errors.SubnetAllocationError) as excinfo:
            allocate_prefix(p, request, allocated_cidrs=taken)
        assert "Cannot allocate requested subnet from the available set of prefixes" in message(excinfo)
    with pytest.raises(errors.SubnetAllocationError):
        allocate_prefix(p, PrefixRequest(24, "10.1.0.0/24"), allocated_cidrs=[])


def test_gateway_without_cidr_asks_for_the_block_around_it():
    p = pool(default_prefixlen=24)
    assert plan_prefix_request(p, ip_version=4, gateway_ip="10.0.9.1") == PrefixRequest(24, "10.0.9.0/24")
    assert plan_prefix_request(p, ip_version=4, prefixlen=26, gateway_ip="10.0.9.65") == PrefixRequest(
        26, "10.0.9.64/26")


def test_request_family_must_match_pool():
    with pytest.raises(errors.BadRequest) as excinfo:
        plan_prefix_request(pool(), ip_version=6)
    assert message(excinfo) == "Bad subnets request: Cannot allocate IPv6 subnet from IPv4 subnet pool."


def test_quota_counts_addresses_in_unit_blocks():
    p = pool(default_quota=512)  # 512 IPv4 addresses
    allocate_prefix(p, PrefixRequest(24), allocated_cidrs=[], project_allocated_cidrs=["10.0.0.0/24"])
    with pytest.raises(errors.SubnetPoolQuotaExceeded) as excinfo:
        allocate_prefix(p, PrefixRequest(23), allocated_cidrs=[], project_allocated_cidrs=["10.0.0.0/24"])
    assert isinstance(excinfo.value, errors.Conflict)
    assert message(excinfo) == "Per-project subnet pool prefix quota exceeded."
    v6 = decide_subnetpool(["2001:db8::/48"], min_prefixlen=56, default_quota=2)
    allocate_prefix(v6, PrefixRequest(64), allocated_cidrs=[], project_allocated_cidrs=["2001:db8::/64"])
    with pytest.raises(errors.SubnetPoolQuotaExceeded):
        allocate_prefix(v6, PrefixRequest(63), allocated_cidrs=[], project_allocated_cidrs=["2001:db8::/64"])


def test_zero_quota_means_unlimited_as_in_neutron():
    allocate_prefix(pool(default_quota=0), PrefixRequest(16), allocated_cidrs=[], project_allocated_cidrs=[])


def test_address_scope_checks():
    check_address_scope_prefixes(["10.0.0.0/16"], [["10.1.0.0/16"], ["fd00::/8"]])
    with pytest.raises(errors.AddressScopePrefixConflict):
        check_address_scope_prefixes(["10.0.0.0/16"], [["10.0.128.0/24"]])
    with pytest.raises(errors.IllegalSubnetPoolIpVersionAssociationToAddressScope) as excinfo:
        check_address_scope_version(subnetpool_id="p", ip_version=4, address_scope_id="a", address_scope_ip_version=6)
    assert "because subnetpool ip_version is not 6" in message(excinfo)


# ---- properties -------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.lists(st.integers(20, 28), min_size=1, max_size=40))
def test_allocations_never_overlap_and_stay_in_pool(seed, lengths):
    p = decide_subnetpool(["10.0.0.0/20", "10.2.0.0/22"], min_prefixlen=20, max_prefixlen=28)
    rng = random.Random(seed)
    allocated: list[str] = []
    for length in lengths:
        if rng.random() < 0.2 and allocated:
            allocated.remove(rng.choice(allocated))
        try:
            cidr = allocate_prefix(p, PrefixRequest(length), allocated_cidrs=allocated)
        except errors.SubnetAllocationError:
            # Only when no free block of that size exists.
            assert all(block.prefixlen > length for block in free_space(p, allocated))
            continue
        new = ipaddress.ip_network(cidr)
        assert new.prefixlen == length
        assert any(new.subnet_of(ipaddress.ip_network(prefix)) for prefix in p.prefixes)
        assert not any(new.overlaps(ipaddress.ip_network(other)) for other in allocated)
        allocated.append(cidr)

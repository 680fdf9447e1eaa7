"""Address arithmetic and the choice of free addresses (incl. property checks with hypothesis)."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrino import errors
from neutrino.services.ipam.addresses import (
    RANDOM_WINDOW,
    UsedAddresses,
    address_in_pools,
    address_valid_on_subnet,
    choose_address,
    choose_address_on_any,
    ensure_address_free,
    eui64_address,
    is_eui64_shaped,
    total_ips,
)
from neutrino.services.ipam.records import SubnetInfo


def test_eui64_matches_captured_slaac_address():
    assert eui64_address("fd00:10::/64", "fa:16:3e:71:f6:22") == "fd00:10::f816:3eff:fe71:f622"


def test_eui64_accepts_any_mac_spelling_and_flips_universal_bit():
    assert eui64_address("2001:db8::/64", "00-11-22-33-44-55") == "2001:db8::211:22ff:fe33:4455"


def test_eui64_shape_detection():
    assert is_eui64_shaped("fd00:10::f816:3eff:fe71:f622")
    assert not is_eui64_shaped("fd00:10::5")
    assert not is_eui64_shaped("10.0.0.5")


@pytest.mark.parametrize(("cidr", "ip", "owner", "valid"), [
    ("10.0.0.0/24", "10.0.0.5", "", True),
    ("10.0.0.0/24", "10.0.0.0", "", False),
    ("10.0.0.0/24", "10.0.0.255", "", False),
    ("10.0.0.0/24", "10.0.1.5", "", False),
    ("10.0.0.0/24", "fd00::5", "", False),
    ("fd00::/64", "fd00::", "", True),
    ("fd00::/64", "fd00::", "network:router_interface", True),
    ("fd00::/64", "fd00::", "compute:nova", False),
    ("fd00::/64", "fd00::ffff:ffff:ffff:ffff", "compute:nova", True),
])
def test_address_validity_on_subnet(cidr, ip, owner, valid):
    assert address_valid_on_subnet(cidr, ip, owner) is valid


def test_total_ips_is_sum_of_pool_sizes_or_cidr_size():
    assert total_ips("10.0.0.0/24", [("10.0.0.2", "10.0.0.254")]) == 253
    assert total_ips("10.0.0.0/24", [("10.0.0.2", "10.0.0.9"), ("10.0.0.20", "10.0.0.20")]) == 9
    assert total_ips("10.0.0.0/24", []) == 256
    assert total_ips("fd00::/64", [("fd00::1", "fd00::ffff:ffff:ffff:ffff")]) == 2 ** 64 - 1


def test_address_in_pools():
    pools = [("10.0.0.2", "10.0.0.9"), ("10.0.0.20", "10.0.0.30")]
    assert address_in_pools("10.0.0.2", pools) and address_in_pools("10.0.0.25", pools)
    assert not address_in_pools("10.0.0.15", pools) and not address_in_pools("fd00::2", pools)


def test_lowest_free_address_for_dhcp_style_choice():
    pools = [("10.0.0.2", "10.0.0.254")]
    assert choose_address(pools, ["10.0.0.2", "10.0.0.3", "10.0.0.5"], rng=random.Random(0),
                          prefer_lowest=True) == "10.0.0.4"


def test_first_pool_with_space_is_used():
    pools = [("10.0.0.2", "10.0.0.3"), ("10.0.0.100", "10.0.0.100")]
    assert choose_address(pools, ["10.0.0.2", "10.0.0.3"], rng=random.Random(0)) == "10.0.0.100"


def test_full_pools_give_none():
    pools = [("10.0.0.2", "10.0.0.3")]
    assert choose_address(pools, ["10.0.0.2", "10.0.0.3"], rng=random.Random(0)) is None
    assert choose_address([], [], rng=random.Random(0)) is None


def test_random_choice_stays_within_first_window_of_free_addresses():
    pools = [("10.0.0.1", "10.0.255.254")]
    rng = random.Random(7)
    picks = {choose_address(pools, [], rng=rng) for _ in range(300)}
    values = {int(ipaddress.ip_address(p)) for p in picks}
    first = int(ipaddress.ip_address("10.0.0.1"))
    assert all(first <= v < first + RANDOM_WINDOW for v in values)
    assert len(picks) > 50  # random, not always the same address


def test_choice_is_deterministic_for_a_seed():
    pools = [("fd00::1", "fd00::ffff:ffff:ffff:ffff")]
    assert choose_address(pools, [], rng=random.Random(3)) == choose_address(pools, [], rng=random.Random(3))


def test_ipv6_64_with_used_addresses_is_fast_and_correct():
    pools = [("fd00::1", "fd00::ffff:ffff:ffff:ffff")]
    used = [f"fd00::{i:x}" for i in range(1, 5000)]
    # 2**64 candidates: this only returns at all because free addresses are walked lazily.
    assert choose_address(pools, used, rng=random.Random(1), prefer_lowest=True) == "fd00::1388"
    assert choose_address(pools, used, rng=random.Random(1)) not in UsedAddresses.of(used)


def test_slash16_with_thousands_used_never_returns_used():
    pools = [("10.1.0.1", "10.1.255.254")]
    rng = random.Random(11)
    used = UsedAddresses.of(str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.1.0.1")) + i))
                            for i in range(0, 20000, 1) if i % 7)
    for _ in range(50):
        ip = choose_address(pools, used, rng=rng)
        assert ip is not None and ip not in used and address_in_pools(ip, pools)


def test_exhausting_a_small_pool_hands_out_every_address_once():
    pools = [("10.0.0.2", "10.0.0.14"), ("10.0.0.20", "10.0.0.22")]
    rng = random.Random(5)
    used: list[str] = []
    while (ip := choose_address(pools, used, rng=rng)) is not None:
        assert ip not in used
        used.append(ip)
    assert len(used) == 16


def test_candidates_are_tried_in_order():
    full = SubnetInfo(id="s1", network_id="n", cidr="10.0.0.0/30", ip_version=4,
                      allocation_pools=(("10.0.0.1", "10.0.0.2"),))
    spare = SubnetInfo(id="s2", network_id="n", cidr="10.0.1.0/24", ip_version=4,
                       allocation_pools=(("10.0.1.2", "10.0.1.254"),))
    chosen = choose_address_on_any([full, spare], {"s1": ["10.0.0.1", "10.0.0.2"]}, network_id="n",
                                   rng=random.Random(0), prefer_lowest=True)
    assert (chosen.subnet_id, chosen.ip_address) == ("s2", "10.0.1.2")


def test_all_candidates_full_is_generation_failure():
    full = SubnetInfo(id="s1", network_id="n", cidr="10.0.0.0/30", ip_version=4,
                      allocation_pools=(("10.0.0.1", "10.0.0.2"),))
    with pytest.raises(errors.IpAddressGenerationFailure) as excinfo:
        choose_address_on_any([full], {"s1": ["10.0.0.1", "10.0.0.2"]}, network_id="n", rng=random.Random(0))
    assert str(excinfo.value) == "No more IP addresses available on network n."
    assert isinstance(excinfo.value, errors.Conflict)


def test_ensure_address_free():
    ensure_address_free("s1", "192.168.10.51", ["192.168.10.50"])
    with pytest.raises(errors.IpAddressAlreadyAllocated) as excinfo:
        ensure_address_free("d1e9fb43-bb3d-4e66-9d9b-29739096e148", "192.168.10.50", ["192.168.10.50"])
    assert str(excinfo.value) == ("IP address 192.168.10.50 already allocated in subnet "
                                  "d1e9fb43-bb3d-4e66-9d9b-29739096e148")
    with pytest.raises(errors.IpAddressAlreadyAllocated):
        ensure_address_free("s6", "fd00::a", UsedAddresses.of(["FD00::A"]))


# ---- properties -------------------------------------------------------------------------------------


@st.composite
def pools_and_used(draw):
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    bounds = sorted(draw(st.lists(st.integers(0, 600), min_size=2, max_size=8, unique=True)))
    pools = [(str(ipaddress.IPv4Address(base + a)), str(ipaddress.IPv4Address(base + b)))
             for a, b in zip(bounds[::2], bounds[1::2], strict=False)]
    used = draw(st.lists(st.integers(0, 650), max_size=400))
    return pools, [str(ipaddress.IPv4Address(base + u)) for u in used]


@settings(max_examples=150, deadline=None)
@given(pools_and_used(), st.integers(0, 2 ** 32), st.booleans())
def test_choice_is_always_free_and_inside_a_pool(case, seed, lowest):
    pools, used = case
    ip = choose_address(pools, used, rng=random.Random(seed), prefer_lowest=lowest, window=50)
    free = [int(ipaddress.ip_address(s)) + k for s, e in pools
            for k in range(int(ipaddress.ip_address(e)) - int(ipaddress.ip_address(s)) + 1)]
    used_values = {int(ipaddress.ip_address(u)) for u in used}
    free = [v for v in free if v not in used_values]
    if not free:
        assert ip is None
        return
    assert ip is not None and ip not in used and address_in_pools(ip, pools)
    if lowest:
        # the lowest free address of the first pool that has any
        for start, end in pools:
            in_pool = [v for v in free if int(ipaddress.ip_address(start)) <= v <= int(ipaddress.ip_address(end))]
            if in_pool:
                assert ip == str(ipaddress.IPv4Address(min(in_pool)))
                break


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2 ** 48 - 1), st.integers(0, 2 ** 64 - 1))
def test_eui64_address_lies_in_its_prefix(mac_value, prefix_value):
    mac = ":".join(f"{(mac_value >> s) & 0xff:02x}" for s in range(40, -8, -8))
    prefix = ipaddress.IPv6Network((prefix_value << 64, 64))
    address = ipaddress.ip_address(eui64_address(str(prefix), mac))
    assert address in prefix and is_eui64_shaped(str(address))


def test_used_addresses_grow_with_addresses_chosen_in_the_same_plan():
    used = UsedAddresses.of(["10.0.0.2"])
    grown = used.plus(["10.0.0.3", "10.0.0.2"])
    assert len(used) == 1 and len(grown) == 2 and "10.0.0.3" in grown and "10.0.0.3" not in used
    assert used.plus(["10.0.0.2"]) is used
    assert choose_address([("10.0.0.2", "10.0.0.4")], grown, rng=random.Random(0)) == "10.0.0.4"

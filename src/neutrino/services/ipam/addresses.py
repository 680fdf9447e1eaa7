"""Address arithmetic on subnets: membership, pool sizes, EUI-64, and choosing a free address.

Pools and used addresses are handled as integer ranges and sorted integers, never as materialised
address sets, so a ``/8`` or an IPv6 ``/64`` costs no more than the addresses actually in use.
"""

from __future__ import annotations

import bisect
import ipaddress
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from neutrino.errors import IpAddressAlreadyAllocated, IpAddressGenerationFailure
from neutrino.services.ipam import owners
from neutrino.services.ipam.mac import mac_value
from neutrino.services.ipam.notation import IPAddress
from neutrino.services.ipam.records import FixedIp, SubnetInfo

# Neutron's IPAM picks at random among the first this-many free addresses of a pool: random enough
# that a freed address is not handed straight out again, cheap enough to compute.
RANDOM_WINDOW = 1000

_MAX_INT = {4: (1 << 32) - 1, 6: (1 << 128) - 1}
_U_L_BIT = 1 << 57  # RFC 4291 appendix A: invert the universal/local bit of the MAC's EUI-64.

AddressLike = str | IPv4Address | IPv6Address | int


def address_from_int(value: int, ip_version: int) -> IPAddress:
    """The address with integer ``value`` in family ``ip_version`` (ints alone are ambiguous)."""
    return IPv4Address(value) if ip_version == 4 else IPv6Address(value)


def eui64_address(prefix: str, mac: str) -> str:
    """The SLAAC address a host with ``mac`` builds on ``prefix`` (modified EUI-64, RFC 4291).

    ``fd00:10::/64`` with ``fa:16:3e:71:f6:22`` gives ``fd00:10::f816:3eff:fe71:f622``.
    """
    network = ipaddress.IPv6Network(prefix, strict=False)
    value = mac_value(mac)
    eui64 = ((value >> 24) << 40) | (0xFFFE << 24) | (value & 0xFFFFFF)
    return str(IPv6Address(((int(network.network_address) + eui64) ^ _U_L_BIT) & _MAX_INT[6]))


def is_eui64_shaped(ip: str) -> bool:
    """True when ``ip`` is IPv6 with ``ff:fe`` in the middle of its interface id (EUI-64 form)."""
    address = ipaddress.ip_address(ip)
    return address.version == 6 and (int(address) & 0xFFFF000000) == 0xFFFE000000


def address_valid_on_subnet(cidr: str, ip: str, device_owner: str = "") -> bool:
    """Whether ``ip`` may be assigned on the subnet ``cidr`` at all (pools aside).

    IPv4: inside the CIDR and neither its network nor its broadcast address (Neutron applies this
    even to /31 and /32). IPv6: inside the CIDR; the network (subnet-router anycast) address only
    for router ports and ports without an owner.
    """
    network = ipaddress.ip_network(cidr, strict=False)
    address = ipaddress.ip_address(ip)
    if address.version != network.version or address not in network:
        return False
    if network.version == 4:
        return address not in (network.network_address, network.broadcast_address)
    return device_owner in owners.ROUTER_PORT_OWNERS + ("",) or address != network.network_address


def pool_bounds(pools: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    """Pools as inclusive integer ranges, in the given order."""
    return [(int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))) for start, end in pools]


def total_ips(cidr: str, pools: Sequence[tuple[str, str]]) -> int:
    """``total_ips`` of network-ip-availabilities: the pools' sizes, or the CIDR's if it has none."""
    if not pools:
        return ipaddress.ip_network(cidr, strict=False).num_addresses
    return sum(last - first + 1 for first, last in pool_bounds(pools))


def address_in_pools(ip: str, pools: Sequence[tuple[str, str]]) -> bool:
    """Whether ``ip`` lies inside one of the inclusive ``(start, end)`` pools."""
    address = ipaddress.ip_address(ip)
    for start, end in pools:
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
        if first.version == address.version and int(first) <= int(address) <= int(last):
            return True
    return False


@dataclass(frozen=True, slots=True)
class UsedAddresses:
    """Addresses in use on one subnet, as sorted distinct integers: the compact form choosers scan.

    Build it once (``UsedAddresses.of(rows)``) when choosing several addresses on a subnet.
    """

    values: tuple[int, ...]

    @classmethod
    def of(cls, used: UsedAddresses | Iterable[AddressLike]) -> UsedAddresses:
        if isinstance(used, UsedAddresses):
            return used
        return cls(tuple(sorted({_as_int(value) for value in used})))

    def plus(self, more: Iterable[AddressLike]) -> UsedAddresses:
        """These addresses and ``more`` (e.g. ones chosen earlier in the same plan)."""
        extra = {_as_int(value) for value in more}
        return self if extra <= set(self.values) else UsedAddresses(tuple(sorted(set(self.values) | extra)))

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, (str, int, IPv4Address, IPv6Address)):
            return False
        value = _as_int(ip)
        index = bisect.bisect_left(self.values, value)
        return index < len(self.values) and self.values[index] == value


def _as_int(value: AddressLike) -> int:
    return value if isinstance(value, int) else int(ipaddress.ip_address(value))


def _free_runs(first: int, last: int, used: tuple[int, ...], limit: int) -> tuple[list[tuple[int, int]], int]:
    """Up to ``limit`` free addresses of ``[first, last]`` as (start, count) runs, lowest first."""
    runs: list[tuple[int, int]] = []
    found = 0
    cursor = first
    index = bisect.bisect_left(used, first)
    while cursor <= last and found < limit:
        blocker = used[index] if index < len(used) else None
        stop = last if blocker is None or blocker > last else blocker - 1
        if stop >= cursor:
            take = min(stop - cursor + 1, limit - found)
            runs.append((cursor, take))
            found += take
        if blocker is None or blocker > last:
            break
        cursor = max(cursor, blocker + 1)
        index += 1
    return runs, found


def choose_address(pools: Sequence[tuple[str, str]], used: UsedAddresses | Iterable[AddressLike], *,
                   rng: random.Random, prefer_lowest: bool = False, window: int = RANDOM_WINDOW) -> str | None:
    """A free address from the first pool that has one, or ``None`` when every pool is full.

    Within that pool the address is random among its first ``window`` free addresses, or the lowest
    free one when ``prefer_lowest`` (DHCP and distributed-metadata ports, whose addresses should be
    predictable). ``used`` may be any iterable of addresses or a prepared :class:`UsedAddresses`.
    """
    if not pools:
        return None
    used_values = UsedAddresses.of(used).values
    ip_version = ipaddress.ip_address(pools[0][0]).version
    for first, last in pool_bounds(pools):
        runs, found = _free_runs(first, last, used_values, 1 if prefer_lowest else window)
        if not found:
            continue
        pick = 0 if prefer_lowest else rng.randrange(found)
        for start, count in runs:
            if pick < count:
                return str(address_from_int(start + pick, ip_version))
            pick -= count
    return None


def choose_address_on_any(candidates: Sequence[SubnetInfo],
                          used_by_subnet: Mapping[str, UsedAddresses | Iterable[AddressLike]], *,
                          network_id: str, rng: random.Random, prefer_lowest: bool = False) -> FixedIp:
    """The first candidate subnet (in order) with a free pool address, and that address.

    Raises ``IpAddressGenerationFailure`` ("No more IP addresses available on network N.") when all
    candidates are full, as Neutron does after trying each subnet of the family in turn.
    """
    for subnet in candidates:
        ip = choose_address(subnet.allocation_pools, used_by_subnet.get(subnet.id, ()), rng=rng,
                            prefer_lowest=prefer_lowest)
        if ip is not None:
            return FixedIp(subnet.id, ip)
    raise IpAddressGenerationFailure(net_id=network_id)


def ensure_address_free(subnet_id: str, ip: str, used: UsedAddresses | Iterable[AddressLike]) -> None:
    """Raise ``IpAddressAlreadyAllocated`` (409) if ``ip`` is among ``used`` on ``subnet_id``.

    A pre-check for a clear error; the database's unique (subnet, address) constraint is the
    guarantee against a concurrent writer.
    """
    if ip in UsedAddresses.of(used):
        raise IpAddressAlreadyAllocated(ip=ip, subnet_id=subnet_id)

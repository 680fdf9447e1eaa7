"""Subnet pools: their prefixes and bounds, and carving subnets out of them.

Prefix sets are handled as sorted, merged integer intervals and printed as the minimal list of
CIDRs ("compacted", like netaddr's ``IPSet.compact``), so overlapping or adjacent prefixes given by
a user come back merged: ``10.0.0.0/25`` + ``10.0.0.128/25`` → ``10.0.0.0/24``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from neutrino.errors import (
    AddressScopePrefixConflict,
    BadRequest,
    EmptySubnetPoolPrefixList,
    IllegalSubnetPoolIpVersionAssociationToAddressScope,
    IllegalSubnetPoolPrefixBounds,
    IllegalSubnetPoolPrefixUpdate,
    InvalidInput,
    MaxPrefixSubnetAllocationError,
    MinPrefixSubnetAllocationError,
    PrefixVersionMismatch,
    SubnetAllocationError,
    SubnetPoolQuotaExceeded,
    UnsupportedMinSubnetPoolPrefix,
)
from neutrino.services.ipam.notation import IPNetwork, parse_prefix
from neutrino.services.ipam.records import UNSET

MAX_PREFIXLEN = {4: 32, 6: 128}
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
# default_quota counts addresses in units of /32 (IPv4) or /64 (IPv6) blocks.
QUOTA_UNIT_PREFIXLEN = {4: 32, 6: 64}

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SubnetPoolSpec:
    """A validated subnet pool: compacted prefixes and consistent prefix-length bounds."""

    ip_version: int
    prefixes: tuple[str, ...]
    min_prefixlen: int
    max_prefixlen: int
    default_prefixlen: int
    default_quota: int | None = None


@dataclass(frozen=True, slots=True)
class PrefixRequest:
    """What a subnet asks of a pool: a specific ``cidr``, or any block of ``prefixlen``."""

    prefixlen: int
    cidr: str | None = None


# ---- interval arithmetic ----------------------------------------------------------------------------


def _interval(network: IPNetwork) -> Interval:
    return int(network.network_address), int(network.broadcast_address)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _subtract(base: list[Interval], removed: list[Interval]) -> list[Interval]:
    """``base`` minus ``removed``; both merged and sorted."""
    result: list[Interval] = []
    index = 0
    for first, last in base:
        cursor = first
        while index < len(removed) and removed[index][1] < cursor:
            index += 1
        probe = index
        while probe < len(removed) and removed[probe][0] <= last:
            r_first, r_last = removed[probe]
            if r_first > cursor:
                result.append((cursor, r_first - 1))
            cursor = max(cursor, r_last + 1)
            probe += 1
        if cursor <= last:
            result.append((cursor, last))
    return result


def _cidrs(intervals: Iterable[Interval], ip_version: int) -> list[IPNetwork]:
    """The minimal CIDR cover of ``intervals``, in address order."""
    make = ipaddress.IPv4Address if ip_version == 4 else ipaddress.IPv6Address
    networks: list[IPNetwork] = []
    for first, last in intervals:
        networks.extend(ipaddress.summarize_address_range(make(first), make(last)))
    return networks


def _networks(cidrs: Iterable[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def _intervals(networks: Iterable[IPNetwork], ip_version: int) -> list[Interval]:
    return _merge(_interval(n) for n in networks if n.version == ip_version)


def compact_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Prefixes merged into the minimal sorted CIDR list (host bits cleared)."""
    networks = _networks(prefixes)
    result: list[str] = []
    for version in (4, 6):
        result.extend(str(n) for n in _cidrs(_intervals(networks, version), version))
    return tuple(result)


def overlaps(prefixes_a: Iterable[str], prefixes_b: Iterable[str]) -> bool:
    """Whether two prefix lists share any address."""
    a, b = _networks(prefixes_a), _networks(prefixes_b)
    return any(x.version == y.version and x.overlaps(y) for x in a for y in b)


# ---- pool create / update ---------------------------------------------------------------------------


def _parse_prefix_list(prefixes: object) -> list[IPNetwork]:
    """``prefixes`` as the API checks them (``type:subnet_list``), then non-empty and one family."""
    if not isinstance(prefixes, (list, tuple)):
        raise InvalidInput(f"'{prefixes}' is not a list")
    duplicates = [p for i, p in enumerate(prefixes) if p in prefixes[:i]]
    if duplicates:
        raise InvalidInput("Duplicate items in the list: '%s'" % ", ".join(str(d) for d in dict.fromkeys(duplicates)))
    networks = [parse_prefix(p) for p in prefixes]
    if not networks:
        raise EmptySubnetPoolPrefixList()
    if len({n.version for n in networks}) > 1:
        raise PrefixVersionMismatch()
    return networks


def _check_prefixlen_value(value: object) -> int:
    """An integer attribute as neutron-lib's ``convert_to_int`` reads it (``"24"`` is fine)."""
    if isinstance(value, bool):
        raise InvalidInput(f"'{value}' is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, (str, float)):
        try:
            return int(value)
        except ValueError:
            pass
    raise InvalidInput(f"'{value}' is not an integer")


def _check_quota_value(value: object) -> int | None:
    if value is UNSET or value is None:
        return None
    quota = _check_prefixlen_value(value)
    if quota < 0:
        raise InvalidInput(f"'{value}' should be non-negative")
    return quota


def check_prefix_bounds(ip_version: int, min_prefixlen: int, max_prefixlen: int, default_prefixlen: int) -> None:
    """min ≤ default ≤ max ≤ the family's width, and min ≥ 0 (Neutron's checks, in its order)."""
    if min_prefixlen < 0:
        raise UnsupportedMinSubnetPoolPrefix(prefix=min_prefixlen, version=ip_version)
    if min_prefixlen > max_prefixlen:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="min_prefixlen", prefixlen=min_prefixlen,
                                            base_prefix_type="max_prefixlen", base_prefixlen=max_prefixlen)
    if max_prefixlen > MAX_PREFIXLEN[ip_version]:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="max_prefixlen", prefixlen=max_prefixlen,
                                            base_prefix_type="ip_version_max",
                                            base_prefixlen=MAX_PREFIXLEN[ip_version])
    if default_prefixlen < min_prefixlen:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="default_prefixlen", prefixlen=default_prefixlen,
                                            base_prefix_type="min_prefixlen", base_prefixlen=min_prefixlen)
    if default_prefixlen > max_prefixlen:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="default_prefixlen", prefixlen=default_prefixlen,
                                            base_prefix_type="max_prefixlen", base_prefixlen=max_prefixlen)


def decide_subnetpool(prefixes: object, *, min_prefixlen: object = UNSET, max_prefixlen: object = UNSET,
                      default_prefixlen: object = UNSET, default_quota: object = UNSET) -> SubnetPoolSpec:
    """A new pool from its create request; bounds default to /8../32 (IPv4) or /64../128 (IPv6),
    ``default_prefixlen`` to ``min_prefixlen``. ``ip_version`` comes from the prefixes."""
    networks = _parse_prefix_list(prefixes)
    ip_version = networks[0].version
    minimum = DEFAULT_MIN_PREFIXLEN[ip_version] if min_prefixlen is UNSET else _check_prefixlen_value(min_prefixlen)
    maximum = MAX_PREFIXLEN[ip_version] if max_prefixlen is UNSET else _check_prefixlen_value(max_prefixlen)
    default = minimum if default_prefixlen is UNSET else _check_prefixlen_value(default_prefixlen)
    check_prefix_bounds(ip_version, minimum, maximum, default)
    quota = _check_quota_value(default_quota)
    return SubnetPoolSpec(ip_version, compact_prefixes(str(n) for n in networks), minimum, maximum, default, quota)


def decide_subnetpool_update(current: SubnetPoolSpec, *, prefixes: object = UNSET, min_prefixlen: object = UNSET,
                             max_prefixlen: object = UNSET, default_prefixlen: object = UNSET,
                             default_quota: object = UNSET) -> SubnetPoolSpec:
    """The pool after an update. ``prefixes`` may only grow: every current address must still be
    covered (400 ``IllegalSubnetPoolPrefixUpdate``). Bounds not given keep their current values
    and are re-checked together (so raising min above the old default is refused)."""
    new_prefixes = current.prefixes
    if prefixes is not UNSET:
        networks = _parse_prefix_list(prefixes)
        if networks[0].version != current.ip_version:
            raise PrefixVersionMismatch()
        new_intervals = _intervals(networks, current.ip_version)
        old_intervals = _intervals(_networks(current.prefixes), current.ip_version)
        if _subtract(old_intervals, new_intervals):
            raise IllegalSubnetPoolPrefixUpdate(msg="Existing prefixes must be a subset of the new prefixes")
        new_prefixes = tuple(str(n) for n in _cidrs(new_intervals, current.ip_version))
    minimum = current.min_prefixlen if min_prefixlen is UNSET else _check_prefixlen_value(min_prefixlen)
    maximum = current.max_prefixlen if max_prefixlen is UNSET else _check_prefixlen_value(max_prefixlen)
    default = current.default_prefixlen if default_prefixlen is UNSET else _check_prefixlen_value(default_prefixlen)
    check_prefix_bounds(current.ip_version, minimum, maximum, default)
    quota = current.default_quota
    if default_quota is not UNSET:
        quota = _check_quota_value(default_quota)
    return replace(current, prefixes=new_prefixes, min_prefixlen=minimum, max_prefixlen=maximum,
                   default_prefixlen=default, default_quota=quota)


def add_prefixes(current: SubnetPoolSpec, added: object) -> tuple[str, ...]:
    """``PUT .../add_prefixes``: the pool's prefixes with ``added`` merged in."""
    if isinstance(added, (list, tuple)) and not added:
        return current.prefixes
    networks = _parse_prefix_list(added)
    return decide_subnetpool_update(current, prefixes=list(current.prefixes) + [str(n) for n in networks]).prefixes


def remove_prefixes(current: SubnetPoolSpec, removed: object, allocated_cidrs: Iterable[str]) -> tuple[str, ...]:
    """``PUT .../remove_prefixes``: the pool's prefixes minus ``removed``.

    Removing space a subnet was allocated from is a 400; removing prefixes the pool does not
    have is a no-op.
    """
    if isinstance(removed, (list, tuple)) and not removed:
        return current.prefixes
    networks = _parse_prefix_list(removed)
    version = current.ip_version
    pool = _intervals(_networks(current.prefixes), version)
    removal = _intervals(networks, version)
    if not removal or _subtract(pool, removal) == pool:
        return current.prefixes
    allocated = _intervals(_networks(allocated_cidrs), version)
    if _subtract(allocated, removal) != allocated:
        raise IllegalSubnetPoolPrefixUpdate(msg="One or more the prefixes to be removed is in use by a subnet.")
    return tuple(str(n) for n in _cidrs(_subtract(pool, removal), version))


def check_address_scope_prefixes(prefixes: Sequence[str], other_pools_prefixes: Iterable[Sequence[str]]) -> None:
    """Pools in one address scope must not overlap (409 ``AddressScopePrefixConflict``)."""
    for other in other_pools_prefixes:
        if overlaps(prefixes, other):
            raise AddressScopePrefixConflict()


def check_address_scope_version(*, subnetpool_id: str, ip_version: int, address_scope_id: str,
                                address_scope_ip_version: int) -> None:
    if ip_version != address_scope_ip_version:
        raise IllegalSubnetPoolIpVersionAssociationToAddressScope(
            subnetpool_id=subnetpool_id, address_scope_id=address_scope_id, ip_version=address_scope_ip_version)


# ---- allocating subnets -----------------------------------------------------------------------------


def plan_prefix_request(pool: SubnetPoolSpec, *, ip_version: int, cidr: object = UNSET, prefixlen: object = UNSET,
                        gateway_ip: object = UNSET) -> PrefixRequest:
    """What a subnet create asks of ``pool``: its ``cidr`` if given; else, with a ``gateway_ip``,
    the block of ``prefixlen`` around the gateway; else any block of ``prefixlen`` (default: the
    pool's ``default_prefixlen``)."""
    if ip_version != pool.ip_version:
        raise BadRequest(resource="subnets",
                         msg=f"Cannot allocate IPv{ip_version} subnet from IPv{pool.ip_version} subnet pool")
    if cidr is not UNSET and cidr is not None:
        network = ipaddress.ip_network(str(cidr), strict=False)
        return PrefixRequest(network.prefixlen, str(network))
    length = pool.default_prefixlen if prefixlen is UNSET or prefixlen is None else _check_prefixlen_value(prefixlen)
    if gateway_ip is not UNSET and gateway_ip is not None:
        network = ipaddress.ip_network(f"{gateway_ip}/{length}", strict=False)
        return PrefixRequest(length, str(network))
    return PrefixRequest(length)


def _quota_units(prefixlen: int, ip_version: int) -> Fraction:
    return Fraction(2) ** (QUOTA_UNIT_PREFIXLEN[ip_version] - prefixlen)


def check_quota(pool: SubnetPoolSpec, prefixlen: int, project_allocated_cidrs: Iterable[str]) -> None:
    """The project's subnets from this pool plus the new one must fit ``default_quota`` units.

    As in Neutron, a quota of ``None`` or ``0`` means unlimited.
    """
    if not pool.default_quota:
        return
    used = sum((_quota_units(ipaddress.ip_network(c).prefixlen, pool.ip_version) for c in project_allocated_cidrs),
               Fraction(0))
    if used + _quota_units(prefixlen, pool.ip_version) > pool.default_quota:
        raise SubnetPoolQuotaExceeded()


def free_space(pool: SubnetPoolSpec, allocated_cidrs: Iterable[str]) -> list[IPNetwork]:
    """The pool's unallocated space as a minimal CIDR list, in address order."""
    version = pool.ip_version
    return _cidrs(_subtract(_intervals(_networks(pool.prefixes), version),
                            _intervals(_networks(allocated_cidrs), version)), version)


def allocate_prefix(pool: SubnetPoolSpec, request: PrefixRequest, *, allocated_cidrs: Iterable[str],
                    project_allocated_cidrs: Iterable[str] = ()) -> str:
    """The CIDR ``request`` gets from ``pool``, given the CIDRs already allocated from it.

    Checks, in Neutron's order: prefix length within [min, max] (400s), the project's quota (409),
    then space. Any-block requests take the first block of the smallest free CIDR that fits
    (best fit, lowest address among equals — this keeps large blocks whole); a specific CIDR must
    lie entirely in free space. No space: ``SubnetAllocationError`` (409).
    """
    if request.prefixlen > pool.max_prefixlen:
        raise MaxPrefixSubnetAllocationError(prefixlen=request.prefixlen, max_prefixlen=pool.max_prefixlen)
    if request.prefixlen < pool.min_prefixlen:
        raise MinPrefixSubnetAllocationError(prefixlen=request.prefixlen, min_prefixlen=pool.min_prefixlen)
    check_quota(pool, request.prefixlen, project_allocated_cidrs)
    available = free_space(pool, allocated_cidrs)
    if request.cidr is not None:
        wanted = ipaddress.ip_network(request.cidr)
        if any(wanted.version == block.version and wanted.subnet_of(block) for block in available):  # type: ignore[arg-type]
            return str(wanted)
        raise SubnetAllocationError(reason="Cannot allocate requested subnet from the available set of prefixes")
    for block in sorted(available, key=lambda n: n.prefixlen, reverse=True):
        if block.prefixlen <= request.prefixlen:
            return str(next(block.subnets(new_prefix=request.prefixlen)))
    raise SubnetAllocationError(reason=f"Insufficient prefix space to allocate subnet size /{request.prefixlen}")

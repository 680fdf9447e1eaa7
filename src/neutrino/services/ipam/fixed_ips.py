"""What a port's ``fixed_ips`` asks of IPAM, on create and on update.

The functions here read the request and the network's subnets and return an :class:`AddressPlan`:
an ordered list of address requests (a specific address on a subnet, or "any free address on the
first of these subnets that has one"). The port service then checks each specific address is free
(``addresses.ensure_address_free``) and fills each "any" with ``addresses.choose_address_on_any``,
in plan order, inside its transaction. No address is chosen here, so the plan is deterministic.

Neutron's rules encoded here (``ipam_pluggable_backend``/``ipam_backend_mixin``):
- candidate subnets are filtered by ``service_types`` against the port's ``device_owner``;
- with no ``fixed_ips``: one IPv4 (subnets tried in order), one IPv6 from stateful/mode-less
  subnets, one EUI-64 address per SLAAC/DHCPv6-stateless subnet;
- auto-address (SLAAC) subnets always give non-router ports their EUI-64 address, even when
  ``fixed_ips`` lists other subnets (or is ``[]``), and only that address;
- on update, listed addresses already on the port are kept, ``{subnet_id}`` reuses the port's
  address on that subnet, the rest is released — except auto-address addresses, which stay.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from neutrino.errors import (
    AllocationOnAutoAddressSubnet,
    InvalidInput,
    InvalidIpForNetwork,
    InvalidIpForSubnet,
    IPAddressChangeNotAllowed,
    IpAddressGenerationFailureNoMatchingSubnet,
)
from neutrino.services.ipam import owners
from neutrino.services.ipam.addresses import address_valid_on_subnet, eui64_address, is_eui64_shaped
from neutrino.services.ipam.notation import ip_address_problem
from neutrino.services.ipam.records import UNSET, FixedIp, SubnetInfo


@dataclass(frozen=True, slots=True)
class SpecificAddress:
    """This exact address on this subnet (asked for, or EUI-64 derived when ``eui64``)."""

    subnet_id: str
    ip_address: str
    eui64: bool = False


@dataclass(frozen=True, slots=True)
class AnyAddress:
    """Any free pool address on the first of these subnets (in order) that has one."""

    candidate_subnet_ids: tuple[str, ...]


AddressRequest = SpecificAddress | AnyAddress


@dataclass(frozen=True, slots=True)
class AddressPlan:
    """Address requests in the order to satisfy them: requested specific addresses first (so a
    random choice cannot take them), then the "any" requests, then EUI-64 addresses.

    ``prefer_lowest``: choose the lowest free address instead of a random one (DHCP and
    distributed-metadata ports).
    """

    requests: tuple[AddressRequest, ...] = ()
    prefer_lowest: bool = False

    @property
    def specific(self) -> tuple[SpecificAddress, ...]:
        return tuple(r for r in self.requests if isinstance(r, SpecificAddress))

    @property
    def any(self) -> tuple[AnyAddress, ...]:
        return tuple(r for r in self.requests if isinstance(r, AnyAddress))


@dataclass(frozen=True, slots=True)
class FixedIpsChange:
    """The outcome of a ``fixed_ips`` update: addresses kept, released, and to allocate."""

    keep: tuple[FixedIp, ...] = ()
    release: tuple[FixedIp, ...] = ()
    allocate: AddressPlan = field(default_factory=AddressPlan)


# ---- request syntax ---------------------------------------------------------------------------------


def parse_fixed_ips(value: object) -> list[dict[str, str]]:
    """The ``fixed_ips`` list checked as the API checks it; entries keep only ``subnet_id`` and a
    canonical ``ip_address``. Duplicate addresses are refused (duplicate subnets are legitimate).
    """
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"Invalid data format for fixed IP: '{value}'")
    entries: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, Mapping):
            raise InvalidInput(f"Invalid data format for fixed IP: '{item}'")
        entry: dict[str, str] = {}
        if "ip_address" in item:
            raw = item["ip_address"]
            problem = ip_address_problem(raw)
            if problem:
                raise InvalidInput(problem)
            canonical = str(ipaddress.ip_address(raw))
            if canonical in seen:
                raise InvalidInput(f"Duplicate IP address '{raw}'")
            seen.add(canonical)
            entry["ip_address"] = canonical
        if "subnet_id" in item:
            if not isinstance(item["subnet_id"], str):
                raise InvalidInput(f"'{item['subnet_id']}' is not a valid UUID")
            entry["subnet_id"] = item["subnet_id"]
        entries.append(entry)
    return entries


def subnet_ids_off_network(requested: object, subnets: Sequence[SubnetInfo]) -> tuple[str, ...]:
    """``subnet_id`` values of a ``fixed_ips`` request that are not subnets of this network.

    The caller looks these up first: one that does not exist at all is a 404 ``SubnetNotFound``
    (Neutron keeps that status); one on another network becomes a 400 when planning.
    """
    if not isinstance(requested, (list, tuple)):
        return ()
    on_network = {s.id for s in subnets}
    result: list[str] = []
    for item in requested:
        if isinstance(item, Mapping) and isinstance(item.get("subnet_id"), str):
            subnet_id = item["subnet_id"]
            if subnet_id not in on_network and subnet_id not in result:
                result.append(subnet_id)
    return tuple(result)


# ---- candidate subnets ------------------------------------------------------------------------------


def candidate_subnets(subnets: Sequence[SubnetInfo], device_owner: str, *, network_id: str) -> list[SubnetInfo]:
    """The network's subnets a port with ``device_owner`` may take addresses from, best first.

    A subnet qualifies when it has no ``service_types``, when they contain the owner, or (for the
    DHCP port) when it has DHCP enabled; subnets dedicated to the owner come first. A network
    without subnets gives ``[]``; one whose subnets all exclude the owner is a 409.
    """
    if not subnets:
        return []
    eligible = [s for s in subnets
                if not s.service_types or device_owner in s.service_types
                or (device_owner == owners.DHCP and s.enable_dhcp)]
    if not eligible:
        raise IpAddressGenerationFailureNoMatchingSubnet(network_id=network_id, service_type=device_owner)
    return sorted(eligible, key=lambda s: not s.service_types)


def _subnet_for_entry(entry: Mapping[str, str], candidates: Sequence[SubnetInfo], *, network_id: str,
                      device_owner: str) -> SubnetInfo:
    if not candidates:
        raise InvalidInput("IP allocation requires subnets for network")
    ip = entry.get("ip_address")
    if "subnet_id" in entry:
        subnet = next((s for s in candidates if s.id == entry["subnet_id"]), None)
        if subnet is None:
            raise InvalidInput(f"Failed to create port on network {network_id}, because fixed_ips included "
                               f"invalid subnet {entry['subnet_id']}")
        if ip is not None and not address_valid_on_subnet(subnet.cidr, ip, device_owner):
            raise InvalidIpForSubnet(ip_address=ip)
        return subnet
    if ip is None:
        raise InvalidInput("IP allocation requires subnet_id or ip_address")
    for subnet in candidates:
        if address_valid_on_subnet(subnet.cidr, ip, device_owner):
            return subnet
    raise InvalidIpForNetwork(ip_address=ip)


def _requests_for_entries(entries: Sequence[Mapping[str, str]], candidates: Sequence[SubnetInfo], *,
                          network_id: str, device_owner: str, mac_address: str) -> list[AddressRequest]:
    """Neutron's ``_test_fixed_ips_for_port``: resolve each entry to a subnet and a request."""
    requests: list[AddressRequest] = []
    for entry in entries:
        subnet = _subnet_for_entry(entry, candidates, network_id=network_id, device_owner=device_owner)
        ip = entry.get("ip_address")
        if ip is not None:
            if subnet.is_auto_address and device_owner not in owners.ROUTER_INTERFACE_OWNERS:
                if ipaddress.ip_address(eui64_address(subnet.cidr, mac_address)) != ipaddress.ip_address(ip):
                    raise AllocationOnAutoAddressSubnet(ip=ip, subnet_id=subnet.id)
            requests.append(SpecificAddress(subnet.id, ip))
        elif device_owner in owners.ROUTER_INTERFACE_OWNERS_SNAT or not subnet.is_auto_address:
            requests.append(AnyAddress((subnet.id,)))
        # else: an auto-address subnet named by id; its EUI-64 address is added for every such subnet.
    return requests


def _eui64_requests(candidates: Sequence[SubnetInfo], *, device_owner: str, mac_address: str,
                    exclude: set[str]) -> list[AddressRequest]:
    """EUI-64 addresses on every auto-address candidate not already handled (none for router ports)."""
    if device_owner in owners.ROUTER_INTERFACE_OWNERS_SNAT:
        return []
    return [SpecificAddress(s.id, eui64_address(s.cidr, mac_address), eui64=True)
            for s in candidates if s.is_auto_address and s.id not in exclude]


def _ordered(requests: Sequence[AddressRequest]) -> tuple[AddressRequest, ...]:
    def rank(request: AddressRequest) -> int:
        if isinstance(request, AnyAddress):
            return 1
        return 2 if request.eui64 else 0
    return tuple(sorted(requests, key=rank))  # stable: request order kept within each rank


def _subnets_of(requests: Sequence[AddressRequest]) -> set[str]:
    found: set[str] = set()
    for request in requests:
        if isinstance(request, SpecificAddress):
            found.add(request.subnet_id)
        else:
            found.update(request.candidate_subnet_ids)
    return found


# ---- create -----------------------------------------------------------------------------------------


def plan_port_addresses(requested: object, *, subnets: Sequence[SubnetInfo], network_id: str, device_owner: str,
                        mac_address: str) -> AddressPlan:
    """The addresses a new port gets.

    ``requested`` is the ``fixed_ips`` attribute (``UNSET`` when absent); ``subnets`` are all the
    network's subnets in their stored order; ``mac_address`` is the port's (canonical) MAC, needed
    for EUI-64 addresses. Raises the 400/409 errors Neutron raises for the request.
    """
    prefer_lowest = device_owner in owners.LOWEST_ADDRESS_OWNERS
    candidates = candidate_subnets(subnets, device_owner, network_id=network_id)
    if requested is UNSET:
        requests: list[AddressRequest] = []
        for family in (
                [s for s in candidates if s.ip_version == 4],
                [s for s in candidates if s.ip_version == 6 and not s.is_auto_address]):
            if family:
                requests.append(AnyAddress(tuple(s.id for s in family)))
        requests += _eui64_requests(candidates, device_owner=device_owner, mac_address=mac_address, exclude=set())
        return AddressPlan(_ordered(requests), prefer_lowest)
    entries = parse_fixed_ips(requested)
    requests = _requests_for_entries(entries, candidates, network_id=network_id, device_owner=device_owner,
                                     mac_address=mac_address)
    requests += _eui64_requests(candidates, device_owner=device_owner, mac_address=mac_address,
                                exclude=_subnets_of([r for r in requests if isinstance(r, SpecificAddress)]))
    return AddressPlan(_ordered(requests), prefer_lowest)


# ---- update -----------------------------------------------------------------------------------------


def plan_fixed_ips_update(current: Sequence[FixedIp], requested: object, *, subnets: Sequence[SubnetInfo],
                          network_id: str, device_owner: str, mac_address: str, port_id: str,
                          mac_changed: bool = False, ip_change_forbidden: bool = False) -> FixedIpsChange:
    """How a port's addresses change on update.

    ``requested`` is the new ``fixed_ips`` (``UNSET`` when the update does not touch it);
    ``mac_address`` is the port's MAC after the update, and ``mac_changed`` says it changed — the
    port's EUI-64 addresses are then re-derived from it. ``ip_change_forbidden`` is set by the
    caller for router interface ports of our own routers: changing their IPv4 addresses is a 400
    ``IPAddressChangeNotAllowed``.
    """
    if requested is UNSET and not mac_changed:
        return FixedIpsChange(keep=tuple(current))
    by_id = {s.id: s for s in subnets}
    router_port = device_owner in owners.ROUTER_INTERFACE_OWNERS_SNAT
    entries = [ip.as_dict() for ip in current] if requested is UNSET else parse_fixed_ips(requested)
    rederive = {ip.subnet_id for ip in current if is_eui64_shaped(ip.ip_address)} if mac_changed else set()
    if requested is UNSET and not rederive:
        return FixedIpsChange(keep=tuple(current))
    entries = [e for e in entries if e.get("subnet_id") not in rederive]

    kept: list[FixedIp] = []
    to_add: list[dict[str, str]] = []
    remove_candidates: list[FixedIp] = []
    unclaimed = {ip.ip_address: ip for ip in current}
    for entry in entries:
        if "ip_address" in entry:
            original = unclaimed.pop(entry["ip_address"], None)
            if original is not None:
                kept.append(original)
            else:
                to_add.append(entry)
    by_subnet: dict[str, list[FixedIp]] = defaultdict(list)
    for ip in unclaimed.values():
        by_subnet[ip.subnet_id].append(ip)
    for entry in entries:
        if "ip_address" in entry:
            continue
        originals = by_subnet.get(entry.get("subnet_id", ""))
        if not originals:
            to_add.append(entry)
            continue
        original = originals.pop()
        if is_eui64_shaped(original.ip_address):
            # Let IPAM re-derive it (same prefix and MAC give the same address).
            to_add.append(entry)
            remove_candidates.append(original)
        else:
            kept.append(original)

    released: list[FixedIp] = []
    for ip in [ip for group in by_subnet.values() for ip in group] + remove_candidates:
        subnet = by_id.get(ip.subnet_id)
        required = router_port or subnet is None or not subnet.is_auto_address
        if required or ip.subnet_id in rederive:
            released.append(ip)
        else:
            kept.append(ip)

    if ip_change_forbidden and _touches_ipv4(released, to_add, by_id):
        raise IPAddressChangeNotAllowed(port_id=port_id)

    candidates = candidate_subnets(subnets, device_owner, network_id=network_id)
    requests = _requests_for_entries(to_add, candidates, network_id=network_id, device_owner=device_owner,
                                     mac_address=mac_address)
    handled = _subnets_of(requests) | {ip.subnet_id for ip in kept} | {ip.subnet_id for ip in released}
    requests += _eui64_requests(candidates, device_owner=device_owner, mac_address=mac_address, exclude=handled)
    if rederive and not router_port:
        candidate_ids = {s.id for s in candidates}
        for subnet_id in sorted(rederive & candidate_ids):
            subnet = by_id[subnet_id]
            if subnet.is_auto_address:
                requests.append(SpecificAddress(subnet_id, eui64_address(subnet.cidr, mac_address), eui64=True))
            else:
                requests.append(AnyAddress((subnet_id,)))

    kept_set, released_set = set(kept), set(released)
    return FixedIpsChange(
        keep=tuple(ip for ip in current if ip in kept_set),
        release=tuple(ip for ip in current if ip in released_set),
        allocate=AddressPlan(_ordered(requests), device_owner in owners.LOWEST_ADDRESS_OWNERS))


def _touches_ipv4(released: Sequence[FixedIp], to_add: Sequence[Mapping[str, str]],
                  by_id: Mapping[str, SubnetInfo]) -> bool:
    for ip in released:
        if ipaddress.ip_address(ip.ip_address).version == 4:
            return True
    for entry in to_add:
        if "ip_address" in entry:
            if ipaddress.ip_address(entry["ip_address"]).version == 4:
                return True
        elif (subnet := by_id.get(entry.get("subnet_id", ""))) is not None and subnet.ip_version == 4:
            return True
    return False

"""Subnet create/update validation and defaults, as Neutron decides them.

``decide_subnet_create`` turns a decoded request plus the network's existing subnets into a
:class:`SubnetSpec` — the normalised subnet (masked CIDR, gateway, allocation pools, DNS servers,
host routes, IPv6 modes) — or raises the error Neutron raises, with its type and message. The
checks run in Neutron's order (API attribute validation, then ``_validate_subnet``, then gateway and
pool defaults, then the CIDR checks against the network), so a request with several problems
reports the same one first.

Subnet-pool allocation is not done here: the subnet service resolves the source with
:func:`resolve_subnet_source`, gets a CIDR from :mod:`.prefixes`, and passes it as
``allocated_cidr``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from neutrino.errors import (
    BadRequest,
    DNSNameServersExhausted,
    GatewayConflictWithAllocationPools,
    GatewayIpInUse,
    HostRoutesExhausted,
    HTTPBadRequest,
    InvalidAllocationPool,
    InvalidInput,
    InvalidInputSubnetServiceType,
    InvalidSubnetServiceType,
    NetworkAddressScopeAffinityError,
    NetworkSubnetPoolAffinityError,
    OutOfBoundsAllocationPool,
    OverlappingAllocationPools,
)
from neutrino.services.ipam import owners
from neutrino.services.ipam.addresses import address_from_int
from neutrino.services.ipam.notation import (
    IPAddress,
    IPNetwork,
    format_range,
    ip_address_problem,
    is_loopback_network,
    is_multicast_network,
    parse_ip_address,
    parse_subnet_cidr,
    route_destination_problem,
    version_mismatch,
)
from neutrino.services.ipam.records import IPV6_MODES, UNSET, SubnetInfo, is_auto_address

# Minimum MTUs a network must have to carry a subnet of each family (RFC 791, RFC 8200).
IPV4_MIN_MTU = 68
IPV6_MIN_MTU = 1280

NEW_SUBNET = "new subnet"  # how Neutron names a not-yet-created subnet in "exhausted" messages


@dataclass(frozen=True, slots=True)
class HostRoute:
    destination: str
    nexthop: str

    def as_dict(self) -> dict[str, str]:
        return {"destination": self.destination, "nexthop": self.nexthop}


@dataclass(frozen=True, slots=True)
class SubnetLimits:
    """Operator limits (``max_dns_nameservers``, ``max_subnet_host_routes`` in Neutron)."""

    max_dns_nameservers: int = 5
    max_host_routes: int = 20


@dataclass(frozen=True, slots=True)
class SubnetRequest:
    """A subnet create request as the API decoded it.

    Attributes absent from the request are ``UNSET``; values are whatever JSON gave (they are
    validated here). ``cidr`` absent or ``None`` means "from a subnet pool".
    """

    network_id: str
    ip_version: object
    cidr: object = UNSET
    gateway_ip: object = UNSET
    allocation_pools: object = UNSET
    dns_nameservers: object = UNSET
    host_routes: object = UNSET
    enable_dhcp: bool = True
    ipv6_ra_mode: object = UNSET
    ipv6_address_mode: object = UNSET
    service_types: object = UNSET


@dataclass(frozen=True, slots=True)
class SubnetUpdateRequest:
    """The updatable subnet attributes of a PUT; absent ones are ``UNSET``."""

    gateway_ip: object = UNSET
    allocation_pools: object = UNSET
    dns_nameservers: object = UNSET
    host_routes: object = UNSET
    enable_dhcp: object = UNSET
    service_types: object = UNSET


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    """A validated, normalised subnet: what the subnet service stores and shows.

    ``cidr`` has its host bits cleared; addresses are canonical; ``allocation_pools`` are inclusive
    ``(start, end)`` pairs.
    """

    network_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    allocation_pools: tuple[tuple[str, str], ...]
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    enable_dhcp: bool = True
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    service_types: tuple[str, ...] = ()
    subnetpool_id: str | None = None

    def info(self, subnet_id: str) -> SubnetInfo:
        """The IPAM view of this subnet once stored under ``subnet_id``."""
        return SubnetInfo(
            id=subnet_id, network_id=self.network_id, cidr=self.cidr, ip_version=self.ip_version,
            gateway_ip=self.gateway_ip, allocation_pools=self.allocation_pools,
            ipv6_address_mode=self.ipv6_address_mode, ipv6_ra_mode=self.ipv6_ra_mode,
            service_types=self.service_types, enable_dhcp=self.enable_dhcp, subnetpool_id=self.subnetpool_id)

    def allocation_pools_as_dicts(self) -> list[dict[str, str]]:
        return [{"start": start, "end": end} for start, end in self.allocation_pools]


# ---- request source (explicit CIDR or subnet pool) -------------------------------------------------


def resolve_subnet_source(*, ip_version: int, cidr: object = UNSET, prefixlen: object = UNSET,
                          subnetpool_id: object = UNSET, use_default_subnetpool: object = UNSET,
                          allocation_pools: object = UNSET, default_subnetpool_id: str | None = None) -> str | None:
    """The subnet pool a create request draws from (``None``: an explicit CIDR, no pool).

    ``default_subnetpool_id`` is the caller's lookup of the default pool for ``ip_version`` (only
    consulted with ``use_default_subnetpool: true``). Raises Neutron's 400s for contradictory
    requests: cidr with prefixlen, subnetpool_id with use_default_subnetpool, neither cidr nor
    pool, no default pool, allocation_pools without an explicit cidr.
    """
    has_cidr = cidr is not UNSET and cidr is not None
    if has_cidr and prefixlen is not UNSET and prefixlen is not None:
        raise BadRequest(resource="subnets", msg="cidr and prefixlen must not be supplied together")
    pool_id = None if subnetpool_id is UNSET else subnetpool_id
    use_default = use_default_subnetpool is not UNSET and bool(use_default_subnetpool)
    if use_default and pool_id:
        raise BadRequest(resource="subnets", msg="subnetpool_id and use_default_subnetpool cannot both be specified")
    if not pool_id and use_default:
        if not default_subnetpool_id:
            raise BadRequest(resource="subnets", msg=f"No default subnetpool found for IPv{ip_version}")
        pool_id = default_subnetpool_id
    if not pool_id:
        if not has_cidr:
            raise BadRequest(resource="subnets", msg="a subnetpool must be specified in the absence of a cidr")
        return None
    if not has_cidr and allocation_pools is not UNSET and allocation_pools:
        raise BadRequest(resource="subnets", msg="allocation_pools allowed only for specific subnet requests.")
    return str(pool_id)


# ---- attribute-level (syntax) validation ------------------------------------------------------------


def _sorted_set(keys: Sequence[object]) -> str:
    return "{" + ", ".join(repr(k) for k in sorted(keys, key=str)) + "}"


def _dict_keys_problem(expected: Sequence[str], target: object) -> str | None:
    if not isinstance(target, dict):
        return f"Invalid input. '{target}' must be a dictionary with keys: {list(expected)}"
    if set(target) != set(expected):
        return (f"Validation of dictionary's keys failed. Expected keys: {_sorted_set(list(expected))} "
                f"Provided keys: {_sorted_set(list(target))}")
    return None


def _canonical_or_same(value: object) -> object:
    """IPv6 written canonically; anything else left for the validator to judge (neutron-lib converter)."""
    if isinstance(value, str) and ":" in value and ip_address_problem(value) is None:
        return str(ipaddress.ip_address(value))
    return value


def _syntax_pools(value: object) -> list[dict[str, object]]:
    """``allocation_pools`` converted and checked like the API does (``type:ip_pools``)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(pool, Mapping) for pool in value):
        raise InvalidInput("Invalid data format for allocation pools")
    pools = [{key: _canonical_or_same(item) for key, item in pool.items()} for pool in value]
    for pool in pools:
        problem = _dict_keys_problem(["start", "end"], pool)
        if problem:
            raise InvalidInput(problem)
        for key in ("start", "end"):
            problem = ip_address_problem(pool[key])
            if problem:
                raise InvalidInput(problem)
    return pools


def _syntax_nameservers(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"Invalid data format for nameserver: '{value}'")
    seen: list[str] = []
    for host in value:
        problem = ip_address_problem(host)
        if problem:
            raise InvalidInput(f"'{host}' is not a valid nameserver. {problem}")
        if host in seen:
            raise InvalidInput(f"Duplicate nameserver '{host}'")
        seen.append(host)
    return seen


def _syntax_host_routes(value: object) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"Invalid data format for hostroute: '{value}'")
    seen: list[dict[str, str]] = []
    for route in value:
        problem = _dict_keys_problem(["destination", "nexthop"], route)
        if problem:
            raise InvalidInput(problem)
        problem = route_destination_problem(route["destination"]) or ip_address_problem(route["nexthop"])
        if problem:
            raise InvalidInput(problem)
        if route in seen:
            raise InvalidInput(f"Duplicate hostroute '{route}'")
        seen.append(route)
    return seen


def _syntax_mode(value: object) -> str | None:
    if value is UNSET or value is None:
        return None
    if value not in IPV6_MODES:
        raise InvalidInput(f"{value} is not in valid_values")
    return str(value)


def check_service_types(value: object) -> tuple[str, ...]:
    """``service_types``: strings naming device-owner prefixes (``network:``, ``neutron:``, ``compute:``).

    Duplicates are dropped (order kept): the stored set has one row per type.
    """
    if value is UNSET or value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise HTTPBadRequest("Subnet service types must be a list.")
    result: list[str] = []
    for service_type in value:
        if not isinstance(service_type, str):
            raise InvalidInputSubnetServiceType(service_type=service_type)
        if not service_type.startswith(owners.SERVICE_TYPE_PREFIXES):
            raise InvalidSubnetServiceType(service_type=service_type)
        if service_type not in result:
            result.append(service_type)
    return tuple(result)


def _syntax_gateway(value: object) -> IPAddress | None:
    if value is UNSET or value is None:
        return None
    return parse_ip_address(value)


# ---- semantic checks (Neutron's _validate_subnet) -------------------------------------------------


def _check_ip_version(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value not in (4, 6):
        raise InvalidInput(f"{value} is not in valid_values")
    return value


def _check_dhcp_capable(network: IPNetwork) -> None:
    """A subnet served by DHCP needs room for a server and clients, and a unicast range."""
    if (network.version == 4 and network.prefixlen > 30) or (network.version == 6 and network.prefixlen > 126):
        raise InvalidInput("Subnet has a prefix length that is incompatible with DHCP service enabled")
    if is_multicast_network(network):
        raise InvalidInput("Multicast IP subnet is not supported if enable_dhcp is True")
    if is_loopback_network(network):
        raise InvalidInput("Loopback IP subnet is not supported if enable_dhcp is True")
    if network.version == 4 and int(network.network_address) == 0:
        raise InvalidInput("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.")


def _check_gateway_on_subnet(gateway: IPAddress, text: object, ip_version: int, network: IPNetwork | None) -> None:
    if gateway.version != ip_version:
        raise version_mismatch("gateway_ip", text, ip_version)
    # A gateway outside the CIDR is allowed (on-link); inside, IPv4's network/broadcast are not.
    if network is not None and network.version == 4 and gateway in network and gateway in (
            network.network_address, network.broadcast_address):
        raise InvalidInput("Gateway is not valid on subnet")


def _check_nameservers(servers: Sequence[str], ip_version: int, limits: SubnetLimits, subnet_id: str) -> None:
    if len(servers) > limits.max_dns_nameservers:
        raise DNSNameServersExhausted(subnet_id=subnet_id, quota=limits.max_dns_nameservers)
    for server in servers:
        if ipaddress.ip_address(server).version != ip_version:
            raise version_mismatch("dns_nameserver", server, ip_version)


def _check_host_routes(routes: Sequence[Mapping[str, str]], ip_version: int, limits: SubnetLimits,
                       subnet_id: str) -> tuple[HostRoute, ...]:
    if len(routes) > limits.max_host_routes:
        raise HostRoutesExhausted(subnet_id=subnet_id, quota=limits.max_host_routes)
    result = []
    for route in routes:
        nexthop = ipaddress.ip_address(route["nexthop"])
        destination = ipaddress.ip_network(route["destination"])
        if nexthop.version != ip_version:
            raise version_mismatch("nexthop", route["nexthop"], ip_version)
        if destination.version != ip_version:
            raise version_mismatch("destination", route["destination"], ip_version)
        result.append(HostRoute(str(destination), str(nexthop)))
    return tuple(result)


def _check_ipv6_modes(ip_version: int, ra_mode: str | None, address_mode: str | None, enable_dhcp: bool,
                      network: IPNetwork | None) -> None:
    if ip_version == 4:
        if ra_mode is not None:
            raise InvalidInput("ipv6_ra_mode is not valid when ip_version is 4")
        if address_mode is not None:
            raise InvalidInput("ipv6_address_mode is not valid when ip_version is 4")
        return
    if (ra_mode or address_mode) and not enable_dhcp:
        raise InvalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
    if ra_mode and address_mode and ra_mode != address_mode:
        raise InvalidInput(
            f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{address_mode}' is not valid. "
            "If both attributes are set, they must be the same value")
    # RFC 4862 5.5.3: prefix + interface id = 128 bits; EUI-64 ids are 64 bits, so only /64 works.
    if network is not None and is_auto_address(ra_mode, address_mode) and network.prefixlen != 64:
        raise InvalidInput(f"Invalid CIDR {network} for IPv6 address mode. OpenStack uses the EUI-64 address "
                           "format, which requires the prefix to be /64")


@dataclass(frozen=True, slots=True)
class _CheckedRequest:
    ip_version: int
    network: IPNetwork | None
    gateway: IPAddress | None
    pools: list[dict[str, object]] | None
    nameservers: tuple[str, ...]
    host_routes: tuple[HostRoute, ...]
    ra_mode: str | None
    address_mode: str | None
    service_types: tuple[str, ...]


def _check_request(req: SubnetRequest, limits: SubnetLimits, cidr: object) -> _CheckedRequest:
    ip_version = _check_ip_version(req.ip_version)
    network = None if cidr is UNSET or cidr is None else parse_subnet_cidr(cidr)
    gateway = _syntax_gateway(req.gateway_ip)
    pools = None if req.allocation_pools is UNSET else _syntax_pools(req.allocation_pools)
    nameservers = [] if req.dns_nameservers is UNSET else _syntax_nameservers(req.dns_nameservers)
    routes = [] if req.host_routes is UNSET else _syntax_host_routes(req.host_routes)
    ra_mode = _syntax_mode(req.ipv6_ra_mode)
    address_mode = _syntax_mode(req.ipv6_address_mode)
    service_types = check_service_types(req.service_types)

    if network is not None:
        if network.version != ip_version:
            raise version_mismatch("cidr", network, ip_version)
        if network.version == 6 and int(network.network_address) == 0:
            raise InvalidInput("IPv6 subnet '::' is not supported")
        if req.enable_dhcp:
            _check_dhcp_capable(network)
    if gateway is not None:
        _check_gateway_on_subnet(gateway, req.gateway_ip, ip_version, network)
    _check_nameservers(nameservers, ip_version, limits, NEW_SUBNET)
    host_routes = _check_host_routes(routes, ip_version, limits, NEW_SUBNET)
    _check_ipv6_modes(ip_version, ra_mode, address_mode, req.enable_dhcp, network)
    return _CheckedRequest(ip_version, network, gateway, pools, tuple(nameservers), host_routes, ra_mode,
                           address_mode, service_types)


def check_subnet_request(req: SubnetRequest, limits: SubnetLimits = SubnetLimits()) -> None:
    """Every check that needs nothing but the request (and the CIDR, if it names one).

    Call it before allocating from a subnet pool so request errors win over pool errors, as in
    Neutron; :func:`decide_subnet_create` repeats it on the final CIDR.
    """
    _check_request(req, limits, req.cidr)


# ---- gateway and allocation pools -------------------------------------------------------------------


def default_gateway(network: IPNetwork, *, from_pool: bool = False) -> str | None:
    """Neutron's default gateway: IPv4 the first host (network+1); IPv6 with an explicit CIDR the
    network address itself (the subnet-router anycast address, RFC 4291 2.6.1); IPv6 allocated
    from a pool network+1.
    """
    if network.version == 6 and not from_pool:
        return str(network.network_address)
    value = int(network.network_address) + 1
    if value >> network.max_prefixlen:  # 255.255.255.255/32 has no "next" address
        return None
    return str(address_from_int(value, network.version))


def _usable_bounds(network: IPNetwork) -> tuple[int, int]:
    """The range allocation pools may cover: IPv4 /30 and larger exclude network and broadcast,
    IPv4 /31 and /32 are used whole (RFC 3021), IPv6 excludes only the network address."""
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.version == 4:
        return (first + 1, last - 1) if network.prefixlen <= 30 else (first, last)
    return first + 1, last


def default_allocation_pools(network: IPNetwork, gateway_ip: str | None) -> tuple[tuple[str, str], ...]:
    """The usable range of ``network`` minus the gateway address (splitting the range around it)."""
    first, last = int(network.network_address), int(network.broadcast_address)
    if first == last:
        return ((str(network.network_address), str(network.network_address)),)
    low, high = _usable_bounds(network)
    ranges = [(low, high)]
    if gateway_ip is not None:
        gateway = ipaddress.ip_address(gateway_ip)
        if gateway.version == network.version and low <= int(gateway) <= high:
            g = int(gateway)
            ranges = [(a, b) for a, b in ((low, g - 1), (g + 1, high)) if a <= b]
    return tuple((str(address_from_int(a, network.version)), str(address_from_int(b, network.version)))
                 for a, b in ranges)


def _pool_ranges(pools: list[dict[str, object]]) -> list[tuple[IPAddress, IPAddress]]:
    """Start/end pairs; a reversed or mixed-family pool is an ``InvalidAllocationPool``."""
    ranges = []
    for pool in pools:
        start = ipaddress.ip_address(pool["start"])  # type: ignore[arg-type]
        end = ipaddress.ip_address(pool["end"])  # type: ignore[arg-type]
        if start.version != end.version or start > end:  # type: ignore[operator]
            raise InvalidAllocationPool(pool=str(pool))
        ranges.append((start, end))
    return ranges


def check_allocation_pools(pools: list[dict[str, object]], network: IPNetwork) -> tuple[tuple[str, str], ...]:
    """Validate user-given pools against the subnet; returns them canonical, in request order.

    Each must be of the subnet's family and inside its usable range (400s), and no two may
    overlap (409 ``OverlappingAllocationPools``).
    """
    ranges = _pool_ranges(pools)
    low, high = _usable_bounds(network)
    cidr = str(network)
    for start, end in ranges:
        if start.version != network.version:
            raise InvalidAllocationPool(pool=format_range(start, end))
        if int(start) < low or int(end) > high:
            raise OutOfBoundsAllocationPool(pool=format_range(start, end), subnet_cidr=cidr)
    # Sweep in address order; report the overlapping pair in request order.
    order = sorted(range(len(ranges)), key=lambda i: int(ranges[i][0]))
    reach = -1
    reacher = -1
    for index in order:
        start, end = ranges[index]
        if int(start) <= reach:
            first, second = sorted((reacher, index))
            raise OverlappingAllocationPools(pool_1=format_range(*ranges[first]),
                                             pool_2=format_range(*ranges[second]), subnet_cidr=cidr)
        if int(end) > reach:
            reach, reacher = int(end), index
    return tuple((str(start), str(end)) for start, end in ranges)


def check_gateway_outside_pools(gateway_ip: str | None, pools: Sequence[tuple[str, str]]) -> None:
    """A gateway inside an allocation pool could be handed to a port: 409."""
    if gateway_ip is None:
        return
    gateway = ipaddress.ip_address(gateway_ip)
    for start, end in pools:
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
        if first.version == gateway.version and int(first) <= int(gateway) <= int(last):
            raise GatewayConflictWithAllocationPools(ip_address=gateway_ip, pool=format_range(start, end))


# ---- the network's other subnets --------------------------------------------------------------------


def check_cidr_on_network(network: IPNetwork, *, network_id: str, existing: Sequence[SubnetInfo]) -> None:
    """Prefix length 0 is refused (dnsmasq cannot serve it); the CIDR must not overlap another
    subnet of the same network (overlap across networks is fine)."""
    if network.prefixlen == 0:
        raise InvalidInput("0 is not allowed as CIDR prefix length")
    for subnet in existing:
        other = ipaddress.ip_network(subnet.cidr, strict=False)
        if other.version == network.version and other.overlaps(network):
            raise InvalidInput(f"Requested subnet with cidr: {network} for network: {network_id} "
                               "overlaps with another subnet")


def check_subnetpool_affinity(existing: Sequence[SubnetInfo], *, ip_version: int, subnetpool_id: str | None,
                              subnetpool_address_scope_id: str | None = None,
                              network_address_scope_id: str | None = None) -> None:
    """All subnets of one family on a network come from one pool (or none), unless their pools
    share an address scope — then the new one must be in that scope too.

    ``network_address_scope_id`` is the scope the network's existing ``ip_version`` subnets are in
    (via their pools), if any.
    """
    if network_address_scope_id and subnetpool_id and subnetpool_address_scope_id != network_address_scope_id:
        raise NetworkAddressScopeAffinityError()
    for subnet in existing:
        if subnet.ip_version != ip_version:
            continue
        if subnetpool_id:
            if subnet.subnetpool_id != subnetpool_id and not network_address_scope_id:
                raise NetworkSubnetPoolAffinityError()
        elif subnet.subnetpool_id:
            raise NetworkSubnetPoolAffinityError()


def subnet_mtu_minimum(ip_version: int, network_mtu: int | None) -> int | None:
    """The minimum MTU the network lacks to carry an ``ip_version`` subnet, or ``None`` if fine.

    The caller raises ``NetworkMTUSubnetConflict`` with it. An unset MTU (0/None) is no limit.
    """
    if not network_mtu or network_mtu >= IPV6_MIN_MTU:
        return None
    if network_mtu < IPV4_MIN_MTU:
        return IPV4_MIN_MTU
    return IPV6_MIN_MTU if ip_version == 6 else None


# ---- create and update ------------------------------------------------------------------------------


def decide_subnet_create(req: SubnetRequest, *, existing: Sequence[SubnetInfo],
                         limits: SubnetLimits = SubnetLimits(), allocated_cidr: str | None = None,
                         subnetpool_id: str | None = None) -> SubnetSpec:
    """Validate a create request and fill in the defaults; the result is ready to store.

    ``existing`` are the network's current subnets. With no ``cidr`` in the request, pass the CIDR
    the subnet pool allocated as ``allocated_cidr`` (and the pool's id as ``subnetpool_id``); the
    gateway then defaults to network+1 in both families, as for Neutron's pool allocations.
    """
    explicit = req.cidr is not UNSET and req.cidr is not None
    if not explicit and allocated_cidr is None:
        raise BadRequest(resource="subnets", msg="a subnetpool must be specified in the absence of a cidr")
    if not explicit and req.allocation_pools is not UNSET and req.allocation_pools:
        raise BadRequest(resource="subnets", msg="allocation_pools allowed only for specific subnet requests.")
    checked = _check_request(req, limits, req.cidr if explicit else allocated_cidr)
    network = checked.network
    assert network is not None

    if req.gateway_ip is UNSET:
        gateway_ip = default_gateway(network, from_pool=not explicit)
    else:
        gateway_ip = None if checked.gateway is None else str(checked.gateway)
    if checked.pools is None or not explicit:
        pools = default_allocation_pools(network, gateway_ip)
    else:
        pools = check_allocation_pools(checked.pools, network)
        check_gateway_outside_pools(gateway_ip, pools)

    check_cidr_on_network(network, network_id=req.network_id, existing=existing)
    return SubnetSpec(
        network_id=req.network_id, ip_version=checked.ip_version, cidr=str(network), gateway_ip=gateway_ip,
        allocation_pools=pools, dns_nameservers=checked.nameservers, host_routes=checked.host_routes,
        enable_dhcp=bool(req.enable_dhcp), ipv6_ra_mode=checked.ra_mode, ipv6_address_mode=checked.address_mode,
        service_types=checked.service_types, subnetpool_id=subnetpool_id)


def decide_subnet_update(current: SubnetSpec, req: SubnetUpdateRequest, *, subnet_id: str,
                         limits: SubnetLimits = SubnetLimits(), gateway_port_id: str | None = None) -> SubnetSpec:
    """The subnet after applying ``req``; raises what Neutron raises for the update.

    ``gateway_port_id`` is the router port that holds the *current* gateway address, if any: the
    gateway may then not change (409 ``GatewayIpInUse``). Pools given replace the old ones whole;
    a gateway change does not recompute pools, but a gateway inside the (new or kept) pools is a
    409. Turning DHCP on re-checks the CIDR for DHCP; turning it off is refused while IPv6 modes
    are set.
    """
    network = ipaddress.ip_network(current.cidr)
    ip_version = current.ip_version

    gateway = None if req.gateway_ip is UNSET else _syntax_gateway(req.gateway_ip)
    pools_given = None if req.allocation_pools is UNSET else _syntax_pools(req.allocation_pools)
    nameservers = None if req.dns_nameservers is UNSET else _syntax_nameservers(req.dns_nameservers)
    routes = None if req.host_routes is UNSET else _syntax_host_routes(req.host_routes)
    service_types = None if req.service_types is UNSET else check_service_types(req.service_types)
    enable_dhcp = current.enable_dhcp if req.enable_dhcp is UNSET else bool(req.enable_dhcp)

    if enable_dhcp and not current.enable_dhcp:
        _check_dhcp_capable(network)
    new_gateway = current.gateway_ip
    if req.gateway_ip is not UNSET:
        if gateway is not None:
            _check_gateway_on_subnet(gateway, req.gateway_ip, ip_version, network)
        new_gateway = None if gateway is None else str(gateway)
        if new_gateway != current.gateway_ip and current.gateway_ip is not None and gateway_port_id:
            raise GatewayIpInUse(ip_address=current.gateway_ip, port_id=gateway_port_id)
    if nameservers is not None:
        _check_nameservers(nameservers, ip_version, limits, subnet_id)
    host_routes = None if routes is None else _check_host_routes(routes, ip_version, limits, subnet_id)
    if ip_version == 6 and req.enable_dhcp is not UNSET and not enable_dhcp and (
            current.ipv6_ra_mode or current.ipv6_address_mode):
        raise InvalidInput("Cannot disable enable_dhcp with ipv6 attributes set")

    pools = current.allocation_pools
    if pools_given is not None:
        pools = check_allocation_pools(pools_given, network)
    if new_gateway != current.gateway_ip or pools_given is not None:
        check_gateway_outside_pools(new_gateway, pools)

    return replace(
        current, gateway_ip=new_gateway, allocation_pools=pools, enable_dhcp=enable_dhcp,
        dns_nameservers=current.dns_nameservers if nameservers is None else tuple(nameservers),
        host_routes=current.host_routes if host_routes is None else host_routes,
        service_types=current.service_types if service_types is None else service_types)

"""Pure decisions about a router's attachments and routes (no database, no I/O).

The router service gathers what a router is connected to into :class:`RouterAttachments` and
asks these functions whether a new subnet may join, whether a route set is valid, and how the
atomic extra-route actions merge route sets. Messages and error types are Neutron's, word for word,
because clients and tempest check them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from neutrino.errors import BadRequest, InUse
from neutrino.services.ipam import owners
from neutrino.services.ipam.records import SubnetInfo

Route = Mapping[str, str]


class InvalidRoutes(BadRequest):
    message = "Invalid format for routes: %(routes)s, %(reason)s"


class RoutesExhausted(BadRequest):
    message = "Unable to complete operation for %(router_id)s. The number of routes exceeds the maximum %(quota)s."


class RouterInterfaceInUseByRoute(InUse):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be deleted, as it is "
               "required by one or more routes.")


def router_error(msg: str) -> BadRequest:
    """Neutron's generic ``BadRequest(resource='router', msg=...)``."""
    return BadRequest(resource="router", msg=msg)


@dataclass(frozen=True, slots=True)
class SubnetRef:
    id: str
    cidr: str


@dataclass(frozen=True, slots=True)
class RouterAttachments:
    """What a router is plugged into.

    ``port_subnets`` are the subnets its ports (interfaces and gateway) hold addresses on;
    ``gateway_network_subnets`` all subnets of the gateway's external network (they count as
    attached for overlap checks even where the gateway port has no address); ``addresses`` are
    the router's own IPs.
    """

    port_subnets: tuple[SubnetRef, ...] = ()
    gateway_network_subnets: tuple[SubnetRef, ...] = ()
    addresses: tuple[str, ...] = ()

    @property
    def connected_cidrs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.cidr for s in self.port_subnets))


def check_new_subnets(attachments: RouterAttachments, new: Sequence[SubnetRef],
                      interface_subnet_ids: Iterable[str]) -> None:
    """A subnet may join a router once, and not overlap anything already attached (400 either way).

    ``interface_subnet_ids`` are the subnets of the router's ports other than the gateway (the
    gateway contributes its whole network through ``gateway_network_subnets``).
    """
    new_ids = {s.id for s in new}
    for ref in attachments.port_subnets:
        if ref.id in new_ids:
            raise router_error(f"Router already has a port on subnet {ref.id}")
    interface_ids = set(interface_subnet_ids)
    attached = [s for s in attachments.port_subnets if s.id in interface_ids]
    attached += list(attachments.gateway_network_subnets)
    for existing in attached:
        for candidate in new:
            if _overlap(existing.cidr, candidate.cidr):
                raise router_error(f"Cidr {candidate.cidr} of subnet {candidate.id} overlaps with cidr "
                                   f"{existing.cidr} of subnet {existing.id}")


def _overlap(a: str, b: str) -> bool:
    net_a, net_b = ipaddress.ip_network(a, strict=False), ipaddress.ip_network(b, strict=False)
    return net_a.version == net_b.version and net_a.overlaps(net_b)


def check_routes(router_id: str, routes: Sequence[Route], attachments: RouterAttachments, max_routes: int) -> None:
    """Every nexthop must sit on a connected subnet and not be one of the router's own addresses."""
    if len(routes) > max_routes:
        raise RoutesExhausted(router_id=router_id, quota=max_routes)
    networks = [ipaddress.ip_network(c, strict=False) for c in attachments.connected_cidrs]
    own = set(attachments.addresses)
    shown = [dict(r) for r in routes]
    for route in routes:
        nexthop = ipaddress.ip_address(route["nexthop"])
        if not any(nexthop in net for net in networks):
            raise InvalidRoutes(routes=shown, reason="the nexthop is not connected with router")
        if route["nexthop"] in own:
            raise InvalidRoutes(routes=shown, reason="the nexthop is used by router")


def routes_via_subnet(routes: Sequence[Route], cidr: str) -> bool:
    """Does any route's nexthop lie in ``cidr`` (so removing that interface would strand it)?"""
    net = ipaddress.ip_network(cidr, strict=False)
    return any(ipaddress.ip_address(r["nexthop"]) in net for r in routes)


def merge_routes(current: Sequence[Route], added: Sequence[Route]) -> list[dict[str, str]]:
    """``add_extraroutes``: the union, exact duplicates merged, order kept."""
    out: list[dict[str, str]] = []
    for route in [*current, *added]:
        entry = {"destination": route["destination"], "nexthop": route["nexthop"]}
        if entry not in out:
            out.append(entry)
    return out


def subtract_routes(current: Sequence[Route], removed: Sequence[Route]) -> list[dict[str, str]]:
    """``remove_extraroutes``: listed routes go; routes that are not there are ignored."""
    gone = {(r["destination"], r["nexthop"]) for r in removed}
    return [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in current
            if (r["destination"], r["nexthop"]) not in gone]


def address_in_cidr(address: str | None, cidr: str) -> bool:
    if not address:
        return False
    ip, net = ipaddress.ip_address(address), ipaddress.ip_network(cidr, strict=False)
    return ip.version == net.version and ip in net


def gateway_takes_new_subnet(new: SubnetInfo, gateway_ips: Sequence[Mapping[str, str]],
                             subnets: Mapping[str, SubnetInfo]) -> bool:
    """Whether a router's gateway port gets an address from ``new``, a subnet just made on its
    external network (Neutron's ``update_router_gw_ports`` and its SLAAC pass over the network).

    - IPv4: only a subnet whose service types reserve it for gateways; a plain IPv4 subnet added
      later gives existing gateways nothing.
    - A subnet whose service types exclude gateway ports gives them nothing.
    - SLAAC / DHCPv6-stateless: always (every port but router interfaces autoconfigures).
    - Otherwise only a gateway with no stateful address, or with one of the other IP version.
    """
    if any(ip["subnet_id"] == new.id for ip in gateway_ips):
        return False
    if new.ip_version == 4 and not any(t in ("", owners.ROUTER_GATEWAY) for t in new.service_types):
        return False
    if new.service_types and owners.ROUTER_GATEWAY not in new.service_types:
        return False
    if new.is_auto_address:
        return True
    stateful = [ip for ip in gateway_ips
                if ip["subnet_id"] not in subnets or not subnets[ip["subnet_id"]].is_auto_address]
    if len(stateful) > 1:
        return False
    return not (stateful and ipaddress.ip_address(stateful[0]["ip_address"]).version == new.ip_version)

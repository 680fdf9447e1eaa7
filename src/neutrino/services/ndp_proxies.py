"""NDP proxies (``l3-ndp-proxy``) and the routers' switch for them (``l3-ext-ndp-proxy``).

An NDP proxy makes one IPv6 address of an internal port answer neighbour solicitations on its
router's gateway, so the address is reachable from the external network without routes there.
Neutron's rules, checked here: the router must have ``enable_ndp_proxy`` (409
``RouterNDPProxyNotEnable``), which needs a gateway on an external network with an IPv6 subnet
and an IPv6 address scope (409 ``RouterGatewayNotValid``); the port must be on one of the
router's IPv6 subnets (409 ``PortUnreachableRouter``, 400 ``InvalidAddress``), in the gateway
network's address scope (409 ``AddressScopeConflict``). A router's gateway cannot go while it has
NDP proxies, nor an interface whose subnet one uses.

The proxies reach the router's L3 agent in its ``sync_state`` (``services/l3_agents.py``), whose
L3 role answers for them on the gateway (``agent/roles/l3/ndp_proxy.py``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import core, l3
from neutrino.errors import BadRequest, Conflict
from neutrino.services.address_scopes import network_address_scopes
from neutrino.services.ipam import owners
from neutrino.services.listing import fetch_one
from neutrino.services.ports import port_visible
from neutrino.services.table_service import TableService


class RouterGatewayInUseByNDPProxy(Conflict):
    message = ("Unable to unset external gateway of router %(router_id)s, There are one or more ndp proxies still "
               "in use on the router.")


class RouterInterfaceInUseByNDPProxy(Conflict):
    message = ("Unable to remove subnet %(subnet_id)s from router %(router_id)s, There are one or more ndp proxies "
               "still in use on the subnet.")


class AddressScopeConflict(Conflict):
    message = ("The IPv6 address scope %(ext_address_scope)s of external network conflict with internal network's "
               "IPv6 address scope %(internal_address_scope)s.")


class RouterGatewayNotValid(Conflict):
    message = "Can not enable ndp proxy on router %(router_id)s, %(reason)s."


class RouterNDPProxyNotEnable(Conflict):
    message = ("The enable_ndp_proxy parameter of router %(router_id)s must be set as True while create ndp proxy "
               "entry on it.")


class PortUnreachableRouter(Conflict):
    message = "The port %(port_id)s cannot reach the router %(router_id)s by IPv6 subnet."


class InvalidAddress(BadRequest):
    message = "The address %(address)s is invalid, reason: %(reason)s."


def _v6(fixed_ips: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    return [ip for ip in fixed_ips if ipaddress.ip_address(ip["ip_address"]).version == 6]


async def _v6_scope(conn: AsyncConnection, network_id: str) -> str | None:
    return (await network_address_scopes(conn, [network_id])).get(network_id, {}).get(6)


async def gateway_supports_ndp(conn: AsyncConnection, network_id: str) -> bool:
    """An external network NDP proxies can answer on: an IPv6 subnet and an IPv6 address scope."""
    if await _v6_scope(conn, network_id) is None:
        return False
    s = core.subnets
    return (await conn.execute(select(s.c.id).where(s.c.network_id == network_id, s.c.ip_version == 6).limit(1))
            ).first() is not None


async def check_router_ndp(conn: AsyncConnection, router_id: str, requested: bool | None) -> bool:
    """The router's ``enable_ndp_proxy`` after a create or update that asked for ``requested``
    (None: not asked), with its gateway as it now is; refuses True on a gateway that cannot."""
    router = await fetch_one(conn, l3.routers, "router", router_id)
    gw = None
    if router["gw_port_id"]:
        gw = (await conn.execute(select(core.ports).where(core.ports.c.id == router["gw_port_id"]))).mappings().first()
    if requested and gw is None:
        raise RouterGatewayNotValid(router_id=router_id, reason="The router has no external gateway")
    if requested:
        assert gw is not None
        if not (await gateway_supports_ndp(conn, gw["network_id"]) and _v6(gw["fixed_ips"])):
            raise RouterGatewayNotValid(router_id=router_id, reason=(
                f"The external network {gw['network_id']} don't support IPv6 ndp proxy, the network has no IPv6 "
                "subnets or has no IPv6 address scope"))
    return bool(requested) if requested is not None else bool(router["enable_ndp_proxy"] and gw is not None)


async def refuse_gateway_removal(conn: AsyncConnection, router_id: str) -> None:
    n = l3.ndp_proxies
    if (await conn.execute(select(n.c.id).where(n.c.router_id == router_id).limit(1))).first() is not None:
        raise RouterGatewayInUseByNDPProxy(router_id=router_id)


async def refuse_interface_removal(conn: AsyncConnection, router_id: str, subnet_ids: Sequence[str]) -> None:
    """An interface may not go while an NDP proxy of the router uses an address of its subnets."""
    n, a = l3.ndp_proxies, core.ipallocations
    for subnet_id in (await conn.execute(select(a.c.subnet_id).join(n, (n.c.port_id == a.c.port_id) & (
            n.c.ip_address == a.c.ip_address)).where(n.c.router_id == router_id))).scalars():
        if subnet_id in subnet_ids:
            raise RouterInterfaceInUseByNDPProxy(router_id=router_id, subnet_id=subnet_id)


class NdpProxyService(TableService):
    resource, table = "ndp_proxy", l3.ndp_proxies
    fields = ("router_id", "port_id", "ip_address")
    standard = True

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        router_id = item["router_id"]
        port = await fetch_one(conn, core.ports, "port", item["port_id"], port_visible(ctx))
        # Routers are never shared (as :func:`neutrino.services.routers.router_visible`).
        scope = None if ctx.is_privileged else l3.routers.c.project_id == ctx.project_id
        router = await fetch_one(conn, l3.routers, "router", router_id, scope)
        rp, p = l3.routerports, core.ports
        router_ports = (await conn.execute(select(p).join(rp, rp.c.port_id == p.c.id).where(
            rp.c.router_id == router_id, p.c.network_id == port["network_id"],
            rp.c.port_type.in_(owners.ROUTER_INTERFACE_OWNERS)))).mappings().all()
        if not router_ports:
            raise PortUnreachableRouter(router_id=router_id, port_id=port["id"])
        if not router["enable_ndp_proxy"]:
            raise RouterNDPProxyNotEnable(router_id=router_id)
        gw_network = (await conn.execute(select(p.c.network_id).where(p.c.id == router["gw_port_id"]))).scalar()
        address = self._address(port, router_id, item.get("ip_address"),
                                {ip["subnet_id"] for r in router_ports for ip in _v6(r["fixed_ips"])})
        ext_scope = await _v6_scope(conn, gw_network) if gw_network else None
        internal_scope = await _v6_scope(conn, port["network_id"])
        if ext_scope != internal_scope:
            raise AddressScopeConflict(ext_address_scope=ext_scope, internal_address_scope=internal_scope)
        return {"router_id": router_id, "port_id": port["id"], "ip_address": address}

    @staticmethod
    def _address(port: Mapping[str, Any], router_id: str, wanted: str | None, router_subnets: set[str]) -> str:
        """Neutron's choice: the requested address (on the port, on a router subnet), else the
        port's first IPv6 address on one of the router's subnets."""
        fixed = _v6(port["fixed_ips"])
        if not fixed:
            raise BadRequest(resource="ndp_proxy", msg=f"Requested port {port['id']} must allocate one IPv6 "
                             "address at least")
        if not wanted:
            for ip in fixed:
                if ip["subnet_id"] in router_subnets:
                    return str(ip["ip_address"])
            raise PortUnreachableRouter(port_id=port["id"], router_id=router_id)
        match = [ip for ip in fixed if ipaddress.ip_address(ip["ip_address"]) == ipaddress.ip_address(wanted)]
        if not match:
            raise InvalidAddress(address=wanted, reason=f"This address not belong to the port {port['id']}")
        if match[0]["subnet_id"] not in router_subnets:
            raise InvalidAddress(address=wanted, reason=f"This address cannot reach the router {router_id}")
        return str(match[0]["ip_address"])


__all__ = ["NdpProxyService", "check_router_ndp", "refuse_gateway_removal", "refuse_interface_removal"]

"""Routers: gateways on external networks, interfaces on project subnets, extra routes.

A router owns ports made through the core port service: its gateway port
(``network:router_gateway``, empty project, on an external network) and its interface ports
(``network:router_interface``, the router's project, holding each subnet's gateway address).
``routerports`` records which ports are the router's; the ports' ``device_id`` says the same for
clients that filter ports by it. The checks that need no database live in
:mod:`neutrino.services.router_checks`.

``status`` is ``ACTIVE`` from the start (as Neutron shows a router without HA); the L3 agent role
hosting the router makes it real (``qrouter-`` namespace, NAT) from ``sync_state`` and the change
events published after each commit, and reports it ``ERROR`` while that fails (``ACTIVE`` again
once wired).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema import l3
from neutrino.db.schema.agents import routerl3agentbindings
from neutrino.errors import BadRequest, HTTPBadRequest, InUse, NotFound
from neutrino.resources.l3 import Routes
from neutrino.resources.types import InvalidValue, Uuid
from neutrino.services import allocations, rbac
from neutrino.services.availability_zones import check_zone_hints, router_zones
from neutrino.services.event_routing import HOSTS_HINT, hosts_of
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.flavors import router_flavor
from neutrino.services.ipam import owners
from neutrino.services.l3_ha import L3HaService
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.ndp_proxies import check_router_ndp, refuse_gateway_removal, refuse_interface_removal
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortInUse, PortService, port_visible
from neutrino.services.quotas import QuotaService
from neutrino.services.router_checks import (
    RouterAttachments,
    RouterInterfaceInUseByRoute,
    SubnetRef,
    address_in_cidr,
    check_new_subnets,
    check_routes,
    gateway_takes_new_subnet,
    merge_routes,
    router_error,
    routes_via_subnet,
    subtract_routes,
)
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    load_tags,
    new_id,
    new_standard_values,
    project_view,
    standard_view,
    utcnow,
)
from neutrino.services.subnets import subnet_visible
from neutrino.services.unit_of_work import Transaction, UnitOfWork

MAX_ROUTES = 30  # Neutron's ``max_routes``
# Attributes only admins read (policy ``get_router:ha`` / ``get_router:distributed``).
ADMIN_ONLY_VIEW = ("ha", "distributed")


class RouterInUse(InUse):
    message = "Router %(router_id)s %(reason)s"


class RouterInterfaceNotFound(NotFound):
    message = "Router %(router_id)s does not have an interface with id %(port_id)s"


class RouterInterfaceNotFoundForSubnet(NotFound):
    message = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class RouterInterfaceInUseByFloatingIP(InUse):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be deleted, as it is "
               "required by one or more floating IPs.")


class RouterExternalGatewayInUseByFloatingIp(InUse):
    message = ("Gateway cannot be updated for router %(router_id)s, since a gateway to external network "
               "%(net_id)s is required by one or more floating IPs.")


class SubnetMismatchForPort(BadRequest):
    message = "Subnet on port %(port_id)s does not match the requested subnet %(subnet_id)s."


def router_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Routers are never shared: own project only (admins and service users see all)."""
    if ctx.is_privileged:
        return None
    return l3.routers.c.project_id == ctx.project_id


def elevated(ctx: RequestContext) -> RequestContext:
    """The server's own authority, for ports it makes on a router's or floating IP's behalf."""
    return RequestContext.admin(ctx.request_id)


async def router_for_floating_ip(conn: AsyncConnection, network_id: str, subnet_id: str, gateway_ip: str | None,
                                 external_network_id: str) -> str | None:
    """The router that connects ``subnet_id`` (an interface on it) to the external network (its
    gateway there). Prefers the router holding the subnet's gateway address, as Neutron does."""
    rp, p, a, r, gw = l3.routerports, db.ports, db.ipallocations, l3.routers, db.ports.alias("gw")
    rows = await conn.execute(
        select(rp.c.router_id, a.c.ip_address)
        .join(p, p.c.id == rp.c.port_id).join(a, a.c.port_id == p.c.id)
        .join(r, r.c.id == rp.c.router_id).join(gw, gw.c.id == r.c.gw_port_id)
        .where(p.c.network_id == network_id, rp.c.port_type.in_(owners.ROUTER_INTERFACE_OWNERS),
               a.c.subnet_id == subnet_id, gw.c.network_id == external_network_id)
        .order_by(r.c.created_at, r.c.id))
    first = None
    for router_id, address in rows:
        if address == gateway_ip:
            return str(router_id)
        first = first or str(router_id)
    return first


def _subnet_ref(row: Any) -> SubnetRef:
    return SubnetRef(row["id"], row["cidr"])


class RouterService:
    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService, networks: NetworkService,
                 ports: PortService, *, max_routes: int = MAX_ROUTES, rng: random.Random | None = None,
                 gateway_qos: bool = False, ha: L3HaService | None = None, ha_by_default: bool = False) -> None:
        self.db = database
        # ``qos-gateway-ip`` listed: the gateway info shows (and takes) its QoS policy.
        self.gateway_qos = gateway_qos
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.quotas = quotas
        self.networks = networks
        self.ports = ports
        self.max_routes = max_routes
        self.rng = rng or random.Random()
        # L3 HA (None: ``ha`` is stored but nothing acts on it); ``ha_by_default``: ``l3_ha``.
        self.ha = ha
        self.ha_by_default = ha_by_default

    def table_query(self) -> TableQuery:
        cols = {a: a for a in ("id", "name", "description", "project_id", "admin_state_up", "status",
                               "revision_number", "created_at", "updated_at", "flavor_id", "enable_ndp_proxy")}
        cols["tenant_id"] = "project_id"
        return TableQuery("router", l3.routers, cols, tag_type="router")

    # ---- reading ---------------------------------------------------------------------------

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        gw_ids = [r["gw_port_id"] for r in rows if r["gw_port_id"]]
        gateways = {}
        if gw_ids:
            for port in (await conn.execute(select(db.ports.c.id, db.ports.c.network_id, db.ports.c.fixed_ips)
                                            .where(db.ports.c.id.in_(gw_ids)))).mappings():
                gateways[port["id"]] = port
        routes: dict[str, list[dict[str, str]]] = {}
        rr = l3.router_routes
        for router_id, dest, nexthop in await conn.execute(
                select(rr.c.router_id, rr.c.destination, rr.c.nexthop).where(rr.c.router_id.in_(ids))
                .order_by(rr.c.destination, rr.c.nexthop)):
            routes.setdefault(router_id, []).append({"destination": dest, "nexthop": nexthop})
        helpers: dict[str, list[dict[str, Any]]] = {}
        ch = l3.conntrack_helpers
        for router_id, protocol, port, helper in await conn.execute(
                select(ch.c.router_id, ch.c.protocol, ch.c.port, ch.c.helper).where(ch.c.router_id.in_(ids))
                .order_by(ch.c.protocol, ch.c.port, ch.c.helper)):
            helpers.setdefault(router_id, []).append({"protocol": protocol, "port": port, "helper": helper})
        tag_map = await load_tags(conn, "router", ids)
        zones = await router_zones(conn, ids)
        return [self.view(r, gateways.get(r["gw_port_id"]), routes.get(r["id"], []), tag_map.get(r["id"], []),
                          zones.get(r["id"], []), helpers.get(r["id"], [])) for r in rows]

    def view(self, row: Any, gateway: Any, routes: Sequence[Mapping[str, str]], tags: Sequence[str],
             zones: Sequence[str] = (), conntrack_helpers: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        gw_info = None
        if gateway is not None:
            gw_info = {"network_id": gateway["network_id"], "enable_snat": row["enable_snat"],
                       "external_fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                                              for ip in gateway["fixed_ips"]]}
            if self.gateway_qos and row["qos_policy_id"]:
                # Shown once set, as the captured Neutron 29 shows the gateway (spec example 25).
                gw_info["qos_policy_id"] = row["qos_policy_id"]
        return {
            "id": row["id"], "name": row["name"], "description": row["description"],
            **project_view(row["project_id"]), "admin_state_up": row["admin_state_up"], "status": row["status"],
            "external_gateway_info": gw_info, "routes": [dict(r) for r in routes],
            "distributed": row["distributed"], "ha": row["ha"], "flavor_id": row["flavor_id"],
            "enable_ndp_proxy": row["enable_ndp_proxy"],
            "availability_zone_hints": list(row["availability_zone_hints"] or []), "availability_zones": list(zones),
            "conntrack_helpers": [dict(h) for h in conntrack_helpers], "tags": list(tags), **standard_view(row),
        }

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(), query, router_visible(ctx))
            return await self._views(conn, rows)

    async def get(self, ctx: RequestContext, router_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, l3.routers, "router", router_id, router_visible(ctx))
            return (await self._views(conn, [row]))[0]

    async def find(self, ctx: RequestContext, router_id: str) -> dict[str, Any]:
        """The router's own attributes (no gateway, routes or tags): one statement, for checks
        that need nothing more (the caller's roles decide)."""
        async with self.db.read() as conn:
            return self.view(await fetch_one(conn, l3.routers, "router", router_id, router_visible(ctx)), None, [], [])

    async def _view_of(self, conn: AsyncConnection, router_id: str) -> dict[str, Any]:
        row = await fetch_one(conn, l3.routers, "router", router_id)
        return (await self._views(conn, [row]))[0]

    @staticmethod
    def _action_view(ctx: RequestContext, view: dict[str, Any]) -> dict[str, Any]:
        """Member-action responses bypass the controller's read filter: hide admin-only keys here."""
        if ctx.is_admin:
            return view
        return {k: v for k, v in view.items() if k not in ADMIN_ONLY_VIEW}

    # ---- what a router is attached to --------------------------------------------------------

    async def _router_ports(self, conn: AsyncConnection, router_id: str) -> list[Any]:
        rp, p = l3.routerports, db.ports
        return list((await conn.execute(
            select(p, rp.c.port_type).join(rp, rp.c.port_id == p.c.id).where(rp.c.router_id == router_id)
            .order_by(p.c.created_at, p.c.id))).mappings().all())

    async def _subnets(self, conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Any]:
        if not ids:
            return {}
        rows = await conn.execute(select(db.subnets).where(db.subnets.c.id.in_(list(ids))))
        return {r["id"]: r for r in rows.mappings()}

    async def _attachments(self, conn: AsyncConnection, router_id: str, *, gateway: bool = True,
                           exclude_port: str | None = None) -> tuple[RouterAttachments, list[str]]:
        """The router's attachments (optionally without its gateway or one port), and the subnet ids
        of its non-gateway ports."""
        ports = [p for p in await self._router_ports(conn, router_id) if p["id"] != exclude_port]
        if not gateway:
            ports = [p for p in ports if p["port_type"] != owners.ROUTER_GATEWAY]
        subnet_ids = [ip["subnet_id"] for p in ports for ip in p["fixed_ips"]]
        subnets = await self._subnets(conn, subnet_ids)
        gw_network = [s for s in (await conn.execute(select(db.subnets).where(
            db.subnets.c.network_id.in_([p["network_id"] for p in ports
                                         if p["port_type"] == owners.ROUTER_GATEWAY])))).mappings()]
        interface_subnets = [ip["subnet_id"] for p in ports if p["port_type"] != owners.ROUTER_GATEWAY
                             for ip in p["fixed_ips"]]
        return RouterAttachments(
            port_subnets=tuple(_subnet_ref(subnets[s]) for s in dict.fromkeys(subnet_ids) if s in subnets),
            gateway_network_subnets=tuple(_subnet_ref(s) for s in gw_network),
            addresses=tuple(ip["ip_address"] for p in ports for ip in p["fixed_ips"]),
        ), interface_subnets

    async def _routes(self, conn: AsyncConnection, router_id: str) -> list[dict[str, str]]:
        rr = l3.router_routes
        rows = await conn.execute(select(rr.c.destination, rr.c.nexthop).where(rr.c.router_id == router_id)
                                  .order_by(rr.c.destination, rr.c.nexthop))
        return [{"destination": d, "nexthop": n} for d, n in rows]

    async def _check_current_routes(self, conn: AsyncConnection, router_id: str) -> None:
        """After the gateway changed, the routes the router keeps must still be reachable."""
        routes = await self._routes(conn, router_id)
        if routes:
            attachments, _ = await self._attachments(conn, router_id)
            check_routes(router_id, routes, attachments, max(self.max_routes, len(routes)))

    async def _replace_routes(self, conn: AsyncConnection, router_id: str, routes: Sequence[Mapping[str, str]]) -> None:
        attachments, _ = await self._attachments(conn, router_id)
        check_routes(router_id, routes, attachments, self.max_routes)
        rr = l3.router_routes
        await conn.execute(delete(rr).where(rr.c.router_id == router_id))
        if routes:
            await conn.execute(insert(rr), [{"router_id": router_id, "destination": r["destination"],
                                             "nexthop": r["nexthop"]} for r in routes])

    # ---- gateway -------------------------------------------------------------------------------

    async def _fip_router_in_use(self, conn: AsyncConnection, router_id: str) -> bool:
        found = await conn.execute(select(l3.floatingips.c.id).where(l3.floatingips.c.router_id == router_id).limit(1))
        return found.first() is not None

    async def _remove_gateway(self, conn: AsyncConnection, router: Any, events: list[ChangeEvent]) -> None:
        gw_id = router["gw_port_id"]
        if not gw_id:
            return
        gw = await fetch_one(conn, db.ports, "port", gw_id)
        await refuse_gateway_removal(conn, router["id"])
        if await self._fip_router_in_use(conn, router["id"]):
            raise RouterExternalGatewayInUseByFloatingIp(router_id=router["id"], net_id=gw["network_id"])
        await conn.execute(update(l3.routers).where(l3.routers.c.id == router["id"]).values(
            gw_port_id=None, qos_policy_id=None, enable_ndp_proxy=False))
        await self._drop_port(conn, gw_id)
        events.append(ChangeEvent("port", gw_id, "delete", 0, (("network_id", gw["network_id"]), ("host", ""))))

    async def _drop_port(self, conn: AsyncConnection, port_id: str) -> None:
        """Detach one of the router's ports and delete it (its addresses go with it)."""
        await conn.execute(delete(l3.routerports).where(l3.routerports.c.port_id == port_id))
        await self.ports.delete_in(conn, port_id)

    async def _set_gateway(self, conn: AsyncConnection, ctx: RequestContext, router: Any,
                           info: Mapping[str, Any] | None, events: list[ChangeEvent]) -> None:
        """Create, replace, re-address or remove the gateway to match ``info`` (None: no gateway).

        New addresses on the same network re-address the gateway port in place (same port, new
        IPs), as Neutron's ``_update_current_gw_port`` does; a new network replaces the port.
        """
        current = await fetch_one(conn, db.ports, "port", router["gw_port_id"]) if router["gw_port_id"] else None
        if info is None:
            await self._remove_gateway(conn, router, events)
            await self._check_current_routes(conn, router["id"])
            return
        network_id = info["network_id"]
        net = await self.networks.get_in(conn, ctx, network_id)
        if not net["router_external"]:
            raise router_error(f"Network {network_id} is not an external network")
        ext_ips = list(info.get("external_fixed_ips") or [])
        ext_subnets = (await conn.execute(select(db.subnets).where(db.subnets.c.network_id == network_id)
                                          .order_by(db.subnets.c.created_at, db.subnets.c.id))).mappings().all()
        gateways = {s["gateway_ip"] for s in ext_subnets if s["gateway_ip"]}
        for ip in ext_ips:
            if ip.get("ip_address") in gateways:
                raise router_error(f"External IP {ip['ip_address']} is the same as the gateway IP")
        enable_snat = info.get("enable_snat", True)
        if "qos_policy_id" in info and self.gateway_qos:
            if info["qos_policy_id"]:
                await self.networks.qos_policies.check(conn, ctx, info["qos_policy_id"])
            await conn.execute(update(l3.routers).where(l3.routers.c.id == router["id"]).values(
                qos_policy_id=info["qos_policy_id"]))
        if current is not None and current["network_id"] == network_id:
            if self._addresses_change(current, ext_ips):
                await self._readdress_gateway(conn, ctx, current, ext_ips, events)
                await self._check_current_routes(conn, router["id"])
            await conn.execute(update(l3.routers).where(l3.routers.c.id == router["id"]).values(
                enable_snat=enable_snat))
            return
        if current is not None:
            await self._remove_gateway(conn, router, events)
        attachments, interface_subnets = await self._attachments(conn, router["id"], gateway=False)
        check_new_subnets(attachments, [_subnet_ref(s) for s in ext_subnets], interface_subnets)
        item: dict[str, Any] = {"network_id": network_id, "project_id": "", "name": "", "admin_state_up": True,
                                "device_owner": owners.ROUTER_GATEWAY, "device_id": router["id"]}
        if ext_ips:
            item["fixed_ips"] = ext_ips
        port_id = await self.ports.create_in(conn, elevated(ctx), item)
        await conn.execute(insert(l3.routerports).values(router_id=router["id"], port_id=port_id,
                                                         port_type=owners.ROUTER_GATEWAY))
        await conn.execute(update(l3.routers).where(l3.routers.c.id == router["id"]).values(
            gw_port_id=port_id, enable_snat=enable_snat))
        events.append(ChangeEvent("port", port_id, "create", 0, (("network_id", network_id), ("host", ""))))
        await self._check_current_routes(conn, router["id"])

    async def _readdress_gateway(self, conn: AsyncConnection, ctx: RequestContext, port: Any,
                                 fixed_ips: Sequence[Mapping[str, str]], events: list[ChangeEvent]) -> None:
        """Give the gateway port ``fixed_ips`` (a port update: kept, released and new addresses)."""
        events.extend(await self.ports.update_in(conn, elevated(ctx), port, {"fixed_ips": list(fixed_ips)}))
        events.append(ChangeEvent("port", port["id"], "update", 0, (("network_id", port["network_id"]), ("host", ""))))

    @staticmethod
    def _addresses_change(current: Any, ext_ips: Sequence[Mapping[str, str]]) -> bool:
        """Neutron's test: only a request naming addresses or subnets can move the gateway's IPs."""
        if not ext_ips:
            return False
        have_subnets = {ip["subnet_id"] for ip in current["fixed_ips"]}
        want_subnets = {ip["subnet_id"] for ip in ext_ips if ip.get("subnet_id")}
        if want_subnets != have_subnets:
            return True
        have_ips = {ip["ip_address"] for ip in current["fixed_ips"]}
        want_ips = {ip["ip_address"] for ip in ext_ips if ip.get("ip_address")}
        return want_ips != have_ips

    async def subnet_created(self, conn: AsyncConnection, net: Any, subnet_id: str) -> list[str]:
        """Subnet service hook: a new subnet on an external network may give the gateway ports
        there an address (see :func:`gateway_takes_new_subnet`); returns the ports re-addressed."""
        if not net["router_external"]:
            return []
        subnets = {s.id: s for s in await allocations.network_subnets(conn, net["id"])}
        new = subnets[subnet_id]
        p, r = db.ports, l3.routers
        gateways = (await conn.execute(select(p, r.c.id.label("router_id")).join(r, r.c.gw_port_id == p.c.id)
                                       .where(p.c.network_id == net["id"]).order_by(p.c.id))).mappings().all()
        touched: list[str] = []
        events: list[ChangeEvent] = []
        for port in gateways:
            if gateway_takes_new_subnet(new, port["fixed_ips"], subnets):
                fixed_ips = [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]} for ip in port["fixed_ips"]]
                await self._readdress_gateway(conn, RequestContext.admin(), port, [*fixed_ips, {"subnet_id": subnet_id}],
                                              events)
                await bump_revision(conn, r, port["router_id"])
                touched.append(port["id"])
        return touched

    # ---- create / update / delete ---------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events: list[ChangeEvent] = []

        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            events.clear()
            ids = [await self.create_in(conn, ctx, item, events) for item in items]
            return [await self._view_of(conn, i) for i in ids]

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: events + [ChangeEvent("router", r["id"], "create", r["revision_number"])
                                            for r in result])
        return result

    async def create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any],
                        events: list[ChangeEvent]) -> str:
        project = item.get("project_id") or ctx.project_id
        hints = list(item.get("availability_zone_hints") or [])
        await check_zone_hints(conn, "router", hints)
        now = utcnow()
        router_id = new_id()
        ha = bool(item.get("ha", self.ha_by_default and self.ha is not None))
        distributed = bool(item.get("distributed", False))
        if item.get("flavor_id"):
            ha, distributed = await router_flavor(conn, item["flavor_id"], item)
        await conn.execute(insert(l3.routers).values(
            id=router_id, project_id=project, **new_standard_values(item, now),
            admin_state_up=item.get("admin_state_up", True), status="ACTIVE", gw_port_id=None, enable_snat=True,
            ha=ha, distributed=distributed, availability_zone_hints=hints, flavor_id=item.get("flavor_id"),
            enable_ndp_proxy=False))
        await self.quotas.check(conn, ctx, {"router": 0}, project_id=project)
        if item.get("external_gateway_info"):
            router = await fetch_one(conn, l3.routers, "router", router_id)
            await self._set_gateway(conn, ctx, router, item["external_gateway_info"], events)
            await bump_revision(conn, l3.routers, router_id)
        if item.get("enable_ndp_proxy") is not None:
            await conn.execute(update(l3.routers).where(l3.routers.c.id == router_id).values(
                enable_ndp_proxy=await check_router_ndp(conn, router_id, item["enable_ndp_proxy"])))
        return router_id

    async def update(self, ctx: RequestContext, router_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        events: list[ChangeEvent] = []

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            events.clear()
            row = await fetch_one(conn, l3.routers, "router", router_id, router_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            await self.update_in(conn, ctx, row, changes, events)
            return await self._view_of(conn, router_id)

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: events + [ChangeEvent("router", router_id, "update", result["revision_number"])])
        return result

    async def update_in(self, conn: AsyncConnection, ctx: RequestContext, row: Any, changes: Mapping[str, Any],
                        events: list[ChangeEvent]) -> None:
        values = {k: changes[k] for k in ("name", "description", "admin_state_up", "ha", "distributed",
                                          "enable_ndp_proxy") if k in changes}
        if ("distributed" in values and bool(values["distributed"]) != bool(row["distributed"])
                and changes.get("admin_state_up", row["admin_state_up"])):
            # router-admin-state-down-before-update (distributed is stored, nothing acts on it).
            raise router_error("Cannot change the 'distributed' attribute of active routers. Please set router "
                               "admin_state_up to False prior to upgrade")
        if "ha" in values and bool(values["ha"]) != bool(row["ha"]):
            await self._change_ha(conn, row, bool(values["ha"]), bool(changes.get("admin_state_up",
                                                                                 row["admin_state_up"])), events)
        if "external_gateway_info" in changes:
            await self._set_gateway(conn, ctx, row, changes["external_gateway_info"], events)
        if "routes" in changes:
            await self._replace_routes(conn, row["id"], changes["routes"] or [])
        if "enable_ndp_proxy" in values:
            values["enable_ndp_proxy"] = await check_router_ndp(conn, row["id"], values["enable_ndp_proxy"])
        await bump_revision(conn, l3.routers, row["id"], values)

    def _interface_owner(self, router: Any) -> str:
        """An HA router's interfaces are on every host of the router (Neutron's owner for them)."""
        return owners.HA_REPLICATED_INTERFACE if self.ha is not None and router["ha"] else owners.ROUTER_INTERFACE

    async def _change_ha(self, conn: AsyncConnection, row: Any, ha: bool, admin_state_up: bool,
                         events: list[ChangeEvent]) -> None:
        """Turn a router HA or back (Neutron's migration): only while it is down, as
        ``router-admin-state-down-before-update`` says. Its agents let it go (with an HA router's
        HA ports, and the project's HA network when it was the last), its interfaces change owner,
        and the scheduler hosts it anew after the commit."""
        if admin_state_up:
            raise router_error("Cannot change HA attribute of active routers. Please set router admin_state_up "
                               "to False prior to upgrade")
        if self.ha is None:
            return
        # Its agents now let it go: they hear of it although no longer hosting it.
        hosts = (HOSTS_HINT, await hosts_of(conn, "router", row["id"]))
        if row["ha"]:
            await self.ha.release(conn, row["id"], row["project_id"], events)
        b = routerl3agentbindings
        await conn.execute(delete(b).where(b.c.router_id == row["id"]))
        owner = owners.HA_REPLICATED_INTERFACE if ha else owners.ROUTER_INTERFACE
        for port in await self._interfaces(conn, row["id"]):
            await bump_revision(conn, db.ports, port["id"], {"device_owner": owner})
            events.append(ChangeEvent("port", port["id"], "update", 0,
                                      (("network_id", port["network_id"]), ("host", port["binding_host_id"]))))
        events.append(ChangeEvent("router", row["id"], "update", 0, (hosts, ("unhosted", True))))

    async def delete(self, ctx: RequestContext, router_id: str, if_revision: int | None = None) -> None:
        events: list[ChangeEvent] = []
        captured: list[tuple[str, Any]] = []

        async def work(tx: Transaction) -> None:
            conn = tx.conn
            events.clear()
            row = await fetch_one(conn, l3.routers, "router", router_id, router_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            interfaces = [p["id"] for p in await self._router_ports(conn, router_id)
                          if p["port_type"] != owners.ROUTER_GATEWAY]
            if interfaces:
                raise RouterInUse(router_id=router_id, reason="has ports still attached: " + ", ".join(interfaces))
            captured[:] = [(HOSTS_HINT, await hosts_of(conn, "router", router_id))]  # its L3 agents
            await self._remove_gateway(conn, row, events)
            if self.ha is not None and row["ha"]:
                await self.ha.release(conn, router_id, row["project_id"], events)
            await conn.execute(delete(l3.router_routes).where(l3.router_routes.c.router_id == router_id))
            await delete_tags(conn, "router", router_id)
            await conn.execute(delete(l3.routers).where(l3.routers.c.id == router_id))

        await self.uow.run(work, rng=self.rng,
            events=lambda _: events + [ChangeEvent("router", router_id, "delete", 0, tuple(captured))])

    # ---- member actions: interfaces ----------------------------------------------------------

    @staticmethod
    def _interface_request(body: Any, *, removal: bool) -> tuple[str | None, str | None]:
        if not isinstance(body, dict):
            raise HTTPBadRequest("Body contains invalid data")
        port_id, subnet_id = body.get("port_id"), body.get("subnet_id")
        if "port_id" not in body and "subnet_id" not in body:
            raise router_error("Either subnet_id or port_id must be specified")
        for key in ("port_id", "subnet_id"):
            if key in body:
                try:
                    Uuid().convert(body[key])
                except InvalidValue as exc:
                    raise router_error(str(exc)) from None
        if not removal and "port_id" in body and "subnet_id" in body:
            raise router_error("Cannot specify both subnet-id and port-id")
        return port_id, subnet_id

    @staticmethod
    def _interface_info(router: Any, port: Mapping[str, Any], subnet_ids: Sequence[str]) -> dict[str, Any]:
        return {"id": router["id"], "project_id": port["project_id"], "port_id": port["id"],
                "network_id": port["network_id"], "subnet_id": subnet_ids[0] if subnet_ids else None,
                "subnet_ids": list(subnet_ids)}

    @staticmethod
    def _check_address_mode(subnet: Any) -> None:
        if subnet["ip_version"] == 6 and subnet["ipv6_ra_mode"] is None and subnet["ipv6_address_mode"] is not None:
            raise router_error(f"IPv6 subnet {subnet['id']} configured to receive RAs from an external router "
                               "cannot be added to Neutron Router.")

    async def add_router_interface(self, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
        port_id, subnet_id = self._interface_request(body, removal=False)

        async def add(conn: AsyncConnection, router: Any, events: list[ChangeEvent]) -> dict[str, Any]:
            if port_id is not None:
                return await self._add_by_port(conn, ctx, router, port_id, events)
            assert subnet_id is not None
            return await self._add_by_subnet(conn, ctx, router, subnet_id, events)

        return await self._change_interfaces(ctx, router_id, add)

    async def _change_interfaces(self, ctx: RequestContext, router_id: str, change: Callable[
            [AsyncConnection, Any, list[ChangeEvent]], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """An interface added or removed by ``change`` in one transaction, on the router locked and
        visible to the caller; its revision bumped, and the router's and ports' changes published
        once committed. Returns ``change``'s interface info."""
        events: list[ChangeEvent] = []

        async def work(tx: Transaction) -> dict[str, Any]:
            events.clear()
            router = await fetch_one(tx.conn, l3.routers, "router", router_id, router_visible(ctx), for_update=True)
            info = await change(tx.conn, router, events)
            await bump_revision(tx.conn, l3.routers, router_id)
            return info

        return await self.uow.run(work, rng=self.rng,
                                  events=lambda info: events + [ChangeEvent("router", router_id, "update")])

    async def _add_by_subnet(self, conn: AsyncConnection, ctx: RequestContext, router: Any, subnet_id: str,
                             events: list[ChangeEvent]) -> dict[str, Any]:
        subnet = await fetch_one(conn, db.subnets, "subnet", subnet_id, subnet_visible(ctx))
        if not subnet["gateway_ip"]:
            raise router_error("Subnet for router interface must have a gateway IP")
        if not ctx.is_admin and subnet["project_id"] != ctx.project_id:
            # Only an RBAC entry naming the caller's project counts; a network shared with
            # everybody ("*") does not let strangers plug routers into it (Neutron LP-1757482).
            r = db.rbac_policies
            granted = await conn.execute(select(r.c.id).where(
                r.c.object_type == "network", r.c.object_id == subnet["network_id"], r.c.action == rbac.SHARED,
                r.c.target_project == ctx.project_id).limit(1))
            if granted.first() is None:
                raise router_error(f"Cannot add interface to router because subnet {subnet_id} is not owned by "
                                   "project making the request")
        self._check_address_mode(subnet)
        attachments, interface_subnets = await self._attachments(conn, router["id"])
        check_new_subnets(attachments, [_subnet_ref(subnet)], interface_subnets)
        fixed_ip = {"subnet_id": subnet_id, "ip_address": subnet["gateway_ip"]}
        if subnet["ip_version"] == 6:
            # One interface port per network for IPv6: a further prefix joins the existing port.
            for port in await self._router_ports(conn, router["id"]):
                if (port["port_type"] == owners.ROUTER_INTERFACE and port["network_id"] == subnet["network_id"]
                        and any(":" in ip["ip_address"] for ip in port["fixed_ips"])):
                    await self.ports.update_in(conn, elevated(ctx), port,
                                               {"fixed_ips": [*port["fixed_ips"], fixed_ip]})
                    events.append(ChangeEvent("port", port["id"], "update", 0,
                                              (("network_id", port["network_id"]), ("host", ""))))
                    return self._interface_info(router, port, [subnet_id])
        port_id = await self.ports.create_in(conn, elevated(ctx), {
            "network_id": subnet["network_id"], "project_id": router["project_id"], "name": "",
            "admin_state_up": True, "fixed_ips": [fixed_ip], "device_owner": self._interface_owner(router),
            "device_id": router["id"]})
        await conn.execute(insert(l3.routerports).values(router_id=router["id"], port_id=port_id,
                                                         port_type=owners.ROUTER_INTERFACE))
        events.append(ChangeEvent("port", port_id, "create", 0, (("network_id", subnet["network_id"]), ("host", ""))))
        port = await fetch_one(conn, db.ports, "port", port_id)
        return self._interface_info(router, port, [subnet_id])

    async def _add_by_port(self, conn: AsyncConnection, ctx: RequestContext, router: Any, port_id: str,
                           events: list[ChangeEvent]) -> dict[str, Any]:
        port = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx), for_update=True)
        if port["device_id"]:
            raise PortInUse(port_id=port_id, net_id=port["network_id"], device_id=port["device_id"])
        if not port["fixed_ips"]:
            raise router_error("Router port must have at least one fixed IP")
        subnets = await self._subnets(conn, [ip["subnet_id"] for ip in port["fixed_ips"]])
        for subnet in subnets.values():
            self._check_address_mode(subnet)
        if any(":" in ip["ip_address"] for ip in port["fixed_ips"]):
            for other in await self._router_ports(conn, router["id"]):
                if (other["port_type"] == owners.ROUTER_INTERFACE and other["network_id"] == port["network_id"]
                        and any(":" in ip["ip_address"] for ip in other["fixed_ips"])):
                    raise router_error(f"Router already contains IPv6 port {other['id']} belonging to network id "
                                       f"{other['network_id']}. Only one IPv6 port from the same network subnet "
                                       "can be connected to a router.")
        attachments, interface_subnets = await self._attachments(conn, router["id"])
        check_new_subnets(attachments, [_subnet_ref(s) for s in subnets.values()], interface_subnets)
        if len([s for s in subnets.values() if s["ip_version"] == 4]) > 1:
            raise router_error("Cannot have multiple IPv4 subnets on router port")
        if not ctx.is_admin:
            self._check_port_in_pools(ctx, port, subnets)
        await bump_revision(conn, db.ports, port_id, {"device_id": router["id"],
                                                      "device_owner": self._interface_owner(router)})
        await conn.execute(insert(l3.routerports).values(router_id=router["id"], port_id=port_id,
                                                         port_type=owners.ROUTER_INTERFACE))
        events.append(ChangeEvent("port", port_id, "update", 0, (("network_id", port["network_id"]),
                                                                 ("host", port["binding_host_id"]))))
        return self._interface_info(router, port, [ip["subnet_id"] for ip in port["fixed_ips"]])

    @staticmethod
    def _check_port_in_pools(ctx: RequestContext, port: Any, subnets: Mapping[str, Any]) -> None:
        """A non-admin may not make a router take an address outside a foreign subnet's pools."""
        for ip in port["fixed_ips"]:
            subnet = subnets[ip["subnet_id"]]
            if subnet["project_id"] == ctx.project_id:
                continue
            address = int(ipaddress.ip_address(ip["ip_address"]))
            in_pool = any(int(ipaddress.ip_address(p["start"])) <= address <= int(ipaddress.ip_address(p["end"]))
                          for p in subnet["allocation_pools"])
            if not in_pool:
                raise router_error(f"Cannot add interface to router because specified port {port['id']} has an "
                                   f"IP address out of the allocation pool of subnet {subnet['id']}, which is "
                                   "not owned by the project making the request")

    async def remove_router_interface(self, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
        port_id, subnet_id = self._interface_request(body, removal=True)

        async def remove(conn: AsyncConnection, router: Any, events: list[ChangeEvent]) -> dict[str, Any]:
            if port_id is not None:
                return await self._remove_by_port(conn, router, port_id, subnet_id, events)
            assert subnet_id is not None
            return await self._remove_by_subnet(conn, ctx, router, subnet_id, events)

        return await self._change_interfaces(ctx, router_id, remove)

    async def _interfaces(self, conn: AsyncConnection, router_id: str) -> list[Any]:
        return [p for p in await self._router_ports(conn, router_id) if p["port_type"] == owners.ROUTER_INTERFACE]

    async def _check_interface_unused(self, conn: AsyncConnection, router_id: str, subnet: Any) -> None:
        """An interface a floating IP, port forwarding or extra route depends on must stay."""
        f, pf, a = l3.floatingips, l3.portforwardings, db.ipallocations
        on_subnet = select(a.c.port_id).where(a.c.subnet_id == subnet["id"])
        fips = await conn.execute(select(f.c.fixed_ip_address).where(
            f.c.router_id == router_id, f.c.fixed_port_id.in_(on_subnet)))
        pfs = await conn.execute(select(pf.c.internal_ip_address).join(f, f.c.id == pf.c.floatingip_id).where(
            f.c.router_id == router_id, pf.c.internal_port_id.in_(on_subnet)))
        for (address,) in [*fips, *pfs]:
            if address_in_cidr(address, subnet["cidr"]):
                raise RouterInterfaceInUseByFloatingIP(router_id=router_id, subnet_id=subnet["id"])
        if routes_via_subnet(await self._routes(conn, router_id), subnet["cidr"]):
            raise RouterInterfaceInUseByRoute(router_id=router_id, subnet_id=subnet["id"])
        await refuse_interface_removal(conn, router_id, [subnet["id"]])

    async def _remove_by_port(self, conn: AsyncConnection, router: Any, port_id: str, subnet_id: str | None,
                              events: list[ChangeEvent]) -> dict[str, Any]:
        port = next((p for p in await self._interfaces(conn, router["id"]) if p["id"] == port_id), None)
        if port is None:
            raise RouterInterfaceNotFound(router_id=router["id"], port_id=port_id)
        subnet_ids = [ip["subnet_id"] for ip in port["fixed_ips"]]
        if subnet_id and subnet_id not in subnet_ids:
            raise SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
        for subnet in (await self._subnets(conn, subnet_ids)).values():
            await self._check_interface_unused(conn, router["id"], subnet)
        await self._drop_port(conn, port_id)
        events.append(ChangeEvent("port", port_id, "delete", 0, (("network_id", port["network_id"]),
                                                                 ("host", port["binding_host_id"]))))
        return self._interface_info(router, port, subnet_ids)

    async def _remove_by_subnet(self, conn: AsyncConnection, ctx: RequestContext, router: Any, subnet_id: str,
                                events: list[ChangeEvent]) -> dict[str, Any]:
        subnet = await fetch_one(conn, db.subnets, "subnet", subnet_id, subnet_visible(ctx))
        ports = [p for p in await self._interfaces(conn, router["id"]) if p["network_id"] == subnet["network_id"]]
        if ports:
            await self._check_interface_unused(conn, router["id"], subnet)
        for port in ports:
            port_subnets = [ip["subnet_id"] for ip in port["fixed_ips"]]
            if subnet_id not in port_subnets:
                continue
            if len(port_subnets) > 1:
                # A multi-prefix (IPv6) port only loses this subnet's address.
                await self.ports.update_in(conn, elevated(ctx), port, {
                    "fixed_ips": [ip for ip in port["fixed_ips"] if ip["subnet_id"] != subnet_id]})
                events.append(ChangeEvent("port", port["id"], "update", 0, (("network_id", port["network_id"]),
                                                                            ("host", ""))))
            else:
                await self._drop_port(conn, port["id"])
                events.append(ChangeEvent("port", port["id"], "delete", 0, (("network_id", port["network_id"]),
                                                                            ("host", port["binding_host_id"]))))
            return self._interface_info(router, port, [subnet_id])
        raise RouterInterfaceNotFoundForSubnet(router_id=router["id"], subnet_id=subnet_id)

    # ---- member actions: extra routes --------------------------------------------------------

    @staticmethod
    def _routes_body(body: Any) -> list[dict[str, str]]:
        router = body.get("router") if isinstance(body, dict) else None
        if not isinstance(router, dict) or "routes" not in router:
            raise HTTPBadRequest("Body contains invalid data")
        try:
            return list(Routes().convert(router["routes"]))
        except InvalidValue as exc:
            raise HTTPBadRequest(f"Invalid input for routes. Reason: {exc}.") from None

    async def _edit_routes(self, ctx: RequestContext, router_id: str, body: Any, *, add: bool) -> dict[str, Any]:
        requested = self._routes_body(body)

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, l3.routers, "router", router_id, router_visible(ctx), for_update=True)
            current = await self._routes(conn, row["id"])
            routes = merge_routes(current, requested) if add else subtract_routes(current, requested)
            await self._replace_routes(conn, row["id"], routes)
            await bump_revision(conn, l3.routers, row["id"])
            return await self._view_of(conn, row["id"])

        view = await self.uow.run(work, rng=self.rng,
            events=lambda view: [ChangeEvent("router", router_id, "update", view["revision_number"])])
        return {"router": self._action_view(ctx, view)}

    async def add_extraroutes(self, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
        return await self._edit_routes(ctx, router_id, body, add=True)

    async def remove_extraroutes(self, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
        return await self._edit_routes(ctx, router_id, body, add=False)


__all__ = ["RouterService", "router_for_floating_ip", "router_visible", "elevated"]

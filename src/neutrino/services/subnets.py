"""Subnets: validation (services/ipam), storage, and their effects on the network's ports."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.config import MechanismSettings
from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import InUse, not_found
from neutrino.services import allocations, rbac, segments
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ipam import owners
from neutrino.services.ipam.addresses import eui64_address
from neutrino.services.ipam.records import UNSET, FixedIp
from neutrino.services.ipam.subnet_validation import (
    HostRoute,
    SubnetLimits,
    SubnetRequest,
    SubnetSpec,
    SubnetUpdateRequest,
    check_subnetpool_affinity,
    decide_subnet_create,
    decide_subnet_update,
    resolve_subnet_source,
)
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.networks import NetworkMTUSubnetConflict, NetworkService
from neutrino.services.quotas import QuotaService
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
from neutrino.services.unit_of_work import Transaction, UnitOfWork

# Allocations that never block a subnet's deletion: they go with it.
SILENT_OWNERS = (owners.DHCP, owners.DISTRIBUTED, "network:floatingip_agent_gateway")


class SubnetInUse(InUse):
    message = "Unable to complete operation on subnet %(subnet_id)s: One or more ports have an IP allocation from this subnet."


def subnet_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own subnets, subnets of own networks, and subnets of networks shared with the caller or
    external to it (``subnet-external-network``: as in Neutron since 2024.2, a project sees the
    subnets of the external networks it may use, so it can pick gateway and floating IP subnets).
    """
    if ctx.is_privileged:
        return None
    s, n = db.subnets, db.networks
    net_owned = exists().where(n.c.id == s.c.network_id, n.c.project_id == ctx.project_id)
    return or_(s.c.project_id == ctx.project_id, net_owned,
               rbac.granted("network", s.c.network_id, ctx, (rbac.SHARED, rbac.EXTERNAL)))


class SubnetService:
    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService, networks: NetworkService,
                 settings: MechanismSettings, subnetpools: Any = None, rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(database, notifier)
        self.quotas = quotas
        self.networks = networks
        self.limits = SubnetLimits(settings.max_dns_nameservers, settings.max_subnet_host_routes)
        self.subnetpools = subnetpools
        self.rng = rng or random.Random()
        # Called in the creating transaction with (conn, network row, new subnet id); each returns
        # the ids of ports it gave an address (the L3 plugin: routers' gateway ports).
        self.on_created: list[Callable[[AsyncConnection, Any, str], Awaitable[list[str]]]] = []

    def table_query(self, ctx: RequestContext) -> TableQuery:
        s = db.subnets
        shared = rbac.granted("network", s.c.network_id, ctx, (rbac.SHARED,))
        special = {"router:external": lambda values: exists().where(
            db.networks.c.id == s.c.network_id, db.networks.c.router_external.in_(list(values))),
                   "shared": lambda values: or_(*[shared if v else ~shared for v in values])}
        cols = {a: a for a in ("id", "name", "description", "project_id", "network_id", "ip_version", "cidr",
                               "gateway_ip", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
                               "segment_id", "revision_number", "created_at", "updated_at")}
        cols["tenant_id"] = "project_id"
        return TableQuery("subnet", s, cols, special, tag_type="subnet")

    # ---- reading ---------------------------------------------------------------------------

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        tag_map = await load_tags(conn, "subnet", ids)
        net_ids = list({r["network_id"] for r in rows})
        external = {nid for (nid,) in await conn.execute(select(db.networks.c.id).where(
            db.networks.c.id.in_(net_ids), db.networks.c.router_external.is_(True)))} if net_ids else set()
        return [self.view(r, r["network_id"] in external, tag_map.get(r["id"], [])) for r in rows]

    @staticmethod
    def view(row: Any, external: bool, tags: Sequence[str]) -> dict[str, Any]:
        return {
            "id": row["id"], "name": row["name"], "description": row["description"],
            **project_view(row["project_id"]), "network_id": row["network_id"], "ip_version": row["ip_version"],
            "cidr": row["cidr"], "gateway_ip": row["gateway_ip"],
            "allocation_pools": list(row["allocation_pools"]), "dns_nameservers": list(row["dns_nameservers"]),
            "host_routes": list(row["host_routes"]), "enable_dhcp": row["enable_dhcp"],
            "ipv6_ra_mode": row["ipv6_ra_mode"], "ipv6_address_mode": row["ipv6_address_mode"],
            "subnetpool_id": row["subnetpool_id"], "segment_id": row["segment_id"],
            "service_types": list(row["service_types"]), "router:external": external,
            "dns_publish_fixed_ip": row["dns_publish_fixed_ip"], "tags": list(tags), **standard_view(row),
        }

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(ctx), query, subnet_visible(ctx))
            return await self._views(conn, rows)

    async def get(self, ctx: RequestContext, subnet_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, db.subnets, "subnet", subnet_id, subnet_visible(ctx))
            return (await self._views(conn, [row]))[0]

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        """Subnet rules look at the network's owner (only the network owner may add subnets)."""
        net_id = obj.get("network_id")
        if not net_id:
            return {}
        facts = (await self.networks.owner_facts(ctx, [net_id])).get(net_id)
        if facts is None:
            raise not_found("network", net_id)
        return facts

    async def policy_targets(self, ctx: RequestContext, objs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`policy_target` for a listed page, with one read of the networks involved."""
        facts = await self.networks.owner_facts(ctx, [obj.get("network_id") or "" for obj in objs])
        return [facts.get(obj.get("network_id") or "", {}) for obj in objs]

    # ---- create ----------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids, touched = [], []
            for item in items:
                sid, ports = await self.create_in(conn, ctx, item)
                ids.append(sid)
                touched.extend(ports)
            rows = (await conn.execute(select(db.subnets).where(db.subnets.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            views = await self._views(conn, [by_id[i] for i in ids])
            tx.emit(*(ChangeEvent("subnet", s["id"], "create", s["revision_number"],
                                  (("network_id", s["network_id"]),)) for s in views),
                    *(ChangeEvent("port", p, "update") for p in touched))
            return views

        return await self.uow.run(work, rng=self.rng)

    async def create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]) -> tuple[str, list[str]]:
        net = await self.networks.get_in(conn, ctx, item["network_id"])
        existing = await allocations.network_subnets(conn, net["id"])
        ip_version = item["ip_version"]
        default_pool = None
        if item.get("use_default_subnetpool") and self.subnetpools is not None:
            default_pool = await self.subnetpools.default_pool_id(conn, ip_version)
        pool_id = resolve_subnet_source(
            ip_version=ip_version, cidr=item.get("cidr", UNSET), prefixlen=item.get("prefixlen", UNSET),
            subnetpool_id=item.get("subnetpool_id") or UNSET,
            use_default_subnetpool=item.get("use_default_subnetpool", UNSET),
            allocation_pools=item.get("allocation_pools", UNSET), default_subnetpool_id=default_pool)
        allocated = None
        project = item.get("project_id") or ctx.project_id
        if pool_id is not None:
            if self.subnetpools is None:
                from neutrino.errors import not_found
                raise not_found("subnetpool", pool_id)
            allocated = await self.subnetpools.allocate_prefix(
                conn, ctx, pool_id, ip_version=ip_version, cidr=item.get("cidr"), prefixlen=item.get("prefixlen"),
                project_id=project, network_id=net["id"], existing=existing, gateway_ip=item.get("gateway_ip"))
        else:
            # A subnet without a pool may not join same-family subnets that came from one.
            check_subnetpool_affinity(existing, ip_version=ip_version, subnetpool_id=None)
        req = SubnetRequest(
            network_id=net["id"], ip_version=ip_version, cidr=item.get("cidr", UNSET),
            gateway_ip=item.get("gateway_ip", UNSET), allocation_pools=item.get("allocation_pools", UNSET),
            dns_nameservers=item.get("dns_nameservers", UNSET), host_routes=item.get("host_routes", UNSET),
            enable_dhcp=item.get("enable_dhcp", True), ipv6_ra_mode=item.get("ipv6_ra_mode", UNSET),
            ipv6_address_mode=item.get("ipv6_address_mode", UNSET), service_types=item.get("service_types", UNSET))
        spec = decide_subnet_create(req, existing=existing, limits=self.limits, allocated_cidr=allocated,
                                    subnetpool_id=pool_id)
        minimum = 1280 if spec.ip_version == 6 else 68
        if net["mtu"] < minimum:
            raise NetworkMTUSubnetConflict(net_id=net["id"], subnet_id="new subnet")
        if item.get("segment_id") is not None or existing:
            await segments.check_subnet_segment(conn, net["id"], item.get("segment_id"))
        now = utcnow()
        sid = new_id()
        await conn.execute(insert(db.subnets).values(
            id=sid, project_id=project, **new_standard_values(item, now), network_id=net["id"],
            ip_version=spec.ip_version, cidr=spec.cidr, gateway_ip=spec.gateway_ip, enable_dhcp=spec.enable_dhcp,
            ipv6_ra_mode=spec.ipv6_ra_mode, ipv6_address_mode=spec.ipv6_address_mode, subnetpool_id=pool_id,
            segment_id=item.get("segment_id"), dns_publish_fixed_ip=item.get("dns_publish_fixed_ip", False),
            allocation_pools=spec.allocation_pools_as_dicts(), dns_nameservers=list(spec.dns_nameservers),
            host_routes=[r.as_dict() for r in spec.host_routes], service_types=list(spec.service_types)))
        if item.get("segment_id") is not None:
            await segments.refresh_peer_routes(conn, net["id"])
        touched = await self._on_new_subnet(conn, net, sid, spec)
        for hook in self.on_created:
            touched.extend(await hook(conn, net, sid))
        await self.quotas.check(conn, ctx, {"subnet": 0}, project_id=project)
        await bump_revision(conn, db.networks, net["id"])
        return sid, touched

    async def _on_new_subnet(self, conn: AsyncConnection, net: Any, subnet_id: str, spec: SubnetSpec) -> list[str]:
        """An auto-address IPv6 subnet gives every existing non-router port its EUI-64 address."""
        if not spec.info(subnet_id).is_auto_address:
            return []
        p = db.ports
        rows = await conn.execute(select(p.c.id, p.c.mac_address).where(
            p.c.network_id == net["id"], p.c.device_owner.not_in(owners.ROUTER_PORT_OWNERS),
            p.c.ip_allocation != "none"))
        touched = []
        for port_id, mac in rows.all():
            await allocations.add(conn, port_id, net["id"], [FixedIp(subnet_id, eui64_address(spec.cidr, mac))])
            await bump_revision(conn, p, port_id)
            touched.append(port_id)
        await allocations.refresh_ports(conn, touched)
        return touched

    # ---- update ----------------------------------------------------------------------------

    @staticmethod
    def _spec(row: Any) -> SubnetSpec:
        return SubnetSpec(
            network_id=row["network_id"], ip_version=row["ip_version"], cidr=row["cidr"],
            gateway_ip=row["gateway_ip"],
            allocation_pools=tuple((p["start"], p["end"]) for p in row["allocation_pools"]),
            dns_nameservers=tuple(row["dns_nameservers"]),
            host_routes=tuple(HostRoute(r["destination"], r["nexthop"]) for r in row["host_routes"]),
            enable_dhcp=row["enable_dhcp"], ipv6_ra_mode=row["ipv6_ra_mode"],
            ipv6_address_mode=row["ipv6_address_mode"], service_types=tuple(row["service_types"]),
            subnetpool_id=row["subnetpool_id"])

    async def update(self, ctx: RequestContext, subnet_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, db.subnets, "subnet", subnet_id, subnet_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            current = self._spec(row)
            gw_port = None
            if row["gateway_ip"]:
                found = await conn.execute(select(db.ipallocations.c.port_id).join(
                    db.ports, db.ports.c.id == db.ipallocations.c.port_id).where(
                    db.ipallocations.c.subnet_id == subnet_id, db.ipallocations.c.ip_address == row["gateway_ip"],
                    db.ports.c.device_owner.in_(owners.ROUTER_INTERFACE_OWNERS_SNAT)))
                gw_port = found.scalar()
            req = SubnetUpdateRequest(**{k: changes[k] for k in (
                "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp", "service_types")
                if k in changes})
            spec = decide_subnet_update(current, req, subnet_id=subnet_id, limits=self.limits,
                                        gateway_port_id=gw_port)
            if "segment_id" in changes:
                await segments.check_subnet_segment(conn, row["network_id"], changes["segment_id"],
                                                    subnet_id=subnet_id, old_segment_id=row["segment_id"],
                                                    update=True)
            values = {k: changes[k] for k in ("name", "description", "segment_id", "dns_publish_fixed_ip")
                      if k in changes}
            values.update(gateway_ip=spec.gateway_ip, allocation_pools=spec.allocation_pools_as_dicts(),
                          dns_nameservers=list(spec.dns_nameservers),
                          host_routes=[r.as_dict() for r in spec.host_routes],
                          enable_dhcp=spec.enable_dhcp, service_types=list(spec.service_types))
            await bump_revision(conn, db.subnets, subnet_id, values)
            if "segment_id" in changes or (row["segment_id"] and "gateway_ip" in changes):
                await segments.refresh_peer_routes(conn, row["network_id"])
            new = await fetch_one(conn, db.subnets, "subnet", subnet_id)
            view = (await self._views(conn, [new]))[0]
            tx.emit(ChangeEvent("subnet", subnet_id, "update", view["revision_number"],
                                (("network_id", view["network_id"]),)))
            return view

        return await self.uow.run(work)

    # ---- delete ----------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, subnet_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            touched: list[str] = []
            row = await fetch_one(conn, db.subnets, "subnet", subnet_id, subnet_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            auto_address = allocations.subnet_info(row).is_auto_address
            a, p = db.ipallocations, db.ports
            users = (await conn.execute(select(a.c.port_id, a.c.ip_address, p.c.device_owner).join(
                p, p.c.id == a.c.port_id).where(a.c.subnet_id == subnet_id))).all()
            blocking = [u for u in users if not auto_address and u.device_owner not in SILENT_OWNERS]
            if blocking:
                raise SubnetInUse(subnet_id=subnet_id)
            for port_id, ip, _owner in users:
                await allocations.remove(conn, port_id, [FixedIp(subnet_id, ip)])
                await bump_revision(conn, p, port_id)
                touched.append(port_id)
            await allocations.refresh_ports(conn, touched)
            await delete_tags(conn, "subnet", subnet_id)
            await conn.execute(delete(db.subnets).where(db.subnets.c.id == subnet_id))
            if row["segment_id"]:
                await segments.refresh_peer_routes(conn, row["network_id"], deleted_cidr=row["cidr"])
            await bump_revision(conn, db.networks, row["network_id"])
            tx.emit(*(ChangeEvent("port", p, "update") for p in touched),
                    ChangeEvent("subnet", subnet_id, "delete", 0, (("network_id", row["network_id"]),)))

        await self.uow.run(work)


__all__ = ["SubnetService", "SubnetInUse", "update"]

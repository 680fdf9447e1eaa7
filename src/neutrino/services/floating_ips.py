"""Floating IPs: an address on an external network, optionally NATed to an internal port.

Each floating IP holds its address through a ``network:floatingip`` port (empty project, status
``N/A``) made by the core port service. Associating it with an internal port needs a router that
has an interface on the port's subnet and its gateway on the floating IP's network
(:func:`neutrino.services.routers.router_for_floating_ip`); that router becomes ``router_id``.

``status`` stays ``DOWN``: in Neutron the L3 agent reports ``ACTIVE`` once the NAT rules exist,
and no L3 agent serves routers yet. Also here: the read-only floating IP pools list, and the hook
the port service calls before deleting a port (its floating IPs and port forwardings let go).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema import l3
from neutrino.errors import BadRequest, Conflict, HTTPNotFound, InUse, NotFound
from neutrino.services import rbac
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, among, fetch_one, select_rows
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService, port_visible
from neutrino.services.quotas import QuotaService
from neutrino.services.routers import elevated, router_for_floating_ip, router_visible
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

FLOATINGIP_OWNER = "network:floatingip"
STATUS_DOWN = "DOWN"


class ExternalGatewayForFloatingIPNotFound(NotFound):
    message = ("External network %(external_network_id)s is not reachable from subnet %(subnet_id)s.  Therefore, "
               "cannot associate Port %(port_id)s with a Floating IP.")


class RouterGatewayNotOnFloatingNetwork(Conflict):
    """``floating-ip-router-writable``: the named router cannot serve the floating IP (409, as
    Neutron's spec for the extension says; the type name is Neutrino's)."""

    message = "Router %(router_id)s has no external gateway on the floating IP's network %(network_id)s."


class FloatingIPPortAlreadyAssociated(InUse):
    message = ("Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with port %(port_id)s using fixed "
               "IP %(fixed_ip)s, as that fixed IP already has a floating IP on external network %(net_id)s.")


class FipInUseByPortForwarding(InUse):
    message = "Floating IP %(id)s in use by Port Forwarding resources."


class ExternalIpAddressExhausted(BadRequest):
    message = "Unable to find any IP address on external network %(net_id)s."


def fip_error(msg: str) -> BadRequest:
    return BadRequest(resource="floatingip", msg=msg)


def fip_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    if ctx.is_privileged:
        return None
    return l3.floatingips.c.project_id == ctx.project_id


def ipv4_fixed_ips(fixed_ips: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    return [ip for ip in fixed_ips if ipaddress.ip_address(ip["ip_address"]).version == 4]


async def internal_target(conn: AsyncConnection, ctx: RequestContext, port_id: str) -> Any:
    """The internal port a floating IP or port forwarding points at, as the caller sees it."""
    return await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx))


async def subnet_of(conn: AsyncConnection, subnet_id: str) -> Any:
    return await fetch_one(conn, db.subnets, "subnet", subnet_id)


class FloatingIpService:
    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService, networks: NetworkService,
                 ports: PortService, rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.quotas = quotas
        self.networks = networks
        self.ports = ports
        self.rng = rng or random.Random()

    def table_query(self) -> TableQuery:
        cols = {a: a for a in ("id", "description", "project_id", "floating_ip_address", "floating_network_id",
                               "fixed_ip_address", "router_id", "status", "revision_number", "created_at",
                               "updated_at", "qos_policy_id")}
        cols.update({"tenant_id": "project_id", "port_id": "fixed_port_id"})
        return TableQuery("floatingip", l3.floatingips, cols, tag_type="floatingip", unseen_marker_ignored=True)

    # ---- reading ---------------------------------------------------------------------------

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any], known_ports: Mapping[str, Any] | None = None,
                     without_forwardings: bool = False) -> list[dict[str, Any]]:
        """Views of ``rows``; ``known_ports`` (already read in this transaction) and
        ``without_forwardings`` (just checked) spare their lookups."""
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        ports: dict[str, Any] = dict(known_ports or {})
        port_ids = [r["fixed_port_id"] for r in rows if r["fixed_port_id"] and r["fixed_port_id"] not in ports]
        if port_ids:
            for port in (await conn.execute(select(db.ports).where(among(conn, db.ports.c.id, port_ids)))).mappings():
                ports[port["id"]] = port
        pf = l3.portforwardings
        forwardings: dict[str, list[dict[str, Any]]] = {}
        found = [] if without_forwardings else (await conn.execute(
            select(pf).where(among(conn, pf.c.floatingip_id, ids)).order_by(pf.c.external_port_start, pf.c.id))).mappings()
        for row in found:
            forwardings.setdefault(row["floatingip_id"], []).append({
                "id": row["id"], "internal_ip_address": row["internal_ip_address"], "protocol": row["protocol"],
                "internal_port": _single(row["internal_port_start"], row["internal_port_end"]),
                "external_port": _single(row["external_port_start"], row["external_port_end"]),
                "internal_port_id": row["internal_port_id"]})
        tag_map = await load_tags(conn, "floatingip", ids)
        return [self.view(r, ports.get(r["fixed_port_id"]), forwardings.get(r["id"], []), tag_map.get(r["id"], []))
                for r in rows]

    @staticmethod
    def view(row: Any, port: Any, forwardings: Sequence[Mapping[str, Any]], tags: Sequence[str]) -> dict[str, Any]:
        details = None
        if port is not None:
            details = {"name": port["name"], "network_id": port["network_id"], "mac_address": port["mac_address"],
                       "admin_state_up": port["admin_state_up"], "status": port["status"],
                       "device_id": port["device_id"], "device_owner": port["device_owner"]}
        return {
            "id": row["id"], **project_view(row["project_id"]), "description": row["description"],
            "floating_ip_address": row["floating_ip_address"], "floating_network_id": row["floating_network_id"],
            "router_id": row["router_id"], "port_id": row["fixed_port_id"], "qos_policy_id": row["qos_policy_id"],
            "fixed_ip_address": row["fixed_ip_address"], "status": row["status"], "port_details": details,
            "port_forwardings": [dict(f) for f in forwardings], "tags": list(tags), **standard_view(row),
        }

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(), query, fip_visible(ctx))
            return await self._views(conn, rows)

    async def get(self, ctx: RequestContext, fip_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, l3.floatingips, "floatingip", fip_id, fip_visible(ctx))
            return (await self._views(conn, [row]))[0]

    async def find(self, ctx: RequestContext, fip_id: str) -> dict[str, Any]:
        """The floating IP's own attributes (no port details, forwardings or tags): one statement,
        for checks that need nothing more (the caller's roles decide)."""
        async with self.db.read() as conn:
            return self.view(await fetch_one(conn, l3.floatingips, "floatingip", fip_id, fip_visible(ctx)),
                             None, [], [])

    async def _view_of(self, conn: AsyncConnection, fip_id: str) -> dict[str, Any]:
        row = await fetch_one(conn, l3.floatingips, "floatingip", fip_id)
        return (await self._views(conn, [row]))[0]

    # ---- association ---------------------------------------------------------------------------

    async def _association(self, conn: AsyncConnection, ctx: RequestContext, fip: Mapping[str, Any],
                           port_id: str, fixed_ip_address: str | None, named_router: str | None = None,
                           ) -> tuple[str, str, str, Any]:
        """Check an association request (the floating IP must have no port forwardings); returns
        (port id, fixed address, router id, the port's row). The router is the one connecting the
        port's subnet to the floating network, or the one the request names
        (``floating-ip-router-writable``), which then need not be adjacent to the port: routes
        through other routers are the caller's to provide."""
        port = await internal_target(conn, ctx, port_id)
        if port["project_id"] != fip["project_id"] and not ctx.is_admin:
            raise fip_error(f"Cannot process floating IP association with Port {port_id}, since that port is owned "
                            "by a different project")
        if port["device_owner"].startswith(("network:", "neutron:")):
            raise fip_error(f"Port {port_id} is unable to be assigned a floating IP")
        if fixed_ip_address:
            if ipaddress.ip_address(fixed_ip_address).version != 4:
                raise fip_error(f"Cannot process floating IP association with {fixed_ip_address}, since that is "
                                "not an IPv4 address")
            match = [ip for ip in port["fixed_ips"] if ip["ip_address"] == fixed_ip_address]
            if not match:
                raise fip_error(f"Port {port_id} does not have fixed ip {fixed_ip_address}")
            chosen = match[0]
        else:
            v4 = ipv4_fixed_ips(port["fixed_ips"])
            if not v4:
                raise fip_error(f"Cannot add floating IP to port {port_id} that has no fixed IPv4 addresses")
            if len(v4) > 1:
                raise fip_error(f"Port {port_id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 "
                                "address when assigning a floating IP")
            chosen = v4[0]
        if named_router:
            router_id: str | None = await self._named_router(conn, ctx, fip["floating_network_id"], named_router)
        else:
            subnet = await subnet_of(conn, chosen["subnet_id"])
            router_id = await router_for_floating_ip(conn, port["network_id"], subnet["id"], subnet["gateway_ip"],
                                                     fip["floating_network_id"])
            if router_id is None:
                raise ExternalGatewayForFloatingIPNotFound(subnet_id=subnet["id"], port_id=port_id,
                                                           external_network_id=fip["floating_network_id"])
        f = l3.floatingips
        taken = await conn.execute(select(f.c.id).where(
            f.c.floating_network_id == fip["floating_network_id"], f.c.fixed_port_id == port_id,
            f.c.fixed_ip_address == chosen["ip_address"], f.c.id != fip["id"]).limit(1))
        if taken.first() is not None:
            raise FloatingIPPortAlreadyAssociated(
                port_id=port_id, fip_id=fip["id"], floating_ip_address=fip["floating_ip_address"],
                fixed_ip=chosen["ip_address"], net_id=fip["floating_network_id"])
        if await self._has_forwardings(conn, fip["id"]):
            raise FipInUseByPortForwarding(id=fip["id"])
        return port_id, chosen["ip_address"], str(router_id), port

    # ---- create ----------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events: list[ChangeEvent] = []

        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            events.clear()
            ids = [await self.create_in(conn, ctx, item, events) for item in items]
            return [await self._view_of(conn, i) for i in ids]

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: events + [ChangeEvent("floatingip", f["id"], "create", f["revision_number"],
                                                        (("router_id", f["router_id"]),)) for f in result])
        return result

    async def create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any],
                        events: list[ChangeEvent]) -> str:
        project = item.get("project_id") or ctx.project_id
        network_id = item["floating_network_id"]
        net = await self.networks.get_in(conn, ctx, network_id)
        if not net["router_external"]:
            raise fip_error(f"Network {network_id} is not a valid external network")
        has_v4 = await conn.execute(select(db.subnets.c.id).where(
            db.subnets.c.network_id == network_id, db.subnets.c.ip_version == 4).limit(1))
        if has_v4.first() is None:
            raise fip_error(f"Network {network_id} does not contain any IPv4 subnet")
        if item.get("fixed_ip_address") and not item.get("port_id"):
            raise fip_error("fixed_ip_address cannot be specified without a port_id")
        fip_id = new_id()
        wanted: dict[str, str] = {}
        if item.get("subnet_id"):
            # Looked up as the caller sees subnets first: another project's private subnet is "not
            # found", exactly like one that never existed (its port is made as the service below).
            await fetch_one(conn, db.subnets, "subnet", item["subnet_id"], subnet_visible(ctx))
            wanted["subnet_id"] = item["subnet_id"]
        if item.get("floating_ip_address"):
            wanted["ip_address"] = item["floating_ip_address"]
        port_item: dict[str, Any] = {"network_id": network_id, "project_id": "", "name": "", "admin_state_up": True,
                                     "device_owner": FLOATINGIP_OWNER, "device_id": fip_id}
        if wanted:
            port_item["fixed_ips"] = [wanted]
        port_id = await self.ports.create_in(conn, elevated(ctx), port_item)
        await conn.execute(update(db.ports).where(db.ports.c.id == port_id).values(status="N/A"))
        port = await fetch_one(conn, db.ports, "port", port_id)
        v4 = ipv4_fixed_ips(port["fixed_ips"])
        if not v4:
            raise ExternalIpAddressExhausted(net_id=network_id)
        now = utcnow()
        fip = {"id": fip_id, "project_id": project, "floating_network_id": network_id,
               "floating_ip_address": v4[0]["ip_address"]}
        fixed_port_id = fixed_ip = router_id = None
        if item.get("port_id"):
            fixed_port_id, fixed_ip, router_id, _ = await self._association(
                conn, ctx, fip, item["port_id"], item.get("fixed_ip_address"), item.get("router_id"))
        elif item.get("router_id"):
            router_id = await self._named_router(conn, ctx, network_id, item["router_id"])
        if item.get("qos_policy_id"):
            await self.networks.qos_policies.check(conn, ctx, item["qos_policy_id"])
        await conn.execute(insert(l3.floatingips).values(
            **fip, **new_standard_values(item, now), floating_port_id=port_id, fixed_port_id=fixed_port_id,
            fixed_ip_address=fixed_ip, router_id=router_id, status=STATUS_DOWN,
            qos_policy_id=item.get("qos_policy_id")))
        await self.quotas.check(conn, ctx, {"floatingip": 0}, project_id=project)
        events.append(ChangeEvent("port", port_id, "create", 0, (("network_id", network_id), ("host", ""))))
        return fip_id

    # ---- update ----------------------------------------------------------------------------

    async def update(self, ctx: RequestContext, fip_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        if not changes:
            # A floating IP once had no attribute but its association, so an empty update is still
            # how old clients disassociate it (Neutron keeps that meaning).
            changes = {"port_id": None}
        previous: list[str | None] = []

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, l3.floatingips, "floatingip", fip_id, fip_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            previous[:] = [row["router_id"]]  # the router that translated it hears that it no longer does
            values: dict[str, Any] = {}
            if "description" in changes:
                values["description"] = changes["description"] or ""
            port_id = changes.get("port_id")
            if changes.get("fixed_ip_address") and not port_id:
                raise fip_error("fixed_ip_address cannot be specified without a port_id")
            known: dict[str, Any] = {}
            named = changes.get("router_id")
            if port_id or ("router_id" in changes and "port_id" not in changes and row["fixed_port_id"]):
                # A new association, or a new router for the current one (naming none goes back
                # to the router that connects the port).
                target, fixed = (port_id, changes.get("fixed_ip_address")) if port_id else (
                    row["fixed_port_id"], row["fixed_ip_address"])
                new = await self._association(conn, ctx, row, target, fixed, named)
                values.update(fixed_port_id=new[0], fixed_ip_address=new[1], router_id=new[2])
                known[target] = new[3]
            elif "port_id" in changes:
                values.update(fixed_port_id=None, fixed_ip_address=None)
                if not await self._has_forwardings(conn, fip_id):
                    # No router translates it any more, so no agent would ever report it DOWN.
                    values.update(router_id=None, status=STATUS_DOWN)
            if "router_id" in changes and not values.get("fixed_port_id"):
                # No port: the router named serves it (port forwardings), or none does.
                values["router_id"] = await self._named_router(
                    conn, ctx, row["floating_network_id"], named) if named else None
            if "qos_policy_id" in changes:
                if changes["qos_policy_id"]:
                    await self.networks.qos_policies.check(conn, ctx, changes["qos_policy_id"])
                values["qos_policy_id"] = changes["qos_policy_id"]
            now = utcnow()
            await bump_revision(conn, l3.floatingips, fip_id, values, now=now)
            # The row is locked for this transaction: its new state is known without reading it.
            new_row = {**row, **values, "revision_number": row["revision_number"] + 1, "updated_at": now}
            return (await self._views(conn, [new_row], known, without_forwardings=bool(known)))[0]

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent("floatingip", fip_id, "update", result["revision_number"],
                                               (("router_id", result["router_id"]),
                                                ("previous_router_id", previous[0] if previous else None)))])
        return result

    @staticmethod
    async def _named_router(conn: AsyncConnection, ctx: RequestContext, network_id: str, router_id: str) -> str:
        """``floating-ip-router-writable``: a router the caller sees (404 otherwise) with its gateway
        on the floating IP's network (409 otherwise)."""
        router = await fetch_one(conn, l3.routers, "router", router_id, router_visible(ctx))
        gw = router["gw_port_id"] and (await conn.execute(select(db.ports.c.network_id).where(
            db.ports.c.id == router["gw_port_id"]))).scalar()
        if gw != network_id:
            raise RouterGatewayNotOnFloatingNetwork(router_id=router_id, network_id=network_id)
        return str(router_id)

    async def _has_forwardings(self, conn: AsyncConnection, fip_id: str) -> bool:
        pf = l3.portforwardings
        return (await conn.execute(select(pf.c.id).where(pf.c.floatingip_id == fip_id).limit(1))).first() is not None

    # ---- delete ----------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, fip_id: str, if_revision: int | None = None) -> None:
        info: dict[str, Any] = {}

        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, l3.floatingips, "floatingip", fip_id, fip_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            if await self._has_forwardings(conn, fip_id):
                # Neutron refuses too: the forwardings are the owner's to remove, not a side effect.
                raise FipInUseByPortForwarding(id=fip_id)
            info.update(port_id=row["floating_port_id"], network_id=row["floating_network_id"],
                        router_id=row["router_id"])
            await delete_tags(conn, "floatingip", fip_id)
            await conn.execute(delete(l3.floatingips).where(l3.floatingips.c.id == fip_id))
            await self.ports.delete_in(conn, row["floating_port_id"])

        await self.uow.run(work, rng=self.rng, events=lambda _: [
                                      ChangeEvent("port", info["port_id"], "delete", 0, (("network_id", info["network_id"]), ("host", ""))),
                                      ChangeEvent("floatingip", fip_id, "delete", 0, (("router_id", info["router_id"]),))])

    # ---- the port service's deletion hook --------------------------------------------------

    async def release_port(self, conn: AsyncConnection, port: Mapping[str, Any]) -> list[ChangeEvent]:
        """A port is about to go: floating IPs on it are disassociated, port forwardings to it
        deleted (and a floating IP left without any forgets its router), as Neutron does."""
        f, pf = l3.floatingips, l3.portforwardings
        touched: dict[str, bool] = {}
        for (fip_id,) in await conn.execute(select(f.c.id).where(f.c.fixed_port_id == port["id"])):
            await bump_revision(conn, f, fip_id, {"fixed_port_id": None, "fixed_ip_address": None,
                                                  "router_id": None})
            touched[fip_id] = True
        forwarded = [fid for (fid,) in await conn.execute(
            select(pf.c.floatingip_id).where(pf.c.internal_port_id == port["id"]).distinct())]
        if forwarded:
            await conn.execute(delete(pf).where(pf.c.internal_port_id == port["id"]))
            for fip_id in forwarded:
                left = (await conn.execute(select(func.count()).select_from(pf).where(
                    pf.c.floatingip_id == fip_id))).scalar()
                await bump_revision(conn, f, fip_id, {} if left else {"router_id": None})
                touched[fip_id] = True
        return [ChangeEvent("floatingip", fip_id, "update") for fip_id in touched]


    async def port_addresses_changed(self, conn: AsyncConnection, port: Mapping[str, Any],
                                     addresses: Sequence[str]) -> list[ChangeEvent]:
        """A port's addresses changed: the fixed address of a floating IP may not go (400, as in
        Neutron); port forwardings to an address that went are deleted."""
        f, pf = l3.floatingips, l3.portforwardings
        for (fixed,) in await conn.execute(select(f.c.fixed_ip_address).where(f.c.fixed_port_id == port["id"])):
            if fixed and fixed not in addresses:
                raise BadRequest(resource="port", msg=f"Cannot update the fixed_ips of the port {port['id']}, "
                                 "because its original fixed_ip has been associated to a floating ip")
        stale = [(pf_id, fip_id) for pf_id, fip_id, ip in await conn.execute(
            select(pf.c.id, pf.c.floatingip_id, pf.c.internal_ip_address).where(pf.c.internal_port_id == port["id"]))
            if ip not in addresses]
        if not stale:
            return []
        await conn.execute(delete(pf).where(pf.c.id.in_([pf_id for pf_id, _ in stale])))
        touched = sorted({fip_id for _, fip_id in stale})
        for fip_id in touched:
            left = (await conn.execute(select(pf.c.id).where(pf.c.floatingip_id == fip_id).limit(1))).first()
            await bump_revision(conn, f, fip_id, {} if left else {"router_id": None})
        return [ChangeEvent("floatingip", fip_id, "update") for fip_id in touched]


def _single(start: int, end: int) -> int | None:
    """A range of one port shows as that port; a wider range has no single port."""
    return start if start == end else None


class FloatingIpPoolService:
    """``GET /v2.0/floatingip_pools``: the IPv4 subnets of the external networks the caller sees.

    As in Neutron each pool shows the *caller's* project: a pool is "yours to allocate from".
    """

    def __init__(self, database: Database) -> None:
        self.db = database

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        n, s = db.networks, db.subnets
        stmt = (select(s.c.id, s.c.name, s.c.network_id, s.c.cidr).join(n, n.c.id == s.c.network_id)
                .where(n.c.router_external.is_(True), s.c.ip_version == 4).order_by(s.c.created_at, s.c.id))
        scope = rbac.network_visible(ctx)
        if scope is not None:
            stmt = stmt.where(scope)
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [{"subnet_id": sid, "subnet_name": name, "network_id": net_id, "cidr": cidr,
                 "project_id": ctx.project_id} for sid, name, net_id, cidr in rows]

    async def get(self, ctx: RequestContext, pool_id: str) -> dict[str, Any]:
        raise HTTPNotFound()
